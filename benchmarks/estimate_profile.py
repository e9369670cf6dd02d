"""How long a profile takes under the current method, estimated before it runs (a dry run).

Usage: python benchmarks/estimate_profile.py [--profile full] [--reference RESULTS.json]

Nothing is measured: the matrix the profile gives every scenario of ``scenarios/`` (its scales,
capped at the scenario's MAX_N; the runtimes of the reference run) is costed with the reference
run's ns/op, extrapolated past its largest N by its own local exponent, and the worker's plan as
``anybench._worker`` makes it (passes per round, rounds per process from the time budget,
warm-ups, latency rounds, the memory round at the largest N) with per-process overheads
calibrated on the reference run's own worker times (``measure_s``). Every benchmark is costed at
the profile's ``max_processes``: on this machine a benchmark's ±2% precision is almost never met
first (every benchmark of the reference run took them all). Prints the matrix, group by group,
the slowest first, and the total.
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "results" / "20261202T014147_vm_cpython3.11.json"

#: A fresh worker's start-up: the interpreter, its imports, the scenario's (about 0.3 s here).
START_S = 0.35
#: A round's wall time over its region: set-up, the loop's start and teardown, the collection
#: before it. Calibrated on the reference run (its summed measure_s against this model's).
ROUND_OVER_REGION = 1.6
#: A round's fixed cost beyond its region (a fresh event loop), in seconds.
ROUND_FIXED_S = 0.004
#: A latency round stamps every operation; a memory round runs under tracemalloc.
STAMPED = 1.15
TRACED = 3.0
TARGET_REGION_S = 0.002
WARMUP_MAX_N = 1_000


@dataclass(frozen=True)
class Group:
    """One (scenario, scale) of the matrix and what a process of it costs."""

    scenario: str
    axis: str
    scale: int
    runtimes: tuple[str, ...]
    first_s: float
    later_s: float
    rounds: int
    processes: int

    @property
    def total_s(self) -> float:
        return self.first_s + (self.processes - 1) * self.later_s


def _reference(path: Path) -> dict[tuple[str, str], dict[int, tuple[float, float]]]:
    """(scenario, runtime) -> scale -> (ns/op, operations per N) from a results file."""
    from anybench._results import load

    run = load(path)
    found: dict[tuple[str, str], dict[int, tuple[float, float]]] = {}
    for record in run.records:
        per_scale = record.ops_per_round / max(record.n, 1) if record.axis == "n" else 0.0
        found.setdefault((record.scenario, record.runtime), {})[record.n] = (
            record.ns_per_op,
            per_scale,
        )
    return found


def ns_per_op_at(figures: dict[int, tuple[float, float]], scale: int) -> float:
    """ns/op at *scale*: measured, or extrapolated from the two largest measured scales by
    their local exponent (clamped to 0..1: never cheaper per operation at scale, never worse
    than linear), or from the nearest smaller one."""
    if scale in figures:
        return figures[scale][0]
    known = sorted(figures)
    below = [s for s in known if s < scale]
    if len(below) >= 2 and below[-2] > 0:
        (s1, (c1, _)), (s2, (c2, _)) = [(s, figures[s]) for s in below[-2:]]
        exponent = min(1.0, max(0.0, math.log(c2 / c1) / math.log(s2 / s1)))
        return c2 * (scale / s2) ** exponent
    if below:
        return figures[below[-1]][0]
    return figures[known[0]][0]


def _rounds(region_s: list[float], wall_s: list[float], budget: object) -> int:
    """Throughput rounds a process, as ``anybench._worker.rounds_for`` plans them."""
    target_ops = budget.target_ops  # type: ignore[attr-defined]
    processes = budget.processes  # type: ignore[attr-defined]
    rotation_s = sum(wall_s)
    allowed_s = budget.time_budget_s * len(wall_s) / processes  # type: ignore[attr-defined]
    wanted = max(math.ceil(target_ops / max(ops, 1) / processes) for ops in region_s)
    wanted = min(wanted, math.ceil(allowed_s / max(rotation_s, 1e-9)))
    least = budget.min_rounds if rotation_s * budget.min_rounds <= allowed_s else 1  # type: ignore[attr-defined]
    return int(max(least, min(budget.max_rounds, wanted)))  # type: ignore[attr-defined]


def estimate(profile_name: str, reference: Path = REFERENCE) -> list[Group]:
    """Every group of *profile_name*'s matrix over the scenarios in ``scenarios/``, costed."""
    from anybench._sweep import AXES, profile

    chosen = profile(profile_name)
    budget = chosen.budget
    figures = _reference(reference)
    sys.path.insert(0, str(ROOT))
    groups = []
    for name in sorted({scenario for scenario, _ in figures}):
        module = importlib.import_module(f"scenarios.{name}")
        axis = getattr(module, "AXIS", "n")
        max_n = getattr(module, "MAX_N", None)
        runtimes = tuple(rt for scenario, rt in figures if scenario == name)
        scales = [v for v in chosen.values(AXES[axis]) if max_n is None or v <= max_n]
        largest = max(scales)
        for scale in scales:
            regions, walls, warm = [], [], 0.0
            ops_total = []
            for rt in runtimes:
                own = figures[(name, rt)]
                per_op_s = ns_per_op_at(own, scale) / 1e9
                # Operations per N, from the largest scale (one pass a round there).
                per_n = own[max(own)][1]
                ops = scale * per_n if axis == "n" else getattr(module, "SAMPLES", 500)
                passes = max(1, math.ceil(TARGET_REGION_S / max(per_op_s * ops, 1e-12)))
                region = per_op_s * ops * passes
                wall = ROUND_OVER_REGION * region + ROUND_FIXED_S
                regions.append(region)
                walls.append(wall)
                ops_total.append(ops * passes)
                small = ROUND_OVER_REGION * per_op_s * min(ops, WARMUP_MAX_N) + ROUND_FIXED_S
                near = per_op_s * ops < 4 * TARGET_REGION_S
                warm += 2 * small + (wall if passes > 1 or near else 0.0)
            rounds = _rounds([float(o) for o in ops_total], walls, budget)
            rotation = sum(walls)
            stamped = scale <= (budget.latency_max_n or scale)
            latency = budget.latency_rounds * rotation * STAMPED if stamped else 0.0
            memory = (
                TRACED * sum(w * min(1.0, (budget.memory_max_n or scale) / scale) for w in walls)
                if scale == largest
                else 0.0
            )
            later = START_S + warm + rounds * rotation
            first = later + latency + memory
            if budget.latency_every_process:
                later += latency
            groups.append(
                Group(name, axis, scale, runtimes, first, later, rounds, budget.max_processes)
            )
    return groups


