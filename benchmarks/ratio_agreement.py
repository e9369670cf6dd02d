"""Do repeated runs agree on which runtime is faster?

Usage: python benchmarks/ratio_agreement.py RUN.json RUN.json RUN.json [--margin 0.10]

For every (scenario, N, runtime) the runs share, the ratio of its ns/op to asyncio's in the same
run. Two counts: of the cells whose ratio is beyond ±margin in every run, how many agree on the
faster side; and of the cells whose median ratio over the runs is beyond ±margin, how many have
every run on that side. Cells marked unstable (a region under 1 ms) are left out. It reads the
results files as plain JSON and prints the cells that disagree; exit 1 if any does.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys

Cell = tuple[str, int, str]  # (scenario, N, runtime)


def ns_per_op(path: str) -> dict[Cell, float]:
    """ns/op by cell, from a results file, without the unstable ones."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    cells = {}
    for bench in data.get("benchmarks", []):
        extra = bench.get("extra_info", {})
        if not extra.get("unstable") and not extra.get("variant"):
            scale = extra["scale"] if "scale" in extra else extra["n"]  # "n" before format 4
            cell = (extra["scenario"], int(scale), extra["runtime"])
            cells[cell] = float(extra["ns_per_op"])
    return cells


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", metavar="RUN.json")
    parser.add_argument("--margin", type=float, default=0.10)
    parser.add_argument("--baseline", default="asyncio")
    args = parser.parse_args()
    if len(args.runs) < 2:
        parser.error("give two or more results files")
    try:
        runs = [ns_per_op(path) for path in args.runs]
    except (OSError, ValueError, KeyError) as exc:
        print(f"ratio_agreement: cannot read the results: {exc}", file=sys.stderr)
        return 2
    shared = set.intersection(*(set(run) for run in runs))
    every = every_agree = median = median_agree = 0
    disagree = []
    for cell in sorted(shared):
        scenario, n, runtime = cell
        base = (scenario, n, args.baseline)
        if runtime == args.baseline or base not in shared:
            continue
        ratios = [run[cell] / run[base] for run in runs]
        if all(abs(r - 1) > args.margin for r in ratios):
            every += 1
            every_agree += len({r > 1 for r in ratios}) == 1
        middle = statistics.median(ratios)
        if abs(middle - 1) > args.margin:
            median += 1
            if all((r > 1) == (middle > 1) for r in ratios):
                median_agree += 1
            else:
                disagree.append((cell, ratios))
    print(
        f"cells beyond ±{args.margin:.0%} in every run: {every_agree}/{every} agree on which "
        "runtime is faster"
    )
    print(
        f"cells whose median ratio is beyond ±{args.margin:.0%}: {median_agree}/{median} have "
        "every run on that side"
    )
    for (scenario, n, runtime), ratios in disagree:
        shown = ", ".join(f"{r:.2f}x" for r in ratios)
        print(f"  {scenario} N={n:,} {runtime}: {shown}")
    return 0 if every_agree == every and median_agree == median else 1


if __name__ == "__main__":
    raise SystemExit(main())
