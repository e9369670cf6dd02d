"""How steady this machine's CPU is right now, from fixed work timed in short windows.

Usage: python benchmarks/steadiness.py [--seconds 10] [--window-ms 5] [--walk-mb 16]
       python benchmarks/steadiness.py --side-by-side [--seconds 10] [--window-ms 5]

Shares no code with anybench. Two loops take turns, one window each: a compute loop (integer
arithmetic in the interpreter, a working set that fits the first-level caches) and a memory
walk (two arrays of 8-byte integers, --walk-mb megabytes in all: one array's cells visited in
the random order the other holds). Each window's rate (iterations per millisecond) is what the
CPU gave that loop then; the standard deviation of the logs of the rates over the windows says
how far the machine's speed moves from one window to the next, and the median rate how fast it
was (compare two runs of the script, not two machines).

The kernel's own figures (CPU time, steal, pressure) can all read idle while this moves: on
this project's shared VM, on a morning when anybench's rounds spread ±11-17% within a process,
the compute loop's windows spread ±15-28% and the walk's ±16-18%, with the process on its CPU
all along (see the README, "What the noisy state is"). A machine where they move that much
cannot give an A/B floors of a few percent at any pairing. The script also counts the gaps in
a spinning clock loop (time the process lost without being told), for the share of time lost
to the host or to interrupts.

With --side-by-side, the compute loop runs on every CPU at once instead, one process pinned to
each, in windows on one shared grid of the system's monotonic clock; it prints each CPU's spread
and how their rates move together, window by window. Correlated, the machine slows as a whole
and two workers at the same moment (anybench's ``--pairing duet``) share it; uncorrelated, each
CPU moves on its own, and nothing that pairs across CPUs can cancel it.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import queue
import random
import statistics
import time
from array import array
from typing import Any

clock = time.perf_counter_ns


def compute(window_ns: int) -> float:
    """Iterations of integer arithmetic per millisecond over one window."""
    start = clock()
    done = 0
    x = 0
    while True:
        for _ in range(200):
            x = (x * 1103515245 + 12345) & 0xFFFF
        done += 200
        spent = clock() - start
        if spent >= window_ns:
            return done / (spent / 1e6)


class Walk:
    """A random walk over *mb* megabytes (the order and the cells, 8 bytes an entry each); one
    window's visits per millisecond."""

    def __init__(self, mb: int) -> None:
        size = mb * 1024 * 1024 // 16
        order = list(range(size))
        random.Random(1).shuffle(order)
        self.order = array("q", order)
        self.cells = array("q", bytes(8 * size))
        self.at = 0

    def __call__(self, window_ns: int) -> float:
        start = clock()
        done = 0
        at, order, cells, size = self.at, self.order, self.cells, len(self.order)
        while True:
            for _ in range(200):
                cells[order[at]] += 1
                at = at + 1 if at + 1 < size else 0
            done += 200
            spent = clock() - start
            if spent >= window_ns:
                self.at = at
                return done / (spent / 1e6)


def gaps(seconds: float, threshold_ns: int = 20_000) -> tuple[int, float, float]:
    """Spin reading the clock: (gaps above *threshold_ns*, share of time in them, longest in
    µs)."""
    start = last = clock()
    end = start + int(seconds * 1e9)
    found = []
    while last < end:
        now = clock()
        if now - last > threshold_ns:
            found.append(now - last)
        last = now
    return len(found), sum(found) / max(last - start, 1), max(found, default=0) / 1000


def spread(rates: list[float]) -> float:
    """The standard deviation of the logs of *rates* (0.1 is about ±10%)."""
    return statistics.stdev(math.log(r) for r in rates)


def correlation(a: list[float], b: list[float]) -> float:
    """Pearson's correlation of the logs of two series of rates side by side; nan where one of
    them does not move at all."""
    try:
        return statistics.correlation([math.log(v) for v in a], [math.log(v) for v in b])
    except statistics.StatisticsError:
        return math.nan


def compute_on_grid(
    cpu: int, origin_ns: int, window_ns: int, windows: int, ready: Any, out: Any
) -> None:
    """On *cpu* alone, once every CPU's process is *ready*: the compute loop's rate in each of
    *windows* windows of the grid laid from *origin_ns*, by the window's place on the grid
    (a window already begun when the last one ended is skipped); put on *out*."""
    os.sched_setaffinity(0, {cpu})
    ready.wait()
    first = (clock() - origin_ns) // window_ns + 2
    rates = {}
    for i in range(first, first + windows):
        begin = origin_ns + i * window_ns
        now = clock()
        if now > begin + window_ns // 10:
            continue
        while now < begin:
            now = clock()
        rates[i] = compute(begin + window_ns - now)  # to the grid's end of the window
    out.put((cpu, rates))


