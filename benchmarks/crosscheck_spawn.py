"""An independent cross-check of the spawn and done_callback figures of a results file.

Usage: python benchmarks/crosscheck_spawn.py RESULTS.json [--tolerance 0.10] [--processes 5]

It shares no code and no policy with anybench's harness: it reads the results file as plain
JSON, writes the work by hand in plain anyio (``anybench.Future`` for done-callbacks: that is
the thing measured, not the instrument), runs it in fresh processes of its own with no
garbage-collection policy and no clock reading inside the region, and uses differential timing:
the cost per operation is (T(N2) - T(N1)) / (N2 - N1) for the two largest N of the results, so
that fixed costs (loop wake-ups, the task group's exit) cancel. The benchmark's figure is put on
the same footing, from its ns/op at the same two N. Exit 1 if any pair differs by more than the
tolerance.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from typing import Any

SCENARIOS = ("spawn", "done_callback")
RUNTIMES = ("asyncio", "uvloop", "trio")
REPEATS = 5  # regions per size in one child process; the child reports their median


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


def child(runtime: str, scenario: str, sizes: list[int]) -> None:
    """In a fresh process: print the median region time at each size, as JSON."""
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
    print(json.dumps(out))


def benchmark_figures(path: str) -> dict[tuple[str, str], dict[int, float]]:
    """ns/op by (scenario, runtime) and N, read from the results file as plain JSON."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    figures: dict[tuple[str, str], dict[int, float]] = {}
    for bench in data.get("benchmarks", []):
        extra = bench.get("extra_info", {})
        if extra.get("scenario") in SCENARIOS and extra.get("runtime") in RUNTIMES:
            key = (extra["scenario"], extra["runtime"])
            figures.setdefault(key, {})[int(extra["n"])] = float(extra["ns_per_op"])
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?")
    parser.add_argument("--tolerance", type=float, default=0.10)
    parser.add_argument("--processes", type=int, default=5)
    parser.add_argument("--child", nargs=3, metavar=("RUNTIME", "SCENARIO", "SIZES"))
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], [int(s) for s in args.child[2].split(",")])
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
    # Fresh processes, runtimes interleaved in alternating order, as the question is the same.
    samples: dict[tuple[str, str], list[dict[int, float]]] = {k: [] for k in pairs}
    keys = sorted(pairs)
    for rotation in range(args.processes):
        for key in keys if rotation % 2 == 0 else reversed(keys):
            scenario, runtime = key
            sizes = ",".join(map(str, pairs[key]))
            proc = subprocess.run(
                [sys.executable, __file__, "--child", runtime, scenario, sizes],
                capture_output=True,
                text=True,
            )
            if proc.returncode:
                last = (proc.stderr.strip().splitlines() or ["?"])[-1]
                print(f"crosscheck: {scenario} on {runtime} could not run: {last}")
                break
            samples[key].append({int(n): t for n, t in json.loads(proc.stdout).items()})
    status = 0
    head = ("scenario", "runtime", "N1 -> N2", "anybench", "by hand", "ratio")
    print(f"{head[0]:<14} {head[1]:<8} {head[2]:>16} {head[3]:>10} {head[4]:>10} {head[5]:>7}")
    for key in keys:
        if not samples[key]:
            continue
        scenario, runtime = key
        n1, n2 = pairs[key]
        bench = (figures[key][n2] * n2 - figures[key][n1] * n1) / (n2 - n1)
        t1 = statistics.median(s[n1] for s in samples[key])
        t2 = statistics.median(s[n2] for s in samples[key])
        by_hand = (t2 - t1) / (n2 - n1)
        ratio = bench / by_hand
        verdict = "ok" if abs(ratio - 1) <= args.tolerance else "DISAGREE"
        status |= verdict != "ok"
        print(
            f"{scenario:<14} {runtime:<8} {f'{n1:,} -> {n2:,}':>16} {bench:>7.0f} ns "
            f"{by_hand:>7.0f} ns {ratio:>6.2f}x {verdict}"
        )
    print(
        f"(marginal ns per operation between the two N, (T(N2) - T(N1)) / (N2 - N1); by hand: "
        f"median over {args.processes} fresh processes of {REPEATS} regions; tolerance "
        f"±{args.tolerance:.0%})"
    )
    return status


if __name__ == "__main__":
    raise SystemExit(main())
