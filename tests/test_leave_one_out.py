"""``anybench combine --leave-one-out``: each run left out in turn against the combined figure of
the others; on synthetic runs with a known spread between runs, and the one-line errors."""

from __future__ import annotations

import math
import random
import re
from pathlib import Path
from typing import Any

import pytest

from anybench._cli import main
from anybench._combine import REQUIRED_SHARE, CombineError, _share, leave_one_out
from anybench._results import Run, load

from .test_agree import PROCESSES, SCALES, SCENARIOS, TRUE, run_data, write

#: The spread between runs, log sd, drawn afresh for every cell of every run: far wider than a
#: run's own interval (its processes' ratios wobble by 2%).
BETWEEN_RUNS = 0.15
CELLS = [(s, n, rt) for s in SCENARIOS for n in SCALES for rt in TRUE if rt != "asyncio"]


def _drawn_runs(tmp_path: Path, family: int, runs: int = 4) -> list[Run]:
    """*runs* runs of the same code, each cell moved by its own run-level effect."""
    rng = random.Random(family)
    out = []
    for i in range(runs):
        shift = {cell: math.exp(rng.gauss(0, BETWEEN_RUNS)) for cell in CELLS}
        data = run_data(
            1000 * family + i, shift=shift, when=f"2026-11-25T{8 + 2 * i:02d}:00:00+00:00"
        )
        out.append(load(write(tmp_path, f"f{family}-run{i}.json", data)))
    return out


def test_the_others_hold_a_left_out_run_as_often_as_their_level_says(tmp_path: Path) -> None:
    inside = pooled = checked = 0
    for family in range(10):
        for left in leave_one_out(_drawn_runs(tmp_path, family)):
            assert left.unchecked == 0
            assert len(left.others) == 3
            checked += len(left.cells)
            inside += sum(c.inside for c in left.cells)
            pooled += sum(c.inside_pooled for c in left.cells)
    assert checked == 10 * 4 * len(CELLS)
    # The prediction interval over the runs is a 95% one: about that share lands inside...
    assert 0.90 <= inside / checked <= 0.99
    # ... where the processes of the others pooled, the run level ignored, claim an interval of
    # a few percent that the next run misses most of the time.
    assert pooled / checked < 0.35


def test_a_cell_that_moved_is_named_first_with_how_far(tmp_path: Path) -> None:
    runs = _drawn_runs(tmp_path, family=3, runs=3)
    moved = run_data(77, shift={("chain", 1000, "trio"): 3.0}, when="2026-11-25T20:00:00+00:00")
    runs.append(load(write(tmp_path, "moved.json", moved)))
    left = leave_one_out(runs)[-1]
    worst = left.misses()[0]
    assert worst.cell == ("chain", 1000, "trio", "")
    assert worst.miss > 1.2  # 3x the true ratio: above even the wide interval of three runs
    assert worst.label == "chain N=1,000 trio"


def test_the_command_prints_a_verdict_per_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = _drawn_runs(tmp_path, family=5)
    moved = run_data(
        78,
        shift={cell: 2.0 for cell in CELLS},
        when="2026-11-25T23:00:00+00:00",
    )
    files = [str(run.path) for run in runs] + [str(write(tmp_path, "moved.json", moved))]
    assert main(["combine", "--leave-one-out", *files]) == 1
    out = capsys.readouterr().out
    assert "run level ignored" in out
    lines = out.splitlines()
    verdicts = [line for line in lines if f"(needed {REQUIRED_SHARE:.0%})" in line]
    assert len(verdicts) == 5
    assert re.fullmatch(r"moved: \d+% of 12 cells inside \(needed 90%\): DISAGREES", verdicts[-1])
    assert any(re.fullmatch(r"moved: \d+ cells outside, farthest first:", line) for line in lines)
    # Without the moved run, the four agree and the command says so with its status.
    assert main(["combine", "--leave-one-out", *files[:4]]) == 0
    assert "DISAGREES" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("share", "said"),
    [
        (0.896, "89.6%"),
        (0.8996, "89.96%"),
        (0.8999999, "89.999%"),
        (0.9, "90%"),
        (0.904, "90%"),
        (0.5, "50%"),
        (1, "100%"),
    ],
)
def test_a_share_is_never_said_on_the_other_side_of_the_goal(share: float, said: str) -> None:
    """129 of 144 cells (89.6%) once printed as "90% ... (needed 90%): DISAGREES"."""
    assert _share(share) == said


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    return err


def test_fewer_than_three_runs_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = [str(run.path) for run in _drawn_runs(tmp_path, family=1, runs=2)]
    assert main(["combine", "--leave-one-out", *files]) == 2
    err = _one_line_error(capsys)
    assert err.startswith("anybench: leave-one-out needs three or more results files, not 2;")
    with pytest.raises(CombineError, match="three or more"):
        leave_one_out([load(files[0])])


def test_runs_of_different_code_are_refused_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = _drawn_runs(tmp_path, family=2, runs=2)
    newer = run_data(9)
    newer["machine_info"]["anybench"]["libraries"] = {"anyio": "4.16.0"}
    files = [str(run.path) for run in runs] + [str(write(tmp_path, "newer.json", newer))]
    assert main(["combine", "--leave-one-out", *files]) == 2
    err = _one_line_error(capsys)
    assert err.startswith("anybench: the runs are not of the same code and software (anyio")
    assert main(["combine", "--leave-one-out", "--force", *files]) in (0, 1)
    assert "left out" in capsys.readouterr().out


