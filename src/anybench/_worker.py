"""A worker process: measures one scenario on one or more runtimes, in a fresh interpreter.

Started by :mod:`anybench._measure` as ``python -m anybench._worker`` with a JSON job on standard
input, as pyperf starts its workers. It writes one JSON line per event to its original standard
output (the scenario's own prints go to standard error instead), flushing each line, so that the
parent sees every finished round at once and can stop the worker from outside when a round
outruns its deadline.

Events, in order: ``hello`` (pid, Python, library versions); then per scale, naming the scale
and the runtime, ``begin`` before each round (with the deadline the parent should enforce) and
``round`` after it (kind ``warmup``, ``throughput``, ``latency`` or ``memory``), then
``finished`` for each runtime that finished it, or ``failed`` for one that did not; finally
``done``.
"""

from __future__ import annotations

import base64
import gc
import importlib
import json
import math
import os
import platform
import sys
import time
from array import array
from collections.abc import Callable, Sequence
from typing import IO, Any, ParamSpec, TypeVar

from ._harness import RoundResult, ScenarioTimeout, run_round
from ._probe import ScenarioFailed
from ._runtimes import Runtime, library_versions, runtime_named
from ._scenario import ScenarioSpec

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
MAX_PASSES = 2_000
#: From this N on, a scale's memory is projected from a small traced round before it is built
#: (below it, a round cannot come near the memory of a machine that runs anybench).
PROJECT_MEMORY_FROM_N = 100_000
#: How much longer than the deadline the one round traced by tracemalloc may take.
TRACED_DEADLINE_FACTOR = 5


def encode_samples(values: list[int]) -> str:
    """Latency samples as base64 of signed 64-bit integers: compact, exact, fast to decode."""
    return base64.b64encode(array("q", values).tobytes()).decode("ascii")


def decode_samples(text: str) -> array[int]:
    values = array("q")
    values.frombytes(base64.b64decode(text))
    return values


def _growth(n: int) -> float:
    """How much larger a pass at N is than the warm-up's pass (at most WARMUP_MAX_N)."""
    return n / min(n, WARMUP_MAX_N) if n else 1.0


def passes_for(n: int, warmup: RoundResult) -> int:
    """Passes per round that bring a region of N operations to about TARGET_REGION_NS."""
    region_ns = warmup.ns_per_op * (warmup.ops / warmup.passes) * _growth(n)
    if region_ns >= TARGET_REGION_NS:
        return 1
    return min(MAX_PASSES, math.ceil(TARGET_REGION_NS / max(region_ns, 1.0)))


def budget_s(plan: dict[str, Any], runtimes: int) -> float:
    """Wall time this process may spend on the throughput rounds of one scale: the plan's
    budget per benchmark, for each of its *runtimes*, shared out over the processes."""
    return float(plan["time_budget_s"]) * runtimes / int(plan["processes"])


def rounds_for(
    n: int, warmups: Sequence[tuple[RoundResult, int, float]], plan: dict[str, Any]
) -> int:
    """Throughput rounds of every runtime in this process, for the scale N: about plan's
    target_ops per benchmark over all its processes, within its time budget, and between its
    min_rounds and max_rounds.

    *warmups* holds, per runtime, its last warm-up round, the passes its rounds will make and
    that warm-up's wall time. The budget (``time_budget_s`` per benchmark, over all processes)
    is of wall time, set-up and waiting included (a scenario whose set-up outlasts its region,
    such as timers, must not overrun it); every runtime's round is paid for in every rotation
    of rounds, so the slowest runtime does not take the others' share.
    """
    processes = plan["processes"]
    wanted = 0
    rotation_s = 0.0
    for warmup, passes, wall_s in warmups:
        scale = passes / warmup.passes * (_growth(n) if warmup.ops < passes * n else 1.0)
        wanted = max(wanted, math.ceil(plan["target_ops"] / max(warmup.ops * scale, 1) / processes))
        rotation_s += wall_s * scale
    budget = budget_s(plan, len(warmups))
    wanted = min(wanted, math.ceil(budget / max(rotation_s, 1e-9)))
    # Where even the minimum would overrun the budget, one round a process: the process is the
    # unit of every interval, and more processes are worth more than more rounds of one.
    fixed = plan["min_rounds"] == plan["max_rounds"]  # --rounds
    lowest = plan["min_rounds"] if fixed or rotation_s * plan["min_rounds"] <= budget else 1
    return int(max(lowest, min(plan["max_rounds"], wanted)))


