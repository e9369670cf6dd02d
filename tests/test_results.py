"""Reading, saving and tabulating results files; bad files are named and left untouched."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from anybench import RESULTS_FORMAT
from anybench._cli import main
from anybench._files import current_umask
from anybench._results import ResultsError, load, save
from anybench._table import comparison_table


def _bench(scenario: str, runtime: str, n: int, ns_per_op: float) -> dict[str, Any]:
    return {
        "name": f"test_scenario[{scenario}-{n}-{runtime}]",
        "group": f"{scenario} N={n}",
        "stats": {"median": ns_per_op / 1e9},
        "extra_info": {
            "anybench_format": RESULTS_FORMAT,
            "scenario": scenario,
            "runtime": runtime,
            "scale": n,
            "ops_per_round": n,
            "rounds": 3,
            "ns_per_op": ns_per_op,
            "round_elapsed_ns": [ns_per_op * n] * 3,
            "latency_ns": {},
        },
    }


RESULTS: dict[str, Any] = {
    "machine_info": {
        "node": "box",
        "python_version": "3.11.7",
        "python_implementation": "CPython",
        "anybench": {
            "format": RESULTS_FORMAT,
            "timer_cost_ns": 40.0,
            "unavailable_runtimes": {"uvloop": "uvloop is not installed (pip install uvloop)"},
            "failed": [],
        },
    },
    "commit_info": {},
    "datetime": "2026-11-25T10:11:12.123456+00:00",
    "benchmarks": [
        _bench("spawn", "asyncio", 10, 1000.0),
        _bench("spawn", "trio", 10, 1500.0),
        _bench("spawn", "asyncio", 1000, 800.0),
        _bench("spawn", "trio", 1000, 400.0),
    ],
}


def _write(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_load_reads_records(tmp_path: Path) -> None:
    run = load(_write(tmp_path, "run.json", RESULTS))
    assert [(r.scenario, r.runtime, r.n, r.ns_per_op) for r in run.records][:2] == [
        ("spawn", "asyncio", 10, 1000.0),
        ("spawn", "trio", 10, 1500.0),
    ]
    assert run.records[0].round_ns_per_op == (1000.0, 1000.0, 1000.0)
    assert run.unavailable_runtimes == {"uvloop": "uvloop is not installed (pip install uvloop)"}


def _broken(mutate: Any) -> dict[str, Any]:
    data = copy.deepcopy(RESULTS)
    mutate(data)
    return data


BAD_FILES = {
    "not-json": ("{not json", "not valid JSON"),
    "not-benchmark": ({"hello": 1}, "not a pytest-benchmark results file"),
    "no-anybench": (
        _broken(lambda d: d["machine_info"].pop("anybench")),
        "without anybench's machine info",
    ),
    "other-format": (
        _broken(lambda d: d["machine_info"]["anybench"].update(format=0)),
        "anybench results format 0, this anybench reads format",
    ),
    "ns-per-op-null": (
        _broken(lambda d: d["benchmarks"][0]["extra_info"].update(ns_per_op=None)),
        "malformed anybench extra info .ns_per_op must be a positive number, not None",
    ),
    "ns-per-op-zero": (
        _broken(lambda d: d["benchmarks"][0]["extra_info"].update(ns_per_op=0)),
        "ns_per_op must be a positive number, not 0",
    ),
    "rounds-not-numbers": (
        _broken(lambda d: d["benchmarks"][0]["extra_info"].update(round_elapsed_ns=["x"])),
        "round_elapsed_ns must be a list of positive numbers",
    ),
    "latency-a-list": (
        _broken(lambda d: d["benchmarks"][0]["extra_info"].update(latency_ns=[1])),
        "latency_ns must map series names to summaries",
    ),
    "libraries-null": (
        _broken(lambda d: d["machine_info"]["anybench"].update(libraries=None)),
        "anybench machine info 'libraries' is not a mapping",
    ),
    "empty": (_broken(lambda d: d.update(benchmarks=[])), "holds no benchmarks"),
    "no-extra-info": (
        _broken(lambda d: d["benchmarks"][1].update(extra_info={})),
        r"benchmark test_scenario\[spawn-10-trio\] lacks anybench extra info \(scenario, runtime",
    ),
}


@pytest.mark.parametrize("kind", BAD_FILES)
def test_bad_file_is_named_and_left_untouched(tmp_path: Path, kind: str) -> None:
    content, message = BAD_FILES[kind]
    path = _write(tmp_path, f"{kind}.json", content)
    before = path.read_bytes()
    with pytest.raises(ResultsError, match=message) as info:
        load(path)
    assert str(info.value).startswith(f"{path}: ")
    assert "\n" not in str(info.value)
    assert path.read_bytes() == before


def test_cli_reports_bad_file_in_one_line_and_still_tables_the_good_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _write(tmp_path, "bad.json", "{")
    good = _write(tmp_path, "good.json", RESULTS)
    assert main(["table", str(bad), str(good)]) == 1
    out, err = capsys.readouterr()
    assert err.count("\n") == 1
    assert err.startswith(f"anybench: {bad}: not valid JSON")
    assert "spawn" in out


def test_save_never_overwrites(tmp_path: Path) -> None:
    source = _write(tmp_path, "run.json", RESULTS)
    results = tmp_path / "results"
    [first] = save(source, results)
    assert first.stat().st_mode & 0o044 == 0o044 & ~current_umask(), "readable as umask allows"
    [second] = save(source, results)
    assert first.name == "20261125T101112_box_cpython3.11.json"
    assert second.name == "20261125T101112_box_cpython3.11-2.json"
    assert first.read_bytes() == second.read_bytes()
    assert json.loads(first.read_bytes()) == json.loads(source.read_bytes()), "nothing changed"
    assert first.read_bytes() == json.dumps(RESULTS, separators=(",", ":")).encode() + b"\n"
    assert {p.name for p in results.iterdir()} == {first.name, second.name}


def test_an_interleaved_run_of_two_variants_is_saved_as_two_files(tmp_path: Path) -> None:
    data = copy.deepcopy(RESULTS)
    data["machine_info"]["anybench"]["run_id"] = "abc"
    for bench, variant in zip(data["benchmarks"], ["old", "old", "new", "new"], strict=True):
        bench["extra_info"]["variant"] = variant
        bench["extra_info"]["libraries"] = {"anyio": "4.13.0" if variant == "old" else "4.16.0"}
    source = _write(tmp_path, "run.json", data)
    old, new = save(source, tmp_path / "results")
    assert old.name.endswith("_old.json")
    assert new.name.endswith("_new.json")
    runs = load(old), load(new)
    assert [len(run.records) for run in runs] == [2, 2]
    assert [run.anybench_info["libraries"]["anyio"] for run in runs] == ["4.13.0", "4.16.0"]
    assert runs[0].run_id == runs[1].run_id == "abc"
    assert source.read_bytes() == _write(tmp_path, "again.json", data).read_bytes()


def test_a_run_of_two_variants_whose_one_measured_nothing_keeps_its_label_and_failures(
    tmp_path: Path,
) -> None:
    """bench_ab against a base whose workers could not start: only the head has benchmarks.
    Its file is still the head's (not taken for a plain run by "the newest results file"),
    and the base's failures stay in it."""
    data = copy.deepcopy(RESULTS)
    data["machine_info"]["anybench"]["run_id"] = "abc"
    for bench in data["benchmarks"]:
        bench["extra_info"]["variant"] = "head"
        bench["name"] = bench["name"].replace("]", "-head]")
    failed = {"test": "test_scenario[spawn-10-asyncio-base]", "error": "worker exited"}
    data["anybench_run"] = {"failed": [failed]}
    [head] = save(_write(tmp_path, "run.json", data), tmp_path / "results")
    assert head.name.endswith("_head.json")
    run = load(head)
    assert len(run.records) == len(RESULTS["benchmarks"])
    assert run.run_info["failed"] == [failed]


