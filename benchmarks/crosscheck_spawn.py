"""An independent cross-check of the spawn and done_callback figures of a results file.

Usage: python benchmarks/crosscheck_spawn.py RESULTS.json [--tolerance 0.10] [--processes 8]
       [--regions 6] [--hand-heap frozen|live] [--busy-pressure 10] [--show-regions]

The measurement by hand shares no measuring code with anybench's harness: the work is written
by hand in plain anyio (``anybench.Future`` for done-callbacks: that is the thing measured, not
the instrument), timed with ``perf_counter_ns`` around the work, with no clock reading inside the
region and no garbage-collection policy in it (the heap is set before it: below), and costed by
differential timing: the cost per operation is (T(N2) - T(N1)) / (N2 - N1) for the two largest
N of the results up to 10,000 (``MAX_CHECKED_N``), so that fixed costs (loop wake-ups, the
task group's exit) cancel. anybench measures the same benchmarks again through its public
interface, ``anybench.run_round`` on the scenario module.

Why both sides share a process. This machine's speed drifts by 20-50% over minutes, and whole
processes run 1.5-2x apart (memory layout, the minute's load), so a figure measured by hand now
cannot be held to 10% against one a run measured a quarter of an hour ago, nor one process
against another made seconds apart: pairing a process by hand with a process of anybench, back
to back, left ratios from 0.6 to 1.9 and every benchmark UNCLEAR. So each child process runs
both sides, their regions alternating: after one warm-up region of each at N2, --regions
rounds, each with both sides at both N, the two sides' order ABBA (by hand, anybench; anybench,
by hand; ...) so that neither always goes first, and the two N's order reversed every round.
Each process gives one ratio, anybench's marginal ns/op over the hand's, from that process's
median region times; what the process does to the figure (its layout, its minute) lands on
both sides and cancels. The processes of a benchmark alternate which side starts, and the
benchmarks' processes are interleaved so that each benchmark's spread over the whole check.

The verdict is on the 95% t interval of the processes' log ratios: ``ok`` when it lies within
the tolerance, ``DISAGREE`` when it lies wholly outside, ``UNCLEAR`` when it straddles an end
(more processes would tell).

The heap. ``run_round`` collects and freezes the process's heap before its round and unfreezes it
after, so that a collection inside the region walks the round's own objects only. The side by
hand does the same in its own three lines of ``gc`` (``--hand-heap live``: it only collects),
outside its region, so that it starts from the same collector state whatever ran before it (its
own region or one of anybench's). Left unfrozen, its full collections also walk what the process
holds, about 29,000 objects with both sides imported (10,000-15,000 in a process by hand alone):
that made it 9% slower than anybench on ``spawn`` at N = 10,000 (193 ms against 177; frozen,
172; anybench unfrozen, 199): a cost of this check's own process, not of the work measured.

A process made while the machine was busy (``/proc/pressure/cpu``'s ``some avg10`` above
--busy-pressure percent at its start or end, read here directly) is marked in its benchmark's
line. The results file's own figure is shown beside them, with how far the machine moved since
it was made. ``--show-regions`` prints every region's time, to tell which side is noisy. Exit 1
unless every benchmark is ``ok``.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCENARIOS = ("spawn", "done_callback")
RUNTIMES = ("asyncio", "uvloop", "trio")
HAND, BENCH = "hand", "anybench"
#: Timed regions per N per side in one process (after one warm-up region of each side).
REGIONS = 6
PROCESSES = 8
ROOT = Path(__file__).resolve().parent.parent
Key = tuple[str, str]  # (scenario, runtime)
Slot = tuple[str, int]  # (side, N): one region
#: A process's region times (ns) by side and N, in the order they ran.
Times = dict[str, dict[int, list[float]]]
#: A side's region: N -> its time in ns.
Region = Callable[[int], float]


async def _spawn(n: int) -> int:
    import anyio

    async def task() -> None:
        pass

    t0 = time.perf_counter_ns()
    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(task)
    return time.perf_counter_ns() - t0


async def _done_callback(n: int) -> int:
    import anyio

    from anybench import Future

    futures: list[Future[int]] = [Future() for _ in range(n)]
    left = [n]
    done = anyio.Event()

    def on_done(fut: Future[int]) -> None:
        left[0] -= 1
        if not left[0]:
            done.set()

    for fut in futures:
        fut.add_done_callback(on_done)
    t0 = time.perf_counter_ns()
    for i, fut in enumerate(futures):
        fut.set_result(i)
    await done.wait()
    return time.perf_counter_ns() - t0


def by_hand(runtime: str, scenario: str, heap: str = "frozen") -> Region:
    """A region by hand at N: its time in ns. With *heap* ``frozen`` what the process holds is
    collected and frozen before the region and unfrozen after it; ``live``, only collected."""
    import anyio

    work = {"spawn": _spawn, "done_callback": _done_callback}[scenario]
    options: dict[str, Any] = {}
    if runtime == "uvloop":
        import uvloop

        options = {"loop_factory": uvloop.new_event_loop}
    backend = "trio" if runtime == "trio" else "asyncio"

    def region(n: int) -> float:
        # The same collector state before every region, whatever ran before it (anybench's
        # round leaves its garbage and its generations' counts), and nothing inside the region.
        gc.collect()
        if heap == "frozen":
            gc.freeze()
        try:
            return float(anyio.run(work, n, backend=backend, backend_options=options))
        finally:
            if heap == "frozen":
                gc.unfreeze()

    return region


def with_anybench(runtime: str, scenario: str) -> Region:
    """A region at N as anybench's harness measures it: its time in ns."""
    import importlib

    import anybench

    sys.path.insert(0, str(ROOT))
    module = importlib.import_module(f"scenarios.{scenario}")
    chosen = anybench.RUNTIMES[runtime]
    return lambda n: float(anybench.run_round(module, chosen, n).elapsed_ns)


