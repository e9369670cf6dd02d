"""What the ``anybench`` command writes when its output cannot take it: a closed pipe, a full
disk, an encoding without µ; error lines that no name can break; and a Ctrl-C."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from anybench._cli import main

from .test_outputs import _results

RUN = [sys.executable, "-m", "anybench"]


def _file(tmp_path: Path, name: str = "f.json", data: dict[str, Any] | None = None) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data or _results("spawn", "chain")))
    return path


def test_a_closed_pipe_ends_the_command_quietly(tmp_path: Path) -> None:
    results = _file(tmp_path)
    other = _file(tmp_path, "g.json", _results("spawn", "chain", "timers"))
    for args in (["table", str(results)], ["compare", str(results), str(other)]):
        read, write = os.pipe()
        os.close(read)  # as `| head -1` does once it has its line: every write fails
        try:
            proc = subprocess.run([*RUN, *args], stdout=write, stderr=subprocess.PIPE, timeout=60)
        finally:
            os.close(write)
        assert proc.returncode == 1, args
        assert proc.stderr == b"", proc.stderr.decode()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")
def test_a_full_disk_is_one_line(tmp_path: Path) -> None:
    results = _file(tmp_path)
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [*RUN, "table", str(results)], stdout=full, stderr=subprocess.PIPE, timeout=60
        )
    err = proc.stderr.decode()
    assert proc.returncode == 1
    assert err.startswith("anybench: cannot write its output"), err
    assert err.count("\n") == 1, err


def test_an_encoding_without_micro_gets_an_escape(tmp_path: Path) -> None:
    results = _file(tmp_path)
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    proc = subprocess.run(
        [*RUN, "table", str(results)], capture_output=True, env=env, timeout=60, text=False
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"\\xb5s" in proc.stdout
    assert proc.stderr == b""


EVIL = "evil|pipe\n<script>\u001b[31m\u0000\u202e"


def test_no_error_line_carries_a_raw_control(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = _file(tmp_path, "base.json")
    data = _results("spawn")
    twin = json.loads(json.dumps(data["benchmarks"]))
    for bench in data["benchmarks"]:
        bench["extra_info"]["variant"] = EVIL
    for bench in twin:
        bench["extra_info"]["variant"] = "plain"
        bench["name"] = bench["name"].replace("]", "-plain]")
    data["benchmarks"] += twin
    evil = _file(tmp_path, "evil.json", data)
    assert main(["compare", str(base), str(evil)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "holds variants evil|pipe\\n<script>\\x1b[31m\\x00\\u202e, plain" in err
    for raw in "\u001b\u0000\u202e":
        assert raw not in err


def test_an_empty_out_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = _file(tmp_path)
    assert main(["report", str(results), "--out", ""]) == 2
    err = capsys.readouterr().err
    assert err == "anybench: --out is empty; name a directory, or leave --out out\n", err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.json"]


def test_report_help_says_where_the_report_goes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "default: report-<stem> beside the newest results file" in help_text


@pytest.mark.parametrize("command", ["report", "table"])
def test_a_closed_standard_output_is_no_traceback(tmp_path: Path, command: str) -> None:
    """``anybench report F >&-``: Python starts with no sys.stdout at all; the report is still
    written, and the command ends without a traceback."""
    path = _file(tmp_path)
    args = [command, str(path)] + (
        ["--out", str(tmp_path / "report")] if command == "report" else []
    )
    proc = subprocess.run(
        [*RUN, *args],
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        preexec_fn=lambda: os.close(1),
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 0, proc.stderr
    if command == "report":
        assert (tmp_path / "report" / "index.md").exists()


def test_ctrl_c_is_one_line_and_a_run_says_how_to_write_its_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while a command works ends it with one line, not a traceback; in ``anybench
    run``, once its results are saved, while the report is drawn: the line says how to write
    the report from the saved file."""
    import anybench._report
    import anybench._run

    def interrupted(*args: object, **kwargs: object) -> Path:
        raise KeyboardInterrupt

    monkeypatch.setattr(anybench._report, "write_report", interrupted)
    results = _file(tmp_path, "saved run.json")
    assert main(["report", str(results)]) == 130
    assert capsys.readouterr().err == "anybench: interrupted\n"

    outcome = anybench._run.RunOutcome(exit_code=0, saved=[results])
    monkeypatch.setattr(anybench._run, "run_and_save", lambda *args, **kwargs: outcome)
    assert main(["run", "scenarios", "--into", str(tmp_path)]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.endswith(f"write it: anybench report '{results}'\n")
