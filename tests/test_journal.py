"""Nothing lost: a run stopped by Ctrl-C or killed keeps every benchmark that had finished, and
recovery never takes what is not its own.

The stopping tests start anybench's matrix in a subprocess of their own (the pytest command
``anybench run`` builds), wait until the journal holds a finished benchmark, stop the run
(SIGINT, as Ctrl-C does, or SIGKILL), and recover the journal into a results file marked
partial. The others recover journals written here: junk, foreign, bad, or held by a live run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from anybench._cli import main
from anybench._journal import INCOMING, Journal, recover_all, running
from anybench._results import load
from anybench._run import pytest_command

from .conftest import ROOT, SCENARIOS


def _finished(journal: Path) -> int:
    if not journal.exists():
        return 0
    return sum('"event": "benchmark"' in line for line in journal.read_text().splitlines())


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
@pytest.mark.parametrize("runtime_name", ["asyncio", "trio"])
def test_a_stopped_run_keeps_every_finished_benchmark(
    tmp_path: Path, runtime_name: str, sig: signal.Signals, capsys: pytest.CaptureFixture[str]
) -> None:
    incoming = tmp_path / "results" / ".incoming"
    incoming.mkdir(parents=True)
    raw = incoming / "run-x.json"
    journal = incoming / "run-x.json.journal"
    # Benchmarks of a scenario finish together, once its interleaved workers are done: several
    # scenarios, so that the run is still going when the first have finished.
    proc = subprocess.Popen(
        pytest_command([str(SCENARIOS)], raw, [
            "--scenario", "done_callback,await_future,chain,fan_in,fan_out_callbacks,spawn",
            "--runtime", runtime_name, "--processes", "2", "--max-processes", "2",
            "--scales", "10,20",
        ]),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a signal of ours reaches its workers, never this process
        # A shell's background job inherits SIGINT ignored, and Python then installs no
        # KeyboardInterrupt handler: give the run the disposition a terminal's Ctrl-C meets.
        preexec_fn=_default_sigint,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while _finished(journal) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be stopped"
        os.killpg(proc.pid, sig)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    finished = _finished(journal)
    assert finished >= 2
    assert main(["recover", "--into", str(tmp_path / "results")]) == 0
    out = capsys.readouterr().out
    assert "recovered an unfinished run into" in out
    [saved] = (tmp_path / "results").glob("*.json")
    run = load(saved)
    assert run.partial is not None
    assert "interrupted" in run.partial
    assert len(run.records) == finished
    assert {r.runtime for r in run.records} == {runtime_name}
    assert all(r.processes for r in run.records)
    assert not journal.exists()
    assert not raw.exists()


def test_recover_with_nothing_to_recover_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["recover", "--into", str(tmp_path)]) == 0
    assert "nothing to recover" in capsys.readouterr().out


def test_a_torn_last_line_is_ignored(tmp_path: Path) -> None:
    from anybench._journal import read

    journal = tmp_path / "run.json.journal"
    header = {"event": "header", "format": 1, "machine_info": {"anybench": {}}, "commit_info": {}}
    record = {"event": "benchmark", "record": {"name": "a"}}
    journal.write_text(json.dumps(header) + "\n" + json.dumps(record) + "\n" + '{"event": "be')
    data = read(journal)
    assert data is not None
    assert [b["name"] for b in data["benchmarks"]] == ["a"]


#: A committed results file, complete: what recovery must never delete unread.
COMMITTED = sorted((ROOT / "results").glob("*.json"))[0]
HEADER = {
    "event": "header",
    "format": 1,
    "machine_info": {"anybench": {}},
    "commit_info": {},
    "anybench_run": {},
    "datetime": "2026-12-01T00:00:00+00:00",
}


def _line(event: dict[str, object]) -> str:
    return json.dumps(event) + "\n"


NOT_OURS = {
    "junk": "this is not a journal\n",
    "empty": "",
    "other-format": _line({**HEADER, "format": 99}),
    "machine-info-null": _line({**HEADER, "machine_info": None}),
    "commit-info-list": _line({**HEADER, "commit_info": [1]})
    + _line({"event": "benchmark", "record": {"name": "a"}}),
    "a-results-file": COMMITTED.read_text()[:2000],
}


@pytest.mark.parametrize("kind", NOT_OURS)
def test_recover_never_deletes_what_it_did_not_read(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keep = tmp_path / "keep"
    keep.mkdir()
    mine = keep / "mine.json"
    mine.write_bytes(COMMITTED.read_bytes())
    journal = keep / "mine.json.journal"
    journal.write_text(NOT_OURS[kind])
    assert main(["recover", str(journal), "--into", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"anybench: {journal}: "), err
    assert err.count("\n") == 1, err
    assert err.rstrip().endswith("it is left in place"), err
    assert mine.read_bytes() == COMMITTED.read_bytes()
    assert journal.read_text() == NOT_OURS[kind]
    assert not list(tmp_path.glob("out/*.json"))


def test_a_journal_with_nothing_finished_is_removed_but_a_file_beside_it_is_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keep = tmp_path / "keep"
    keep.mkdir()
    mine = keep / "mine.json"
    mine.write_bytes(COMMITTED.read_bytes())
    journal = keep / "mine.json.journal"
    journal.write_text(_line(HEADER))
    assert main(["recover", str(journal), "--into", str(tmp_path / "out")]) == 0
    assert "no benchmark had finished; removed it" in capsys.readouterr().out
    assert not journal.exists()
    assert mine.read_bytes() == COMMITTED.read_bytes(), "not anybench's own raw file"
    # In .incoming, anybench's own raw file goes with its journal.
    incoming = tmp_path / "results" / INCOMING
    incoming.mkdir(parents=True)
    (incoming / "run-abc_1.json").write_text("")
    (incoming / "run-abc_1.json.journal").write_text(_line(HEADER))
    assert main(["recover", "--into", str(tmp_path / "results")]) == 0
    assert list(incoming.iterdir()) == []


def test_a_bad_journal_in_incoming_is_moved_aside_once_and_never_deleted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    incoming = results / INCOMING
    incoming.mkdir(parents=True)
    bad = _line({**HEADER, "machine_info": None}) + _line(
        {"event": "benchmark", "record": {"name": "a"}}
    )
    (incoming / "run-x.json.journal").write_text(bad)
    (incoming / "run-x.json").write_text("")
    assert main(["recover", "--into", str(results)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "machine_info is not a mapping; moved aside to run-x.json.journal.unreadable" in err
    assert (incoming / "run-x.json.journal.unreadable").read_text() == bad
    assert (incoming / "run-x.json").exists()
    # Later recoveries (every anybench run's) are not troubled by it again.
    assert recover_all(results) == []


def test_a_live_runs_journal_is_left_to_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    raw = results / INCOMING / "run-live.json"
    raw.parent.mkdir(parents=True)
    raw.write_text("")
    journal = Journal(raw.with_name(raw.name + ".journal"))
    data = json.loads(COMMITTED.read_text())
    first, second = data["benchmarks"][:2]  # two benchmarks: a file never holds one twice
    journal.header(
        data["machine_info"], data["commit_info"], data["datetime"], data.get("anybench_run")
    )
    journal.benchmark(first)
    try:
        assert main(["recover", "--into", str(results)]) == 0
        assert "its run is still going; left alone" in capsys.readouterr().out
        assert journal.path.exists()
        assert raw.exists()
        assert not list(results.glob("*.json"))
        journal.benchmark(second)  # the run goes on writing into its own journal
    finally:
        journal.close()  # pytest ends (or dies): its lock goes with it
    # Its anybench run has yet to save it: still live until that run lets go.
    with running(raw):
        assert main(["recover", "--into", str(results)]) == 0
        assert "its run is still going; left alone" in capsys.readouterr().out
        assert not list(results.glob("*.json"))
    assert main(["recover", "--into", str(results)]) == 0
    [saved] = results.glob("*.json")
    assert len(load(saved).records) == 2
    assert not journal.path.exists()
    assert not raw.exists()
