"""A worker process: measures one scenario on one runtime, in a fresh interpreter.

Started by :mod:`anybench._measure` as ``python -m anybench._worker`` with a JSON job on standard
input, as pyperf starts its workers. It writes one JSON line per event to its original standard
output (the scenario's own prints go to standard error instead), flushing each line, so that the
parent sees every finished round at once and can stop the worker from outside when a round
outruns its deadline.

Events, in order: ``hello`` (pid, Python, library versions); then per scale ``begin`` before
each round (with the deadline the parent should enforce) and ``round`` after it (kind
``warmup``, ``throughput``, ``latency`` or ``memory``), then ``finished``, or ``failed``;
finally ``done``.
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
from typing import IO, Any

from ._harness import RoundResult, ScenarioTimeout, run_round
from ._probe import ScenarioFailed
from ._runtimes import RUNTIMES, library_versions
from ._scenario import ScenarioSpec

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


def rounds_for(
    n: int, warmup: RoundResult, passes: int, plan: dict[str, Any], warmup_wall_s: float
) -> int:
    """Throughput rounds for this process: about plan's target_ops over all its processes,
    within its time budget, and between its min_rounds and max_rounds.

    The budget is of wall time, set-up and waiting included (a scenario whose set-up outlasts
    its region, such as timers, must not overrun it), estimated from the last warm-up round.
    """
    scale = passes / warmup.passes * (_growth(n) if warmup.ops < passes * n else 1.0)
    ops = warmup.ops * scale
    round_s = warmup_wall_s * scale
    processes = plan["processes"]
    wanted = math.ceil(plan["target_ops"] / max(ops, 1) / processes)
    wanted = min(wanted, math.ceil(plan["time_budget_s"] / processes / max(round_s, 1e-9)))
    return int(max(plan["min_rounds"], min(plan["max_rounds"], wanted)))


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
    """Run *job* (see :mod:`anybench._measure`), reporting each event through *emit*."""
    for entry in reversed(job.get("sys_path", [])):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    # The module by its name, as the parent found it (a user's module: from its sys_path).
    scenario = ScenarioSpec.from_module(importlib.import_module(job["scenario"]))
    runtime = RUNTIMES[job["runtime"]]
    # What the interpreter holds after the imports is frozen out of the collector's reach once:
    # a collection inside a region walks the round's own objects only.
    gc.collect()
    gc.freeze()
    deadline_s = float(job["deadline_s"])
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
    wall_s = [0.0]  # wall time of the last round, set-up included
    for spec in job["scales"]:
        n = int(spec["n"])

        def one(
            kind: str, n_round: int, passes: int, n: int = n, report_n: int | None = None
        ) -> RoundResult:
            traced = kind == "memory"
            limit = deadline_s * (TRACED_DEADLINE_FACTOR if traced else 1)
            emit({"event": "begin", "n": n, "kind": kind, "deadline_s": limit})
            started = time.perf_counter()
            result = run_round(
                scenario,
                runtime,
                n_round,
                limit,
                latency=kind == "latency",
                passes=passes,
                trace_memory=traced,
                freeze_heap=False,  # frozen once, below
            )
            wall_s[0] = time.perf_counter() - started
            event = _round_event(report_n or n, kind, result)
            event["n_round"] = n_round
            emit(event)
            return result

        try:
            limit = job.get("memory_limit_bytes")
            if limit and n >= PROJECT_MEMORY_FROM_N:
                # Refuse a scale that cannot fit before building it: bytes per operation from a
                # small traced round, times N, twice over for what tracemalloc cannot see.
                small = run_round(
                    scenario,
                    runtime,
                    WARMUP_MAX_N,
                    deadline_s,
                    trace_memory=True,
                    freeze_heap=False,
                )
                projected = 2 * (small.peak_bytes or 0) / small.ops * n
                if projected > limit:
                    emit(
                        {
                            "event": "failed",
                            "n": n,
                            "error": f"{scenario.name} on {runtime.name} at N={n}: projected "
                            f"memory {projected / 2**30:.1f} GiB is over the limit of "
                            f"{limit / 2**30:.1f} GiB; choose a smaller N or raise --memory-limit",
                        }
                    )
                    continue
            warmup = one("warmup", min(n, WARMUP_MAX_N), 1)
            passes = spec.get("passes") or passes_for(n, warmup)
            # A cold first pass overstates the cost: check the plan at N, and re-plan (these
            # rounds are warm-ups too) until a region reaches the target, wherever the first
            # estimate came anywhere near it.
            near = warmup.ns_per_op * n < 4 * TARGET_REGION_NS
            for _ in range(2 if not spec.get("passes") and (passes > 1 or near) else 0):
                warmup = one("warmup", n, passes)
                if warmup.elapsed_ns >= TARGET_REGION_NS:
                    break
                passes = min(MAX_PASSES, math.ceil(passes * TARGET_REGION_NS / warmup.elapsed_ns))
            rounds = spec.get("rounds") or rounds_for(n, warmup, passes, spec["plan"], wall_s[0])
            for _ in range(rounds):
                one("throughput", n, passes)
            for _ in range(int(spec["latency_rounds"])):
                one("latency", n, passes)
            if spec.get("memory"):
                one("memory", int(spec.get("memory_n") or n), 1, report_n=n)
            emit({"event": "finished", "n": n})
        except (ScenarioFailed, ScenarioTimeout) as exc:
            emit({"event": "failed", "n": n, "error": str(exc).splitlines()[0]})
        except Exception as exc:  # a bug in the scenario: fail this benchmark, name it
            emit({"event": "failed", "n": n, "error": f"{type(exc).__name__}: {exc}"})
    emit({"event": "done"})


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
