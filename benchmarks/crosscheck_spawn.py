"""An independent cross-check of the spawn and done_callback figures of a results file.

Usage: python benchmarks/crosscheck_spawn.py RESULTS.json [--tolerance 0.10] [--pairs 8]
       [--busy-pressure 10]

The measurement by hand shares no code and no policy with anybench's harness: the work is
written by hand in plain anyio (``anybench.Future`` for done-callbacks: that is the thing
measured, not the instrument), run in fresh processes of its own with no garbage-collection
policy and no clock reading inside the region, and costed by differential timing: the cost per
operation is (T(N2) - T(N1)) / (N2 - N1) for the two largest N of the results, so that fixed
costs (loop wake-ups, the task group's exit) cancel.

This machine's speed drifts by 20-50% over minutes, and whole processes run 1.5-2x apart, so a
figure measured by hand now cannot be held to 10% against one a run measured a quarter of an
hour ago, nor one process against another made minutes apart. So anybench measures the same
benchmarks again, through its public interface (``anybench.run_round`` on the scenario module,
in fresh processes of its own), paired as tightly as an A/B: each benchmark gets many short
pairs, a process by hand and one of anybench back to back, their order alternating from one
pair to the next (ABBAABBA...), the benchmarks' pairs interleaved so that each benchmark's
pairs spread over the whole check. Each pair gives a ratio, anybench / by hand, made in the same
seconds; the verdict is on the t interval of the pairs' log ratios: ``ok`` when it lies within
the tolerance, ``DISAGREE`` when it lies wholly outside, ``UNCLEAR`` when it straddles an end
(more pairs would tell). A pair made while the machine was busy (``/proc/pressure/cpu``'s
``some avg10`` above --busy-pressure percent at its start or end, read here directly) is marked
in its benchmark's line. The results file's own figure is shown beside them, with how far the
machine moved since it was made. Exit 1 unless every benchmark is ``ok``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCENARIOS = ("spawn", "done_callback")
RUNTIMES = ("asyncio", "uvloop", "trio")
REPEATS = 3  # regions per size in one child process (short: many pairs); it reports their median
ROOT = Path(__file__).resolve().parent.parent
Key = tuple[str, str]  # (scenario, runtime)


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


def by_hand(runtime: str, scenario: str, sizes: list[int]) -> dict[int, float]:
    """The median region time (ns) at each size, by hand."""
    import anyio

    work = {"spawn": _spawn, "done_callback": _done_callback}[scenario]
    options: dict[str, Any] = {}
    if runtime == "uvloop":
        import uvloop

        options = {"loop_factory": uvloop.new_event_loop}
    backend = "trio" if runtime == "trio" else "asyncio"
    out = {}
    for n in sizes:
        anyio.run(work, min(n, 1000), backend=backend, backend_options=options)  # warm-up
        times = [
            anyio.run(work, n, backend=backend, backend_options=options) for _ in range(REPEATS)
        ]
        out[n] = statistics.median(times)
    return out


def with_anybench(runtime: str, scenario: str, sizes: list[int]) -> dict[int, float]:
    """The median region time (ns) at each size, as anybench's harness measures it."""
    import importlib

    import anybench

    sys.path.insert(0, str(ROOT))
    module = importlib.import_module(f"scenarios.{scenario}")
    chosen = anybench.RUNTIMES[runtime]
    out = {}
    for n in sizes:
        anybench.run_round(module, chosen, min(n, 1000))  # warm-up
        times = [anybench.run_round(module, chosen, n).elapsed_ns for _ in range(REPEATS)]
        out[n] = statistics.median(times)
    return out


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


@dataclass
class Pair:
    """One pair: a process by hand and one of anybench, back to back."""

    hand: dict[int, float]
    bench: dict[int, float]
    #: Which ran first.
    first: str
    #: The highest CPU pressure (some avg10, %) read at the pair's start and end; None unknown.
    pressure: float | None

    def ratio(self, n1: int, n2: int) -> float:
        """anybench's marginal ns/op over the hand's, in this pair."""
        return marginal(self.bench, n1, n2) / marginal(self.hand, n1, n2)


def marginal(times: dict[int, float], n1: int, n2: int) -> float:
    """ns per operation between N1 and N2, from one process's median region times."""
    return (times[n2] - times[n1]) / (n2 - n1)


def _child(method: str, key: Key, sizes: list[int]) -> dict[int, float] | None:
    scenario, runtime = key
    proc = subprocess.run(
        [sys.executable, __file__, "--child", method, runtime, scenario, ",".join(map(str, sizes))],
        capture_output=True,
        text=True,
    )
    if proc.returncode:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        print(f"crosscheck: {scenario} on {runtime} ({method}) could not run: {last}")
        return None
    return {int(n): t for n, t in json.loads(proc.stdout).items()}