def schedule(sizes: Sequence[int], regions: int, hand_first: bool) -> tuple[list[Slot], list[Slot]]:
    """A process's warm-up regions and timed regions, in order.

    Warm-up: one region of each side at the largest N (it also grows the process's memory to
    what the regions need). Then *regions* rounds, each with both sides at every N: the sides'
    order goes ABBA from one pair of regions to the next (so that each side goes first as often
    as second at every N), and the N's order is reversed every round.
    """
    sides = (HAND, BENCH) if hand_first else (BENCH, HAND)
    warm = [(side, max(sizes)) for side in sides]
    timed: list[Slot] = []
    pair = 0
    for number in range(regions):
        for n in sizes if number % 2 == 0 else reversed(sizes):
            order = sides if pair % 2 == 0 else sides[::-1]
            timed.extend((side, n) for side in order)
            pair += 1
    return warm, timed


def run_process(
    sizes: Sequence[int],
    regions: int,
    hand_first: bool,
    region: Mapping[str, Callable[[int], float]],
) -> Times:
    """Both sides' region times in this process, by the :func:`schedule`; *region* maps each
    side to its function of N giving one region's time."""
    warm, timed = schedule(sizes, regions, hand_first)
    for side, n in warm:
        region[side](n)
    times: Times = {side: {n: [] for n in sizes} for side in (HAND, BENCH)}
    for side, n in timed:
        times[side][n].append(region[side](n))
    return times


