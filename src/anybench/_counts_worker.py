"""A counts worker: counts the work of one scenario's regions, in a fresh interpreter.

Started by :mod:`anybench._counts` as ``python -m anybench._counts_worker`` with a
:class:`~anybench._protocol.CountsJob` on standard input; it answers with events (see
:mod:`anybench._protocol`) on its original standard output, one a line.

Two modes, never both in one process:

- ``instructions``: run under ``valgrind --tool=callgrind --instr-atstart=no``. Each counted
  region turns callgrind's instrumentation on in :meth:`Probe.start` (after its garbage
  collection, the last thing before the scenario's first operation) and off in
  :meth:`Probe.stop` (the first
  thing after its last), through client requests (:mod:`anybench._valgrind`), and is dumped at
  once as a file of its own named ``RUNTIME@N`` (:class:`~anybench._protocol.Region`). An empty
  region (start, then stop) is dumped first, twice: the instrument's own instructions, which
  the parent subtracts. Instrumentation, not collection, is what is switched: callgrind counts calls
  (though not their instructions) with collection off, and carries those counts into a later
  dump; with instrumentation off it counts nothing, and runs the rest (start-up, set-up) several
  times faster.
- ``calls``: no valgrind; :mod:`cProfile` (its C hook, whose bookkeeping allocates only for a
  function it has not seen) switched on only inside the region counts every call by function,
  Python and built-in, and a :data:`gc.callbacks` hook the collector's runs by generation
  (:class:`~anybench._protocol.Calls`). Then a second round of the same benchmark, traced
  (:class:`~anybench._bytecodes.BytecodeCounter`): bytecode instructions executed by Python
  function, own and inclusive, and by call stack, the heaviest kept (:data:`TOP_WORK`,
  :data:`TOP_STACKS`). Tracing changes no count of the first round: the rounds are apart.

Every round, warm-ups included, starts from the same state: the scenario's and trio's random
generators seeded (trio shuffles each batch of its run queue with a module-level
``random.Random``; seeded, its ordinary path, the one a program runs, is the same every time:
anybench does not switch on trio's ``_ALLOW_DETERMINISTIC_SCHEDULING``, which sorts and shuffles
every batch and so changes the work measured), the heap frozen once after the imports, and a
collection before each region (:meth:`Probe.start`). The parent sets ``PYTHONHASHSEED=0`` and
turns address randomisation off.
"""

from __future__ import annotations

import cProfile
import gc
import importlib
import os
import random
import sys
import sysconfig
import time
from typing import Any, ClassVar

from ._bytecodes import BytecodeCounter, top_stacks, top_work
from ._harness import run_round
from ._probe import Probe
from ._protocol import (
    Calls,
    CountsJob,
    Done,
    Emit,
    Failed,
    Hello,
    Region,
    Sampled,
    decode_counts_job,
    serve,
)
from ._runtimes import RUNTIMES, Runtime, runtime_named
from ._scenario import ScenarioSpec
from ._sweep import scale_text
from ._valgrind import ClientRequests
from ._worker import describe_failure

#: The dump name of the instrument's own, empty region.
EMPTY_REGION = "anybench-empty"


def region_name(runtime: str, n: int) -> str:
    """The name a counted region's dump carries: ``trio@1000``."""
    return f"{runtime}@{n}"


def seed_everything() -> None:
    """Seed the random generators a round may draw from: the global one, and trio's scheduler's
    (where trio is imported)."""
    random.seed(0)
    trio_run = sys.modules.get("trio._core._run")
    generator = getattr(trio_run, "_r", None)
    if isinstance(generator, random.Random):
        generator.seed(0)


class CallgrindProbe(Probe):
    """A probe whose region is exactly what callgrind counts."""

    requests: ClassVar[ClientRequests | None] = None
    #: Whether counting is on (a region that failed between start and stop leaves it on).
    collecting: ClassVar[bool] = False
    #: The name the next region's dump carries.
    dump_name: ClassVar[str] = ""

    def start(self, ops: int) -> None:
        super().start(ops)
        requests = type(self).requests
        if requests is not None:
            type(self).collecting = True
            requests.start_instrumentation()

    def stop(self) -> None:
        cls = type(self)
        if cls.requests is not None and cls.collecting:
            cls.requests.stop_instrumentation()
            cls.collecting = False
            cls.requests.dump_stats_at(cls.dump_name)
        super().stop()


