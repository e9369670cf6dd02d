"""An independent cross-check of the instructions per operation of ``spawn`` in a counts file.

Usage: python benchmarks/crosscheck_counts.py COUNTS.json [--tolerance 0.02] [--n N1,N2]

The measurement by hand shares no code with anybench: a plain script (below, run as a file of
its own, importing anyio and nothing of anybench) spawns N tasks in an anyio task group the way
``scenarios/spawn.py`` does, under ``valgrind --tool=cachegrind --cache-sim=no`` (another valgrind
tool than anybench's callgrind, and no client requests), at two N. Instructions per task are the
differential ``(Ir(N2) - Ir(N1)) / (N2 - N1)``: the interpreter's start-up, the imports and the
task group's fixed costs cancel. N2 is the counts file's N (its largest for spawn) and N1 = 10:
the differential is then the average cost per task over as many live tasks as anybench's
region held. (Between two N around it, 500 and 1,500, it is the *marginal* cost at N=1,000,
which is higher than the average where the collector's passes grow with the live tasks: trio's
differential came out 2.2% above anybench's average that way, asyncio's 0.7%.)

The by-hand script does per task what the scenario does in its region and nothing else: the
per-task lists are made before the spawning (the scenario makes them outside its region too,
and at one store per element they are 0.01% of a task). It follows the harness's collector
policy, in its own code, since collections are part of the work per task: what the process
holds before the spawning is frozen out of the collector's reach (``gc.freeze()``), so that a
collection walks the tasks' objects only. trio's scheduler shuffles each batch with a
module-level ``random.Random``; the script seeds it, as anybench does.

The harness's region differs in one known way: it runs inside ``anyio.fail_after(deadline)``
(the round's deadline), a cancel scope with a deadline around the task group; the script does
the same, with a deadline far away. Exit 1 if the two differ by more than the tolerance.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

RUNTIMES = ("asyncio", "trio")

BY_HAND = """
import gc, sys
import anyio

backend, n = sys.argv[1], int(sys.argv[2])


async def spawn(n):
    stamps = False
    spawned = [0] * n
    started = [0] * n
    runs = [0] * n

    async def task(i):
        if stamps:
            started[i] = 1
        runs[i] += 1

    with anyio.fail_after(3600):
        async with anyio.create_task_group() as tg:
            for i in range(n):
                if stamps:
                    spawned[i] = 1
                tg.start_soon(task, i)
    assert all(r == 1 for r in runs[:1])


def seed():
    run = sys.modules.get("trio._core._run")
    if run is not None:
        run._r.seed(0)


seed()
anyio.run(spawn, 100, backend=backend)  # warm: imports, caches, specialised code
gc.collect()
gc.freeze()
seed()
anyio.run(spawn, n, backend=backend)
"""


def instructions(script: Path, backend: str, n: int, valgrind: str) -> int:
    """Ir of one whole process spawning *n* tasks on *backend*, under cachegrind."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cachegrind.out"
        setarch = shutil.which("setarch")
        prefix = [setarch, platform.machine(), "-R"] if setarch else []
        proc = subprocess.run(
            [
                *prefix,
                valgrind,
                "-q",
                "--tool=cachegrind",
                "--cache-sim=no",
                f"--cachegrind-out-file={out}",
                sys.executable,
                str(script),
                backend,
                str(n),
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        if proc.returncode != 0:
            raise SystemExit(f"the by-hand run failed on {backend} at N={n}:\n{proc.stderr}")
        match = re.search(r"^summary:\s+(\d+)", out.read_text(), re.MULTILINE)
        if match is None:
            raise SystemExit(f"cachegrind wrote no summary for {backend} at N={n}")
        return int(match.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("counts", metavar="COUNTS.json")
    parser.add_argument("--tolerance", type=float, default=0.02)
    parser.add_argument(
        "--n", default="", help="the two N of the differential (default: 10 and the file's N)"
    )
    args = parser.parse_args()
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("crosscheck_counts: needs valgrind (sudo apt-get install valgrind)", file=sys.stderr)
        return 2
    data = json.loads(Path(args.counts).read_text())
    spawns = [b["scale"] for b in data["benchmarks"] if b["scenario"] == "spawn"]
    if not spawns:
        print(f"crosscheck_counts: {args.counts} has no spawn benchmark", file=sys.stderr)
        return 2
    n1, n2 = (int(v) for v in args.n.split(",")) if args.n else (10, max(spawns))
    wanted = {
        b["runtime"]: b
        for b in data["benchmarks"]
        if b["scenario"] == "spawn" and b["runtime"] in RUNTIMES
    }
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "spawn_by_hand.py"
        script.write_text(BY_HAND)
        print(f"spawn, instructions per task; by hand: cachegrind, (Ir(N={n2:,}) - Ir(N={n1:,}))")
        print(f"/ {n2 - n1:,}; anybench: callgrind around the region, at N={n2:,}")
        for runtime in RUNTIMES:
            bench = next(
                (
                    b
                    for b in data["benchmarks"]
                    if b["scenario"] == "spawn" and b["runtime"] == runtime and b["scale"] == n2
                ),
                None,
            )
            if bench is None or runtime not in wanted:
                print(f"  {runtime}: not in {args.counts}; skipped")
                continue
            low = instructions(script, runtime, n1, valgrind)
            high = instructions(script, runtime, n2, valgrind)
            by_hand = (high - low) / (n2 - n1)
            anybench = bench["instructions_per_op"]
            gap = anybench / by_hand - 1
            worst = max(worst, abs(gap))
            print(
                f"  {runtime:<8} by hand {by_hand:>12,.0f}   anybench (N={bench['scale']:,}) "
                f"{anybench:>12,.0f}   difference {gap:+.2%}"
            )
    verdict = "agree" if worst <= args.tolerance else "DISAGREE"
    print(f"{verdict}: the largest difference is {worst:.2%} (tolerance {args.tolerance:.0%})")
    return 0 if worst <= args.tolerance else 1


if __name__ == "__main__":
    raise SystemExit(main())