def side_by_side(seconds: float, window_ms: float) -> None:
    """The compute loop on every CPU at the same moments; print each CPU's spread and the
    correlation of every two CPUs' rates, window by window and over blocks of ten."""
    if not hasattr(os, "sched_setaffinity"):
        raise SystemExit("steadiness: --side-by-side pins a process to each CPU: Linux only")
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise SystemExit("steadiness: --side-by-side needs two CPUs or more; this process has one")
    window_ns = int(window_ms * 1e6)
    windows = max(3, int(seconds * 1e9 / window_ns))
    context = multiprocessing.get_context("spawn")
    ready, out = context.Barrier(len(cpus)), context.Queue()
    origin = clock()
    workers = [
        context.Process(target=compute_on_grid, args=(cpu, origin, window_ns, windows, ready, out))
        for cpu in cpus
    ]
    for worker in workers:
        worker.start()
    try:
        # A worker that died never answers: wait for the windows and a minute more, not forever.
        by_cpu = dict(out.get(timeout=windows * window_ns / 1e9 + 60) for _ in workers)
    except queue.Empty:
        message = "steadiness: a CPU's process did not report; see its error above"
        raise SystemExit(message) from None
    finally:
        for worker in workers:
            worker.join(timeout=5)
            if worker.is_alive():
                worker.kill()
    series = [by_cpu[cpu] for cpu in cpus]
    both = sorted(set.intersection(*(set(s) for s in series)))
    if len(both) < 3:
        raise SystemExit("steadiness: fewer than three windows ran on every CPU; run it longer")
    rates = [[s[i] for i in both] for s in series]
    print(
        f"{len(both)} windows of {window_ms:g} ms on every CPU at once: "
        + ", ".join(f"CPU {cpu} ±{spread(r):.1%}" for cpu, r in zip(cpus, rates, strict=True))
    )
    for a in range(len(cpus)):
        for b in range(a + 1, len(cpus)):
            blocks = [
                [statistics.fmean(r[i : i + 10]) for i in range(0, len(r) - 9, 10)]
                for r in (rates[a], rates[b])
            ]
            over_blocks = correlation(*blocks) if len(blocks[0]) >= 3 else math.nan
            together = correlation(rates[a], rates[b])
            print(
                f"CPU {cpus[a]} and CPU {cpus[b]}: correlated {together:.2f} window by window, "
                f"{over_blocks:.2f} over blocks of ten; their ratio "
                f"±{spread([x / y for x, y in zip(rates[a], rates[b], strict=True)]):.1%}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="of the two loops (default 10)")
    parser.add_argument("--window-ms", type=float, default=5.0, help="one window (default 5)")
    parser.add_argument("--walk-mb", type=int, default=16, help="the memory walk's list (16)")
    parser.add_argument(
        "--side-by-side", action="store_true", help="the compute loop on every CPU at once"
    )
    args = parser.parse_args()
    if args.seconds < 0.01 or args.window_ms < 0.01 or args.walk_mb < 1:
        raise SystemExit(
            "steadiness: --seconds and --window-ms must be at least 0.01, --walk-mb at least 1"
        )
    if args.side_by_side:
        side_by_side(args.seconds, args.window_ms)
        return
    window_ns = int(args.window_ms * 1e6)
    walk = Walk(args.walk_mb)
    light: list[float] = []
    heavy: list[float] = []
    cpu_before = time.process_time()
    wall_before = time.perf_counter()
    end = clock() + int(args.seconds * 1e9)
    while clock() < end or len(light) < 3:
        light.append(compute(window_ns))
        heavy.append(walk(window_ns))
    cpu_share = (time.process_time() - cpu_before) / (time.perf_counter() - wall_before)
    count, lost, longest = gaps(min(args.seconds, 5.0))
    ranked = sorted(light)
    decile = len(ranked) // 10 or 1
    print(
        f"{len(light)} windows of {args.window_ms:g} ms each: compute loop ±{spread(light):.1%} "
        f"(10th / 90th percentile of its rates {ranked[decile - 1] / ranked[-decile]:.2f}; median "
        f"{statistics.median(light):,.0f} a ms), {args.walk_mb} MB walk ±{spread(heavy):.1%} "
        f"(median {statistics.median(heavy):,.0f} a ms), correlated "
        f"{correlation(light, heavy):.2f}; the process had {cpu_share:.0%} of a CPU"
    )
    print(
        f"clock gaps above 20 µs while spinning: {count}, {lost:.2%} of the time, the longest "
        f"{longest:,.0f} µs"
    )


if __name__ == "__main__":
    main()
