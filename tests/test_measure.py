"""Worker processes: the interleaving order, the hard deadline, and process-level statistics.

Behaviour only: which workers run in which order, what a killed worker reports, and which
synthetic differences the statistics call significant. No timing is asserted.
"""

from __future__ import annotations

import math
import random
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from anybench import _measure
from anybench._harness import RoundResult
from anybench._measure import (
    Group,
    Plan,
    Variant,
    measure_group,
    measure_matrix,
    pass_order,
    rotation_order,
    scenario_groups,
)
from anybench._protocol import (
    Begin,
    Done,
    Event,
    Failed,
    Finished,
    Hello,
    Job,
    Round,
    ScaleJob,
    decode_event,
    encode_job,
)
from anybench._stats import benjamini_hochberg, paired_log_ratio, welch_log_ratio
from anybench._sweep import PROFILES, Budget
from anybench._worker import MEDIAN_ROUNDS, Warmup, rounds_for, stops_early


def _plan(**budget: Any) -> Plan:
    """A plan of this budget (the rest of it the defaults), and no other bound."""
    return Plan(budget=Budget(**budget))


def test_rotation_order_alternates_direction() -> None:
    workers = ["asyncio", "uvloop", "trio"]
    assert rotation_order(workers, 0) == ["asyncio", "uvloop", "trio"]
    assert rotation_order(workers, 1) == ["trio", "uvloop", "asyncio"]
    assert rotation_order(workers, 2) == ["asyncio", "uvloop", "trio"]


def _fake_worker(calls: list[tuple[list[str], str]], spread: float | dict[str, float]) -> Any:
    rng = random.Random(1)

    def run_worker(variant: Variant, job: Job) -> Iterator[Event]:
        calls.append((list(job.runtimes), variant.label))
        yield Hello(name="x", pid=1, python="3.x", implementation="CPython", libraries={})
        for scale_job in job.scales:
            n = scale_job.n
            for runtime in scale_job.runtimes:
                yield Begin(n=n, runtime=runtime, kind="throughput", deadline_s=60.0)
                loose = spread if isinstance(spread, float) else spread[runtime]
                for _ in range(3):
                    elapsed = int(1e6 * (1 + loose * rng.random()))
                    yield Round(
                        n=n,
                        runtime=runtime,
                        kind="throughput",
                        n_round=n,
                        ops=100,
                        elapsed_ns=elapsed,
                        passes=1,
                    )
                yield Finished(n=n, runtime=runtime)
        yield Done()

    return run_worker


def test_each_group_gets_a_worker_per_variant_in_each_pass_in_turn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A group is one scale of a scenario: each pass gives it one worker per variant, the
    variants and the runtimes forward in even passes and backward in odd ones."""
    calls: list[tuple[list[str], str]] = []
    monkeypatch.setattr(_measure, "run_worker", _fake_worker(calls, spread=0.0))
    keys = [(n, rt, v) for n in (10, 100) for rt in ("trio", "asyncio") for v in ("a", "b")]
    variants = {"a": Variant("a"), "b": Variant("b")}
    results = measure_group(
        "x", keys, _plan(processes=3, max_processes=3), variants,
        runtime_order=["asyncio", "trio"], pairing="alternate",
    )  # fmt: skip
    forward, backward = ["asyncio", "trio"], ["trio", "asyncio"]
    # Two groups (N=10, N=100) a pass, in whichever order the pass drew.
    assert calls == [
        *[(forward, "a"), (forward, "b")] * 2,
        *[(backward, "b"), (backward, "a")] * 2,
        *[(forward, "a"), (forward, "b")] * 2,
    ]
    for m in results.values():
        assert len(m.processes) == 3  # one list of rounds per process
        assert all(len(rounds) == 3 for rounds in m.processes)
        assert m.process_passes == [1, 2, 3]


def test_latency_rounds_stop_at_the_budgets_largest_n(monkeypatch: pytest.MonkeyPatch) -> None:
    """``latency_max_n``: the first process of a group above it has no latency rounds; the
    memory round still runs at the scenario's largest N (capped by ``memory_max_n``)."""
    jobs: list[ScaleJob] = []
    fake = _fake_worker([], spread=0.0)

    def run_worker(variant: Variant, job: Job) -> Iterator[Event]:
        jobs.extend(job.scales)
        yield from fake(variant, job)

    monkeypatch.setattr(_measure, "run_worker", run_worker)
    keys = [(n, "asyncio", "") for n in (10, 100, 1000)]
    plan = _plan(processes=2, max_processes=2, latency_every_process=False, latency_max_n=100,
                 memory_max_n=100)  # fmt: skip
    measure_group("x", keys, plan, {"": Variant("")}, runtime_order=["asyncio"])
    [first_pass, second_pass] = jobs[:3], jobs[3:]
    assert {job.n: job.latency_rounds for job in first_pass} == {10: 1, 100: 1, 1000: 0}
    assert {job.n: job.memory_n for job in first_pass} == {10: None, 100: None, 1000: 100}
    assert [(job.latency_rounds, job.memory_n) for job in second_pass] == [(0, None)] * 3


