"""Outputs never touch inputs: what ``report`` and ``save`` refuse, and names made from data.

All on made-up results files (no benchmark runs). Every refusal is one line on stderr, a non-zero
exit status, and the file system exactly as it was.
"""

from __future__ import annotations

import copy
import errno
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from anybench._cli import main
from anybench._files import REPORT_MARKER, FileNames, safe_name

from .conftest import remeasured
from .test_results import RESULTS, _bench


def _latency_bench(scenario: str, runtime: str, n: int, ns_per_op: float) -> dict[str, Any]:
    bench = _bench(scenario, runtime, n, ns_per_op)
    low, high = 100.0, 300.0 + n
    bench["extra_info"]["latency_ns"] = {
        "wake": {
            "description": "trigger to callback",
            "count": 3,
            "min": low,
            "p50": 200.0,
            "p99": high - 1,
            "max": high,
            "mean": (low + 200 + high) / 3,
            "cdf": [[0.0, low], [50.0, 200.0], [100.0, high]],
        }
    }
    return bench


def _results(*scenarios: str) -> dict[str, Any]:
    """A results file with each scenario at two N on asyncio and trio, with a latency series."""
    data = copy.deepcopy(RESULTS)
    data["benchmarks"] = [
        _latency_bench(scenario, runtime, n, 1000.0 + n)
        for scenario in scenarios
        for runtime in ("asyncio", "trio")
        for n in (10, 100)
    ]
    return data