def measure(
    sizes: dict[Key, list[int]],
    pairs: int,
    run_child: Callable[[str, Key, list[int]], dict[int, float] | None] = _child,
    pressure: Callable[[], float | None] = pressure_avg10,
) -> dict[Key, list[Pair]]:
    """Per benchmark, its pairs: in round *i*, every benchmark gets one pair (the benchmarks in
    turn, forward in even rounds, backward in odd), by hand first in even pairs of a benchmark
    and anybench first in odd ones."""
    found: dict[Key, list[Pair]] = {key: [] for key in sizes}
    keys = sorted(sizes)
    for number in range(pairs):
        for key in keys if number % 2 == 0 else reversed(keys):
            order = ("hand", "anybench") if number % 2 == 0 else ("anybench", "hand")
            before = pressure()
            times = {method: run_child(method, key, sizes[key]) for method in order}
            after = pressure()
            hand, bench = times["hand"], times["anybench"]
            if hand is None or bench is None:
                continue
            readings = [p for p in (before, after) if p is not None]
            found[key].append(Pair(hand, bench, order[0], max(readings) if readings else None))
    return found


@dataclass(frozen=True)
class Agreement:
    """A benchmark's pairs, summed up."""

    ratios: tuple[float, ...]
    median: float
    low: float
    high: float
    verdict: str


def judge(ratios: Sequence[float], tolerance: float) -> Agreement:
    """The pairs' ratios: their median, the 95% t interval of their mean log, and the verdict
    against ±*tolerance*: ``ok`` (the interval within it), ``DISAGREE`` (wholly outside it),
    ``UNCLEAR`` (it straddles an end, or fewer than two pairs)."""
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
    """Each pair's ratio, in order; a pair made while the machine was busy is marked with its
    CPU pressure."""
    parts = []
    for pair in pairs:
        text = f"{pair.ratio(n1, n2):.2f}"
        if pair.pressure is not None and pair.pressure > busy_pressure:
            text += f" (busy: CPU pressure {pair.pressure:.0f}%)"
        parts.append(text)
    return ", ".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?")
    parser.add_argument("--tolerance", type=float, default=0.10)
    parser.add_argument("--pairs", type=int, default=8, help="pairs per benchmark (default 8)")
    parser.add_argument(
        "--busy-pressure",
        type=float,
        default=10.0,
        help="mark a pair made while CPU pressure (some avg10) was above this percentage",
    )
    parser.add_argument("--child", nargs=4, metavar=("METHOD", "RUNTIME", "SCENARIO", "SIZES"))
    args = parser.parse_args()
    if args.child:
        method, runtime, scenario, sizes = args.child
        work = by_hand if method == "hand" else with_anybench
        print(json.dumps(work(runtime, scenario, [int(s) for s in sizes.split(",")])))
        return 0
    if not args.results:
        parser.error("give a results file")
    if args.pairs < 2:
        parser.error(f"--pairs takes at least 2 (an interval needs two), not {args.pairs}")
    try:
        figures = benchmark_figures(args.results)
    except (OSError, ValueError) as exc:
        print(f"crosscheck: cannot read {args.results}: {exc}", file=sys.stderr)
        return 1
    scales = {k: sorted(v)[-2:] for k, v in figures.items() if len(v) >= 2}
    if not scales:
        print("crosscheck: no spawn or done_callback benchmark at two N; nothing to check")
        return 0
    found = measure(scales, args.pairs)
    status = 0
    head = ("scenario", "runtime", "N1 -> N2", "anybench", "by hand", "median", "95% over pairs")
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
            print(f"{scenario:<14} {runtime:<8} no pair ran")
            continue
        agreement = judge([pair.ratio(n1, n2) for pair in pairs], args.tolerance)
        bench = statistics.median(marginal(p.bench, n1, n2) for p in pairs)
        hand = statistics.median(marginal(p.hand, n1, n2) for p in pairs)
        f1, f2 = figures[key][n1], figures[key][n2]
        in_run = (f2 * n2 - f1 * n1) / (n2 - n1)
        status |= agreement.verdict != "ok"
        interval = f"{agreement.low:.2f}-{agreement.high:.2f}"
        print(
            f"{scenario:<14} {runtime:<8} {f'{n1:,} -> {n2:,}':>16} {bench:>7.0f} ns "
            f"{hand:>7.0f} ns {agreement.median:>6.2f}x {interval:>14}  {agreement.verdict:<8}  "
            f"{in_run:.0f} ns ({in_run / bench:.2f}x of now)"
        )
        print(f"{'':<14} pairs ({len(pairs)}): {pairs_text(pairs, n1, n2, args.busy_pressure)}")
    print(
        f"(marginal ns per operation between the two N, (T(N2) - T(N1)) / (N2 - N1), from "
        f"{REPEATS} regions a process; each pair a process by hand and one of anybench back to "
        f"back, their order alternating, {args.pairs} pairs a benchmark spread over the check; "
        f"median: of the pairs' ratios anybench / by hand; verdict: the 95% t interval of the "
        f"pairs' log ratios against ±{args.tolerance:.0%}; busy: CPU pressure (some avg10) "
        f"above {args.busy_pressure:g}%; the run's: the results file's figure, made earlier)"
    )
    return status


if __name__ == "__main__":
    raise SystemExit(main())