class ProfilingProbe(Probe):
    """A probe whose region, and only it, is profiled (calls by function) and watched for the
    collector's runs."""

    profiler: ClassVar[cProfile.Profile | None] = None
    collections: ClassVar[dict[str, int]] = {}
    watching: ClassVar[bool] = False

    def start(self, ops: int) -> None:
        super().start(ops)
        cls = type(self)
        cls.collections = {}
        cls.profiler = cProfile.Profile()
        cls.watching = True
        cls.profiler.enable()

    def stop(self) -> None:
        cls = type(self)
        if cls.profiler is not None:
            cls.profiler.disable()
        cls.watching = False
        super().stop()


class TracingProbe(Probe):
    """A probe whose region, and only it, is traced: bytecode instructions by function and by
    stack (:mod:`anybench._bytecodes`)."""

    counter: ClassVar[BytecodeCounter | None] = None
    roots: ClassVar[list[str]] = []

    def start(self, ops: int) -> None:
        super().start(ops)
        cls = type(self)
        roots = cls.roots
        cls.counter = BytecodeCounter(lambda code: function_key(code, roots))
        cls.counter.start()

    def stop(self) -> None:
        if type(self).counter is not None:
            type(self).counter.stop()  # type: ignore[union-attr]
        super().stop()


def region_begins(spin_s: float) -> None:
    """A marker a sampling profiler sees: spins *spin_s* seconds, so that at least one sample
    lands in it; the samples after it, up to :func:`region_ends`, are the region's."""
    end = time.perf_counter() + spin_s
    while time.perf_counter() < end:
        pass


def region_ends(spin_s: float) -> None:
    """The marker after a region (see :func:`region_begins`)."""
    end = time.perf_counter() + spin_s
    while time.perf_counter() < end:
        pass


class SamplingProbe(Probe):
    """A probe whose region is marked for a sampling profiler outside the process: a spin in
    :func:`region_begins` just before it (after the garbage collection) and one in
    :func:`region_ends` just after it, neither in the region's time."""

    #: Seconds each marker spins: a few of the sampler's periods.
    spin_s: ClassVar[float] = 0.01

    def start(self, ops: int) -> None:
        if not self._collected:
            self.collect_garbage()
        region_begins(type(self).spin_s)
        super().start(ops)

    def stop(self) -> None:
        super().stop()
        region_ends(type(self).spin_s)


#: Python functions kept per benchmark by bytecode instructions, and folded stacks.
TOP_WORK = 80
TOP_STACKS = 200


def _count_collection(phase: str, info: dict[str, Any]) -> None:
    if phase == "start" and ProfilingProbe.watching:
        key = f"gen{info.get('generation', '?')}"
        ProfilingProbe.collections[key] = ProfilingProbe.collections.get(key, 0) + 1


#: Where a function's file is named from: the scenario's roots, then the libraries'. Paths
#: as this process sees them, links not followed: a resolved path would put where the checkout
#: really lies on the counted heap (see anybench._counts.Seen).
_LIBRARY_ROOTS = [
    os.path.abspath(path)
    for name in ("purelib", "platlib", "stdlib", "platstdlib")
    if (path := sysconfig.get_paths().get(name))
]
_OWN_FILE = os.path.abspath(__file__)


def function_key(code: Any, roots: list[str]) -> str | None:
    """How a profiled function is named in the counts: ``anyio/_core/_tasks.py:123:
    CancelScope.__exit__`` (its file below the first root that holds it), or a built-in's own
    description (``<method 'append' of 'list' objects>``); None for anybench's probe itself."""
    if isinstance(code, str):
        return None if "_lsprof.Profiler" in code else code
    filename = str(code.co_filename)
    # "<frozen importlib._bootstrap>", "<string>": a name, not a path.
    resolved = filename if filename.startswith("<") else os.path.abspath(filename)
    if resolved == _OWN_FILE:
        return None
    for root in roots:
        if resolved.startswith(root + os.sep):
            resolved = resolved[len(root) + 1 :]
            break
    qualname = getattr(code, "co_qualname", code.co_name)
    return f"{resolved}:{code.co_firstlineno}:{qualname}"


