"""The benchmark matrix end to end, at tiny scale: pytest-benchmark records, extra info, errors.

These run anybench's own scenarios in a subprocess, through the pytest command ``anybench run``
(and so ``nox -s bench``) builds. They check what is recorded, never how fast anything was.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import textwrap
from pathlib import Path
from typing import Any

import pytest

import scenarios
from anybench import RUNTIMES, ScenarioSpec
from anybench._results import RUN_KEYS, load
from anybench._run import pytest_command
from anybench._sweep import scale_text
from anybench._table import comparison_table

from .conftest import ROOT, SCENARIOS, expected_ops, run_benchmarks


@pytest.fixture(scope="module")
def tiny_run(tiny_results: Path) -> tuple[Path, dict[str, Any]]:
    return tiny_results, json.loads(tiny_results.read_text())


def test_matrix_is_complete(tiny_run: tuple[Path, dict[str, Any]]) -> None:
    _, data = tiny_run
    available = [name for name, rt in RUNTIMES.items() if rt.unavailable_reason() is None]
    got = {
        (b["extra_info"]["scenario"], b["extra_info"]["scale"], b["extra_info"]["runtime"])
        for b in data["benchmarks"]
    }
    scales = {"n": (40, 400), "load": (0, 3)}
    assert got == {
        (s.NAME, n, rt)
        for s in scenarios.ALL
        for n in scales[ScenarioSpec.of(s).axis]
        for rt in available
    }


def test_records_carry_per_op_figures_and_latency(tiny_run: tuple[Path, dict[str, Any]]) -> None:
    _, data = tiny_run
    for bench in data["benchmarks"]:
        extra = bench["extra_info"]
        name = bench["name"]
        assert (
            bench["group"] == f"{extra['scenario']} {scale_text(extra['axis'], extra['scale'])}"
        ), name
        scenario = scenarios.BY_NAME[extra["scenario"]]
        ops = extra["ops_per_round"]
        assert ops == expected_ops(scenario, extra["scale"]) * extra["passes_per_round"], name
        per_process = extra["process_round_elapsed_ns"]
        assert len(per_process) == extra["processes"] >= 2, name
        assert sum(map(len, per_process)) == extra["rounds"] == bench["stats"]["rounds"], name
        # pytest-benchmark's statistics are per operation, from the timed rounds only.
        per_op_s = sorted(e / ops / 1e9 for rounds in per_process for e in rounds)
        assert bench["stats"]["min"] == pytest.approx(per_op_s[0]), name
        assert bench["stats"]["max"] == pytest.approx(per_op_s[-1]), name
        medians = [statistics.median(rounds) / ops for rounds in per_process]
        assert extra["ns_per_op"] == pytest.approx(statistics.geometric_mean(medians)), name
        assert set(extra["latency_ns"]) == set(scenario.LATENCIES), name
        for summary in extra["latency_ns"].values():
            # one latency round per process, every operation stamped
            assert summary["count"] == extra["processes"] * ops, name
            assert len(summary["rounds"]) == extra["processes"], name
            assert summary["min"] <= summary["p50"] <= summary["p90"] <= summary["max"], name
            assert "p99_9" not in summary or summary["count"] >= 10_000, name


def test_machine_info_and_table(tiny_run: tuple[Path, dict[str, Any]]) -> None:
    path, data = tiny_run
    machine = data["machine_info"]["anybench"]
    assert machine["libraries"]["anyio"]
    # What changes from run to run is kept out of the machine info, which pytest-benchmark
    # compares between runs (--benchmark-compare).
    assert not set(machine) & set(RUN_KEYS)
    info = data["anybench_run"]
    assert info["timer_cost_ns"] > 0
    assert info["failed"] == []
    assert info["run_id"]
    # when measuring began, to the second; the file's own date is when it was written, after
    run = load(path)
    assert run.started is not None
    assert run.when == (run.started, "started")
    written = dt.datetime.fromisoformat(data["datetime"])
    if written.tzinfo is None:  # written without a zone: UTC, as pytest-benchmark writes it
        written = written.replace(tzinfo=dt.timezone.utc)
    assert dt.timedelta(0) <= written - run.started < dt.timedelta(minutes=10)
    table = comparison_table(run)
    for scenario in scenarios.ALL:
        assert scenario.NAME in table


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--runtime", "asyncio,tokio"],
            "unknown runtime 'tokio'; choose from: asyncio, uvloop, trio",
        ),
        (
            ["--scenario", "nope"],
            "unknown scenario 'nope'; choose from: await_future, await_future_native,",
        ),
        (["--profile", "huge"], "unknown profile 'huge'; choose from: quick, default, full"),
        (["--scales", "ten"], "--scales takes integers of at least 1"),
        (["--loads", "-1"], "--loads takes integers of at least 0"),
        (["--scales", "10,10"], "--scales '10,10' gives 10 twice; give each value once"),
        (["--loads", "0,,10"], "--loads '0,,10' has an empty item"),
        (["--runtime="], "--runtime '' names nothing"),
        (["--scenario=,"], "--scenario ',' names nothing"),
        (["--deadline", "nan"], "--deadline takes a positive number of seconds up to 86400"),
        (["--scenario", "spawn", "--scales", "1000000000"], "no benchmark to run"),
        (["--processes", "1"], "--processes takes 2 to 1000, not 1"),
        (["--processes", "99999999999999999999"], "--processes takes 2 to 1000, not 9999"),
        (["--max-processes", "1001"], "--max-processes takes 2 to 1000, not 1001"),
        (["--rounds", "1000000000"], "--rounds takes 1 to 10000, not 1000000000"),
        (["--rounds", "0"], "--rounds takes 1 to 10000, not 0"),
        (
            ["--processes", "5", "--max-processes", "2"],
            "--max-processes 2 is fewer than --processes 5; give at least as many",
        ),
        (["--deadline", "86401"], "--deadline takes a positive number of seconds up to 86400"),
        (["--deadline", "inf"], "--deadline takes a positive number of seconds up to 86400"),
        (["--memory-limit", "0"], "--memory-limit takes a positive number of MiB up to "),
        (["--memory-limit", "1e12"], "--memory-limit takes a positive number of MiB up to "),
        (["--variant", "x"], "--variant takes LABEL=PYTHON"),
        (["--benchmark-disable-gc"], "--benchmark-disable-gc is not supported"),
        (
            ["--benchmark-json=/proc/nope/x.json"],
            "--benchmark-json /proc/nope/x.json: cannot write there (no directory /proc/nope); "
            "choose a path in a directory you can write to",
        ),
        (
            ["--benchmark-disable"],
            "anybench measures in worker processes; --benchmark-disable would record nothing: "
            "leave it out",
        ),
        (
            ["--benchmark-only"],
            "--benchmark-only would skip every anybench benchmark (pytest-benchmark takes them "
            "for other tests): leave it out",
        ),
    ],
)
def test_bad_choice_is_one_clear_line(
    args: list[str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Collection only: a choice that is wrongly taken must not start a run that never ends.
    # In this process (pytest.main, the plugin loaded from its entry point as in a run of its
    # own): a pytest start-up each would be half a second; the command line itself is
    # test_a_bad_choice_from_the_command_line_is_one_clear_line.
    monkeypatch.chdir(ROOT)
    command = pytest_command([str(SCENARIOS)], None, [*args, "--collect-only", "-q"])
    assert command[1:3] == ["-m", "pytest"]
    assert pytest.main(command[3:]) == 4
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_a_bad_choice_from_the_command_line_is_one_clear_line() -> None:
    proc = run_benchmarks("--runtime", "asyncio,tokio", "--collect-only", "-q")
    assert proc.returncode == 4
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("ERROR: unknown runtime 'tokio'; choose from: asyncio, uvloop, trio")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("await anyio.Event().wait()", "did not finish within 0.5 s"),  # cooperative deadline
        ("while True: pass", "did not finish within 0.5 s (worker killed)"),  # never yields
    ],
)
def test_a_hung_benchmark_fails_by_name_and_the_rest_is_saved(
    tmp_path: Path, body: str, reason: str
) -> None:
    # Every worker imports sitecustomize from PYTHONPATH at start-up: mixed hangs there.
    (tmp_path / "sitecustomize.py").write_text(
        textwrap.dedent(
            f"""
            import sys

            if "anybench._worker" in sys.orig_argv:
                import anyio
                import scenarios.mixed

                async def hang(n, probe):
                    probe.start(ops=n)
                    {body}

                scenarios.mixed.run = hang
            """
        )
    )
    out = tmp_path / "run.json"
    proc = run_benchmarks(
        "--scenario",
        "spawn,mixed",
        "--scales",
        "2",
        "--runtime",
        "asyncio",
        "--deadline",
        "0.5",
        *("--processes", "2", "--max-processes", "2", "--rounds", "2"),
        f"--benchmark-json={out}",
        env_path=tmp_path,
    )
    assert proc.returncode == 1, proc.stdout[-2000:]
    run = load(out)
    assert [(r.scenario, r.runtime) for r in run.records] == [("spawn", "asyncio")]
    [failure] = run.failed
    assert "mixed-2-asyncio" in failure["test"]
    assert failure["error"].startswith("anybench._probe.ScenarioFailed: mixed on asyncio at N=2")
    assert reason in failure["error"]


def test_benchmarks_refuse_to_run_side_by_side_under_xdist() -> None:
    proc = run_benchmarks(
        "-n", "2", "--scenario", "spawn", "--scales", "10", "--runtime", "asyncio"
    )
    assert proc.returncode == 1, proc.stdout[-2000:]
    assert "anybench benchmarks do not run under pytest-xdist (-n)" in proc.stdout
    assert "1 error" in proc.stdout.splitlines()[-1]