def test_save_refuses_a_bad_file_and_writes_nothing(tmp_path: Path) -> None:
    source = _write(tmp_path, "run.json", {"benchmarks": []})
    with pytest.raises(ResultsError):
        save(source, tmp_path / "results")
    assert not (tmp_path / "results").exists()


def test_comparison_table(tmp_path: Path) -> None:
    data = _broken(
        lambda d: d["machine_info"]["anybench"].update(
            failed=[{"test": "test_scenario[mixed-10-trio]", "error": "hung"}]
        )
    )
    table = comparison_table(load(_write(tmp_path, "run.json", data)))
    lines = table.splitlines()
    assert lines[0].split() == ["scenario", "N", "asyncio", "trio"]
    assert lines[2].split() == ["spawn", "10", "1", "µs", "1.5", "µs", "(1.50x)"]
    assert lines[3].split() == ["spawn", "1,000", "800", "ns", "400", "ns", "(0.50x)"]
    assert "skipped uvloop: uvloop is not installed" in table
    assert "FAILED test_scenario[mixed-10-trio]: hung" in table


def test_comparison_table_marks_a_mechanism_of_its_own(tmp_path: Path) -> None:
    """A figure made with a mechanism of its own on its runtime carries † in the terminal table
    too, with the caveat under it."""
    data = _broken(
        lambda d: d["benchmarks"][3]["extra_info"].update(caveat="trio queues it itself")
    )
    lines = comparison_table(load(_write(tmp_path, "run.json", data))).splitlines()
    assert lines[2].split()[-1] == "(1.50x)"  # spawn N=10 on trio: no caveat
    assert lines[3].split()[-2:] == ["(0.50x)", "†"]
    assert "† trio queues it itself." in lines


def test_committed_results_files_of_earlier_formats_still_load() -> None:
    """Format 1 and 2 kept the run's figures in the machine info: they are read from there."""
    files = sorted((Path(__file__).parent.parent / "results").glob("*.json"))
    assert files
    # Counts files (…_counts.json) sit beside the results; they have their own reader.
    for path in (p for p in files if not p.name.endswith("_counts.json")):
        run = load(path)
        assert run.records, path
        assert run.run_id or run.anybench_info["format"] == 1, path
        assert run.failed == list(run.machine_info["anybench"].get("failed", [])), path


def test_run_figures_live_outside_the_machine_info(tmp_path: Path) -> None:
    data = copy.deepcopy(RESULTS)
    info = data["machine_info"]["anybench"]
    moved = {key: info.pop(key) for key in list(info) if key in ("timer_cost_ns", "failed")}
    data["anybench_run"] = {**moved, "run_id": "r1", "partial": "interrupted"}
    path = tmp_path / "new.json"
    path.write_text(json.dumps(data))
    run = load(path)
    assert run.run_id == "r1"
    assert run.partial == "interrupted"
    assert run.anybench_info["timer_cost_ns"] == moved["timer_cost_ns"]
    assert "run_id" not in run.machine_info["anybench"]
    data["anybench_run"] = ["not", "a", "mapping"]
    path.write_text(json.dumps(data))
    with pytest.raises(ResultsError, match="'anybench_run' is not a mapping"):
        load(path)