def _matrix_worker(calls: list[tuple[str, int, str]], spread: dict[str, float]) -> Any:
    """A fake worker that notes (scenario, N, variant) of each job, gives each process a pid
    of its own, and fails every benchmark of a scenario whose spread is negative."""
    rng = random.Random(2)
    pids = iter(range(1000, 10**6))

    def run_worker(variant: Variant, job: Job) -> Iterator[Event]:
        [scale_job] = job.scales
        n = scale_job.n
        calls.append((job.scenario_module, n, variant.label))
        yield Hello(name="x", pid=next(pids), python="3.x", implementation="C", libraries={})
        loose = spread.get(job.scenario_module, 0.0)
        for runtime in scale_job.runtimes:
            yield Begin(n=n, runtime=runtime, kind="throughput", deadline_s=60.0)
            if loose < 0:
                yield Failed(n=n, runtime=runtime, error=f"{job.scenario_module} broke")
                continue
            for _ in range(3):
                elapsed = int(1e6 * (1 + loose * rng.random()))
                yield Round(
                    n=n,
                    runtime=runtime,
                    kind="throughput",
                    n_round=n,
                    ops=100,
                    elapsed_ns=elapsed,
                    passes=1,
                )
            yield Finished(n=n, runtime=runtime)
        yield Done()

    return run_worker


def _groups(*scenarios: str) -> list[Group]:
    keys = [(n, rt, "") for n in (10, 100) for rt in ("asyncio", "trio")]
    return [group for name in scenarios for group in scenario_groups(name, keys)]


def _passes(calls: list[tuple[str, int, str]], per_pass: int) -> list[list[tuple[str, int]]]:
    groups = [(scenario, n) for scenario, n, _ in calls]
    return [groups[i : i + per_pass] for i in range(0, len(groups), per_pass)]


