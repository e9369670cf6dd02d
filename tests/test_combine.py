"""``anybench combine``: several runs, one figure, the run a level of its own; on synthetic runs
with a known spread between runs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from anybench._cli import main
from anybench._combine import CombineError, combine, combine_cell
from anybench._files import create_text
from anybench._results import Run, load, software_differs

from .test_agree import SCALES, SCENARIOS, TRUE, run_data, write

#: Each run's level, in log units of its spread: fixed, so that the runs' spread is known.
LEVELS = (-1.0, -0.5, 0.0, 0.5, 1.0)


def _runs(tmp_path: Path, spread: float, *, seeds: tuple[int, ...] = (1, 2, 3, 4, 5)) -> list[Run]:
    """Runs of the same code whose ratios move together, run to run, by *spread* (log sd)."""
    return [
        load(
            write(
                tmp_path,
                f"run{seed}-{spread}.json",
                run_data(
                    seed,
                    run_level=math.exp(spread * level / 0.79),  # LEVELS' sd is 0.79
                    when=f"2026-11-25T{10 + 2 * i:02d}:00:00+00:00",
                ),
            )
        )
        for i, (seed, level) in enumerate(zip(seeds, LEVELS, strict=False))
    ]


def test_the_interval_covers_the_spread_between_runs(tmp_path: Path) -> None:
    runs = _runs(tmp_path, spread=0.2)
    combined = combine(runs)
    assert len(combined) == len(SCENARIOS) * len(SCALES) * 2
    for cell in combined:
        true = TRUE[cell.cell[2]]
        assert cell.runs == 5
        # The runs' own figures lie far apart (each run's own interval is a few %)...
        low, high = cell.spread
        assert high / low > 1.5
        # ... and the combined interval covers the true ratio, and another run likely lands
        # inside the prediction interval: it covers every run's own figure here.
        assert cell.low < true < cell.high
        assert cell.next_low is not None
        assert cell.next_high is not None
        assert cell.next_low < low
        assert high < cell.next_high


def test_the_interval_widens_with_the_spread_between_runs(tmp_path: Path) -> None:
    widths = []
    for spread in (0.01, 0.1, 0.3):
        cell = next(
            c for c in combine(_runs(tmp_path, spread)) if c.cell[:3] == ("spawn", 10, "trio")
        )
        widths.append(math.log(cell.high / cell.low))
    assert widths[0] < widths[1] < widths[2]
    # Between-run spread dominates: width about in proportion to it (t(4) * 2 * sd / sqrt(5)).
    assert widths[2] == pytest.approx(2 * 2.776 * 0.3 / math.sqrt(5), rel=0.1)


def test_one_run_of_a_cell_keeps_its_own_interval() -> None:
    one = combine_cell(("spawn", 10, "trio", ""), [(2.0, 1.9, 2.1)])
    assert (one.ratio, one.low, one.high, one.next_low) == (2.0, 1.9, 2.1, None)
    two = combine_cell(("spawn", 10, "trio", ""), [(2.0, 1.99, 2.01), (2.2, 2.19, 2.21)])
    assert two.ratio == pytest.approx(math.sqrt(2.0 * 2.2))
    assert two.low < 2.0
    assert two.high > 2.2  # df = 1: wide, as two runs deserve


def test_runs_of_different_software_are_refused_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    newer = run_data(2)
    newer["machine_info"]["anybench"]["libraries"] = {"anyio": "4.16.0"}
    a = write(tmp_path, "a.json", run_data(1))
    b = write(tmp_path, "b.json", newer)
    assert software_differs([load(a), load(b)]) == ["anyio None in a, 4.16.0 in b"]
    assert main(["combine", str(a), str(b)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("anybench: the runs are not of the same code and software (anyio")
    assert err.rstrip().endswith("pass --force")
    assert err.count("\n") == 1
    assert main(["combine", str(a), str(b), "--force"]) == 0
    with pytest.raises(CombineError, match="two or more"):
        combine([load(a)])


def test_combine_prints_a_table_and_writes_markdown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = [str(run.path) for run in _runs(tmp_path, spread=0.1, seeds=(1, 2, 3))]
    out = tmp_path / "reference.md"
    assert main(["combine", *files, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert (
        "3 runs of the same code, their files dated from 2026-11-25 10:00 to 2026-11-25 14:00 "
        "(4.0 hours)" in printed
    )
    assert "runs' own figures" in printed
    page = out.read_text()
    assert page.startswith("| scenario | N | asyncio | uvloop | trio |")
    assert sum(line.startswith("| `spawn` | 10 | ") for line in page.splitlines()) == 1
    # An existing file is never replaced, not even one that appears while combine works.
    before = page
    assert main(["combine", *files, "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err
    assert out.read_text() == before
    with pytest.raises(FileExistsError):
        create_text(out, "another table")
    assert out.read_text() == before
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # nothing staged left


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (["--leave-one-out", "--out", "check.md"], "--leave-one-out only checks it"),
        (["--out", ""], "--out is empty"),
    ],
)
def test_an_out_that_would_be_ignored_is_refused(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    options: list[str],
    said: str,
) -> None:
    """--out beside --leave-one-out (which writes no table) and an empty --out once wrote
    nothing and said nothing."""
    monkeypatch.chdir(tmp_path)
    files = [str(run.path) for run in _runs(tmp_path, spread=0.1, seeds=(1, 2, 3))]
    before = sorted(tmp_path.iterdir())
    assert main(["combine", *files, *options]) == 2
    captured = capsys.readouterr()
    assert said in captured.err
    assert captured.err.count("\n") == 1
    assert captured.out == ""
    assert sorted(tmp_path.iterdir()) == before
