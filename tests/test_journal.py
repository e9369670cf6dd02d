"""Nothing lost: a run stopped by Ctrl-C or killed keeps every benchmark that had finished.

Each test starts ``pytest benchmarks`` in a subprocess of its own, waits until the journal holds
a finished benchmark, stops the run (SIGINT, as Ctrl-C does, or SIGKILL), and recovers the
journal into a results file marked partial.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from anybench._cli import main
from anybench._results import load

from .conftest import ROOT


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
        [
            sys.executable, "-m", "pytest", "benchmarks", "-p", "no:cacheprovider",
            "--scenario", "done_callback,await_future,chain,fan_in,fan_out_callbacks,spawn",
            "--runtime", runtime_name, "--processes", "2", "--max-processes", "2",
            "--scales", "10,20",
            f"--benchmark-json={raw}",
        ],
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
    header = {"event": "header", "machine_info": {"anybench": {}}, "commit_info": {}}
    record = {"event": "benchmark", "record": {"name": "a"}}
    journal.write_text(json.dumps(header) + "\n" + json.dumps(record) + "\n" + '{"event": "be')
    data = read(journal)
    assert data is not None
    assert [b["name"] for b in data["benchmarks"]] == ["a"]
