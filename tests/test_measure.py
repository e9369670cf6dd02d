"""Worker processes: the interleaving order, the hard deadline, and process-level statistics.

Behaviour only: which workers run in which order, what a killed worker reports, and which
synthetic differences the statistics call significant. No timing is asserted.
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from anybench import _measure
from anybench._measure import Plan, Variant, measure_group, rotation_order
from anybench._stats import benjamini_hochberg, paired_log_ratio, welch_log_ratio


def test_rotation_order_alternates_direction() -> None:
    workers = ["asyncio", "uvloop", "trio"]
    assert rotation_order(workers, 0) == ["asyncio", "uvloop", "trio"]
    assert rotation_order(workers, 1) == ["trio", "uvloop", "asyncio"]
    assert rotation_order(workers, 2) == ["asyncio", "uvloop", "trio"]


def _fake_worker(calls: list[tuple[list[str], str]], spread: float | dict[str, float]) -> Any:
    rng = random.Random(1)

    def run_worker(variant: Variant, job: dict[str, Any], plan: Plan) -> Iterator[dict[str, Any]]:
        calls.append((job["runtimes"], variant.label))
        yield {"event": "hello", "python": "3.x", "libraries": {}}
        for spec in job["scales"]:
            for runtime in spec["runtimes"]:
                n = spec["n"]
                yield {"event": "begin", "n": n, "runtime": runtime, "kind": "throughput"}
                loose = spread if isinstance(spread, float) else spread[runtime]
                for _ in range(3):
                    elapsed = int(1e6 * (1 + loose * rng.random()))
                    yield {
                        "event": "round",
                        "n": n,
                        "runtime": runtime,
                        "kind": "throughput",
                        "ops": 100,
                        "elapsed_ns": elapsed,
                        "passes": 1,
                    }
                yield {"event": "finished", "n": n, "runtime": runtime}
        yield {"event": "done"}

    return run_worker


def test_workers_of_a_group_rotate_over_variants_each_on_every_runtime(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[list[str], str]] = []
    monkeypatch.setattr(_measure, "run_worker", _fake_worker(calls, spread=0.0))
    keys = [(n, rt, v) for n in (10, 100) for rt in ("trio", "asyncio") for v in ("a", "b")]
    variants = {"a": Variant("a"), "b": Variant("b")}
    results = measure_group(
        "x", keys, Plan(processes=3, max_processes=3), variants, runtime_order=["asyncio", "trio"]
    )
    forward, backward = ["asyncio", "trio"], ["trio", "asyncio"]
    assert calls == [
        (forward, "a"),
        (forward, "b"),
        (backward, "b"),
        (backward, "a"),
        (forward, "a"),
        (forward, "b"),
    ]
    for m in results.values():
        assert len(m.processes) == 3  # one list of rounds per process
        assert all(len(rounds) == 3 for rounds in m.processes)


def test_a_worker_alternates_the_runtimes_round_by_round() -> None:
    """Within one process the runtimes take turns, forward then backward, so that a slow
    process or a slow minute falls on all of them alike."""
    job = {
        "scenario": "scenarios.done_callback",
        "sys_path": [str(Path(__file__).resolve().parent.parent)],
        "runtimes": ["asyncio", "trio"],
        "deadline_s": 60,
        "memory_limit_bytes": None,
        "scales": [
            {
                "n": 10,
                "runtimes": ["asyncio", "trio"],
                "plan": {
                    "target_ops": 10**9,
                    "time_budget_s": 60.0,
                    "processes": 1,
                    "min_rounds": 4,
                    "max_rounds": 4,
                },
                "latency_rounds": 1,
                "memory": False,
            }
        ],
    }
    proc = subprocess.run(
        [sys.executable, "-m", "anybench._worker"],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    rounds = [(e["kind"], e["runtime"]) for e in events if e["event"] == "round"]
    timed = [rt for kind, rt in rounds if kind == "throughput"]
    assert timed == ["asyncio", "trio", "trio", "asyncio", "asyncio", "trio", "trio", "asyncio"]
    # Warm-ups come before every timed round, latency rounds after them.
    kinds = [kind for kind, _ in rounds]
    assert kinds.index("throughput") > max(i for i, k in enumerate(kinds) if k == "warmup")
    assert sorted(rt for kind, rt in rounds if kind == "latency") == ["asyncio", "trio"]
    assert [e["runtime"] for e in events if e["event"] == "finished"] == ["asyncio", "trio"]


def test_loose_benchmarks_get_more_processes_up_to_the_maximum(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[list[str], str]] = []
    monkeypatch.setattr(_measure, "run_worker", _fake_worker(calls, spread=0.5))
    results = measure_group(
        "x",
        [(10, "asyncio", "")],
        Plan(processes=3, max_processes=5, precision=1e-6),
        {"": Variant()},
    )
    assert len(calls) == 5
    assert len(results[(10, "asyncio", "")].processes) == 5


def test_the_runtimes_of_a_scale_get_more_processes_together(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One loose runtime keeps the others of its scale measured too: their ratios stay over
    the same processes."""
    calls: list[tuple[list[str], str]] = []
    spread = {"asyncio": 0.0, "trio": 0.5}
    monkeypatch.setattr(_measure, "run_worker", _fake_worker(calls, spread=spread))
    keys = [(10, "asyncio", ""), (10, "trio", "")]
    results = measure_group(
        "x", keys, Plan(processes=3, max_processes=5, precision=1e-6), {"": Variant()}
    )
    assert len(calls) == 5
    assert [len(results[key].processes) for key in keys] == [5, 5]


