"""Running a scenario: one round is one fresh ``anyio.run`` with the timed region inside it (a
native baseline's: one fresh run of its backend's own runner, anyio left out)."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio

from ._adapter import run_native
from ._probe import Probe, ScenarioFailed
from ._runtimes import Runtime
from ._scenario import ScenarioSpec
from ._sweep import scale_text

#: Seconds one round may take before it is failed as hung.
DEFAULT_DEADLINE_S = 120.0


class Scenario(Protocol):
    """The required part of a scenario module, for type hints; the whole contract, required
    and optional fields, is :class:`anybench.ScenarioSpec`."""

    NAME: str
    OPERATION: str
    LATENCIES: dict[str, str]


class ScenarioTimeout(Exception):
    """A round did not finish before its deadline."""


@dataclass
class RoundResult:
    """What one round measured: the timed regions and the latency samples they recorded.

    A round is one or more independent *passes* of the scenario in one ``anyio.run`` (each with
    its own set-up, outside its region); ``ops`` and ``elapsed_ns`` are their sums.
    """

    ops: int
    elapsed_ns: int
    samples: dict[str, list[int]] = field(default_factory=dict)
    #: With ``trace_memory``: peak memory allocated during the region (tracemalloc), in bytes.
    peak_bytes: int | None = None
    passes: int = 1

    @property
    def ns_per_op(self) -> float:
        return self.elapsed_ns / self.ops


def run_round(
    scenario: ScenarioSpec | Any,
    runtime: Runtime,
    n: int,
    deadline_s: float = DEFAULT_DEADLINE_S,
    *,
    latency: bool = False,
    passes: int = 1,
    trace_memory: bool = False,
    freeze_heap: bool = True,
    probe_type: Callable[..., Probe] = Probe,
) -> RoundResult:
    """Run *scenario* at scale *n* on *runtime* in one fresh ``anyio.run``; return what it measured.

    A native baseline's runner (``run_asyncio``, ``run_trio``) runs in its backend's own runner
    under its own deadline instead (:func:`anybench._adapter.run_native`), never through anyio;
    the deadline, the garbage collection and the failures are the same.

    A *latency* round has the scenario stamp every operation and record the delays; a
    throughput round (the default) reads no clock per operation. *passes* independent passes
    of the scenario run one after the other, each with its own set-up and region, and the round
    adds them up (the harness uses it to bring a short region above a millisecond).

    With *trace_memory*, tracemalloc traces the round and the result carries the peak memory the
    scenario allocated, from its start (set-up included) to the end of its measured region; such
    a round is several times slower, so its time is not a benchmark figure.

    With *freeze_heap* (the default) what the process held before the round is frozen out of the
    collector's reach for the round; a worker process, which froze its heap once at start-up,
    passes False and only collects.

    *probe_type* makes each pass's probe (a subclass of :class:`~anybench.Probe` that counts
    its region, for :mod:`anybench._counts_worker`).

    *scenario* is a :class:`~anybench.ScenarioSpec` or a module (checked against the contract
    first: :class:`~anybench.ScenarioError` if it breaks it).

    Raises :class:`ScenarioTimeout` if the round is not done within *deadline_s* seconds, and
    :class:`~anybench.ScenarioFailed` if the scenario's own outcome check fails.
    """
    spec = ScenarioSpec.of(scenario)
    run = spec.runner(runtime.backend)
    native = runtime.backend in spec.runners
    if run is None:
        raise ValueError(f"{spec.name} has no version for the {runtime.backend} backend")
    if passes < 1 or (trace_memory and passes != 1):
        raise ValueError(f"a round takes one or more passes (one when tracing), not {passes}")
    probes: list[Probe] = []

    async def body() -> None:
        for _ in range(passes):
            probe = probe_type(latency=latency)
            probes.append(probe)
            if trace_memory:
                probe.memory_base_bytes = tracemalloc.get_traced_memory()[0]
                tracemalloc.reset_peak()
            await run(n, probe)
            probe.check_region()  # here, where a failure names the scenario

    async def main() -> None:
        with anyio.fail_after(deadline_s):
            await body()

    where = f"{spec.name} on {runtime.name} at {scale_text(spec.axis, n)}"
    # What the process held before this round (imports, earlier rounds' results) is frozen
    # out of the collector's reach, so that a collection inside the region walks the round's
    # own objects only, whatever ran before.
    gc.collect()
    if freeze_heap:
        gc.freeze()
    if trace_memory:
        tracemalloc.start()
    try:
        if native:
            # A native baseline runs on its backend's own runner and deadline: an anyio change
            # must not move the control it is compared with.
            options = runtime.backend_options()
            run_native(runtime.backend, body, deadline_s, options.get("loop_factory"))
        else:
            anyio.run(main, backend=runtime.backend, backend_options=runtime.backend_options())
    except TimeoutError:
        raise ScenarioTimeout(f"{where} did not finish within {deadline_s:g} s") from None
    except ScenarioFailed as exc:
        raise ScenarioFailed(f"{where}: {exc}") from None
    finally:
        if trace_memory:
            tracemalloc.stop()
        if freeze_heap:
            gc.unfreeze()
    samples: dict[str, list[int]] = {}
    for probe in probes:
        for series, values in probe.samples.items():
            samples.setdefault(series, []).extend(values)
    unknown = set(samples) - set(spec.latencies)
    if unknown:
        raise ScenarioFailed(f"{where} recorded undeclared latency series {sorted(unknown)}")
    return RoundResult(
        ops=sum(p.ops for p in probes),
        elapsed_ns=sum(p.elapsed_ns for p in probes),
        samples=samples,
        peak_bytes=probes[0].peak_bytes if trace_memory else None,
        passes=passes,
    )