def _round_event(n: int, kind: str, result: RoundResult) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event": "round",
        "n": n,
        "kind": kind,
        "ops": result.ops,
        "elapsed_ns": result.elapsed_ns,
        "passes": result.passes,
    }
    if kind == "latency":
        event["samples"] = {name: encode_samples(v) for name, v in result.samples.items()}
    if result.peak_bytes is not None:
        event["peak_bytes"] = result.peak_bytes
    return event


def work(job: dict[str, Any], emit: Any) -> None:
    """Run *job* (see :mod:`anybench._measure`), reporting each event through *emit*.

    Per scale, every runtime of the job is warmed up and planned on its own; then their
    throughput rounds alternate, one round each in turn, forward then backward (asyncio, trio,
    trio, asyncio, ...), so that whatever this process and this minute do to the speed falls on
    every runtime alike; then the latency rounds and the memory round of each.
    """
    for entry in reversed(job.get("sys_path", [])):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    # The module by its name, as the parent found it (a user's module: from its sys_path).
    scenario = ScenarioSpec.from_module(importlib.import_module(job["scenario"]))
    # runtime_named imports the modules that register a runtime from outside, if any.
    runtimes = {name: runtime_named(name) for name in job["runtimes"]}
    # What the interpreter holds after the imports is frozen out of the collector's reach once:
    # a collection inside a region walks the round's own objects only.
    gc.collect()
    gc.freeze()
    deadline_s = float(job["deadline_s"])
    limit = job.get("memory_limit_bytes")
    emit(
        {
            "event": "hello",
            "name": scenario.name,
            "pid": os.getpid(),
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "libraries": library_versions(),
        }
    )
    for spec in job["scales"]:
        n = int(spec["n"])
        scale = _Scale(scenario, runtimes, n, deadline_s, emit)
        planned: dict[str, tuple[int, tuple[RoundResult, int, float]]] = {}
        for name in spec["runtimes"]:
            plan = scale.attempt(name, scale.plan, runtimes[name], spec, limit)
            if plan is not None and plan[0]:
                planned[name] = plan
        order = list(planned)
        rounds = rounds_for(n, [warmup for _, warmup in planned.values()], spec["plan"])
        budget = budget_s(spec["plan"], len(order))
        started = time.perf_counter()
        for r in range(rounds):
            for name in order if r % 2 == 0 else order[::-1]:
                scale.attempt(name, scale.one, "throughput", name, planned)
            order = [name for name in order if name not in scale.failed]
            # The plan rests on warm-up estimates: past twice the budget, what ran will do (an
            # even number of turns, so that no runtime always went first).
            late = time.perf_counter() - started > 2 * budget
            if late and r % 2 and spec["plan"]["min_rounds"] <= r + 1 < rounds:
                break
        for name in order:
            for _ in range(int(spec["latency_rounds"])):
                scale.attempt(name, scale.one, "latency", name, planned)
            if spec.get("memory"):
                memory_n = int(spec.get("memory_n") or n)
                scale.attempt(name, scale.one, "memory", name, None, memory_n)
            if name not in scale.failed:
                emit({"event": "finished", "n": n, "runtime": name})
    emit({"event": "done"})


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
        emit: Any,
    ) -> None:
        self.scenario = scenario
        self.runtimes = runtimes
        self.n = n
        self.deadline_s = deadline_s
        self.emit = emit
        self.failed: set[str] = set()
        self.wall_s = 0.0  # wall time of the last round, set-up included

    def attempt(
        self, runtime: str, action: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs
    ) -> _T | None:
        """``action(*args, **kwargs)``, unless *runtime* has failed at this N (now or before,
        naming the error): then None."""
        if runtime in self.failed:
            return None
        try:
            return action(*args, **kwargs)
        except (ScenarioFailed, ScenarioTimeout) as exc:
            self.fail(runtime, str(exc).splitlines()[0])
        except Exception as exc:  # a bug in the scenario: fail this benchmark, name it
            self.fail(runtime, f"{type(exc).__name__}: {exc}")
        return None

    def fail(self, runtime: str, error: str) -> None:
        self.failed.add(runtime)
        self.emit({"event": "failed", "n": self.n, "runtime": runtime, "error": error})

    def one(
        self,
        kind: str,
        runtime: str,
        planned: dict[str, tuple[int, Any]] | None,
        n_round: int | None = None,
        passes: int | None = None,
    ) -> RoundResult:
        """Run one round of *kind* on *runtime*, with its planned passes unless given."""
        traced = kind == "memory"
        limit = self.deadline_s * (TRACED_DEADLINE_FACTOR if traced else 1)
        if passes is None:
            passes = 1 if planned is None else planned[runtime][0]
        n_round = self.n if n_round is None else n_round
        self.emit(
            {"event": "begin", "n": self.n, "runtime": runtime, "kind": kind, "deadline_s": limit}
        )
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
        event = _round_event(self.n, kind, result)
        event["runtime"] = runtime
        event["n_round"] = n_round
        self.emit(event)
        return result

    def plan(
        self, runtime: Runtime, spec: dict[str, Any], memory_limit: int | None
    ) -> tuple[int, tuple[RoundResult, int, float]]:
        """Warm *runtime* up at this N; return its passes per round (0: refused) and its last
        warm-up (round, passes, wall time) for :func:`rounds_for`."""
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
                    f"{self.scenario.name} on {runtime.name} at N={n}: projected memory "
                    f"{projected / 2**30:.1f} GiB is over the limit of "
                    f"{memory_limit / 2**30:.1f} GiB; choose a smaller N or raise --memory-limit",
                )
                return 0, (small, 1, 0.0)
        n_warm = min(n, WARMUP_MAX_N)
        if runtime.name not in _WARMED:
            # The first round of a runtime in a process imports its backend and fills its
            # caches: a wall time to plan from comes from the round after it.
            self.one("warmup", runtime.name, None, n_warm, 1)
            _WARMED.add(runtime.name)
        warmup = self.one("warmup", runtime.name, None, n_warm, 1)
        fixed = (spec.get("passes") or {}).get(runtime.name)
        passes = fixed or passes_for(n, warmup)
        # A cold first pass overstates the cost: check the plan at N, and re-plan (these rounds
        # are warm-ups too) until a region reaches the target, wherever the first estimate
        # came anywhere near it. With the passes already known (from the first process), one
        # warm-up at N is enough.
        near = warmup.ns_per_op * n < 4 * TARGET_REGION_NS
        for _ in range(1 if fixed else 2) if passes > 1 or near else ():
            warmup = self.one("warmup", runtime.name, None, n, passes)
            if fixed or warmup.elapsed_ns >= TARGET_REGION_NS:
                break
            passes = min(MAX_PASSES, math.ceil(passes * TARGET_REGION_NS / warmup.elapsed_ns))
        return passes, (warmup, passes, self.wall_s)


def main() -> None:
    # The protocol keeps the original standard output to itself; anything the scenario prints
    # goes to standard error.
    channel: IO[str] = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def emit(event: dict[str, Any]) -> None:
        channel.write(json.dumps(event) + "\n")
        channel.flush()

    job = json.loads(sys.stdin.read())
    try:
        work(job, emit)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
