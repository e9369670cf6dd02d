"""Every field a command uses is checked where a results file is read, once: a bad file is one
line on stderr for every command, nothing is written and the file is left as it was."""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from anybench import RESULTS_FORMAT
from anybench._cli import main
from anybench._results import MAX_FILE_BYTES, load, read_record

from .conftest import ROOT
from .test_outputs import _results


def _extra(data: dict[str, Any], i: int = 0) -> dict[str, Any]:
    extra: dict[str, Any] = data["benchmarks"][i]["extra_info"]
    return extra


def _run_info(data: dict[str, Any]) -> dict[str, Any]:
    run: dict[str, Any] = data.setdefault("anybench_run", {})
    return run


def _mutated(mutate: Any) -> dict[str, Any]:
    data = _results("spawn")
    mutate(data)
    return data


#: Cases found from outside that crashed a later command with a traceback, and their kin.
BAD_FIELDS: dict[str, tuple[Any, str]] = {
    "timer-null": (
        _mutated(lambda d: _run_info(d).update(timer_cost_ns=None)),
        "'timer_cost_ns' is not a number of ns: None",
    ),
    "timer-nan": (
        _mutated(lambda d: _run_info(d).update(timer_cost_ns=math.nan)),
        "'timer_cost_ns' is not a number of ns: nan",
    ),
    "timer-negative": (
        _mutated(lambda d: d["machine_info"]["anybench"].update(timer_cost_ns=-1)),
        "'timer_cost_ns' is not a number of ns: -1",
    ),
    "runtimes-number": (
        _mutated(lambda d: _run_info(d).update(runtimes=5)),
        "'runtimes' is not a list of names: 5",
    ),
    "runtimes-numbers": (
        _mutated(lambda d: _run_info(d).update(runtimes=[1, 2])),
        "'runtimes' is not a list of names",
    ),
    "scales-text": (
        _mutated(lambda d: _run_info(d).update(scales={"n": "10,100"})),
        "'scales' is not lists of whole numbers",
    ),
    "run-id-number": (_mutated(lambda d: _run_info(d).update(run_id=7)), "'run_id' is not text"),
    "partial-list": (
        _mutated(lambda d: _run_info(d).update(partial=["x"])),
        "'partial' is not text",
    ),
    "started-a-number": (
        _mutated(lambda d: _run_info(d).update(started=20261202)),
        "'started' is not an ISO 8601 time",
    ),
    "started-not-a-time": (
        _mutated(lambda d: _run_info(d).update(started="yesterday")),
        "'started' is not an ISO 8601 time",
    ),
    "peak-text": (
        _mutated(lambda d: _run_info(d).update(peak_rss_bytes="big")),
        "'peak_rss_bytes' is not a number of bytes",
    ),
    "scale-zero": (
        _mutated(lambda d: _extra(d).update(scale=0)),
        "scale must be a whole number of at least 1 and at most 10**12 on the n axis, not 0",
    ),
    "scale-float": (
        _mutated(lambda d: _extra(d).update(scale=10.5)),
        "scale must be a whole number",
    ),
    "scale-negative-load": (
        _mutated(lambda d: _extra(d).update(scale=-1, axis="load")),
        "scale must be a whole number of at least 0 and at most 10**12 on the load axis, not -1",
    ),
    "axis-unknown": (
        _mutated(lambda d: _extra(d).update(axis="time")),
        "axis must be one of n, load, not 'time'",
    ),
    "stamped-text": (
        _mutated(lambda d: _extra(d).update(stamped_ns_per_op="fast")),
        "stamped_ns_per_op must be a positive number, not 'fast'",
    ),
    "stamped-nan": (
        _mutated(lambda d: _extra(d).update(stamped_ns_per_op=math.inf)),
        "stamped_ns_per_op must be a positive number, not inf",
    ),
    "variant-list": (
        _mutated(lambda d: _extra(d).update(variant=["a", "b"])),
        "variant must be text, not ['a', 'b']",
    ),
    "unstable-number": (
        _mutated(lambda d: _extra(d).update(unstable=3)),
        "unstable must be text, not 3",
    ),
    "operation-number": (
        _mutated(lambda d: _extra(d).update(operation=3)),
        "operation must be text, not 3",
    ),
    "ns-per-op-nan": (
        _mutated(lambda d: _extra(d).update(ns_per_op=math.nan)),
        "ns_per_op must be a positive number, not nan",
    ),
    "ops-float": (
        _mutated(lambda d: _extra(d).update(ops_per_round=2.5)),
        "ops_per_round must be a positive whole number of at most 10**15, not 2.5",
    ),
    "rounds-bool": (
        _mutated(lambda d: _extra(d).update(rounds=True)),
        "rounds must be a positive whole number of at most 10**7, not True",
    ),
    "memory-n-text": (
        _mutated(lambda d: _extra(d).update(memory={"bytes_per_op": 3.0, "n": "ten"})),
        "memory n must be a whole number",
    ),
    "memory-peak-nan": (
        _mutated(lambda d: _extra(d).update(memory={"bytes_per_op": 3.0, "peak_bytes": math.nan})),
        "memory peak_bytes must be a number of bytes",
    ),
    "pids-not-matching": (
        _mutated(
            lambda d: _extra(d).update(process_round_elapsed_ns=[[1e4, 1e4]], process_ids=[1, 2])
        ),
        "process_ids names 2 processes, but 1 have rounds",
    ),
    "description-number": (
        _mutated(lambda d: _extra(d)["latency_ns"]["wake"].update(description=5)),
        "latency 'wake' description must be text",
    ),
    "brand-number": (
        _mutated(lambda d: d["machine_info"].update(cpu={"brand_raw": 5})),
        "cpu 'brand_raw' is not a string",
    ),
    "datetime-number": (_mutated(lambda d: d.update(datetime=5)), "'datetime' is not text"),
    "format-true": (
        _mutated(lambda d: d["machine_info"]["anybench"].update(format=True)),
        "anybench results format True is not a whole number",
    ),
    "name-list": (
        _mutated(lambda d: d["benchmarks"][0].update(name=["x"])),
        "a benchmark's name is ['x'], not text",
    ),
    "same-key-twice": (
        _mutated(lambda d: d["benchmarks"].append(copy.deepcopy(d["benchmarks"][0]))),
        "both measure spawn at 10 on asyncio; was the file merged or edited by hand?",
    ),
    "scale-huge": (
        _mutated(lambda d: _extra(d).update(scale=10**30)),
        "scale must be a whole number of at least 1 and at most 10**12 on the n axis",
    ),
    "ops-huge": (
        _mutated(lambda d: _extra(d).update(ops_per_round=10**30)),
        "ops_per_round must be a positive whole number of at most 10**15",
    ),
    "rounds-huge": (
        _mutated(lambda d: _extra(d).update(rounds=10**30)),
        "rounds must be a positive whole number of at most 10**7",
    ),
    "pid-huge": (
        _mutated(
            lambda d: _extra(d).update(
                process_round_elapsed_ns=[[1010.0 * 10] * 3], process_ids=[10**30]
            )
        ),
        "process_ids must be a list of pids",
    ),
    "elapsed-huge": (
        _mutated(lambda d: _extra(d).update(round_elapsed_ns=[10**400] * 3)),
        "round_elapsed_ns must be a list of positive numbers of at most 10**16 ns",
    ),
    "process-elapsed-huge": (
        _mutated(lambda d: _extra(d).update(process_round_elapsed_ns=[[10**30] * 3])),
        "process_round_elapsed_ns must be lists of positive numbers of at most 10**16 ns",
    ),
    "memory-n-huge": (
        _mutated(lambda d: _extra(d).update(memory={"bytes_per_op": 3.0, "n": 10**30})),
        "memory n must be a whole number",
    ),
    "timer-huge": (
        _mutated(lambda d: _run_info(d).update(timer_cost_ns=10**400)),
        "'timer_cost_ns' is not a number of ns",
    ),
    "record-format-newer": (
        _mutated(lambda d: _extra(d).update(anybench_format=99)),
        "made by a newer anybench (format 99); upgrade anybench",
    ),
    "record-format-text": (
        _mutated(lambda d: _extra(d).update(anybench_format="x")),
        "anybench_format must be a whole number, not 'x'); was the file edited by hand?",
    ),
    "file-format-newer": (
        _mutated(lambda d: d["machine_info"]["anybench"].update(format=99)),
        "made by a newer anybench (format 99); upgrade anybench",
    ),
    "file-format-text": (
        _mutated(lambda d: d["machine_info"]["anybench"].update(format="4")),
        "anybench results format '4' is not a whole number; was the file edited by hand?",
    ),
    "ns-per-op-edited": (
        _mutated(lambda d: _extra(d).update(ns_per_op=1e308)),
        "ns_per_op is 1e+308 but its rounds give 1.01e+03",
    ),
    "format-3-without-n": (
        _mutated(lambda d: [d["machine_info"]["anybench"].update(format=3)]),
        "lacks anybench extra info (n)",
    ),
}


