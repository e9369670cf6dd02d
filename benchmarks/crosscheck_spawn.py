"""An independent cross-check of the spawn and done_callback figures of a results file.

Usage: python benchmarks/crosscheck_spawn.py RESULTS.json [--tolerance 0.10] [--processes 4]

The measurement by hand shares no code and no policy with anybench's harness: the work is
written by hand in plain anyio (``anybench.Future`` for done-callbacks: that is the thing
measured, not the instrument), run in fresh processes of its own with no garbage-collection
policy and no clock reading inside the region, and costed by differential timing: the cost per
operation is (T(N2) - T(N1)) / (N2 - N1) for the two largest N of the results, so that fixed
costs (loop wake-ups, the task group's exit) cancel.

This machine's speed drifts by 20-50% over minutes, so a figure measured by hand now cannot be
held to 10% against one a run measured a quarter of an hour ago. So anybench measures the same
benchmarks again, through its public interface (``anybench.run_round`` on the scenario module,
in fresh processes of its own), each of its processes right beside one by hand, in alternating
order: the verdict compares the two, made in the same seconds, on the same footing (the same
two N, differentially). The results file's own figure is shown beside them, with how far the
machine moved since it was made. Exit 1 if any pair differs by more than the tolerance.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SCENARIOS = ("spawn", "done_callback")
RUNTIMES = ("asyncio", "uvloop", "trio")
REPEATS = 5  # regions per size in one child process; the child reports their median
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


def measure(
    pairs: dict[Key, list[int]], processes: int
) -> dict[str, dict[Key, list[dict[int, float]]]]:
    """Per method ("hand", "anybench") and benchmark, one dict of region times per fresh
    process; the two methods' processes side by side, in alternating order."""
    samples: dict[str, dict[Key, list[dict[int, float]]]] = {
        method: {key: [] for key in pairs} for method in ("hand", "anybench")
    }
    keys = sorted(pairs)
    for rotation in range(processes):
        for key in keys if rotation % 2 == 0 else reversed(keys):
            scenario, runtime = key
            sizes = ",".join(map(str, pairs[key]))
            for method in ("hand", "anybench") if rotation % 2 == 0 else ("anybench", "hand"):
                proc = subprocess.run(
                    [sys.executable, __file__, "--child", method, runtime, scenario, sizes],
                    capture_output=True,
                    text=True,
                )
                if proc.returncode:
                    last = (proc.stderr.strip().splitlines() or ["?"])[-1]
                    print(f"crosscheck: {scenario} on {runtime} ({method}) could not run: {last}")
                    continue
                out = json.loads(proc.stdout)
                samples[method][key].append({int(n): t for n, t in out.items()})
    return samples


def marginal(times: list[dict[int, float]], n1: int, n2: int) -> float:
    """ns per operation between N1 and N2, from the median region times over processes."""
    t1 = statistics.median(t[n1] for t in times)
    t2 = statistics.median(t[n2] for t in times)
    return (t2 - t1) / (n2 - n1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?")
    parser.add_argument("--tolerance", type=float, default=0.10)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--child", nargs=4, metavar=("METHOD", "RUNTIME", "SCENARIO", "SIZES"))
    args = parser.parse_args()
    if args.child:
        method, runtime, scenario, sizes = args.child
        work = by_hand if method == "hand" else with_anybench
        print(json.dumps(work(runtime, scenario, [int(s) for s in sizes.split(",")])))
        return 0
    if not args.results:
        parser.error("give a results file")
    try:
        figures = benchmark_figures(args.results)
    except (OSError, ValueError) as exc:
        print(f"crosscheck: cannot read {args.results}: {exc}", file=sys.stderr)
        return 1
    pairs = {k: sorted(v)[-2:] for k, v in figures.items() if len(v) >= 2}
    if not pairs:
        print("crosscheck: no spawn or done_callback benchmark at two N; nothing to check")
        return 0
    samples = measure(pairs, args.processes)
    status = 0
    head = ("scenario", "runtime", "N1 -> N2", "anybench", "by hand", "ratio", "the run's")
    print(
        f"{head[0]:<14} {head[1]:<8} {head[2]:>16} {head[3]:>10} {head[4]:>10} {head[5]:>7}"
        f"  {head[6]}"
    )
    for key in sorted(pairs):
        scenario, runtime = key
        n1, n2 = pairs[key]
        if not samples["hand"][key] or not samples["anybench"][key]:
            status = 1
            continue
        hand = marginal(samples["hand"][key], n1, n2)
        bench = marginal(samples["anybench"][key], n1, n2)
        f1, f2 = figures[key][n1], figures[key][n2]
        in_run = (f2 * n2 - f1 * n1) / (n2 - n1)
        ratio = bench / hand
        verdict = "ok" if abs(ratio - 1) <= args.tolerance else "DISAGREE"
        status |= verdict != "ok"
        print(
            f"{scenario:<14} {runtime:<8} {f'{n1:,} -> {n2:,}':>16} {bench:>7.0f} ns "
            f"{hand:>7.0f} ns {ratio:>6.2f}x {verdict:<8}  {in_run:.0f} ns "
            f"({in_run / bench:.2f}x of now)"
        )
    print(
        f"(marginal ns per operation between the two N, (T(N2) - T(N1)) / (N2 - N1), median "
        f"over {args.processes} fresh processes of {REPEATS} regions each; anybench's processes "
        f"ran beside the ones by hand, in alternating order; ratio: anybench / by hand, "
        f"tolerance ±{args.tolerance:.0%}; the run's: the results file's figure, made earlier)"
    )
    return status


if __name__ == "__main__":
    raise SystemExit(main())
