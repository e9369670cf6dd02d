"""Cross-check the spawn benchmark against a small hand-written measurement of the same work.

Usage: python benchmarks/crosscheck_spawn.py RESULTS.json [--tolerance 0.25]

For each runtime in the results file, take the spawn benchmark at its largest N, time the same
work written by hand (a task group, N start_soon calls with a clock reading each, every task
reading the clock once; a garbage collection, then ``perf_counter_ns`` around it inside the loop;
the median over as many fresh ``anyio.run`` rounds as the benchmark had), and print both. Small
N is dominated by fixed costs that the two time differently (the hand version includes the task
group's exit), so the check is made at the largest N of the run; use N of 1,000 or more.
Exit 1 if any pair differs by more than the tolerance: then either the instrument or the hand
measurement is wrong.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time

import anyio

from anybench import RUNTIMES
from anybench._results import ResultsError, load


async def spawn_by_hand(n: int) -> float:
    """ns per task for spawning n trivial tasks from a task group and running them to the end."""
    clock = time.perf_counter_ns
    spawned = [0] * n
    started = [0] * n

    async def task(i: int) -> None:
        started[i] = clock()

    gc.collect()  # as the instrument does just before a region
    t0 = clock()
    async with anyio.create_task_group() as tg:
        for i in range(n):
            spawned[i] = clock()
            tg.start_soon(task, i)
    elapsed = clock() - t0
    if 0 in started:
        raise SystemExit(f"hand-written spawn: a task did not run at N={n}")
    return elapsed / n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results")
    parser.add_argument("--tolerance", type=float, default=0.25)
    args = parser.parse_args()
    try:
        run = load(args.results)
    except ResultsError as exc:
        print(f"crosscheck: {exc}", file=sys.stderr)
        return 1

    largest = {}
    for record in run.records:
        if record.scenario == "spawn" and record.n >= largest.get(record.runtime, (0,))[0]:
            largest[record.runtime] = (record.n, record)
    if not largest:
        print("crosscheck: no spawn benchmark in the results; nothing to check")
        return 0

    status = 0
    print(f"{'runtime':<10} {'N':>9} {'anybench':>12} {'by hand':>12} {'ratio':>7}")
    for name, (n, record) in largest.items():
        runtime = RUNTIMES.get(name)
        reason = runtime.unavailable_reason() if runtime else "not in this anybench's registry"
        if runtime is None or reason:
            print(f"{name:<10} skipped: {reason}")
            continue
        per_round = []
        for _ in range(1 + record.rounds):  # the first is a warm-up, as the instrument's is
            gc.collect()
            gc.freeze()  # as the instrument does before a round
            per_round.append(
                anyio.run(
                    spawn_by_hand,
                    n,
                    backend=runtime.backend,
                    backend_options=runtime.backend_options(),
                )
            )
            gc.unfreeze()
        by_hand = statistics.median(per_round[1:])
        ratio = record.ns_per_op / by_hand
        verdict = "ok" if abs(ratio - 1) <= args.tolerance else "DISAGREE"
        status |= verdict != "ok"
        print(
            f"{name:<10} {n:>9,} {record.ns_per_op:>9.0f} ns {by_hand:>9.0f} ns "
            f"{ratio:>6.2f}x {verdict}"
        )
    print(f"(ns per spawned task, median of rounds; tolerance ±{args.tolerance:.0%})")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
