"""anybench: cross-runtime benchmarks of async callbacks and futures.

The instrument: the runtime registry, the portable future, the probe scenarios time themselves
with, and the harness that runs one round of a scenario on one runtime.
"""

from ._future import Future, FutureCancelledError, InvalidStateError
from ._harness import (
    DEFAULT_DEADLINE_S,
    TRIO_CALLBACKS_CAVEAT,
    RoundResult,
    Scenario,
    ScenarioTimeout,
    run_round,
)
from ._probe import Probe, ScenarioFailed, check, timer_cost_ns
from ._results import RESULTS_FORMAT
from ._runtimes import BASELINE, RUNTIMES, Runtime, UnknownRuntimeError, select_runtimes
from ._scenario import ScenarioError, ScenarioSpec

__version__ = "0.1.0"

__all__ = [
    "BASELINE",
    "DEFAULT_DEADLINE_S",
    "RESULTS_FORMAT",
    "RUNTIMES",
    "TRIO_CALLBACKS_CAVEAT",
    "Future",
    "FutureCancelledError",
    "InvalidStateError",
    "Probe",
    "RoundResult",
    "Runtime",
    "Scenario",
    "ScenarioError",
    "ScenarioFailed",
    "ScenarioSpec",
    "ScenarioTimeout",
    "UnknownRuntimeError",
    "check",
    "run_round",
    "select_runtimes",
    "timer_cost_ns",
]