def test_runs_with_no_cell_in_common_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = []
    for i in range(3):
        data = run_data(i)
        data["benchmarks"] = [
            b for b in data["benchmarks"] if b["extra_info"]["runtime"] != "asyncio"
        ]
        files.append(str(write(tmp_path, f"nobase{i}.json", data)))
    assert main(["combine", "--leave-one-out", *files]) == 2
    assert _one_line_error(capsys).startswith("anybench: no ratio cell is in three of the runs")


def _busy(share: float) -> dict[str, Any]:
    wall = 1_000_000_000
    return {
        "wall_ns": wall,
        "cpu_ns": int(wall * (1 - share)),
        "runqueue_ns": int(wall * share),
        "steal_share": 0.0,
        "pressure_share": share,
    }


def test_the_readme_table_has_the_runs_hours_spread_and_how_busy(tmp_path: Path) -> None:
    files = []
    for i, share in enumerate((0.01, 0.02, 0.30)):
        # written at the end of a run that started ten minutes before
        data = run_data(i, when=f"2026-11-25T{9 + 3 * i:02d}:15:00+00:00")
        data["anybench_run"] = {"started": f"2026-11-25T{9 + 3 * i:02d}:05:00+00:00"}
        for bench in data["benchmarks"]:
            bench["extra_info"]["process_busy"] = [_busy(share)] * PROCESSES
        files.append(str(write(tmp_path, f"run{i}.json", data)))
    out = tmp_path / "reference.md"
    assert main(["combine", *files, "--out", str(out)]) == 0
    page = out.read_text().splitlines()
    assert page[0] == "| scenario | N | asyncio | uvloop | trio |"
    row = next(line for line in page if line.startswith("| `spawn` | 1,000 |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[2].endswith(")")  # the baseline's ns/op, with the runs' lowest and highest
    assert cells[3].startswith("0.60x [")
    assert "(runs 0." in cells[3]
    assert cells[4].startswith("2.00x [") or cells[4].startswith("1.99x [")
    text = "\n".join(page)
    assert "3 runs of the same code, started from 2026-11-25 09:05 to 2026-11-25 15:05" in text
    footer = [line for line in page if line.startswith("- `run")]
    assert len(footer) == 3
    assert footer[0].startswith("- `run0.json`, started 2026-11-25 09:05: how busy:")
    assert "0 of" in footer[0]
    processes = len(SCENARIOS) * len(SCALES) * PROCESSES
    assert f"{processes} of {processes} processes busy" in footer[2]


def test_runs_that_do_not_say_their_start_are_placed_by_their_files_date(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file from before runs said their start has only its own date, written at the run's
    end: the tables say so, and the hours between runs are taken end to end for every run."""
    files = []
    for i in range(3):
        data = run_data(i, when=f"2026-11-25T{9 + 3 * i:02d}:15:00+00:00")
        if i:
            data["anybench_run"] = {"started": f"2026-11-25T{9 + 3 * i:02d}:05:00+00:00"}
        files.append(str(write(tmp_path, f"run{i}.json", data)))
    main(["combine", "--leave-one-out", *files])
    rows = capsys.readouterr().out.splitlines()[2:5]
    assert [row.split()[1:4] for row in rows] == [
        ["file", "dated", "2026-11-25"],
        ["started", "2026-11-25", "12:05"],
        ["started", "2026-11-25", "15:05"],
    ]
    out = tmp_path / "reference.md"
    assert main(["combine", *files, "--out", str(out)]) == 0
    text = out.read_text()
    assert "their files dated from 2026-11-25 09:15 to 2026-11-25 15:15 (6.0 hours)" in text
    assert "- `run0.json`, file dated 2026-11-25 09:15: " in text


def test_combine_marks_a_cell_made_with_a_mechanism_of_its_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """In the terminal table as in the Markdown: a cell any run wrote a caveat for carries a
    mark numbered by its caveat (†, ††), and each caveat is said under the table in its own
    words, as in the report and the terminal table."""
    caveat = {
        ("chain", "1,000"): "trio queues it itself",
        ("chain", "10"): "trio queues it *otherwise*",
    }
    files = []
    for i in range(3):
        data = run_data(i, when=f"2026-11-25T{9 + i:02d}:00:00+00:00")
        if i == 2:
            for bench in data["benchmarks"]:
                info = bench["extra_info"]
                if info["runtime"] == "trio" and (info["scenario"], f"{info['scale']:,}") in caveat:
                    info["caveat"] = caveat[info["scenario"], f"{info['scale']:,}"]
        files.append(str(write(tmp_path, f"run{i}.json", data)))
    assert main(["combine", *files]) == 0
    lines = capsys.readouterr().out.splitlines()
    said = dict(line.split(" ", 1) for line in lines if line.startswith("†"))
    assert sorted(said) == ["†", "††"]
    marked = {}
    for line in lines:
        words = line.split()
        if "†" in line and not line.startswith("†"):
            assert words[2] == "trio"
            assert words[3].endswith("x")  # the mark follows the ratio
            marked[words[0], words[1]] = said[words[4]]
    assert marked == {cell: f"{note}." for cell, note in caveat.items()}

    out = tmp_path / "reference.md"
    assert main(["combine", *files, "--out", str(out)]) == 0
    text = out.read_text()
    said_md = dict(line.split(" ", 1) for line in text.splitlines() if line.startswith("†"))
    marked_md = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        found = re.fullmatch(r"[0-9.]+x (†+) .*", cells[-1])
        if found:
            marked_md[cells[0].strip("`"), cells[1]] = said_md[found[1]]
    assert marked_md == {
        cell: f"{note}.".replace("*otherwise*", r"\*otherwise\*") for cell, note in caveat.items()
    }