def benchmark_figures(path: str) -> dict[Key, dict[int, float]]:
    """ns/op by (scenario, runtime) and N, read from the results file as plain JSON."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    figures: dict[Key, dict[int, float]] = {}
    for bench in data.get("benchmarks", []):
        extra = bench.get("extra_info", {})
        if extra.get("scenario") in SCENARIOS and extra.get("runtime") in RUNTIMES:
            key = (extra["scenario"], extra["runtime"])
            scale = extra["scale"] if "scale" in extra else extra["n"]  # "n" before format 4
            figures.setdefault(key, {})[int(scale)] = float(extra["ns_per_op"])
    return figures


#: t quantiles at 0.975 for 1-10 degrees of freedom (beyond, a Cornish-Fisher expansion).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228)
PRESSURE = Path("/proc/pressure/cpu")
#: The largest N checked: a `full` run's N = 1,000,000 (100,000 for spawn) makes a region last
#: seconds and the check a quarter of an hour; the cost per operation is checked at the N where
#: a region lasts milliseconds, as the `default` profile's largest.
MAX_CHECKED_N = 10_000


def checked_scales(figures: Iterable[int]) -> list[int]:
    """The two N a benchmark is checked at: the two largest of the results file's, up to
    :data:`MAX_CHECKED_N`; where the file has one (a `full` run: 10,000, then 100,000 and up),
    that N and a tenth of it (both sides measure both N themselves; the file's own marginal
    figure is then not there to show). None where it has none, or one below 100."""
    sizes = sorted(n for n in figures if n <= MAX_CHECKED_N)[-2:]
    if len(sizes) == 1 and sizes[0] >= 100:
        sizes = [sizes[0] // 10, sizes[0]]
    return sizes


def t975(df: int) -> float:
    """The 0.975 quantile of Student's t with *df* degrees of freedom."""
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def pressure_avg10(path: Path = PRESSURE) -> float | None:
    """CPU pressure now: the ``some`` line's ``avg10`` (percent of the last 10 s in which some
    task waited for a CPU), or None where the kernel does not say."""
    try:
        text = path.read_text(encoding="ascii")
    except OSError:
        return None
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == "some":
            for item in fields[1:]:
                key, _, value = item.partition("=")
                if key == "avg10":
                    try:
                        return float(value)
                    except ValueError:
                        return None
    return None


def marginal(times: Mapping[int, float], n1: int, n2: int) -> float:
    """ns per operation between N1 and N2, from region times at each."""
    return (times[n2] - times[n1]) / (n2 - n1)


@dataclass
class Pair:
    """One process: both sides measured in it, their regions alternating."""

    #: Region times (ns) by N, in the order they ran: by hand, and through anybench.
    hand: dict[int, list[float]]
    bench: dict[int, list[float]]
    #: Which side ran first in the process.
    first: str
    #: The highest CPU pressure (some avg10, %) read at the process's start and end; None unknown.
    pressure: float | None

    def medians(self, side: str) -> dict[int, float]:
        """A side's median region time (ns) at each N."""
        times = self.hand if side == HAND else self.bench
        return {n: statistics.median(values) for n, values in times.items()}

    def marginal(self, side: str, n1: int, n2: int) -> float:
        """A side's marginal ns/op in this process, from its medians."""
        return marginal(self.medians(side), n1, n2)

    def ratio(self, n1: int, n2: int) -> float:
        """anybench's marginal ns/op over the hand's, in this process."""
        return self.marginal(BENCH, n1, n2) / self.marginal(HAND, n1, n2)


def _child(key: Key, sizes: list[int], regions: int, first: str, heap: str) -> Times | None:
    scenario, runtime = key
    command = [sys.executable, __file__, "--child", runtime, scenario]
    command += [",".join(map(str, sizes)), str(regions), first, heap]
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        print(f"crosscheck: {scenario} on {runtime} could not run: {last}")
        return None
    found = json.loads(proc.stdout)
    return {side: {int(n): v for n, v in found[side].items()} for side in (HAND, BENCH)}


