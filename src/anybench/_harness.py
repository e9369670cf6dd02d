"""Running a scenario: one round is one fresh ``anyio.run`` with the timed region inside it."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import anyio

from ._probe import Probe, ScenarioFailed
from ._runtimes import Runtime

#: Seconds one round may take before it is failed as hung.
DEFAULT_DEADLINE_S = 120.0


class Scenario(Protocol):
    """What a scenario module provides (see ``scenarios/``).

    A scenario written against anyio has ``run(n, probe)``. A native baseline (``*_native.py``)
    instead has ``run_asyncio`` and/or ``run_trio``, and ``NATIVE_OF``, the scenario it mirrors.
    """

    NAME: str
    OPERATION: str
    LATENCIES: dict[str, str]


Runner = Callable[[int, Probe], Awaitable[None]]


def runner_for(scenario: Scenario, runtime: Runtime) -> Runner | None:
    """The coroutine function that runs *scenario* on *runtime*, or None if it has none."""
    native: Runner | None = getattr(scenario, f"run_{runtime.backend}", None)
    portable: Runner | None = getattr(scenario, "run", None)
    return native or portable


class ScenarioTimeout(Exception):
    """A round did not finish before its deadline."""


@dataclass
class RoundResult:
    """What one round measured: the timed region and the latency samples it recorded."""

    ops: int
    elapsed_ns: int
    samples: dict[str, list[int]] = field(default_factory=dict)
    #: With ``trace_memory``: peak memory allocated during the region (tracemalloc), in bytes.
    peak_bytes: int | None = None

    @property
    def ns_per_op(self) -> float:
        return self.elapsed_ns / self.ops


def run_round(
    scenario: Scenario,
    runtime: Runtime,
    n: int,
    deadline_s: float = DEFAULT_DEADLINE_S,
    *,
    trace_memory: bool = False,
) -> RoundResult:
    """Run *scenario* at scale *n* once on *runtime* and return what its probe measured.

    With *trace_memory*, tracemalloc traces the round and the result carries the peak memory the
    scenario allocated, from its start (set-up included) to the end of its measured region; such
    a round is several times slower, so its time is not a benchmark figure.

    Raises :class:`ScenarioTimeout` if the round is not done within *deadline_s* seconds, and
    :class:`~anybench.ScenarioFailed` if the scenario's own outcome check fails.
    """
    probe = Probe()
    run = runner_for(scenario, runtime)
    if run is None:
        raise ValueError(f"{scenario.NAME} has no version for the {runtime.backend} backend")

    async def main() -> None:
        if trace_memory:
            probe.memory_base_bytes = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
        with anyio.fail_after(deadline_s):
            await run(n, probe)

    where = f"{scenario.NAME} on {runtime.name} at N={n}"
    # What the process held before this round (pytest, earlier benchmarks' results) is frozen
    # out of the collector's reach, so that a collection inside the region walks the round's
    # own objects only, as it would in a fresh process, whatever ran before.
    gc.collect()
    gc.freeze()
    if trace_memory:
        tracemalloc.start()
    try:
        anyio.run(main, backend=runtime.backend, backend_options=runtime.backend_options())
    except TimeoutError:
        raise ScenarioTimeout(f"{where} did not finish within {deadline_s:g} s") from None
    except ScenarioFailed as exc:
        raise ScenarioFailed(f"{where}: {exc}") from None
    finally:
        if trace_memory:
            tracemalloc.stop()
        gc.unfreeze()
    unknown = set(probe.samples) - set(scenario.LATENCIES)
    if unknown:
        raise ScenarioFailed(f"{where} recorded undeclared latency series {sorted(unknown)}")
    return RoundResult(probe.ops, probe.elapsed_ns, probe.samples, probe.peak_bytes)