def _write(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def _snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under *root* with its bytes (None for a directory)."""
    return {
        str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes())
        for p in sorted(root.rglob("*"))
    }


def _one_line_error(capsys: pytest.CaptureFixture[str], start: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith(f"anybench: {start}"), err
    assert err.count("\n") == 1, err
    return err


@pytest.fixture
def good(tmp_path: Path) -> Path:
    return _write(tmp_path / "results" / "good.json", _results("spawn"))


def test_a_report_is_marked_with_the_files_it_wrote(
    good: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    assert main(["report", str(good), "--out", str(out)]) == 0
    page = (out / "index.md").read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page)
    assert set(links) == {
        "spawn-bars.png",
        "spawn-scaling.png",
        "spawn-wake-latency.png",
        "spawn-wake-cdf.png",
    }
    marker = json.loads((out / REPORT_MARKER).read_text())
    assert marker["format"] == 1
    assert marker["files"] == sorted(["index.md", *links])
    assert {p.name for p in out.iterdir()} == {"index.md", REPORT_MARKER, *links}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report", "results"], "staging left"


def test_force_replaces_a_report_anybench_wrote(
    good: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    assert main(["report", str(good), "--out", str(out)]) == 0
    (out / "index.md").write_text("edited")
    assert main(["report", str(good), "--out", str(out)]) == 1
    _one_line_error(capsys, f"{out} exists; pass --force")
    assert (out / "index.md").read_text() == "edited"
    assert main(["report", str(good), "--out", str(out), "--force"]) == 0
    assert (out / "index.md").read_text().startswith("# anybench report")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report", "results"]


def _refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], message: str
) -> None:
    """Run ``report ... --force``: one line matching *message*, exit 1, nothing changed."""
    before = _snapshot(tmp_path)
    assert main(["report", *args, "--force"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert re.search(message, err), err
    assert "Traceback" not in err
    assert _snapshot(tmp_path) == before


def test_force_never_replaces_an_input_file(
    good: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _refused(capsys, tmp_path, [str(good), "--out", str(good)], "is the input .*good.json")


def test_force_never_replaces_the_results_directory(
    good: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = _write(tmp_path / "results" / "other.json", _results("spawn"))
    _write(tmp_path / "results" / "notes.txt", "mine")
    results = tmp_path / "results"
    _refused(capsys, tmp_path, [str(good), "--out", str(results)], "holds the input")
    # Results files that are not inputs are protected as well, and so is the directory above.
    _refused(capsys, tmp_path, [str(other), "--out", str(tmp_path)], "holds the input")
    elsewhere = _write(tmp_path / "elsewhere" / "run.json", _results("spawn"))
    _refused(capsys, tmp_path, [str(elsewhere), "--out", str(results)], "holds results files")


def test_force_never_replaces_a_file_or_an_unmarked_directory(
    good: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(tmp_path / "page.md", "mine")
    _refused(capsys, tmp_path, [str(good), "--out", str(tmp_path / "page.md")], "is a file")
    _write(tmp_path / "mine" / "index.md", "# anybench report, but not written by it")
    _refused(
        capsys,
        tmp_path,
        [str(good), "--out", str(tmp_path / "mine")],
        f"no readable {REPORT_MARKER}",
    )
    # Without --force the answer is the same: suggesting --force would be wrong.
    assert main(["report", str(good), "--out", str(tmp_path / "mine")]) == 1
    assert "--force" not in capsys.readouterr().err


def test_force_never_removes_files_added_to_a_report(
    good: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    assert main(["report", str(good), "--out", str(out)]) == 0
    _write(out / "notes.txt", "my own notes")
    _refused(capsys, tmp_path, [str(good), "--out", str(out)], "also holds notes.txt")


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links")
def test_force_never_replaces_a_symbolic_link(
    good: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    assert main(["report", str(good), "--out", str(out)]) == 0
    link = tmp_path / "link"
    link.symlink_to(out)
    _refused(capsys, tmp_path, [str(good), "--out", str(link)], "is a symbolic link")


HOSTILE = ["../victim", "/tmp/abs", "a/b", "..", ".hidden", "-rf", "CON", "$x^{$", "Spawn", "spawn"]


def test_names_from_data_stay_inside_the_report_and_never_collide(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _results(*HOSTILE, "a-b")
    # "a-b" + "c" and "a" + "b-c" would both be a-b-c-*.png; so would Spawn and spawn on macOS.
    data["benchmarks"] += [_latency_bench("a", "asyncio", 10, 5.0)]
    data["benchmarks"][-1]["extra_info"]["latency_ns"] = {"b-wake": {"count": 0}}
    for bench in data["benchmarks"]:
        if bench["extra_info"]["scenario"] == "a-b":
            bench["extra_info"]["latency_ns"] = {"wake": bench["extra_info"]["latency_ns"]["wake"]}
    work = tmp_path / "work"
    source = _write(work / "run.json", data)
    victim = _write(work / "victim-bars.png", "precious")
    out = work / "out" / "report"
    before = _snapshot(tmp_path)
    assert main(["report", str(source), "--out", str(out)]) == 0, capsys.readouterr().err
    after = _snapshot(tmp_path)
    written = {k for k in after if k not in before}
    assert all(k.startswith("work/out") for k in written), written
    assert all(before[k] == after[k] for k in before), "something outside the report changed"
    assert victim.read_text() == "precious"
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", (out / "index.md").read_text())
    assert len(links) == len({link.casefold() for link in links}), "two plots share a file"
    for link in links:
        assert "/" not in link, link
        assert not link.startswith((".", "-")), link
        assert (out / link).read_bytes()[:4] == b"\x89PNG", link
    assert {p.name for p in out.iterdir()} == {"index.md", REPORT_MARKER, *links}


def test_safe_name_keeps_plain_names_and_tells_others_apart() -> None:
    for plain in ("spawn", "done_callback", "fan_out_event", "p99.9", "x-1"):
        assert safe_name(plain) == plain
    made = {name: safe_name(name) for name in [*HOSTILE, "a b", "a-b", "a_b", "x" * 300, ""]}
    assert len(set(made.values())) == len(made)
    for name in made.values():
        assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]*", name), name
        assert len(name) <= 70
    assert safe_name("../victim").startswith("victim-")
    names = FileNames(reserved=["index.md"])
    taken = [names.name("a-b", "c", suffix=".png"), names.name("a", "b-c", suffix=".png")]
    taken += [names.name("INDEX", suffix=".md"), names.name("spawn", suffix=".png")]
    taken += [names.name("Spawn", suffix=".png")]
    assert taken == ["a-b-c.png", "a-b-c-2.png", "INDEX-2.md", "spawn.png", "Spawn-2.png"]


def _mutated(mutate: Any) -> dict[str, Any]:
    data = _results("spawn")
    mutate(data)
    return data


def _latency(data: dict[str, Any]) -> dict[str, Any]:
    summary: dict[str, Any] = data["benchmarks"][0]["extra_info"]["latency_ns"]["wake"]
    return summary


def _anybench(data: dict[str, Any]) -> dict[str, Any]:
    info: dict[str, Any] = data["machine_info"]["anybench"]
    return info


BAD_INPUTS = {
    "failed-strings": (
        _mutated(lambda d: _anybench(d).update(failed=["test_x hung"])),
        "'failed' holds 'test_x hung' where a",
    ),
    "failed-error-number": (
        _mutated(lambda d: _anybench(d).update(failed=[{"test": "t", "error": 3}])),
        "'failed' holds",
    ),
    "p50-string": (
        _mutated(lambda d: _latency(d).update(p50="fast")),
        "latency 'wake' p50 must be a number, not 'fast'",
    ),
    "count-float": (
        _mutated(lambda d: _latency(d).update(count=2.5)),
        "latency 'wake' count must be a whole number",
    ),
    "cdf-not-pairs": (
        _mutated(lambda d: _latency(d).update(cdf=[1, 2, 3])),
        "latency 'wake' cdf must be a list of",
    ),
    "max-missing": (_mutated(lambda d: _latency(d).pop("max")), "has p50 but no max"),
    "memory-text": (
        _mutated(lambda d: d["benchmarks"][0]["extra_info"].update(memory={"bytes_per_op": "x"})),
        "memory bytes_per_op must be a number",
    ),
    "native-of-list": (
        _mutated(lambda d: d["benchmarks"][0]["extra_info"].update(native_of=["spawn"])),
        "native_of must be text",
    ),
    "libraries-numbers": (
        _mutated(lambda d: _anybench(d).update(libraries={"anyio": 4})),
        "'libraries' maps to something other than text",
    ),
    "timer-text": (
        _mutated(lambda d: _anybench(d).update(timer_cost_ns="40")),
        "'timer_cost_ns' is not a number",
    ),
    "cpu-text": (_mutated(lambda d: d["machine_info"].update(cpu="x86")), "'cpu' is not a mapping"),
    "commit-list": (
        _mutated(lambda d: d.update(commit_info=[1])),
        "'commit_info' is not a mapping",
    ),
    "deeply-nested": ("[" * 100_000 + "]" * 100_000, "JSON nested too deeply"),
    "huge-number": ('{"benchmarks": [' + "9" * 5000 + "]}", "number too long"),
}


@pytest.mark.parametrize("kind", BAD_INPUTS)
def test_a_bad_input_is_one_line_and_the_good_one_still_reports(
    kind: str, good: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, message = BAD_INPUTS[kind]
    bad = _write(tmp_path / "results" / f"{kind}.json", content)
    before = bad.read_bytes()
    out = tmp_path / "report"
    assert main(["report", str(bad), str(good), "--out", str(out)]) == 1
    err = _one_line_error(capsys, f"{bad}: ")
    assert message in err
    assert (out / "index.md").read_text().count(f"`{good.name}`") >= 1
    assert f"`{bad.name}`" not in (out / "index.md").read_text()
    assert main(["table", str(bad), str(good)]) == 1
    _one_line_error(capsys, f"{bad}: ")
    assert main(["compare", str(bad), str(good)]) == 2
    _one_line_error(capsys, f"{bad}: ")
    assert bad.read_bytes() == before


def test_a_file_given_twice_still_reports(good: Path, tmp_path: Path) -> None:
    assert main(["report", str(good), str(good), "--out", str(tmp_path / "report")]) == 0


def test_save_into_a_file_is_refused(
    good: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = _write(tmp_path / "not-a-dir", "mine")
    before = _snapshot(tmp_path)
    assert main(["save", str(good), "--into", str(target)]) == 1
    _one_line_error(capsys, f"{target} is a file, not a directory; pass --into a directory")
    assert main(["save", str(good), "--into", str(good)]) == 1
    _one_line_error(capsys, f"{good} is a file")
    assert main(["save", str(good), "--into", str(target / "sub")]) == 1
    _one_line_error(capsys, f"{target / 'sub'}: cannot save into it")
    assert _snapshot(tmp_path) == before


def _read_only_dir(path: Path) -> Path:
    """*path* made read-only; the test is skipped where permission bits are not enforced (root)."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o555)
    if os.access(path, os.W_OK):
        path.chmod(0o755)
        pytest.skip("permission bits are not enforced here (running as root?)")
    return path


def test_unwritable_directories_are_one_line(
    good: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    locked = _read_only_dir(tmp_path / "locked")
    try:
        assert main(["save", str(good), "--into", str(locked)]) == 1
        _one_line_error(capsys, f"{locked}: cannot save into it (Permission denied); make it")
        assert main(["report", str(good), "--out", str(locked / "report")]) == 1
        _one_line_error(capsys, f"{locked}: cannot write a report into it (Permission denied)")
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


@pytest.mark.parametrize(
    "error",
    [PermissionError(errno.EACCES, "Permission denied"), OSError(errno.ENOSPC, "No space left")],
)
def test_an_error_while_writing_is_one_line_and_keeps_the_old_report(
    error: OSError,
    good: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "report"
    assert main(["report", str(good), "--out", str(out)]) == 0
    before = _snapshot(tmp_path)

    def fail(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr("anybench._plots.scaling", fail)
    assert main(["report", str(good), "--out", str(out), "--force"]) == 1
    err = _one_line_error(capsys, f"{tmp_path}: cannot write a report into it ({error.strerror})")
    assert ("make it writable" in err) == isinstance(error, PermissionError)
    assert _snapshot(tmp_path) == before, "the old report is kept and no staging is left"
    monkeypatch.setattr("anybench._files.tempfile.mkstemp", fail)
    assert main(["save", str(good), "--into", str(tmp_path / "saved")]) == 1
    _one_line_error(capsys, f"{tmp_path / 'saved'}: cannot save into it ({error.strerror})")


@pytest.mark.parametrize("threshold", ["nan", "-100", "0", "inf", "-inf", "1e9", "ten", ""])
def test_a_threshold_that_is_no_gate_is_one_line(
    threshold: str, good: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A NaN threshold would make every comparison pass: a CI gate silently off."""
    again = remeasured(good, good.with_name("again.json"))
    assert main(["compare", str(good), str(again), f"--threshold={threshold}"]) == 2
    err = _one_line_error(capsys, "--threshold takes a percentage above 0 and at most 1000")
    assert repr(threshold) in err
    assert main(["compare", str(good), str(again), "--threshold", "0.5"]) == 0


def test_a_figure_below_one_clock_reading_is_flagged_in_table_and_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A scenario that claims far more operations than it does is saved at a figure no
    operation can reach (below one reading of the clock, 40 ns in this file): the run notes it
    as it measures, and table and report say it again from the file."""
    data = _results("spawn")
    data["benchmarks"][0] = _latency_bench("spawn", "asyncio", 10, 4.67)
    path = _write(tmp_path / "liar.json", data)
    assert main(["table", str(path)]) == 0
    table = capsys.readouterr().out
    [note] = [line for line in table.splitlines() if "below one clock reading" in line]
    assert note.startswith("! spawn 10 on asyncio: 4.67 ns/op is below one clock reading (40 ns)")
    assert "operation count is probably wrong" in note
    assert main(["report", str(path), "--out", str(tmp_path / "report")]) == 0
    page = (tmp_path / "report" / "index.md").read_text()
    warnings = page[page.index("## Warnings") :]
    assert "4.67 ns/op is below one clock reading (40 ns)" in warnings
    # The honest figures of the same file get no such line.
    assert table.count("below one clock reading") == 1