def measure(
    sizes: dict[Key, list[int]],
    processes: int,
    regions: int = REGIONS,
    heap: str = "frozen",
    run_child: Callable[[Key, list[int], int, str, str], Times | None] = _child,
    pressure: Callable[[], float | None] = pressure_avg10,
) -> dict[Key, list[Pair]]:
    """Per benchmark, its processes: in round *i*, every benchmark gets one process (the
    benchmarks in turn, forward in even rounds, backward in odd), by hand first in a benchmark's
    even processes and anybench first in its odd ones."""
    found: dict[Key, list[Pair]] = {key: [] for key in sizes}
    keys = sorted(sizes)
    for number in range(processes):
        first = HAND if number % 2 == 0 else BENCH
        for key in keys if number % 2 == 0 else reversed(keys):
            before = pressure()
            times = run_child(key, sizes[key], regions, first, heap)
            after = pressure()
            if times is None:
                continue
            readings = [p for p in (before, after) if p is not None]
            top = max(readings) if readings else None
            found[key].append(Pair(times[HAND], times[BENCH], first, top))
    return found


@dataclass(frozen=True)
class Agreement:
    """A benchmark's processes, summed up."""

    ratios: tuple[float, ...]
    median: float
    low: float
    high: float
    verdict: str


def judge(ratios: Sequence[float], tolerance: float) -> Agreement:
    """The processes' ratios: their median, the 95% t interval of their mean log, and the
    verdict against ±*tolerance*: ``ok`` (the interval within it), ``DISAGREE`` (wholly outside
    it), ``UNCLEAR`` (it straddles an end, or fewer than two processes)."""
    logs = [math.log(r) for r in ratios if r > 0]
    if len(logs) < 2 or len(logs) < len(ratios):
        med = statistics.median(ratios) if ratios else math.nan
        return Agreement(tuple(ratios), med, 0.0, math.inf, "UNCLEAR")
    mean = statistics.fmean(logs)
    half = t975(len(logs) - 1) * statistics.stdev(logs) / math.sqrt(len(logs))
    low, high = math.exp(mean - half), math.exp(mean + half)
    lo_ok, hi_ok = 1 - tolerance, 1 + tolerance
    if lo_ok <= low and high <= hi_ok:
        verdict = "ok"
    elif high < lo_ok or low > hi_ok:
        verdict = "DISAGREE"
    else:
        verdict = "UNCLEAR"
    return Agreement(tuple(ratios), statistics.median(ratios), low, high, verdict)


def pairs_text(pairs: Sequence[Pair], n1: int, n2: int, busy_pressure: float) -> str:
    """Each process's ratio, in order; one made while the machine was busy is marked with its
    CPU pressure."""
    parts = []
    for pair in pairs:
        text = f"{pair.ratio(n1, n2):.2f}"
        if pair.pressure is not None and pair.pressure > busy_pressure:
            text += f" (busy: CPU pressure {pair.pressure:.0f}%)"
        parts.append(text)
    return ", ".join(parts)


