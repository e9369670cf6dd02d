"""anybench: cross-runtime benchmarks of async callbacks and futures.

The instrument: the runtime registry, the portable future, the probe scenarios time themselves
with, and the harness that runs one round of a scenario on one runtime.

The public names load on first use (PEP 562), so that reading results (``anybench report``,
``compare``, ``table``) never imports the measuring half, anyio or a runtime's library.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Each lazily loaded public name, and the private module that defines it.
_LAZY: dict[str, str] = {
    "Future": "._future",
    "FutureCancelledError": "._future",
    "InvalidStateError": "._future",
    "DEFAULT_DEADLINE_S": "._harness",
    "RoundResult": "._harness",
    "Scenario": "._harness",
    "ScenarioTimeout": "._harness",
    "run_round": "._harness",
    "RESULTS_FORMAT": "._results",
    "ScenarioError": "._scenario",
    "ScenarioSpec": "._scenario",
    "TRIO_CALLBACKS_CAVEAT": "._scenario",
    "Probe": "._probe",
    "ScenarioFailed": "._probe",
    "check": "._probe",
    "timer_cost_ns": "._probe",
    "BASELINE": "._runtimes",
    "RUNTIMES": "._runtimes",
    "Runtime": "._runtimes",
    "UnknownRuntimeError": "._runtimes",
    "register_runtime": "._runtimes",
    "select_runtimes": "._runtimes",
}

if TYPE_CHECKING:
    from ._future import Future, FutureCancelledError, InvalidStateError
    from ._harness import DEFAULT_DEADLINE_S, RoundResult, Scenario, ScenarioTimeout, run_round
    from ._probe import Probe, ScenarioFailed, check, timer_cost_ns
    from ._results import RESULTS_FORMAT
    from ._runtimes import (
        BASELINE,
        RUNTIMES,
        Runtime,
        UnknownRuntimeError,
        register_runtime,
        select_runtimes,
    )
    from ._scenario import TRIO_CALLBACKS_CAVEAT, ScenarioError, ScenarioSpec


def __getattr__(name: str) -> Any:
    """Import the module that defines public *name* on first use, and keep the value here."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


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
    "register_runtime",
    "run_round",
    "select_runtimes",
    "timer_cost_ns",
]
