"""Nothing lost: a run stopped by Ctrl-C or killed keeps every benchmark that had finished, and
recovery never takes what is not its own.

The stopping tests start anybench's matrix in a subprocess of their own (the pytest command
``anybench run`` builds), wait until the journal holds a finished benchmark, stop the run
(SIGINT, as Ctrl-C does, or SIGKILL), and recover the journal into a results file marked
partial. The others recover journals written here: junk, foreign, bad, or held by a live run.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from anybench._cli import main
from anybench._journal import INCOMING, Journal, recover_all, running
from anybench._results import load
from anybench._run import pytest_command

from .conftest import ROOT, SCENARIOS


def _finished(journal: Path) -> int:
    """How many benchmarks have a finished process in the journal."""
    if not journal.exists():
        return 0
    return len(
        {
            event["test"]
            for line in journal.read_text().splitlines()
            if '"event": "process"' in line and line.endswith("}")
            for event in [json.loads(line)]
        }
    )


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
    # Each worker's figures reach the journal as it finishes: several scenarios, so that the
    # run is still going when the first have a process.
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
    stopped = 0 if sig == signal.SIGKILL else 1  # one more may finish as Ctrl-C lands
    assert main(["recover", "--into", str(tmp_path / "results")]) == 0
    out = capsys.readouterr().out
    assert "recovered an unfinished run into" in out
    [saved] = (tmp_path / "results").glob("*.json")
    run = load(saved)
    assert run.partial is not None
    assert "interrupted" in run.partial
    assert finished <= len(run.records) <= finished + stopped
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


#: A pytest plugin for the stopped-after-k test: workers that answer at once with made-up
#: rounds, and a run that stops (Ctrl-C, or killed) as pass STOP_AFTER ends.
FAKE_WORKERS = """
import itertools
import os
import signal

from anybench import _journal, _measure
from anybench._protocol import Begin, Done, Finished, Hello, Round

STOP_AFTER = int(os.environ["STOP_AFTER"])
pids = itertools.count(1000)


def run_worker(variant, job):
    yield Hello(name="fake", pid=next(pids), python="3.x", implementation="C", libraries={})
    for scale in job.scales:
        for runtime in scale.runtimes:
            yield Begin(n=scale.n, runtime=runtime, kind="throughput", deadline_s=60.0)
            for elapsed in (1_000_000, 1_100_000):
                yield Round(n=scale.n, runtime=runtime, kind="throughput", n_round=scale.n,
                            ops=scale.n, elapsed_ns=elapsed, passes=1)
            yield Finished(n=scale.n, runtime=runtime)
    yield Done()


passed = _journal.Journal.passed


def stop_after(self, number, planned):
    passed(self, number, planned)
    if number == STOP_AFTER:
        if os.environ["STOP_HOW"] == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise KeyboardInterrupt


_measure.run_worker = run_worker
_journal.Journal.passed = stop_after
"""


@pytest.mark.parametrize("how", ["interrupt", "kill"])
def test_a_run_stopped_after_k_passes_keeps_k_processes_per_benchmark(
    tmp_path: Path, how: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "fake_workers.py").write_text(FAKE_WORKERS)
    incoming = tmp_path / "results" / INCOMING
    incoming.mkdir(parents=True)
    raw = incoming / "run-k.json"
    command = pytest_command([str(SCENARIOS)], raw, [
        "-p", "fake_workers", "--scenario", "done_callback,spawn", "--runtime", "asyncio,trio",
        "--processes", "4", "--max-processes", "4", "--scales", "10,20",
    ])  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    env.update(STOP_AFTER="2", STOP_HOW=how)
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert ("KeyboardInterrupt" in proc.stdout) == (how == "interrupt"), proc.stdout[-2000:]
    assert main(["recover", "--into", str(tmp_path / "results")]) == 0
    assert "recovered an unfinished run into" in capsys.readouterr().out
    [saved] = (tmp_path / "results").glob("*.json")
    run = load(saved)
    assert run.partial is not None
    assert run.partial.startswith("interrupted after 2 complete pass(es) over the matrix (of up")
    # Two scenarios x two N x two runtimes, each with the two processes of passes 1 and 2.
    assert len(run.records) == 8
    for record in run.records:
        assert len(record.processes) == 2
        assert record.process_passes == (1, 2)
        assert len(set(record.process_ids)) == 2
    # The runtimes of a group shared their workers.
    by_group: dict[tuple[str, int], set[tuple[int, ...]]] = {}
    for record in run.records:
        by_group.setdefault((record.scenario, record.n), set()).add(record.process_ids)
    assert all(len(ids) == 1 for ids in by_group.values())


def _format_1_header(data: dict[str, Any]) -> dict[str, Any]:
    """A format-1 journal's header (before passes) for the run of results file *data*."""
    return {
        "event": "header",
        "format": 1,
        "machine_info": data["machine_info"],
        "commit_info": data["commit_info"],
        "anybench_run": data.get("anybench_run"),
        "datetime": data["datetime"],
    }


def test_a_journal_of_the_previous_format_still_recovers(tmp_path: Path) -> None:
    """Format 1 (before passes): a header, then finished benchmarks, no process events."""
    data = json.loads(COMMITTED.read_text())
    results = tmp_path / "results"
    journal = results / INCOMING / "run-old.json.journal"
    journal.parent.mkdir(parents=True)
    header = _format_1_header(data)
    journal.write_text(
        _line(header) + "".join(_line({"event": "benchmark", "record": r})
                                for r in data["benchmarks"][:3])
    )  # fmt: skip
    [recovery] = recover_all(results)
    assert recovery.problem is None
    [saved] = recovery.saved
    run = load(saved)
    assert len(run.records) == 3
    assert run.partial == (
        "interrupted: 3 finished benchmark(s) recovered from its journal; the rest did not run"
    )