def regions_text(pair: Pair) -> list[str]:
    """A process's region times (ms), by side and N, in the order each side ran them."""
    lines = []
    for side, times in ((HAND, pair.hand), (BENCH, pair.bench)):
        for n, values in sorted(times.items()):
            shown = " ".join(f"{v / 1e6:.2f}" for v in values)
            lines.append(f"{side:>8} N={n:<7,} {shown} ms")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?")
    parser.add_argument("--tolerance", type=float, default=0.10)
    parser.add_argument(
        "--processes",
        type=int,
        default=PROCESSES,
        help=f"processes per benchmark, each measuring both sides (default {PROCESSES})",
    )
    parser.add_argument(
        "--regions",
        type=int,
        default=REGIONS,
        help=f"timed regions per N per side in a process (default {REGIONS})",
    )
    parser.add_argument(
        "--busy-pressure",
        type=float,
        default=10.0,
        help="mark a process made while CPU pressure (some avg10) was above this percentage",
    )
    parser.add_argument(
        "--show-regions", action="store_true", help="print every region's time, per process"
    )
    parser.add_argument(
        "--hand-heap",
        choices=("frozen", "live"),
        default="frozen",
        help="frozen (the default): the side by hand freezes what the process holds around its "
        "regions, as anybench's round does; live: it only collects before them",
    )
    parser.add_argument(
        "--child", nargs=6, metavar=("RUNTIME", "SCENARIO", "SIZES", "N", "FIRST", "HEAP")
    )
    args = parser.parse_args()
    if args.child:
        runtime, scenario, sizes, regions, first, heap = args.child
        region = {HAND: by_hand(runtime, scenario, heap), BENCH: with_anybench(runtime, scenario)}
        at = [int(s) for s in sizes.split(",")]
        print(json.dumps(run_process(at, int(regions), first == HAND, region)))
        return 0
    if not args.results:
        parser.error("give a results file")
    if args.processes < 2:
        parser.error(f"--processes takes at least 2 (an interval needs two), not {args.processes}")
    if args.regions < 1:
        parser.error(f"--regions takes at least 1, not {args.regions}")
    try:
        figures = benchmark_figures(args.results)
    except (OSError, ValueError) as exc:
        print(f"crosscheck: cannot read {args.results}: {exc}", file=sys.stderr)
        return 1
    checked = {key: checked_scales(by_n) for key, by_n in figures.items()}
    scales = {key: sizes for key, sizes in checked.items() if len(sizes) == 2}
    if not scales:
        print("crosscheck: no spawn or done_callback benchmark at two N; nothing to check")
        return 0
    started = time.monotonic()
    found = measure(scales, args.processes, args.regions, args.hand_heap)
    took_s = time.monotonic() - started
    status = 0
    head = ("scenario", "runtime", "N1 -> N2", "anybench", "by hand", "median", "95% over procs")
    print(
        f"{head[0]:<14} {head[1]:<8} {head[2]:>16} {head[3]:>10} {head[4]:>10} {head[5]:>7}"
        f" {head[6]:>14}  verdict   the run's"
    )
    for key in sorted(scales):
        scenario, runtime = key
        n1, n2 = scales[key]
        pairs = found[key]
        if not pairs:
            status = 1
            print(f"{scenario:<14} {runtime:<8} no process ran")
            continue
        agreement = judge([pair.ratio(n1, n2) for pair in pairs], args.tolerance)
        bench = statistics.median(p.marginal(BENCH, n1, n2) for p in pairs)
        hand = statistics.median(p.marginal(HAND, n1, n2) for p in pairs)
        if n1 in figures[key]:
            f1, f2 = figures[key][n1], figures[key][n2]
            in_run = (f2 * n2 - f1 * n1) / (n2 - n1)
            runs = f"{in_run:.0f} ns ({in_run / bench:.2f}x of now)"
        else:
            runs = f"- (not measured at {n1:,})"
        status |= agreement.verdict != "ok"
        interval = f"{agreement.low:.2f}-{agreement.high:.2f}"
        print(
            f"{scenario:<14} {runtime:<8} {f'{n1:,} -> {n2:,}':>16} {bench:>7.0f} ns "
            f"{hand:>7.0f} ns {agreement.median:>6.2f}x {interval:>14}  {agreement.verdict:<8}  "
            f"{runs}"
        )
        print(f"{'':<14} processes ({len(pairs)}): {pairs_text(pairs, n1, n2, args.busy_pressure)}")
        if args.show_regions:
            for number, pair in enumerate(pairs, 1):
                print(f"{'':<14} process {number} ({pair.first} first):")
                for line in regions_text(pair):
                    print(f"{'':<16}{line}")
    print(
        f"(marginal ns per operation between the two N, (T(N2) - T(N1)) / (N2 - N1), from the "
        f"median of {args.regions} regions per N per side in a process; each process measures "
        f"both sides, their regions alternating, the hand's heap {args.hand_heap}; "
        f"{args.processes} processes a benchmark spread "
        f"over the check; median: of the processes' ratios anybench / by hand; verdict: the 95% "
        f"t interval of the processes' log ratios against ±{args.tolerance:.0%}; busy: CPU "
        f"pressure (some avg10) above {args.busy_pressure:g}%; the run's: the results file's "
        f"figure, made earlier; the check took {took_s:.0f} s)"
    )
    return status


if __name__ == "__main__":
    raise SystemExit(main())
