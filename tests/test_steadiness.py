"""benchmarks/steadiness.py: what it prints, and what its figures mean on known rates. It
shares no code with anybench; nothing here asserts how fast anything ran."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from types import ModuleType

import pytest

from .conftest import BENCHMARKS, load_script

SCRIPT = BENCHMARKS / "steadiness.py"


@pytest.fixture(scope="module")
def steadiness() -> ModuleType:
    return load_script("steadiness")


def test_spread_is_the_sd_of_the_logs_and_correlation_follows_them(
    steadiness: ModuleType,
) -> None:
    assert steadiness.spread([100.0, 100.0, 100.0]) == 0.0
    # rates a factor e apart, alternating: the logs are 0, 1, 0, 1
    rates = [1.0, math.e, 1.0, math.e]
    assert steadiness.spread(rates) == pytest.approx(math.sqrt(1 / 3))
    assert steadiness.correlation(rates, [2 * r for r in rates]) == pytest.approx(1.0)
    assert steadiness.correlation(rates, [1 / r for r in rates]) == pytest.approx(-1.0)
    assert math.isnan(steadiness.correlation(rates, [5.0] * 4))


def test_the_walk_visits_every_cell_in_turn(steadiness: ModuleType) -> None:
    walk = steadiness.Walk(1)
    assert len(walk.order) == len(walk.cells) == 2**20 // 16  # 1 MB in all, 8 bytes an entry
    assert sorted(walk.order) == list(range(len(walk.order)))  # every cell, once a lap
    assert list(walk.order[:20]) != list(range(20))  # in a random order
    walk(200_000)
    visits = sum(walk.cells)
    assert visits == walk.at > 0
    assert all(walk.cells[i] == 1 for i in walk.order[:visits])


def test_a_run_prints_both_lines() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--seconds", "0.05", "--window-ms", "1", "--walk-mb", "1"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    first, second = proc.stdout.splitlines()
    assert "windows of 1 ms each: compute loop ±" in first
    assert "a ms), 1 MB walk ±" in first
    assert "of a CPU" in first
    assert second.startswith("clock gaps above 20 µs while spinning: ")


@pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="pins a process to each of two CPUs or more (Linux)",
)
def test_side_by_side_prints_each_cpu_and_how_they_move_together() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--side-by-side", "--seconds", "0.2", "--window-ms", "5"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    first, *pairs = proc.stdout.splitlines()
    cpus = sorted(os.sched_getaffinity(0))
    assert "windows of 5 ms on every CPU at once: CPU " in first
    assert first.count(" ±") == len(cpus)
    assert len(pairs) == len(cpus) * (len(cpus) - 1) // 2
    assert pairs[0].startswith(f"CPU {cpus[0]} and CPU {cpus[1]}: correlated ")
    assert "window by window" in pairs[0]
    assert "over blocks of ten; their ratio ±" in pairs[0]


@pytest.mark.parametrize("bad", [["--seconds", "0"], ["--seconds", "1e-10"], ["--walk-mb", "0"]])
def test_a_bad_value_is_one_line(bad: list[str]) -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), *bad], capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "steadiness: --seconds and --window-ms must be at least 0.01, --walk-mb at least 1"
    ]
