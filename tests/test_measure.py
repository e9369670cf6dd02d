"""Worker processes: the interleaving order, the hard deadline, and process-level statistics.

Behaviour only: which workers run in which order, what a killed worker reports, and which
synthetic differences the statistics call significant. No timing is asserted.
"""

from __future__ import annotations

import math
import random
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from anybench import _measure
from anybench._measure import Plan, Variant, measure_group, rotation_order
from anybench._stats import benjamini_hochberg, welch_log_ratio


def test_rotation_order_alternates_direction() -> None:
    workers = ["asyncio", "uvloop", "trio"]
    assert rotation_order(workers, 0) == ["asyncio", "uvloop", "trio"]
    assert rotation_order(workers, 1) == ["trio", "uvloop", "asyncio"]
    assert rotation_order(workers, 2) == ["asyncio", "uvloop", "trio"]


def _fake_worker(calls: list[tuple[str, str]], spread: float) -> Any:
    rng = random.Random(1)

    def run_worker(variant: Variant, job: dict[str, Any], plan: Plan) -> Iterator[dict[str, Any]]:
        calls.append((job["runtime"], variant.label))
        yield {"event": "hello", "python": "3.x", "libraries": {}}
        for spec in job["scales"]:
            yield {"event": "begin", "n": spec["n"], "kind": "throughput", "deadline_s": 1}
            for _ in range(3):
                elapsed = int(1e6 * (1 + spread * rng.random()))
                yield {
                    "event": "round",
                    "n": spec["n"],
                    "kind": "throughput",
                    "ops": 100,
                    "elapsed_ns": elapsed,
                    "passes": 1,
                }
            yield {"event": "finished", "n": spec["n"]}
        yield {"event": "done"}

    return run_worker


def test_workers_of_a_group_rotate_over_runtimes_and_variants(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[str, str]] = []
    monkeypatch.setattr(_measure, "run_worker", _fake_worker(calls, spread=0.0))
    keys = [(n, rt, v) for n in (10, 100) for rt in ("asyncio", "trio") for v in ("a", "b")]
    variants = {"a": Variant("a"), "b": Variant("b")}
    results = measure_group(
        "x", keys, Plan(processes=3, max_processes=3), variants, runtime_order=["asyncio", "trio"]
    )
    forward = [("asyncio", "a"), ("asyncio", "b"), ("trio", "a"), ("trio", "b")]
    assert calls == forward + forward[::-1] + forward
    for m in results.values():
        assert len(m.processes) == 3  # one list of rounds per process
        assert all(len(rounds) == 3 for rounds in m.processes)


def test_loose_benchmarks_get_more_processes_up_to_the_maximum(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[str, str]] = []
    monkeypatch.setattr(_measure, "run_worker", _fake_worker(calls, spread=0.5))
    results = measure_group(
        "x",
        [(10, "asyncio", "")],
        Plan(processes=3, max_processes=5, precision=1e-6),
        {"": Variant()},
    )
    assert len(calls) == 5
    assert len(results[(10, "asyncio", "")].processes) == 5


def test_tight_benchmarks_stop_at_the_minimum(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str]] = []
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