def test_the_partial_note_of_an_interleaved_run_counts_all_its_variants(tmp_path: Path) -> None:
    """The note goes into each variant's file: it says the count is of all of them (each file
    of a two-variant run holding half once read "8 benchmark(s) recovered" with 4 in it)."""
    data = json.loads(COMMITTED.read_text())
    results = tmp_path / "results"
    journal = results / INCOMING / "run-ab.json.journal"
    journal.parent.mkdir(parents=True)
    header = _format_1_header(data)
    records = []
    for label in ("old", "new"):
        for r in copy.deepcopy(data["benchmarks"][:2]):
            r["extra_info"]["variant"] = label
            r["name"] = r["name"].replace("]", f"-{label}]")
            records.append(r)
    journal.write_text(
        _line(header) + "".join(_line({"event": "benchmark", "record": r}) for r in records)
    )
    [recovery] = recover_all(results)
    assert recovery.problem is None
    assert len(recovery.saved) == 2
    for saved in recovery.saved:
        run = load(saved)
        assert len(run.records) == 2
        assert run.partial == (
            "interrupted: 4 finished benchmark(s) of 2 variants recovered from its journal; "
            "the rest did not run"
        )


#: A committed results file with a run id: journals and raw files of one run or of another.
WITH_RUN_ID = ROOT / "results" / "20261201T200246_vm_cpython3.11.json"


def _journal_of(data: dict[str, object], records: list[object], end: bool = False) -> str:
    header = {**HEADER, **{k: data[k] for k in ("machine_info", "commit_info", "anybench_run")}}
    lines = [_line(header)] + [_line({"event": "benchmark", "record": r}) for r in records]
    return "".join(lines) + (_line({"event": "end", "complete": True}) if end else "")


def _with_run(data: dict[str, object], run_id: str, benchmarks: list[object]) -> dict[str, object]:
    run = dict(data["anybench_run"])  # type: ignore[call-overload]
    return {**data, "anybench_run": {**run, "run_id": run_id}, "benchmarks": benchmarks}


@pytest.mark.parametrize("end", [False, True], ids=["interrupted", "complete"])
def test_a_raw_file_of_another_run_beside_a_journal_is_saved_too(
    end: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.loads(WITH_RUN_ID.read_text())
    first, second, third = data["benchmarks"][:3]
    incoming = tmp_path / "results" / INCOMING
    incoming.mkdir(parents=True)
    journal_run = _with_run(data, "journal-run", [])
    (incoming / "run-x.json.journal").write_text(_journal_of(journal_run, [first], end=end))
    (incoming / "run-x.json").write_text(json.dumps(_with_run(data, "other", [second, third])))
    assert main(["recover", "--into", str(tmp_path / "results")]) == 0, capsys.readouterr()
    runs = sorted((load(p) for p in (tmp_path / "results").glob("*.json")), key=lambda r: r.run_id)
    assert [(r.run_id, [b.name for b in r.records]) for r in runs] == [
        ("journal-run", [first["name"]]),
        ("other", [second["name"], third["name"]]),
    ]
    assert runs[1].partial is None
    assert list(incoming.iterdir()) == []


def test_a_raw_file_of_the_same_run_is_removed_once_its_benchmarks_are_saved(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.loads(WITH_RUN_ID.read_text())
    first, second = data["benchmarks"][:2]
    incoming = tmp_path / "results" / INCOMING
    incoming.mkdir(parents=True)
    (incoming / "run-x.json.journal").write_text(_journal_of(data, [first, second]))
    # pytest-benchmark writes what had finished when Ctrl-C stopped it.
    same_run = _with_run(data, data["anybench_run"]["run_id"], [first])
    (incoming / "run-x.json").write_text(json.dumps(same_run))
    assert main(["recover", "--into", str(tmp_path / "results")]) == 0
    [saved] = (tmp_path / "results").glob("*.json")
    assert len(load(saved).records) == 2
    assert load(saved).partial is not None
    assert list(incoming.iterdir()) == []


def test_an_unreadable_raw_file_is_moved_aside_never_deleted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.loads(WITH_RUN_ID.read_text())
    incoming = tmp_path / "results" / INCOMING
    incoming.mkdir(parents=True)
    (incoming / "run-x.json.journal").write_text(_journal_of(data, data["benchmarks"][:1]))
    (incoming / "run-x.json").write_text('{"half a file')
    assert main(["recover", "--into", str(tmp_path / "results")]) == 1
    captured = capsys.readouterr()
    assert "recovered an unfinished run into" in captured.out
    assert captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith(f"anybench: {incoming / 'run-x.json'}: not valid JSON")
    assert "moved aside to run-x.json.unreadable" in captured.err
    assert (incoming / "run-x.json.unreadable").read_text() == '{"half a file'
    assert len(list((tmp_path / "results").glob("*.json"))) == 1
    assert not (incoming / "run-x.json.journal").exists()


def test_a_journal_named_twice_is_recovered_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.loads(WITH_RUN_ID.read_text())
    journal = tmp_path / "run.json.journal"
    journal.write_text(_journal_of(data, data["benchmarks"][:1]))
    again = tmp_path / "." / "run.json.journal"
    assert main(["recover", str(journal), str(again), "--into", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out.count("recovered an unfinished run into") == 1
    assert len(list((tmp_path / "out").glob("*.json"))) == 1
