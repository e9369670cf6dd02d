"""A worker process: measures one scenario on one or more runtimes, in a fresh interpreter.

Started by :mod:`anybench._measure` as ``python -m anybench._worker`` with a :class:`~anybench
._protocol.Job` on standard input, as pyperf starts its workers. It writes one event per line
(see :mod:`anybench._protocol`, which declares the job, the events and their order) to its
original standard output (the scenario's own prints go to standard error instead), flushing
each line, so that the parent sees every finished round at once and can stop the worker from
outside when a round outruns its deadline.
"""

from __future__ import annotations

import functools
import gc
import importlib
import linecache
import math
import os
import sys
import sysconfig
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ParamSpec, TypeVar

from . import _busy
from ._harness import RoundResult, ScenarioTimeout, run_round
from ._probe import ScenarioFailed
from ._protocol import (
    GO,
    Begin,
    Done,
    Emit,
    Failed,
    Finished,
    Hello,
    Job,
    Round,
    RoundKind,
    decode_job,
    serve,
)
from ._runtimes import Runtime, runtime_named
from ._scenario import ScenarioSpec
from ._sweep import Budget, scale_text

_T = TypeVar("_T")
_P = ParamSpec("_P")

#: A warm-up round runs at no more than this N: enough to warm the code paths and estimate the
#: cost per operation, without paying a whole large round for it.
WARMUP_MAX_N = 1_000
#: A region shorter than this is dominated by per-round fixed costs: a round repeats the scenario
#: (independent passes) until its region reaches it. pyperf calls shorter raw values unstable.
MIN_REGION_NS = 1_000_000
#: Passes are planned from the warm-up for this much, so that a round lands above the minimum.
TARGET_REGION_NS = 2_000_000
#: The fewest rounds whose median one outlying round cannot move (see least_rounds).
MEDIAN_ROUNDS = 3
#: A worker past this many times its budget stops early (see stops_early).
LATE_FACTOR = 2
MAX_PASSES = 2_000
#: From this N on, a scale's memory is projected from a small traced round before it is built
#: (below it, a round cannot come near the memory of a machine that runs anybench).
PROJECT_MEMORY_FROM_N = 100_000
#: How much longer than the deadline the one round traced by tracemalloc may take.
TRACED_DEADLINE_FACTOR = 5


@dataclass(frozen=True)
class Warmup:
    """What warming a runtime up at a scale taught: its passes per round, and its last warm-up
    round (what it measured, and its wall time, set-up included) for :func:`rounds_for`."""

    result: RoundResult
    passes: int
    wall_s: float


def _growth(n: int) -> float:
    """How much larger a pass at N is than the warm-up's pass (at most WARMUP_MAX_N)."""
    return n / min(n, WARMUP_MAX_N) if n else 1.0


def passes_for(n: int, warmup: RoundResult) -> int:
    """Passes per round that bring a region of N operations to about TARGET_REGION_NS."""
    region_ns = warmup.ns_per_op * (warmup.ops / warmup.passes) * _growth(n)
    if region_ns >= TARGET_REGION_NS:
        return 1
    return min(MAX_PASSES, math.ceil(TARGET_REGION_NS / max(region_ns, 1.0)))


def budget_s(budget: Budget, runtimes: int) -> float:
    """Wall time this process may spend on the throughput rounds of one scale: the budget per
    benchmark, for each of its *runtimes*, shared out over the processes."""
    return budget.time_budget_s * runtimes / budget.processes