def test_a_benchmarks_processes_are_spread_over_passes_in_shuffled_orders(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each pass gives every (scenario, N) group one worker, the groups in an order drawn
    afresh for the pass: a benchmark's processes lie in different passes, at different places,
    and the same seed gives the same order."""
    calls: list[tuple[str, int, str]] = []
    monkeypatch.setattr(_measure, "run_worker", _matrix_worker(calls, {}))
    groups = _groups("a", "b", "c")  # six groups
    plan = _plan(processes=3, max_processes=3)
    results = measure_matrix(groups, plan, {"": Variant()}, seed="run-1")
    passes = _passes(calls, 6)
    assert len(passes) == 3
    for order in passes:
        assert sorted(order) == sorted((g.scenario, g.n) for g in groups)
    assert len({tuple(order) for order in passes}) == 3, "the order is drawn afresh each pass"
    for group, found in zip(groups, results, strict=True):
        for m in found.values():
            assert m.process_passes == [1, 2, 3]
            positions = [order.index((group.scenario, group.n)) + 1 for order in passes]
            assert m.process_positions == positions
            assert len(set(m.process_ids)) == 3  # three different workers
    # Reproducible from the seed; another seed draws another order.
    again: list[tuple[str, int, str]] = []
    monkeypatch.setattr(_measure, "run_worker", _matrix_worker(again, {}))
    measure_matrix(groups, plan, {"": Variant()}, seed="run-1")
    assert again == calls
    assert pass_order(6, 3, "run-1") == [
        [groups.index(next(g for g in groups if (g.scenario, g.n) == sn)) for sn in order]
        for order in passes
    ]
    assert pass_order(6, 3, "run-2") != pass_order(6, 3, "run-1")


def test_loose_groups_get_later_passes_and_tight_ones_do_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[str, int, str]] = []
    monkeypatch.setattr(_measure, "run_worker", _matrix_worker(calls, {"loose": 0.5}))
    groups = _groups("tight", "loose")
    plan = _plan(processes=3, max_processes=5, precision=1e-6)
    results = measure_matrix(groups, plan, {"": Variant()}, seed=7)
    for group, found in zip(groups, results, strict=True):
        wanted = [1, 2, 3, 4, 5] if group.scenario == "loose" else [1, 2, 3]
        for m in found.values():
            assert m.process_passes == wanted
    # Passes 4 and 5 hold the loose groups only, one worker each.
    assert sorted(calls[12:]) == sorted([("loose", 10, ""), ("loose", 100, "")] * 2)
    assert len(calls) == 16


def test_a_failed_group_does_not_stop_the_others_and_is_not_retried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[str, int, str]] = []
    settled: list[tuple[str, tuple[int, str, str], int, str | None]] = []
    monkeypatch.setattr(_measure, "run_worker", _matrix_worker(calls, {"broken": -1.0}))
    groups = _groups("broken", "fine")
    results = measure_matrix(
        groups,
        _plan(processes=3, max_processes=3),
        {"": Variant()},
        on_process=lambda g, key, m: settled.append((g.scenario, key, len(m.processes), m.failure)),
    )
    for group, found in zip(groups, results, strict=True):
        for m in found.values():
            if group.scenario == "broken":
                assert m.failure == "broken broke"
                assert not m.processes
            else:
                assert m.failure is None
                assert len(m.processes) == 3
    assert [c for c in calls if c[0] == "broken"] == [("broken", 10, ""), ("broken", 100, "")]
    # Each worker's figures are handed on as it settles them: the failures once, each fine
    # benchmark once per process.
    assert sorted(s for s in settled if s[0] == "broken") == [
        ("broken", (n, rt, ""), 0, "broken broke") for n in (10, 100) for rt in ("asyncio", "trio")
    ]
    assert (
        sorted(count for name, _, count, _ in settled if name == "fine")
        == [1] * 4 + [2] * 4 + [3] * 4
    )


def _warmup(passes: int, wall_s: float, n: int = 100) -> Warmup:
    """A runtime warmed up at N with *passes* passes a round, each round taking *wall_s*."""
    return Warmup(RoundResult(ops=n * passes, elapsed_ns=n * passes * 1_000, passes=passes),
                  passes, wall_s)  # fmt: skip


def test_short_passes_get_three_rounds_where_one_rotation_does_not_make_the_worker_late() -> None:
    # timers at N = 100 in `quick`: 13 passes of a set-up that waits, four runtimes; the budget
    # of a process is 0.67 s; a rotation of 0.6 s gave two rounds (the budget's), now three
    quick = PROFILES["quick"].budget
    assert rounds_for(100, [_warmup(13, 0.15) for _ in range(4)], quick) == (3, MEDIAN_ROUNDS)
    # a rotation past the budget but short of making the worker late (twice it): three still
    assert rounds_for(100, [_warmup(13, 0.17) for _ in range(4)], quick) == (3, MEDIAN_ROUNDS)
    # as in bench_versions, whose six processes halve a process's budget to 0.33 s: anyio 4.13's
    # timers took 0.5 s a rotation there, and one round, where anyio 4.16's took three
    versions = replace(quick, processes=6)
    assert rounds_for(100, [_warmup(10, 0.125) for _ in range(4)], versions) == (3, MEDIAN_ROUNDS)
    # a rotation that alone makes the worker late: one round (the process is the unit of every
    # interval)
    assert rounds_for(100, [_warmup(13, 0.34) for _ in range(4)], quick) == (1, 1)
    assert rounds_for(100, [_warmup(13, 0.5) for _ in range(4)], quick) == (1, 1)
    # a single long pass is not raised: one round at N = 10,000 stays one round
    long_regions = [_warmup(1, 0.1, n=10_000) for _ in range(4)]
    assert rounds_for(10_000, long_regions, quick) == (1, 1)
    # where the budget asks for more anyway (20,000 operations over 3 processes: 6 rounds of
    # 1,300), the three are the least a late worker stops at
    cheap = [_warmup(13, 0.01) for _ in range(4)]
    assert rounds_for(100, cheap, quick) == (6, MEDIAN_ROUNDS)
    # and never more than the budget's most
    capped = replace(quick, max_rounds=2)
    assert rounds_for(100, [_warmup(13, 0.1) for _ in range(4)], capped) == (2, 2)


def test_fixed_rounds_are_exact() -> None:
    # --rounds 2 where a rotation is past the budget: two still, not lowered to one
    fixed = PROFILES["quick"].budget.overridden(rounds=2)
    assert rounds_for(100, [_warmup(13, 0.5) for _ in range(4)], fixed) == (2, 2)
    assert rounds_for(100, [_warmup(13, 0.1) for _ in range(4)], fixed) == (2, 2)


def test_a_late_worker_stops_after_an_even_number_of_rotations_from_the_least() -> None:
    allowed = 1.0
    late, on_time = 2.5 * allowed, 1.5 * allowed
    assert not stops_early(2, 6, 1, on_time, allowed)
    assert stops_early(2, 6, 1, late, allowed)
    assert not stops_early(3, 6, 1, late, allowed)  # odd: the first runtime led twice
    assert not stops_early(2, 6, 3, late, allowed)  # below the least
    assert not stops_early(3, 6, 3, late, allowed)  # the least, odd: rounded up to four
    assert stops_early(4, 6, 3, late, allowed)
    assert not stops_early(6, 6, 3, late, allowed)  # all done: nothing to stop


def test_a_worker_alternates_the_runtimes_round_by_round() -> None:
    """Within one process the runtimes take turns, forward then backward, so that a slow
    process or a slow minute falls on all of them alike."""
    job = Job(
        scenario_module="scenarios.done_callback",
        sys_path=(str(Path(__file__).resolve().parent.parent),),
        runtimes=("asyncio", "trio"),
        plan=Plan(
            budget=Budget(
                target_ops=10**9, time_budget_s=60.0, processes=1, min_rounds=4, max_rounds=4
            ),
            deadline_s=60,
        ),
        scales=(ScaleJob(n=10, runtimes=("asyncio", "trio"), latency_rounds=1),),
    )
    proc = subprocess.run(
        [sys.executable, "-m", "anybench._worker"],
        input=encode_job(job),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    events = [decode_event(line) for line in proc.stdout.splitlines()]
    rounds = [(e.kind, e.runtime) for e in events if isinstance(e, Round)]
    timed = [rt for kind, rt in rounds if kind == "throughput"]
    assert timed == ["asyncio", "trio", "trio", "asyncio", "asyncio", "trio", "trio", "asyncio"]
    # Warm-ups come before every timed round, latency rounds after them.
    kinds = [kind for kind, _ in rounds]
    assert kinds.index("throughput") > max(i for i, k in enumerate(kinds) if k == "warmup")
    assert sorted(rt for kind, rt in rounds if kind == "latency") == ["asyncio", "trio"]
    assert [e.runtime for e in events if isinstance(e, Finished)] == ["asyncio", "trio"]
    assert isinstance(events[0], Hello)
    assert isinstance(events[-1], Done)


def test_loose_benchmarks_get_more_processes_up_to_the_maximum(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[list[str], str]] = []
    monkeypatch.setattr(_measure, "run_worker", _fake_worker(calls, spread=0.5))
    results = measure_group(
        "x",
        [(10, "asyncio", "")],
        _plan(processes=3, max_processes=5, precision=1e-6),
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
        "x", keys, _plan(processes=3, max_processes=5, precision=1e-6), {"": Variant()}
    )
    assert len(calls) == 5
    assert [len(results[key].processes) for key in keys] == [5, 5]


def test_tight_benchmarks_stop_at_the_minimum(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[list[str], str]] = []
    monkeypatch.setattr(_measure, "run_worker", _fake_worker(calls, spread=0.0))
    measure_group("x", [(10, "asyncio", "")], _plan(processes=3, max_processes=5), {"": Variant()})
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
    tmp_path: Path, name: str, body: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The parent kills a round at its deadline plus this margin (2 s, for a loaded machine):
    # a smaller one here kills the same way, in 1 s per N rather than 2.5.
    monkeypatch.setattr(_measure, "KILL_MARGIN_S", 0.5)
    (tmp_path / f"hostile_{name}.py").write_text(
        textwrap.dedent(HOSTILE.format(name=name, body=body))
    )
    plan = Plan(Budget(processes=2, max_processes=2), deadline_s=0.5)
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
    plan = Plan(Budget(processes=2, max_processes=2), memory_limit_bytes=500 * 2**20)
    results = measure_group(
        "scenarios.done_callback", [(5_000_000, "asyncio", "")], plan, {"": Variant()}
    )
    failure = results[(5_000_000, "asyncio", "")].failure
    assert failure is not None
    assert failure.startswith("done_callback on asyncio at N=5,000,000: projected memory")
    assert "over the limit of 0.5 GiB; choose a smaller N or raise --memory-limit" in failure


def test_a_worker_that_cannot_start_fails_its_benchmarks_and_is_not_retried() -> None:
    """A worker that dies before its first round (here: no such scenario module) would die the
    same way in a fresh one: every benchmark it had fails, with the reason, and the group ends."""
    plan = _plan(processes=2, max_processes=2)
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


EXITS = """
'''A scenario that ends its own process, to test that a worker's exit is a failure, once.'''
import os
import sys

NAME = "{name}"
OPERATION = "nothing"
LATENCIES = {{}}


async def run(n, probe):
    probe.start(ops=n)
    {body}
    probe.stop()
"""


@pytest.mark.parametrize(("name", "body"), [("sysexit", "sys.exit(0)"), ("osexit", "os._exit(0)")])
def test_a_scenario_that_exits_its_worker_fails_each_benchmark_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, body: str
) -> None:
    """A worker that exits (status 0) without its result is not handed the same work again and
    again: the benchmark in its round fails by name, with the likely cause."""
    (tmp_path / f"exits_{name}.py").write_text(textwrap.dedent(EXITS.format(name=name, body=body)))
    started: list[Job] = []
    real = _measure.run_worker

    def counting(variant: Variant, job: Job) -> Iterator[Event]:
        started.append(job)
        if len(started) > 20:
            raise AssertionError("the same work is handed out again and again")
        return real(variant, job)

    monkeypatch.setattr(_measure, "run_worker", counting)
    keys = [(5, "asyncio", ""), (5, "trio", ""), (7, "asyncio", "")]
    results = measure_group(
        f"exits_{name}",
        keys,
        _plan(processes=2, max_processes=2, target_ops=10, time_budget_s=0.1),
        {"": Variant()},
        sys_path=[str(tmp_path)],
    )
    for n, runtime, _ in keys:
        failure = results[(n, runtime, "")].failure
        assert failure is not None
        assert failure.startswith(f"{name} on {runtime} at N={n}: a warmup round: ")
        assert "the worker exited (status 0) before finishing it" in failure
        assert "sys.exit() or os._exit()" in failure
    assert len(started) == len(keys)  # one worker per benchmark, each failing it once


def test_a_worker_that_says_done_too_soon_fails_what_it_left(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker that ends its job without settling a benchmark would do so again: the group
    ends, and the benchmark fails saying so, rather than being handed out forever."""
    calls: list[Job] = []

    def lazy(variant: Variant, job: Job) -> Iterator[Event]:
        calls.append(job)
        yield Hello(name="lazy", pid=1, python="3.x", implementation="CPython", libraries={})
        yield Done()

    monkeypatch.setattr(_measure, "run_worker", lazy)
    results = measure_group(
        "lazy", [(10, "asyncio", "")], _plan(processes=2, max_processes=2), {"": Variant()}
    )
    failure = results[(10, "asyncio", "")].failure
    assert failure is not None
    assert failure.startswith("lazy on asyncio at N=10: the worker said it was done without")
    assert len(calls) == 1


RAISES = """
'''A scenario with a bug in it.'''
import anyio

NAME = "buggy"
OPERATION = "nothing"
LATENCIES = {}


def helper(n):
    return {}[n]  # the user's line that raises


async def child(n):
    helper(n)


async def run(n, probe):
    probe.start(ops=n)
    async with anyio.create_task_group() as tg:
        tg.start_soon(child, n)
    probe.stop()
"""


def test_a_failure_shows_the_scenarios_own_line_not_anybench_s(tmp_path: Path) -> None:
    (tmp_path / "buggy.py").write_text(textwrap.dedent(RAISES))
    results = measure_group(
        "buggy",
        [(3, "asyncio", "")],
        _plan(processes=2, max_processes=2),
        {"": Variant()},
        sys_path=[str(tmp_path)],
    )
    failure = results[(3, "asyncio", "")].failure
    assert failure is not None
    headline, where, source = failure.splitlines()
    # One line first, naming the benchmark and the exception (inside the task group's).
    assert headline == "buggy on asyncio at N=3: KeyError: 3"
    assert where == f'  File "{tmp_path / "buggy.py"}", line 11, in helper'
    assert source == "    return {}[n]  # the user's line that raises"
    assert "anybench" not in failure.replace(str(tmp_path), "")


def test_a_failed_check_points_at_the_scenarios_check(tmp_path: Path) -> None:
    (tmp_path / "checked.py").write_text(
        textwrap.dedent(
            """
            from anybench import check

            NAME = "checked"
            OPERATION = "nothing"
            LATENCIES = {}


            async def run(n, probe):
                probe.start(ops=n)
                probe.stop()
                check(n > 100, f"only {n}")
            """
        )
    )
    results = measure_group(
        "checked",
        [(3, "trio", "")],
        _plan(processes=2, max_processes=2),
        {"": Variant()},
        sys_path=[str(tmp_path)],
    )
    failure = results[(3, "trio", "")].failure
    assert failure is not None
    headline, where, source = failure.splitlines()
    assert headline == "checked on trio at N=3: only 3"
    assert where.endswith('checked.py", line 12, in run')
    assert source == '    check(n > 100, f"only {n}")'


def test_a_records_pass_order_is_read_back_and_checked() -> None:
    from anybench._results import read_record

    extra = {
        "scenario": "x",
        "runtime": "asyncio",
        "scale": 10,
        "ops_per_round": 10,
        "rounds": 2,
        "ns_per_op": 6.0,  # the geometric mean of the process medians, 4.5 and 8 ns/op
        "process_round_elapsed_ns": [[45], [80]],
        "round_elapsed_ns": [45, 80],
        "process_ids": [7, 8],
        "process_passes": [1, 3],
        "process_positions": [4, 1],
    }
    record = read_record("x", extra)
    assert record.process_passes == (1, 3)
    assert record.process_positions == (4, 1)
    with pytest.raises(ValueError, match="process_passes names 1 processes, but 2 have rounds"):
        read_record("x", {**extra, "process_passes": [1]})
    with pytest.raises(ValueError, match="process_positions must be a list of whole numbers"):
        read_record("x", {**extra, "process_positions": [0, 1]})