def total_s(groups: Iterable[Group]) -> float:
    return sum(group.total_s for group in groups)


def format_estimate(profile_name: str, groups: list[Group], *, top: int = 15) -> str:
    from anybench._sweep import scale_text

    lines = [
        f"profile {profile_name!r}: {len(groups)} groups (scenario x scale), "
        f"{sum(len(g.runtimes) for g in groups)} benchmarks, "
        f"{sum(g.processes for g in groups)} worker processes",
        f"{'scenario':<24} {'scale':>12} {'rounds':>6} {'procs':>5} {'est.':>8}",
    ]
    for group in sorted(groups, key=lambda g: -g.total_s)[:top]:
        lines.append(
            f"{group.scenario:<24} {scale_text(group.axis, group.scale):>12} {group.rounds:>6} "
            f"{group.processes:>5} {group.total_s:>7.0f}s"
        )
    if len(groups) > top:
        rest = sorted(groups, key=lambda g: -g.total_s)[top:]
        lines.append(f"... and {len(rest)} more groups, {total_s(rest):.0f} s together")
    minutes = total_s(groups) / 60
    lines.append(
        f"estimated measuring time: {minutes:.0f} min (on the reference run's machine; the "
        "report, the table and the cross-check come after)"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="full")
    parser.add_argument("--reference", type=Path, default=REFERENCE)
    args = parser.parse_args(argv)
    print(format_estimate(args.profile, estimate(args.profile, args.reference)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