def rounds_for(n: int, warmups: Sequence[Warmup], budget: Budget) -> tuple[int, int]:
    """Throughput rounds of every runtime in this process, for the scale N, and the least
    (:func:`least_rounds`) below which it does not stop if it runs late: about the budget's
    target_ops per benchmark over all its processes, within its time budget, and between the
    least and max_rounds.

    *warmups* holds, per runtime, its last warm-up round, the passes its rounds will make and
    that warm-up's wall time. The budget (``time_budget_s`` per benchmark, over all processes)
    is of wall time, set-up and waiting included (a scenario whose set-up outlasts its region,
    such as timers, must not overrun it); every runtime's round is paid for in every rotation
    of rounds, so the slowest runtime does not take the others' share.
    """
    wanted = 0
    rotation_s = 0.0
    for warmup in warmups:
        first = warmup.result
        scale = (
            warmup.passes / first.passes * (_growth(n) if first.ops < warmup.passes * n else 1.0)
        )
        wanted = max(
            wanted, math.ceil(budget.target_ops / max(first.ops * scale, 1) / budget.processes)
        )
        rotation_s += warmup.wall_s * scale
    allowed_s = budget_s(budget, len(warmups))
    wanted = min(wanted, math.ceil(allowed_s / max(rotation_s, 1e-9)))
    least = least_rounds(warmups, budget, rotation_s)
    return int(max(least, min(budget.max_rounds, wanted))), least


def least_rounds(warmups: Sequence[Warmup], budget: Budget, rotation_s: float) -> int:
    """The fewest throughput rounds of a process at one scale, whose rotation (a round of every
    runtime) takes *rotation_s*: the budget's min_rounds, or exactly its rounds (``--rounds``).

    Where even the minimum would overrun the budget, one round a process: the process is the
    unit of every interval, and more processes are worth more than more rounds of one. But where
    a round is made of several short passes and one rotation does not make the worker late
    (LATE_FACTOR times the budget), three (so at most six times the budget): a round of short
    regions can read 1.4-2x the others (timers at N = 100 did, one round in 10-40), and one
    such round is the whole figure of a one-round process, half of a two-round one's, and none
    of a three-round one's median (pyperf takes three values a worker). Even where their set-up
    waits (timers at N = 100: 16-20 ms a pass, for a region of 0.2-2.5 ms), three rounds cost a
    process less than one more process of the benchmark would. (Until 2026-12-05 one rotation
    had to fit in the budget itself. In ``bench_versions``, whose six processes halve a
    process's budget, timers at N = 100 then got one round a process under anyio 4.13, whose
    faster regions take more passes, and three under 4.16: the 4.13 side's processes spread
    ±18-24%, one read 2.6 times the median, and after 48 pairs the ratio's interval was ±7%.)"""
    if budget.min_rounds == budget.max_rounds:
        return budget.min_rounds
    allowed_s = budget_s(budget, len(warmups))
    least = budget.min_rounds if rotation_s * budget.min_rounds <= allowed_s else 1
    if any(warmup.passes > 1 for warmup in warmups) and rotation_s <= LATE_FACTOR * allowed_s:
        least = max(least, MEDIAN_ROUNDS)
    return min(least, budget.max_rounds)


def stops_early(done: int, rounds: int, least: int, elapsed_s: float, allowed_s: float) -> bool:
    """Whether a worker that has run *done* of its *rounds* rotations in *elapsed_s* stops now.

    The plan rests on warm-up estimates: past LATE_FACTOR times the budget, what ran will do,
    once the least is reached and after an even number of rotations (so that no runtime always
    went first: the order reverses every rotation). A least that is odd is so rounded up."""
    late = elapsed_s > LATE_FACTOR * allowed_s
    return late and done % 2 == 0 and least <= done < rounds


@functools.cache
def _roots() -> tuple[list[str], list[str]]:
    """anybench's own files (a failure's frames in them are the instrument's, not the
    scenario's), then where installed libraries and the standard library live. Resolved when
    a failure is described, never before: a resolved path is where the checkout really lies,
    and a counted process keeps that off its heap (see anybench._counts.Seen)."""
    libraries = {
        str(Path(path).resolve())
        for name in ("stdlib", "platstdlib", "purelib", "platlib")
        if (path := sysconfig.get_paths().get(name))
    }
    return [str(Path(__file__).resolve().parent)], sorted(libraries)


