"""benchmarks/estimate_profile.py: a profile's matrix and its time, costed from a reference run
without measuring; and the memory section gives the peak the memory round saw."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from anybench._report import Context, _memory
from anybench._results import load
from anybench._sweep import PROFILES

from .conftest import ROOT, load_script


@pytest.fixture(scope="module")
def estimate() -> ModuleType:
    return load_script("estimate_profile")


def test_full_reaches_a_million_and_stays_near_half_an_hour(estimate: ModuleType) -> None:
    groups = estimate.estimate("full")
    assert max(g.scale for g in groups if g.axis == "n") == 1_000_000
    # Scenarios that keep every task alive stop at their MAX_N.
    assert max(g.scale for g in groups if g.scenario == "spawn") == 100_000
    assert {g.processes for g in groups} == {PROFILES["full"].budget.max_processes}
    assert 20 * 60 < estimate.total_s(groups) < 36 * 60
    # The profiles keep their order of cost.
    assert estimate.total_s(estimate.estimate("quick")) < estimate.total_s(
        estimate.estimate("default")
    )


def test_scales_past_the_reference_are_extrapolated_by_their_exponent(
    estimate: ModuleType,
) -> None:
    flat = {1_000: (100.0, 1.0), 10_000: (100.0, 1.0)}
    growing = {1_000: (100.0, 1.0), 10_000: (200.0, 1.0)}
    falling = {1_000: (200.0, 1.0), 10_000: (100.0, 1.0)}
    assert estimate.ns_per_op_at(flat, 1_000_000) == pytest.approx(100.0)
    assert estimate.ns_per_op_at(growing, 100_000) == pytest.approx(400.0)
    assert estimate.ns_per_op_at(falling, 100_000) == pytest.approx(100.0)  # never cheaper


def test_the_dry_run_prints_the_matrix_and_the_total(
    estimate: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    assert estimate.main(["--profile", "full"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("profile 'full': ")
    assert "N=1,000,000" in out
    assert "estimated measuring time: " in out.splitlines()[-1]


def test_the_memory_section_gives_the_peak(tmp_path: Path) -> None:
    # The section alone, as the page is drawn from it: the whole report of the reference run
    # would draw its plots too (11 s).
    run = load(ROOT / "results" / "20261202T014147_vm_cpython3.11.json")
    section = "\n".join(_memory(Context.of([run], tmp_path)))
    assert section.startswith("## Memory per operation")
    assert " MiB" in section.split("\n\n")[1]
