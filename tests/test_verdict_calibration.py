"""Whether an A/B run's intervals and verdicts mean what they say, on synthetic machines.

An A/B run (``nox -s bench_versions``) gives a group more passes while a ratio between the
variants, paired by pass, is wider than ±5%: it stops on what it has seen. A rule that stops on
the data can bend the intervals it stops on, so these tests run the real pass scheduler
(:func:`anybench._measure.measure_matrix`, its workers replaced by a model of this machine's
noise) and the real verdicts (:func:`anybench._verdicts.compare_runs`) many times over, and
count: how often a 95% interval misses the true ratio, how often an A/A comparison (the same
code on both sides) claims a change, and how often a real change of 10% is found.

The noise is the kind measured here (README, "A/B runs"): each pass's minute moves both
variants by up to ±35% (which the pairing cancels), a whole worker process by a few percent
more with all its runtimes, and one process in twenty runs 20-50% slow throughout. Seeded:
the counts are the same on every run of the tests. No timing is measured.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from anybench import _measure
from anybench._measure import Measurement, Plan, Variant, measure_matrix, scenario_groups
from anybench._protocol import Begin, Done, Event, Finished, Hello, Job, Round
from anybench._results import Record, Run
from anybench._stats import geometric_mean
from anybench._sweep import Budget
from anybench._verdicts import compare_runs

RUNTIMES = ("asyncio", "uvloop", "trio", "rloop")
#: As ``bench_versions`` runs: 6 passes a group, up to 48 while a paired ratio is wider than ±5%.
BUDGET = Budget(processes=6, max_processes=48, pair_precision=0.05)
OPS = 1000
ROUNDS = 3


class NoisyMachine:
    """Workers whose figures follow the noise model above; variant b's figures of the
    scenarios in *changed* are *change* times a's."""

    def __init__(self, seed: int, changed: frozenset[str] = frozenset(), change: float = 1.0):
        self.rng = random.Random(seed)
        self.changed, self.change = changed, change
        self.minutes: dict[tuple[str, int], float] = {}
        self.calls: dict[tuple[str, str], int] = {}
        self.pid = 0

    def _minute(self, scenario: str, k: int) -> float:
        # Both variants' k-th workers of a group ran back to back: the same minute.
        return self.minutes.setdefault((scenario, k), self.rng.uniform(-0.35, 0.35))

    def run_worker(self, variant: Variant, job: Job) -> Iterator[Event]:
        scenario = job.scenario_module
        k = self.calls.get((scenario, variant.label), 0)
        self.calls[(scenario, variant.label)] = k + 1
        rng = self.rng
        state = self._minute(scenario, k) + rng.gauss(0, 0.02)
        if rng.random() < 0.05:
            state += rng.uniform(0.2, 0.5)  # a process that runs slow throughout
        factor = self.change if variant.label == "b" and scenario in self.changed else 1.0
        self.pid += 1
        yield Hello(name="x", pid=self.pid, python="3", implementation="C", libraries={})
        [scale] = job.scales
        for runtime in scale.runtimes:
            level = 1000 * (1 + RUNTIMES.index(runtime)) * factor
            own = rng.gauss(0, 0.01)
            yield Begin(n=scale.n, runtime=runtime, kind="throughput", deadline_s=60.0)
            for _ in range(ROUNDS):
                ns = level * math.exp(state + own + rng.gauss(0, 0.01))
                yield Round(n=scale.n, runtime=runtime, kind="throughput", n_round=scale.n,
                            ops=OPS, elapsed_ns=round(ns * OPS), passes=1)  # fmt: skip
            yield Finished(n=scale.n, runtime=runtime)
        yield Done()


def _record(scenario: str, m: Measurement) -> Record:
    processes = tuple(tuple(e / m.ops_per_round for e in rounds) for rounds in m.processes)
    return Record(
        scenario=scenario,
        runtime=m.runtime,
        n=m.n,
        ns_per_op=geometric_mean(m.process_medians_ns_per_op()),  # as write_extra_info
        rounds=sum(map(len, processes)),
        ops_per_round=m.ops_per_round,
        round_ns_per_op=tuple(v for rounds in processes for v in rounds),
        processes=processes,
        process_ids=tuple(m.process_ids),
        process_passes=tuple(m.process_passes),
        process_positions=tuple(m.process_positions),
        variant=m.variant,
    )