def _outside(path: str, roots: Sequence[str]) -> bool:
    resolved = str(Path(path).resolve())
    return not any(resolved == root or resolved.startswith(root + os.sep) for root in roots)


def _leaf(exc: BaseException) -> BaseException:
    """The first exception inside an exception group (a task group's), else *exc* itself."""
    inner = getattr(exc, "exceptions", None)
    while isinstance(inner, tuple) and inner and isinstance(inner[0], BaseException):
        exc = inner[0]
        inner = getattr(exc, "exceptions", None)
    return exc


def user_frame(exc: BaseException) -> str | None:
    """Where a scenario raised *exc*: its innermost frame outside anybench (and, where there is
    one, outside the standard library and installed libraries too), as two lines in Python's
    traceback form: the file and line, then that line's source. An exception the harness raised
    in place of the scenario's (to name the benchmark) is looked through. None if every frame is
    anybench's own."""
    anybench, libraries = _roots()
    current: BaseException | None = _leaf(exc)
    while current is not None:
        frames = [
            f for f in traceback.extract_tb(current.__traceback__) if _outside(f.filename, anybench)
        ]
        if frames:
            own = [f for f in frames if _outside(f.filename, libraries)]
            frame = (own or frames)[-1]
            source = (frame.line or linecache.getline(frame.filename, frame.lineno or 0)).strip()
            where = f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}'
            return f"{where}\n    {source}" if source else where
        current = current.__cause__ or current.__context__
    return None


def describe_failure(where: str, exc: BaseException) -> str:
    """Why a round of a benchmark (*where*: "NAME on RUNTIME at N=...") failed: one line naming
    the benchmark and the exception, then the scenario's own frame that raised it (anybench's
    frames left out). A timeout is anybench's to say, with no frame."""
    if isinstance(exc, (ScenarioFailed, ScenarioTimeout)):
        # Named by the harness already ("NAME on RUNTIME at N=...: ...").
        headline = (str(exc) or type(exc).__name__).splitlines()[0]
    else:
        leaf = _leaf(exc)
        headline = f"{where}: {type(leaf).__name__}: {leaf}".splitlines()[0]
    frame = None if isinstance(exc, ScenarioTimeout) else user_frame(exc)
    return headline if frame is None else f"{headline}\n{frame}"


