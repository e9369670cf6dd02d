"""How steady this machine's CPU is right now, from fixed work timed in short windows.

Usage: python benchmarks/steadiness.py [--seconds 10] [--window-ms 5] [--walk-mb 16]

Shares no code with anybench. Two loops take turns, one window each: a compute loop (integer
arithmetic in the interpreter, a working set that fits the first-level caches) and a memory
walk (a list of --walk-mb megabytes, visited in a random order). Each window's rate (iterations
per millisecond) is what the CPU gave that loop then; the standard deviation of the logs of the
rates over the windows says how far the machine's speed moves from one window to the next.

The kernel's own figures (CPU time, steal, pressure) can all read idle while this moves: on
this project's shared VM, on mornings when anybench's rounds spread ±10-25% within a process,
the compute loop's windows spread ±16-26% and the memory walk's ±10-16%, the two correlated at
about 0.5, with the process on its CPU all along (see the README, "On a noisy machine"). A
machine where they move that much cannot give an A/B floors of a few percent at any pairing.
The script also counts the gaps in a spinning clock loop (time the process lost without being
told), for the share of time lost to the host or to interrupts.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time

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
    """A random walk over a list of *mb* megabytes; one window's visits per millisecond."""

    def __init__(self, mb: int) -> None:
        size = mb * 1024 * 1024 // 8
        self.order = list(range(size))
        random.Random(1).shuffle(self.order)
        self.cells = [0] * size
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
    return len(found), sum(found) / (last - start), max(found, default=0) / 1000


def spread(rates: list[float]) -> float:
    return statistics.stdev(math.log(r) for r in rates)


def correlation(a: list[float], b: list[float]) -> float:
    la, lb = [math.log(v) for v in a], [math.log(v) for v in b]
    return statistics.correlation(la, lb)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="of the two loops (default 10)")
    parser.add_argument("--window-ms", type=float, default=5.0, help="one window (default 5)")
    parser.add_argument("--walk-mb", type=int, default=16, help="the memory walk's list (16)")
    args = parser.parse_args()
    if args.seconds <= 0 or args.window_ms <= 0 or args.walk_mb <= 0:
        raise SystemExit("steadiness: --seconds, --window-ms and --walk-mb must be above 0")
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
    decile = len(light) // 10 or 1
    tenths = sorted(light)[decile - 1] / sorted(light)[-decile]
    print(
        f"{len(light)} windows of {args.window_ms:g} ms each: compute loop ±{spread(light):.1%} "
        f"(slowest tenth / fastest tenth {tenths:.2f}), "
        f"{args.walk_mb} MB walk ±{spread(heavy):.1%}, correlated {correlation(light, heavy):.2f}; "
        f"the process had {cpu_share:.0%} of a CPU"
    )
    print(
        f"clock gaps above 20 µs while spinning: {count}, {lost:.2%} of the time, the longest "
        f"{longest:,.0f} µs"
    )


if __name__ == "__main__":
    main()