def work(job: CountsJob, emit: Emit) -> None:
    """Count *job*'s regions, reporting each through *emit*."""
    for entry in reversed(job.sys_path):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    scenario = ScenarioSpec.from_module(importlib.import_module(job.scenario_module))
    # A built-in runtime is taken from the registry as it is: looking up the others reads every
    # installed distribution's entry points, in the order the file system lists them, which
    # differs from one installation to the next and moves the heap the regions then run on.
    runtimes = {name: RUNTIMES.get(name) or runtime_named(name) for name in job.runtimes}
    instructions = job.mode == "instructions"
    if instructions:
        CallgrindProbe.requests = ClientRequests()
    else:
        gc.callbacks.append(_count_collection)
    roots = sorted(
        {os.path.abspath(p) for p in job.sys_path if p} | set(_LIBRARY_ROOTS),
        key=len,
        reverse=True,
    )
    TracingProbe.roots = roots
    gc.collect()
    gc.freeze()
    if instructions:
        for i in range(2):
            CallgrindProbe.dump_name = f"{EMPTY_REGION}{i}"
            probe = CallgrindProbe()
            probe.start(1)
            probe.stop()
            emit(Region(n=0, runtime="", ops=1, dump=f"{EMPTY_REGION}{i}"))
    failed: set[str] = set()

    def attempt(runtime: Runtime, n: int, probe_type: type[Probe]) -> int | None:
        seed_everything()
        try:
            result = run_round(
                scenario, runtime, n, job.deadline_s, freeze_heap=False, probe_type=probe_type
            )
        except Exception as exc:  # the scenario's check, its deadline, or a bug in it
            if CallgrindProbe.collecting and CallgrindProbe.requests is not None:
                CallgrindProbe.requests.stop_instrumentation()
                CallgrindProbe.collecting = False
            ProfilingProbe.watching = False
            sys.settrace(None)  # a traced region that failed leaves its trace on
            where = f"{scenario.name} on {runtime.name} at {scale_text(scenario.axis, n)}"
            failed.add(runtime.name)
            emit(Failed(n=n, runtime=runtime.name, error=describe_failure(where, exc)))
            return None
        return result.ops

    # One uncounted round per runtime first: imports, caches, the interpreter's specialised
    # instructions.
    for runtime in runtimes.values():
        attempt(runtime, job.warmup_n, Probe)
    for n in job.scales:
        for name, runtime in runtimes.items():
            if name in failed:
                continue
            if job.mode == "samples":
                ops_sum = regions = elapsed_ns = 0
                until = time.perf_counter() + job.sample_s
                while time.perf_counter() < until or not regions:
                    SamplingProbe.spin_s = job.sample_spin_s
                    try:
                        seed_everything()
                        result = run_round(
                            scenario,
                            runtime,
                            n,
                            job.deadline_s,
                            freeze_heap=False,
                            probe_type=SamplingProbe,
                        )
                    except Exception as exc:
                        where = f"{scenario.name} on {name} at {scale_text(scenario.axis, n)}"
                        emit(Failed(n=n, runtime=name, error=describe_failure(where, exc)))
                        break
                    ops_sum += result.ops
                    elapsed_ns += result.elapsed_ns
                    regions += result.passes
                else:
                    emit(
                        Sampled(
                            n=n, runtime=name, ops=ops_sum, regions=regions, elapsed_ns=elapsed_ns
                        )
                    )
                continue
            if instructions:
                CallgrindProbe.dump_name = region_name(name, n)
                ops = attempt(runtime, n, CallgrindProbe)
                if ops is not None:
                    emit(Region(n=n, runtime=name, ops=ops, dump=region_name(name, n)))
                continue
            ops = attempt(runtime, n, ProfilingProbe)
            if ops is None or ProfilingProbe.profiler is None:
                continue
            functions: dict[str, int] = {}
            for stat in ProfilingProbe.profiler.getstats():
                key = function_key(stat.code, roots)
                if key is not None and stat.callcount:
                    functions[key] = functions.get(key, 0) + stat.callcount
            collections = dict(ProfilingProbe.collections)
            work: dict[str, tuple[int, ...]] = {}
            stacks: dict[str, int] = {}
            if attempt(runtime, n, TracingProbe) is not None and TracingProbe.counter is not None:
                counter = TracingProbe.counter
                work = {k: tuple(v) for k, v in top_work(counter.functions, TOP_WORK).items()}
                stacks = top_stacks(counter.stacks, TOP_STACKS)
            emit(
                Calls(
                    n=n,
                    runtime=name,
                    ops=ops,
                    functions=functions,
                    collections=collections,
                    work=work,
                    stacks=stacks,
                )
            )
    # Last: its library versions are read from the installed distributions' metadata, in the
    # order the file system lists them (see above), which must not shape the regions' heap.
    emit(Hello.here(scenario.name))
    emit(Done())


def main() -> None:
    serve(decode_counts_job, work)


if __name__ == "__main__":
    main()