def work(job: Job, emit: Emit) -> None:
    """Run *job*, reporting each event through *emit* (see :mod:`anybench._protocol`).

    Per scale, every runtime of the job is warmed up and planned on its own; then their
    throughput rounds alternate, one round each in turn, forward then backward (asyncio, trio,
    trio, asyncio, ...), so that whatever this process and this minute do to the speed falls on
    every runtime alike; then the latency rounds and the memory round of each.
    """
    for entry in reversed(job.sys_path):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    # Before the scenario and the runtimes are imported: their compiled code comes from copies
    # made for this process, so that where it lies in memory is drawn anew in every worker.
    # (Imported here: a counted process, which describes failures with this module, must not
    # hold it on its heap.)
    from . import _fresh

    _fresh.install()
    # ... and the objects it measures land at a random shift in its heap (see _fresh).
    _fresh.shift_heap()
    # The module by its name, as the parent found it (a user's module: from its sys_path).
    scenario = ScenarioSpec.from_module(importlib.import_module(job.scenario_module))
    # runtime_named imports the modules that register a runtime from outside, if any.
    runtimes = {name: runtime_named(name) for name in job.runtimes}
    # What the interpreter holds after the imports is frozen out of the collector's reach once:
    # a collection inside a region walks the round's own objects only.
    gc.collect()
    gc.freeze()
    budget = job.plan.budget
    emit(Hello.here(scenario.name))
    for scale_job in job.scales:
        n = scale_job.n
        scale = _Scale(scenario, runtimes, n, job.plan.deadline_s, emit, turns=job.turns)
        warmed: dict[str, Warmup] = {}
        for name in scale_job.runtimes:
            passes = scale_job.calibration.passes.get(name)
            warmup = scale.attempt(
                name, scale.warm_up, runtimes[name], passes, job.plan.memory_limit_bytes
            )
            if warmup is not None:
                warmed[name] = warmup
        order = list(warmed)
        rounds, least = rounds_for(n, list(warmed.values()), budget)
        allowed_s = budget_s(budget, len(order))
        started = time.perf_counter()
        scale.waited_s = 0.0
        before = _busy.sample()
        for r in range(rounds):
            for name in order if r % 2 == 0 else order[::-1]:
                scale.attempt(name, scale.one, "throughput", name, warmed[name].passes)
            order = [name for name in order if name not in scale.failed]
            # Time spent waiting for a turn (--pairing lockstep) is the other worker's.
            elapsed_s = time.perf_counter() - started - scale.waited_s
            if stops_early(r + 1, rounds, least, elapsed_s, allowed_s):
                break
        busy = _busy.between(before, _busy.sample(), round(scale.waited_s * 1e9))
        for name in order:
            for _ in range(scale_job.latency_rounds):
                scale.attempt(name, scale.one, "latency", name, warmed[name].passes)
            if scale_job.memory_n is not None:
                scale.attempt(name, scale.one, "memory", name, 1, scale_job.memory_n)
            if name not in scale.failed:
                emit(
                    Finished(
                        n=n,
                        runtime=name,
                        busy=busy,
                        # None where it makes no copies (Windows): it says nothing of them.
                        copied=tuple(_fresh.FROM_COPY) if _fresh.installed() else None,
                        own_file=dict(_fresh.FROM_OWN_FILE),
                        heap_shift_bytes=_fresh.SHIFTED_BYTES,
                    )
                )
    emit(Done())
    if job.turns:
        # Its exit (the interpreter freeing all it built) takes a turn too, as a round does:
        # it waits for the parent's GO, so that another worker's round never runs beside it.
        # The parent gone (end of input), it exits all the same.
        sys.stdin.readline()


#: The runtimes this process has run a round on.
_WARMED: set[str] = set()