def _ab_run(
    monkeypatch: pytest.MonkeyPatch, machine: NoisyMachine, scenarios: int, seed: int
) -> tuple[Run, Run, list[int]]:
    """One A/B run of *scenarios* groups of four runtimes on *machine*: the two variants' runs,
    and how many passes each group took."""
    monkeypatch.setattr(_measure, "run_worker", machine.run_worker)
    names = [f"s{i}" for i in range(scenarios)]
    groups = [
        group
        for name in names
        for group in scenario_groups(name, [(10, rt, v) for rt in RUNTIMES for v in "ab"])
    ]
    # Its machine models workers one after another, as `alternate` places them.
    found = measure_matrix(
        groups, Plan(BUDGET), {"a": Variant("a"), "b": Variant("b")}, seed=seed,
        pairing="alternate",
    )  # fmt: skip
    records: dict[str, list[Record]] = {"a": [], "b": []}
    passes = []
    for name, measured in zip(names, found, strict=True):
        for (_, _, label), m in measured.items():
            records[label].append(_record(name, m))
        passes.append(len(measured[(10, "asyncio", "a")].processes))
    old, new = (
        Run(Path(f"{label}.json"), records[label], {}, {}, "2026-01-01", {"run_id": "r"})
        for label in "ab"
    )
    return old, new, passes


def test_a_a_runs_claim_nothing_and_their_intervals_hold_despite_stopping_on_the_data(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """20 A/A runs of 16 groups (1,280 ratios): about 5% of the 95% intervals exclude no
    change, as they should, though many groups stopped as soon as their intervals were narrow
    enough; not one comparison claims a change; and with no minimum change (``--min-change
    0``), Benjamini-Hochberg alone lets at most a comparison or two in twenty claim one (it
    holds the chance of any false claim in a comparison of no changes to 5%)."""
    missed = rows = 0
    passes: list[int] = []
    claimed_without_minimum = 0
    for seed in range(20):
        old, new, taken = _ab_run(monkeypatch, NoisyMachine(seed), scenarios=16, seed=seed)
        passes += taken
        changes, _, _, _ = compare_runs(old, new)
        assert {c.ratio.method for c in changes} == {"pass"}
        assert [c.verdict for c in changes if c.verdict != "not significant"] == []
        rows += len(changes)
        missed += sum(1 for c in changes if not c.ratio.low <= 1.0 <= c.ratio.high)
        bare, _, _, _ = compare_runs(old, new, min_change=0.0)
        claimed_without_minimum += any(c.verdict != "not significant" for c in bare)
    assert rows == 20 * 16 * 4
    # The stopping rule was at work: groups stopped at 6 passes, at the cap, and in between.
    assert min(passes) == 6
    assert max(passes) == BUDGET.max_processes
    assert any(6 < p < BUDGET.max_processes for p in passes)
    # 95% intervals: 64 misses expected (45 here; the rows of a group share their processes,
    # so the count moves more than a binomial's). Intervals of the normal's 1.96 in place of
    # t's quantile would miss 89.
    assert 0.025 <= missed / rows <= 0.065, f"{missed} of {rows} intervals missed the truth"
    # Without Benjamini-Hochberg, 15 of these 20 comparisons claimed changes (49 rows) at a cap
    # of 24 passes (until 2026-12-05).
    assert claimed_without_minimum <= 2


def test_a_b_runs_find_a_ten_percent_change_and_nothing_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same machine, variant b 10% slower on half the scenarios (320 ratios changed, 320
    not): the changed rows' intervals hold the true 1.10 about 95% of the time, most of them
    come out "slower" and none "faster", and no unchanged row is flagged. What is missed is
    missed honestly: a row whose interval reaches down to +2% or below (after one of the slow
    processes, at the cap), or whose p-value is a few percent, where Benjamini-Hochberg across
    the run's 64 rows holds it back (seeded: 295 of 320 found; 267 at a cap of 24 passes)."""
    changed = frozenset(f"s{i}" for i in range(0, 16, 2))
    verdicts: dict[bool, list[str]] = {True: [], False: []}
    missed = 0
    for seed in range(10):
        machine = NoisyMachine(100 + seed, changed, 1.10)
        old, new, _ = _ab_run(monkeypatch, machine, scenarios=16, seed=seed)
        changes, _, _, _ = compare_runs(old, new)
        for change in changes:
            is_changed = change.key[0] in changed
            verdicts[is_changed].append(change.verdict)
            truth = 1.10 if is_changed else 1.0
            missed += not change.ratio.low <= truth <= change.ratio.high
    assert set(verdicts[False]) == {"not significant"}
    assert set(verdicts[True]) == {"slower", "not significant"}
    found = verdicts[True].count("slower")
    assert found >= 0.75 * len(verdicts[True]), f"{found} of 320 changed rows found slower"
    rows = len(verdicts[True]) + len(verdicts[False])
    assert 0.025 <= missed / rows <= 0.08, f"{missed} of {rows} intervals missed the truth"
