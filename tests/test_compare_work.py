"""``anybench compare OLD NEW --work OLD_counts NEW_counts``: time's verdicts with the change in
instructions per operation beside them, and the rows where the two part.

Behaviour only, on synthetic runs and counts: which rows get a work column, what the parting
lines say, that the verdicts and the exit status stay time's, and that counts of other software
are refused in one line.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from anybench._cli import main
from anybench._compare import format_comparison, work_mismatch
from anybench._counts_results import CountsRun, write_counts
from anybench._results import Record, Run

from .test_agree import run_data, write
from .test_counts import _bench
from .test_counts import _run as _counts
from .test_pairing import _drifting, _record


def _timed(name: str, anyio: str, records: list[Record]) -> Run:
    return Run(
        Path(f"{name}.json"),
        records,
        {},
        {},
        "2026-01-01",
        {"run_id": "run-1", "libraries": {"anyio": anyio}},
    )


def _sides(
    change: float, scenario: str = "done_callback", runtime: str = "asyncio"
) -> tuple[Run, Run]:
    """An A/B of one benchmark (N = 100) whose new side is *change* times the old, paired by
    pass."""
    a, b = _drifting(seed=11, passes=8, change=change)
    passes = list(range(1, 9))
    kinds = {"scenario": scenario, "runtime": runtime}
    old = _timed("old", "4.13.0", [_record(a, passes, variant="a", **kinds)])
    new = _timed("new", "4.16.0", [_record(b, passes, variant="b", **kinds)])
    return old, new


def _work(
    instructions_old: int,
    instructions_new: int,
    scenario: str = "done_callback",
    runtime: str = "asyncio",
    **new_changes: Any,
) -> tuple[CountsRun, CountsRun]:
    def side(anyio: str, instructions: int, **changes: Any) -> CountsRun:
        bench = _bench(scenario, runtime, scale=100, ops=100, instructions=(instructions,) * 2)
        return _counts(bench, libraries={"anyio": anyio, "trio": "0.35.0"}, **changes)

    return side("4.13.0", instructions_old), side("4.16.0", instructions_new, **new_changes)


def _row(text: str, start: str = "done_callback N=100 asyncio") -> str:
    return next(line for line in text.splitlines() if line.startswith(start))


def _parted(text: str) -> str:
    return text.split("Where time and work part:")[1] if "Where time and work part:" in text else ""


def test_slower_time_with_the_same_work_is_said_to_part_and_stays_the_verdict() -> None:
    old, new = _sides(1.12)
    text, failed = format_comparison(old, new, 0.10, work=_work(1_000_000, 1_001_000))
    row = _row(text)
    assert " REGRESSION " in row
    assert row.endswith("work +0.1% same")
    parted = _parted(text)
    assert "done_callback N=100 asyncio: time +11.9% [" in parted
    assert "(REGRESSION), instructions +0.10% (the same within its ±1% floor)" in parted
    assert "the same work took another time: memory, cache, the kernel or waiting" in parted
    # time's verdicts, time's exit status: the same as without --work
    assert failed
    assert failed == format_comparison(old, new, 0.10)[1]


def test_work_that_moved_where_time_did_not_or_the_other_way_is_named() -> None:
    old, new = _sides(1.0)
    text, failed = format_comparison(old, new, 0.10, work=_work(1_000_000, 1_050_000))
    assert _row(text).endswith("work +5.0% more")
    assert "instructions +5.00% (more work): time's interval holds no change" in _parted(text)
    assert not failed  # work alone fails nothing: the verdicts are time's
    # Time slower, work less: opposite ways.
    old, new = _sides(1.12)
    text, _ = format_comparison(old, new, 0.10, work=_work(1_000_000, 950_000))
    assert _row(text).endswith("work -5.0% less")
    assert "(less work): time and work moved opposite ways" in _parted(text)


def test_time_and_work_that_move_alike_do_not_part_whatever_their_sizes() -> None:
    for time_change, instructions in ((1.30, 1_300_000), (1.30, 1_100_000), (1.0, 1_002_000)):
        old, new = _sides(time_change)
        text, _ = format_comparison(old, new, 0.10, work=_work(1_000_000, instructions))
        assert "work " in _row(text)
        assert "Where time and work part" not in text


def test_counts_that_are_not_deterministic_are_shown_and_never_said_to_part() -> None:
    old, new = _sides(1.12)
    work = _work(1_000_000, 1_000_000)
    shaky = _bench("done_callback", scale=100, ops=100, instructions=(1_000_000, 1_010_000))
    work = (work[0], dataclasses.replace(work[1], benchmarks=(shaky,)))
    text, _ = format_comparison(old, new, 0.10, work=work)
    assert _row(text).endswith("no verdict")
    assert "Where time and work part" not in text


def test_a_runtime_whose_work_depends_on_time_is_marked() -> None:
    old, new = _sides(1.12, runtime="rloop")
    text, _ = format_comparison(old, new, 0.10, work=_work(1_000_000, 1_000_000, runtime="rloop"))
    assert _row(text, "done_callback N=100 rloop").endswith("work +0.0% same \N{DOUBLE DAGGER}")
    assert "\N{DOUBLE DAGGER} work that depends on wall time" in text
    assert "done_callback N=100 rloop \N{DOUBLE DAGGER}: time" in _parted(text)
    old, new = _sides(1.12)
    text, _ = format_comparison(old, new, 0.10, work=_work(1_000_000, 1_000_000))
    assert "\N{DOUBLE DAGGER}" not in text


def test_a_row_without_counts_has_no_work_column_and_no_row_at_all_is_said() -> None:
    old, new = _sides(1.12)
    text, _ = format_comparison(old, new, 0.10, work=_work(1, 1, scenario="spawn"))
    assert "work " not in _row(text)
    assert "Where time and work part" not in text
    assert "work = new/old - 1 of instructions per operation" in text
    assert "WORK: no benchmark compared here is in both counts files" in text
    text, _ = format_comparison(old, new, 0.10, work=_work(1, 1))
    assert "WORK: no benchmark" not in text


def test_counts_of_different_builds_are_refused() -> None:
    old, new = _sides(1.0)
    why = work_mismatch(old, new, _work(1, 1, valgrind="3.22.0"))
    assert why == (
        "the two counts files were made on different builds (valgrind: 3.19.0 -> 3.22.0), so "
        "their instructions do not compare; count both sides on one"
    )


def test_counts_of_other_software_are_refused() -> None:
    old, new = _sides(1.0)
    work = _work(1_000_000, 1_000_000)
    assert work_mismatch(old, new, work) is None
    swapped = (work[1], work[0])
    why = work_mismatch(old, new, swapped)
    assert why is not None
    assert why.startswith("the old counts (")
    assert "anyio 4.13.0 in the time results, 4.16.0 in the counts" in why
    assert why.endswith("give --work the counts of each side's environment, old first")


def test_compare_on_the_command_line_takes_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = []
    for seed, anyio in ((1, "4.13.0"), (2, "4.16.0")):
        data = run_data(seed, shift={("spawn", 1000, "asyncio"): 1.5} if seed == 2 else None)
        data["machine_info"]["anybench"]["libraries"] = {"anyio": anyio}
        files.append(str(write(tmp_path, f"run{seed}.json", data)))
    work = []
    for k, anyio in enumerate(("4.13.0", "4.16.0")):
        side = _counts(_bench(), libraries={"anyio": anyio, "trio": "0.35.0"})
        work.append(str(write_counts(side, tmp_path / f"c{k}")))
    before = {path: Path(path).read_bytes() for path in files + work}
    status = main(["compare", *files, "--work", *work])
    out = capsys.readouterr().out
    assert status in (0, 1)
    assert _row(out, "spawn N=1,000 asyncio").endswith("work +0.0% same")
    assert "work " not in _row(out, "spawn N=1,000 trio")  # not counted
    # Swapped: one line, exit 2.
    assert main(["compare", *files, "--work", work[1], work[0]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "are not of the old run's software" in err
    # A results file where a counts file belongs, or a missing one: one line each.
    for bad in (files[0], str(tmp_path / "missing_counts.json")):
        assert main(["compare", *files, "--work", bad, work[1]]) == 2
        err = capsys.readouterr().err
        assert err.startswith("anybench: ")
        assert err.count("\n") == 1
    # --work beside two counts files: refused.
    assert main(["compare", *work, "--work", *work]) == 2
    assert "--work goes with two results files of times" in capsys.readouterr().err
    # Nothing written or changed.
    assert before == {path: Path(path).read_bytes() for path in files + work}