class _Scale:
    """The rounds of one scale N in a worker, on each of its runtimes; a runtime whose round
    fails is failed for this N, named, and the others go on."""

    def __init__(
        self,
        scenario: ScenarioSpec,
        runtimes: dict[str, Runtime],
        n: int,
        deadline_s: float,
        emit: Emit,
        *,
        turns: bool = False,
    ) -> None:
        self.scenario = scenario
        self.runtimes = runtimes
        self.n = n
        self.deadline_s = deadline_s
        self.emit = emit
        self.failed: set[str] = set()
        self.wall_s = 0.0  # wall time of the last round, set-up included
        self.turns = turns
        self.waited_s = 0.0  # waiting for turns (see wait_turn)

    def attempt(
        self, runtime: str, action: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs
    ) -> _T | None:
        """``action(*args, **kwargs)``, unless *runtime* has failed at this N (now or before,
        naming the error): then None."""
        if runtime in self.failed:
            return None
        try:
            return action(*args, **kwargs)
        except Exception as exc:  # the scenario's check, its deadline, or a bug in it
            where = f"{self.scenario.name} on {runtime} at {scale_text(self.scenario.axis, self.n)}"
            self.fail(runtime, describe_failure(where, exc))
        return None

    def fail(self, runtime: str, error: str) -> None:
        self.failed.add(runtime)
        self.emit(Failed(n=self.n, runtime=runtime, error=error))

    def one(
        self, kind: RoundKind, runtime: str, passes: int, n_round: int | None = None
    ) -> RoundResult:
        """Run one round of *kind* on *runtime* with *passes* passes, at *n_round* (by default
        this scale's N)."""
        traced = kind == "memory"
        limit = self.deadline_s * (TRACED_DEADLINE_FACTOR if traced else 1)
        n_round = self.n if n_round is None else n_round
        self.emit(Begin(n=self.n, runtime=runtime, kind=kind, deadline_s=limit))
        if self.turns:
            self.wait_turn()
        started = time.perf_counter()
        result = run_round(
            self.scenario,
            self.runtimes[runtime],
            n_round,
            limit,
            latency=kind == "latency",
            passes=passes,
            trace_memory=traced,
            freeze_heap=False,  # frozen once, at the worker's start
        )
        self.wall_s = time.perf_counter() - started
        self.emit(
            Round(
                n=self.n,
                runtime=runtime,
                kind=kind,
                n_round=n_round,
                ops=result.ops,
                elapsed_ns=result.elapsed_ns,
                passes=result.passes,
                samples=result.samples if kind == "latency" else {},
                peak_bytes=result.peak_bytes,
            )
        )
        return result

    def wait_turn(self) -> None:
        """Wait for the parent's GO before a round (a worker that takes turns with another:
        ``--pairing lockstep``). The parent gone, the worker ends."""
        waiting = time.perf_counter()
        line = sys.stdin.readline()
        if line.strip() != GO:
            raise SystemExit(f"anybench worker: expected {GO!r} from the parent, got {line!r}")
        self.waited_s += time.perf_counter() - waiting

    def warm_up(
        self, runtime: Runtime, calibrated_passes: int | None, memory_limit: int | None
    ) -> Warmup | None:
        """Warm *runtime* up at this N and plan its passes per round (those of the first
        process, *calibrated_passes*, when known); None if the scale cannot fit (failed)."""
        n = self.n
        if memory_limit and n >= PROJECT_MEMORY_FROM_N:
            # Refuse a scale that cannot fit before building it: bytes per operation from a
            # small traced round, times N, twice over for what tracemalloc cannot see.
            small = run_round(
                self.scenario,
                runtime,
                WARMUP_MAX_N,
                self.deadline_s,
                trace_memory=True,
                freeze_heap=False,
            )
            projected = 2 * (small.peak_bytes or 0) / small.ops * n
            if projected > memory_limit:
                self.fail(
                    runtime.name,
                    f"{self.scenario.name} on {runtime.name} at "
                    f"{scale_text(self.scenario.axis, n)}: projected memory "
                    f"{projected / 2**30:.1f} GiB is over the limit of "
                    f"{memory_limit / 2**30:.1f} GiB; choose a smaller N or raise --memory-limit",
                )
                return None
        n_warm = min(n, WARMUP_MAX_N)
        if runtime.name not in _WARMED:
            # The first round of a runtime in a process imports its backend and fills its
            # caches: a wall time to plan from comes from the round after it.
            self.one("warmup", runtime.name, 1, n_warm)
            _WARMED.add(runtime.name)
        warmup = self.one("warmup", runtime.name, 1, n_warm)
        passes = calibrated_passes or passes_for(n, warmup)
        # A cold first pass overstates the cost: check the plan at N, and re-plan (these rounds
        # are warm-ups too) until a region reaches the target, wherever the first estimate
        # came anywhere near it. With the passes already known (from the first process), one
        # warm-up at N is enough.
        near = warmup.ns_per_op * n < 4 * TARGET_REGION_NS
        for _ in range(1 if calibrated_passes else 2) if passes > 1 or near else ():
            warmup = self.one("warmup", runtime.name, passes, n)
            if calibrated_passes or warmup.elapsed_ns >= TARGET_REGION_NS:
                break
            passes = min(MAX_PASSES, math.ceil(passes * TARGET_REGION_NS / warmup.elapsed_ns))
        return Warmup(warmup, passes, self.wall_s)


def main() -> None:
    serve(decode_job, work)


if __name__ == "__main__":
    main()