def _snapshot(root: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(root)): p.read_bytes() if p.is_file() else None
        for p in sorted(root.rglob("*"))
    }


#: What ``report`` adds when no file given was usable.
NOTHING_TO_REPORT = "anybench: no usable results file; nothing to report\n"


def _one_line(capsys: pytest.CaptureFixture[str], start: str) -> str:
    err = capsys.readouterr().err.replace(NOTHING_TO_REPORT, "")
    assert err.count("\n") == 1, err
    assert err.startswith(f"anybench: {start}"), err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("kind", BAD_FIELDS)
def test_a_bad_field_is_one_line_for_every_command_and_nothing_is_written(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, message = BAD_FIELDS[kind]
    work = tmp_path / "work"
    work.mkdir()
    bad = work / f"{kind}.json"
    bad.write_text(json.dumps(content))
    good = work / "good.json"
    good.write_text(json.dumps(_results("spawn")))
    before = _snapshot(tmp_path)
    commands = [
        (["table", str(bad)], 1),
        (["report", str(bad), "--out", str(tmp_path / "report")], 1),
        (["compare", str(bad), str(good)], 2),
        (["save", str(bad), "--into", str(tmp_path / "saved")], 1),
    ]
    for argv, code in commands:
        assert main(argv) == code, argv
        err = _one_line(capsys, f"{bad}: ")
        assert message in err, (argv, err)
    assert _snapshot(tmp_path) == before, "nothing written, the input unchanged"


def test_a_file_over_the_size_bound_is_refused_unread(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    huge = tmp_path / "huge.json"
    with open(huge, "wb") as file:  # sparse: no disk used, and never read
        file.truncate(MAX_FILE_BYTES + 1)
    assert main(["table", str(huge)]) == 1
    err = _one_line(capsys, f"{huge}: over 256 MiB")
    assert "pass a results file" in err
    assert main(["table", str(tmp_path)]) == 1
    _one_line(capsys, f"{tmp_path}: ")


def test_the_writer_names_the_scale_and_old_formats_read_n(tmp_path: Path) -> None:
    """Format 4 writes ``scale`` (on its ``axis``); formats 1-3 wrote ``n``, read as before."""
    data = _results("spawn")
    assert RESULTS_FORMAT == 4
    assert "scale" in _extra(data)
    assert "n" not in _extra(data)
    old = copy.deepcopy(data)
    old["machine_info"]["anybench"]["format"] = 3
    for bench in old["benchmarks"]:
        bench["extra_info"]["n"] = bench["extra_info"].pop("scale")
    for content in (data, old):
        path = tmp_path / "run.json"
        path.write_text(json.dumps(content))
        assert [r.n for r in load(path).records] == [10, 100, 10, 100]
    record = read_record("x", {**_extra(old), "axis": "load", "n": 0}, 3)
    assert (record.n, record.scale_label) == (0, "B=0")


def _two_variants() -> dict[str, Any]:
    """An interleaved run of two variants, as ``pytest --variant ... --benchmark-json`` writes."""
    data = _results("spawn")
    data["anybench_run"] = {"run_id": "r1", "timer_cost_ns": 40.0, "failed": []}
    second = copy.deepcopy(data["benchmarks"])
    for bench in data["benchmarks"]:
        bench["extra_info"].update(variant="old", libraries={"anyio": "4.13.0"})
    for bench in second:
        bench["extra_info"].update(
            variant="new",
            libraries={"anyio": "4.16.0"},
            ns_per_op=bench["extra_info"]["ns_per_op"] * 3,
            round_elapsed_ns=[e * 3 for e in bench["extra_info"]["round_elapsed_ns"]],
        )
        bench["name"] = bench["name"].replace("]", "-new]")
    data["benchmarks"] += second
    return data


def test_every_command_shows_each_variant_of_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ab.json"
    path.write_text(json.dumps(_two_variants()))
    assert [run.variant for run in load(path).by_variant()] == ["old", "new"]

    assert main(["table", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"{path} [variant old]:" in out
    assert f"{path} [variant new]:" in out
    assert "1.01 µs" in out, "the old variant's own figures"
    assert "3.03 µs" in out, "the new variant's own figures"

    report = tmp_path / "report"
    assert main(["report", str(path), "--out", str(report)]) == 0
    page = (report / "index.md").read_text()
    assert "asyncio (anyio 4.13.0)" in page
    assert "asyncio (anyio 4.16.0)" in page

    again = _two_variants()  # the same A/B made again: each variant against its own
    for bench in again["benchmarks"]:
        info = bench["extra_info"]
        info["round_elapsed_ns"] = [e * 1.01 for e in info["round_elapsed_ns"]]
        info["ns_per_op"] *= 1.01
    later = tmp_path / "ab-again.json"
    later.write_text(json.dumps(again))
    assert main(["compare", str(path), str(later)]) == 0
    out = capsys.readouterr().out
    assert f"old: {path} [variant old]" in out
    assert f"old: {path} [variant new]" in out
    assert f"new: {later} [variant new]" in out
    assert out.count("spawn N=10 asyncio") == 2, "each variant compared with its own"

    single = tmp_path / "single.json"
    single.write_text(json.dumps(_results("spawn")))
    assert main(["compare", str(single), str(path)]) == 2
    err = _one_line(capsys, f"{single} holds one run and {path} holds variants old, new")
    assert "anybench save" in err


def test_variants_with_the_same_software_still_get_columns_of_their_own(tmp_path: Path) -> None:
    data = _two_variants()
    for bench in data["benchmarks"]:
        bench["extra_info"]["libraries"] = {"anyio": "4.16.0"}
    path = tmp_path / "ab.json"
    path.write_text(json.dumps(data))
    report = tmp_path / "report"
    assert main(["report", str(path), "--out", str(report)]) == 0
    page = (report / "index.md").read_text()
    # Markdown-escaped on the way out (see anybench._escape): it renders as "ab[old]".
    assert r"asyncio (ab\[old\])" in page
    assert r"asyncio (ab\[new\])" in page


def _anybench(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """``anybench ARGS`` in a process of its own (one that would hang is killed, and fails)."""
    return subprocess.run(
        [sys.executable, "-m", "anybench", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_unopened(tmp_path: Path) -> None:
    fifo = tmp_path / "f.json"
    os.mkfifo(fifo)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_results("spawn")))
    for args in (
        ["table", str(fifo)],
        ["report", str(fifo), "--out", str(tmp_path / "report")],
        ["compare", str(good), str(fifo)],
        ["save", str(fifo), "--into", str(tmp_path / "saved")],
    ):
        proc = _anybench(*args)
        assert proc.returncode != 0, args
        assert proc.stderr.startswith(f"anybench: {fifo}: not a regular file"), proc.stderr
        assert proc.stderr.replace(NOTHING_TO_REPORT, "").count("\n") == 1, proc.stderr
    incoming = tmp_path / "results" / ".incoming"
    incoming.mkdir(parents=True)
    os.mkfifo(incoming / "run-x.json.journal")
    proc = _anybench("recover", "--into", str(tmp_path / "results"))
    assert proc.returncode == 1
    assert "not a regular file" in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    # A journal whose raw file beside it is a FIFO: the journal is saved, the FIFO left alone.
    os.unlink(next(incoming.iterdir()))
    committed = json.loads((ROOT / "results" / "20261201T200246_vm_cpython3.11.json").read_text())
    header = {
        "event": "header",
        "format": 1,
        **{k: committed[k] for k in ("machine_info", "commit_info", "anybench_run", "datetime")},
    }
    record = {"event": "benchmark", "record": committed["benchmarks"][0]}
    (incoming / "run-y.json.journal").write_text(f"{json.dumps(header)}\n{json.dumps(record)}\n")
    os.mkfifo(incoming / "run-y.json")
    proc = _anybench("recover", "--into", str(tmp_path / "results"))
    assert proc.returncode == 1
    assert "recovered an unfinished run into" in proc.stdout
    assert proc.stderr.startswith(f"anybench: {incoming / 'run-y.json'}: not a regular file")
    assert proc.stderr.rstrip().endswith("moved aside to run-y.json.unreadable"), proc.stderr
    assert (incoming / "run-y.json.unreadable").is_fifo()


def test_dev_zero_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["table", "/dev/zero"]) == 1
    _one_line(capsys, "/dev/zero: not a regular file")