def test_tight_benchmarks_stop_at_the_minimum(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[list[str], str]] = []
    monkeypatch.setattr(_measure, "run_worker", _fake_worker(calls, spread=0.0))
    measure_group("x", [(10, "asyncio", "")], Plan(processes=3, max_processes=5), {"": Variant()})
    assert len(calls) == 3


HOSTILE = """
'''A scenario that never yields or blocks, to test the hard deadline.'''
import time

NAME = "{name}"
OPERATION = "nothing"
LATENCIES = {{}}


async def run(n, probe):
    probe.start(ops=n)
    {body}
    probe.stop()
"""


@pytest.mark.parametrize(
    ("name", "body"),
    [("spins", "while True: pass"), ("blocks", "time.sleep(3600)")],
)
def test_a_scenario_that_never_yields_is_killed_by_name(
    tmp_path: Path, name: str, body: str
) -> None:
    (tmp_path / f"hostile_{name}.py").write_text(
        textwrap.dedent(HOSTILE.format(name=name, body=body))
    )
    plan = Plan(processes=2, max_processes=2, deadline_s=0.5)
    results = measure_group(
        f"hostile_{name}",
        [(5, "asyncio", ""), (7, "asyncio", "")],
        plan,
        {"": Variant("", sys.executable)},
        sys_path=[str(tmp_path), *sys.path],
    )
    for n in (5, 7):  # the first N is killed; the next N still runs (and is killed in turn)
        failure = results[(n, "asyncio", "")].failure
        assert failure is not None
        assert failure.startswith(f"{name} on asyncio at N={n}: a warmup round")
        assert "did not finish within 0.5 s (worker killed)" in failure


def test_a_shift_is_significant_and_none_is_not() -> None:
    rng = random.Random(7)
    base = [100 * math.exp(rng.gauss(0, 0.03)) for _ in range(5)]
    same = [100 * math.exp(rng.gauss(0, 0.03)) for _ in range(5)]
    slower = [130 * math.exp(rng.gauss(0, 0.03)) for _ in range(5)]
    assert not welch_log_ratio(base, same).significant
    shifted = welch_log_ratio(base, slower)
    assert shifted.significant
    assert shifted.low > 1.1
    assert shifted.p_above(0.10) < 0.05
    assert welch_log_ratio(base, same).p_above(0.10) > 0.5


def test_drift_between_runs_widens_the_interval() -> None:
    base, other = [100.0, 101.0, 99.0], [112.0, 113.0, 111.0]
    plain = welch_log_ratio(base, other)
    assert plain.low > 1.05
    widened = welch_log_ratio(base, other, extra_var=0.1**2, extra_df=10)
    assert widened.low < 1.0 < widened.high
    corrected = welch_log_ratio(base, other, shift=math.log(1.12))
    assert corrected.low < 1.0 < corrected.high


def test_one_process_has_no_interval() -> None:
    ratio = welch_log_ratio([100.0], [200.0])
    assert not ratio.known
    assert ratio.floor() == math.inf


def test_benjamini_hochberg_controls_the_false_discovery_rate() -> None:
    assert benjamini_hochberg([0.001, 0.04, 0.03, 0.5]) == [True, False, False, False]
    assert benjamini_hochberg([0.01, 0.02, 0.03]) == [True, True, True]
    assert benjamini_hochberg([]) == []


def test_a_scale_that_cannot_fit_is_refused_before_it_is_built() -> None:
    plan = Plan(processes=2, max_processes=2, memory_limit_bytes=500 * 2**20)
    results = measure_group(
        "scenarios.done_callback", [(5_000_000, "asyncio", "")], plan, {"": Variant()}
    )
    failure = results[(5_000_000, "asyncio", "")].failure
    assert failure is not None
    assert failure.startswith("done_callback on asyncio at N=5000000: projected memory")
    assert "over the limit of 0.5 GiB; choose a smaller N or raise --memory-limit" in failure


def test_a_worker_that_cannot_start_fails_its_benchmarks_and_is_not_retried() -> None:
    """A worker that dies before its first round (here: no such scenario module) would die the
    same way in a fresh one: every benchmark it had fails, with the reason, and the group ends."""
    plan = Plan(processes=2, max_processes=2)
    keys = [(5, "asyncio", ""), (5, "trio", ""), (7, "asyncio", "")]
    results = measure_group("no_such_scenario_module", keys, plan, {"": Variant()})
    for n, runtime, _ in keys:
        failure = results[(n, runtime, "")].failure
        assert failure is not None
        assert failure.startswith(f"no_such_scenario_module on {runtime} at N={n}: starting")
        assert "the worker exited with status 1" in failure


def test_a_paired_ratio_sees_through_slow_processes() -> None:
    """Each process ran at its own speed (up to 2x apart), both runtimes alike, and one runtime
    is 10% slower in every process: paired by process, the 10% is clear; unpaired, the
    processes' spread hides it."""
    rng = random.Random(3)
    speeds = [math.exp(rng.uniform(0, math.log(2))) for _ in range(5)]
    base = [100 * s * math.exp(rng.gauss(0, 0.01)) for s in speeds]
    other = [110 * s * math.exp(rng.gauss(0, 0.01)) for s in speeds]
    paired = paired_log_ratio(list(zip(base, other, strict=True)))
    assert paired.significant
    assert 1.05 < paired.low < paired.ratio < paired.high < 1.15
    assert not welch_log_ratio(base, other).significant
    assert paired.ratio == pytest.approx(welch_log_ratio(base, other).ratio)
