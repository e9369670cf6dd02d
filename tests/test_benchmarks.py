"""The benchmark matrix end to end, at tiny scale: pytest-benchmark records, extra info, errors.

These run ``pytest benchmarks`` in a subprocess, as ``nox -s bench`` does. They check what is
recorded, never how fast anything was.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

import scenarios
from anybench import RUNTIMES
from anybench._results import load
from anybench._table import comparison_table

from .conftest import expected_ops, run_benchmarks


@pytest.fixture(scope="module")
def tiny_run(tiny_results: Path) -> tuple[Path, dict[str, Any]]:
    return tiny_results, json.loads(tiny_results.read_text())


def test_matrix_is_complete(tiny_run: tuple[Path, dict[str, Any]]) -> None:
    _, data = tiny_run
    available = [name for name, rt in RUNTIMES.items() if rt.unavailable_reason() is None]
    got = {
        (b["extra_info"]["scenario"], b["extra_info"]["n"], b["extra_info"]["runtime"])
        for b in data["benchmarks"]
    }
    scales = {"n": (3, 40), "load": (0, 3)}
    assert got == {
        (s.NAME, n, rt)
        for s in scenarios.ALL
        for n in scales[getattr(s, "AXIS", "n")]
        for rt in available
    }


def test_records_carry_per_op_figures_and_latency(tiny_run: tuple[Path, dict[str, Any]]) -> None:
    _, data = tiny_run
    for bench in data["benchmarks"]:
        extra = bench["extra_info"]
        name = bench["name"]
        assert bench["group"] == f"{extra['scenario']} N={extra['n']}", name
        scenario = scenarios.BY_NAME[extra["scenario"]]
        ops = extra["ops_per_round"]
        assert ops == expected_ops(scenario, extra["n"]), name
        assert len(extra["round_elapsed_ns"]) == extra["rounds"] == bench["stats"]["rounds"], name
        # pytest-benchmark's statistics are per operation, from the in-loop time only.
        per_op_s = sorted(e / ops / 1e9 for e in extra["round_elapsed_ns"])
        assert bench["stats"]["min"] == pytest.approx(per_op_s[0]), name
        assert bench["stats"]["max"] == pytest.approx(per_op_s[-1]), name
        assert bench["stats"]["median"] * 1e9 == pytest.approx(extra["ns_per_op"]), name
        assert set(extra["latency_ns"]) == set(scenario.LATENCIES), name
        for summary in extra["latency_ns"].values():
            assert summary["count"] == extra["rounds"] * ops, name
            assert summary["min"] <= summary["p50"] <= summary["p90"] <= summary["p99"], name
            assert summary["p99"] <= summary["p99_9"] <= summary["max"], name


def test_machine_info_and_table(tiny_run: tuple[Path, dict[str, Any]]) -> None:
    path, data = tiny_run
    info = data["machine_info"]["anybench"]
    assert info["timer_cost_ns"] > 0
    assert info["libraries"]["anyio"]
    assert info["failed"] == []
    table = comparison_table(load(path))
    for scenario in scenarios.ALL:
        assert scenario.NAME in table


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--runtime", "asyncio,tokio"],
            "unknown runtime 'tokio'; choose from: asyncio, uvloop, trio",
        ),
        (["--scenario", "nope"], "unknown scenario 'nope'; choose from: spawn, done_callback"),
        (["--profile", "huge"], "unknown profile 'huge'; choose from: quick, default, full"),
        (["--scales", "ten"], "--scales takes integers of at least 1"),
        (["--loads", "-1"], "--loads takes integers of at least 0"),
    ],
)
def test_bad_choice_is_one_clear_line(args: list[str], message: str) -> None:
    proc = run_benchmarks(*args)
    assert proc.returncode == 4
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_hung_benchmark_fails_by_name_and_the_rest_is_saved(tmp_path: Path) -> None:
    (tmp_path / "hang_mixed.py").write_text(
        textwrap.dedent(
            """
            import anyio
            import scenarios.mixed

            async def hang(n, probe):
                await anyio.sleep_forever()

            def pytest_configure(config):
                scenarios.mixed.run = hang
            """
        )
    )
    out = tmp_path / "run.json"
    proc = run_benchmarks(
        "-p",
        "hang_mixed",
        "--scenario",
        "spawn,mixed",
        "--scales",
        "2",
        "--runtime",
        "asyncio",
        "--deadline",
        "0.2",
        f"--benchmark-json={out}",
        env_path=tmp_path,
    )
    assert proc.returncode == 1, proc.stdout[-2000:]
    run = load(out)
    assert [(r.scenario, r.runtime) for r in run.records] == [("spawn", "asyncio")]
    [failure] = run.failed
    assert "mixed-2-asyncio" in failure["test"]
    assert "mixed on asyncio at N=2 did not finish within 0.2 s" in failure["error"]
