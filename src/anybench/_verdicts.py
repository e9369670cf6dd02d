"""Verdicts: how two records compare (a ratio with its interval), and how one run compares with
another (drift, significance, regressions).

Statistics only: this module writes no report or terminal text (the text of ``anybench compare``
is :mod:`anybench._compare`'s) and knows nothing of columns (:mod:`anybench._layout`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from ._results import Record, Run
from ._stats import (
    LogRatio,
    benjamini_hochberg,
    once_by_pass,
    paired_log_ratio,
    process_medians,
    robust_spread,
    welch_log_ratio,
)

#: How a ratio's interval was made (:attr:`Ratio.method`): Welch's t over the two sides'
#: processes; paired by process (two runtimes measured in the same workers); paired by pass
#: (two variants of one run, their workers of a pass back to back); paired by pass, the two
#: workers of each pass at the same moment (``--pairing duet``); paired by pass, the two
#: workers of each pass alive at once and their rounds taking turns (``--pairing lockstep``).
WELCH, BY_PROCESS, BY_PASS, BY_DUET, BY_TURNS = "welch", "process", "pass", "duet", "turns"

#: The smallest change compare calls "slower" or "faster": its interval must lie wholly beyond
#: ±2%. Two environments of the same code differ by about that much here for reasons that are
#: not the code under test (what else they import, where their files lie): in interleaved
#: A/B runs of anyio 4.13.0 against 4.16.0, native baselines (which use no anyio) came out
#: 1-3% apart with intervals that excluded no change (README, "A/B runs").
MIN_CHANGE = 0.02


@dataclass(frozen=True)
class Ratio:
    """``other / baseline`` of ns/op, with its 95% interval at the process level.

    The unit is one worker process (the median of its rounds); the interval is Welch's t on
    the logs of those (see :func:`anybench._stats.welch_log_ratio`), or the paired t over the
    log ratios of pairs of processes that ran together (:meth:`within_run`,
    :meth:`between_variants`). Records with a single process each (format-1 files) have no
    interval: ``known`` is false.
    """

    log: LogRatio
    #: How the interval was made: WELCH, BY_PROCESS, BY_PASS, BY_DUET or BY_TURNS.
    method: str = WELCH
    #: The pairs it was made over (0 for Welch).
    pairs: int = 0
    #: Why some processes were left out of the pairing, or why it fell back to Welch ("": none).
    note: str = ""

    @property
    def paired(self) -> bool:
        return self.method != WELCH

    @property
    def ratio(self) -> float:
        return self.log.ratio

    @property
    def low(self) -> float:
        return self.log.low

    @property
    def high(self) -> float:
        return self.log.high

    @property
    def known(self) -> bool:
        return self.log.known

    @property
    def significant(self) -> bool:
        return self.log.known and self.log.significant

    @classmethod
    def of(cls, baseline: Record, other: Record, **drift: float) -> Ratio:
        return cls(welch_log_ratio(_values(baseline), _values(other), **drift))

    @classmethod
    def within_run(cls, baseline: Record, other: Record) -> Ratio:
        """Two runtimes' records of one scale of one run: paired process by process where they
        were measured in the same worker processes (their rounds taking turns), so that a slow
        process cancels out; else as :meth:`of`."""
        pairs = shared_processes(baseline, other)
        if len(pairs) >= 2:
            return cls(paired_log_ratio(pairs), BY_PROCESS, len(pairs))
        return cls.of(baseline, other)

    @classmethod
    def between_variants(cls, baseline: Record, other: Record, *, by_turns: bool = False) -> Ratio:
        """Two variants' records of one benchmark of one run: paired by pass, the baseline's
        process of pass k with the other's of pass k (they ran back to back, or at the same
        moment), so that what the minutes of the run do to the machine cancels out of the
        ratio. A process with no partner in its pass (a pass that gave one variant a process
        and not the other, or a failed process) is left out, and the note says so; with fewer
        than two pairs, Welch's t over all the processes (see :meth:`of`), with a note.
        *by_turns*: the run says its variants' workers took turns (``--pairing lockstep``),
        which shared their place in each pass as a duet's do."""
        pairs, lone = pass_pairs(baseline, other)
        if len(pairs) < 2:
            why = (
                "its processes carry no pass numbers"
                if not pairs and not any(lone)
                else f"only {len(pairs)} pass{'' if len(pairs) == 1 else 'es'} had both"
            )
            return cls(cls.of(baseline, other).log, note=f"not paired ({why}): Welch's t")
        left = [
            f"pass{'es' if len(passes) > 1 else ''} {', '.join(map(str, passes))} of {side}"
            for side, passes in zip(("old", "new"), lone, strict=True)
            if passes
        ]
        note = f"left out of the pairing, having no partner: {'; '.join(left)}" if left else ""
        together = _same_moment(baseline, other, [k for k, _, _ in pairs])
        return cls(
            paired_log_ratio([(a, b) for _, a, b in pairs]),
            (BY_TURNS if by_turns else BY_DUET) if together else BY_PASS,
            len(pairs),
            note,
        )

    def __str__(self) -> str:
        if not self.known:
            return f"{self.ratio:.2f}x [one process: no interval]"
        mark = "" if self.significant else " ~"
        return f"{self.ratio:.2f}x [{self.low:.2f}–{self.high:.2f}]{mark}"


def _values(record: Record) -> list[float]:
    return record.process_medians or [record.ns_per_op]


def shared_processes(baseline: Record, other: Record) -> list[tuple[float, float]]:
    """(baseline, other) per-process medians of the worker processes both records came from,
    known by pid (files of format 2 and earlier have none: no pairs)."""
    if len(baseline.process_ids) != len(baseline.processes):
        return []
    if len(other.process_ids) != len(other.processes):
        return []
    mine = dict(zip(baseline.process_ids, baseline.process_medians, strict=True))
    return [
        (mine[pid], value)
        for pid, value in zip(other.process_ids, other.process_medians, strict=True)
        if pid in mine
    ]


def _by_pass(record: Record) -> tuple[dict[int, tuple[float, int]], list[int]]:
    """A record's processes by pass: (median ns/op, position) for each pass that has one
    process, and the passes that are no use for a pairing (two processes in one pass)."""
    if not record.process_passes or len(record.process_passes) != len(record.processes):
        return {}, []
    positions = record.process_positions
    if len(positions) != len(record.processes):
        positions = (0,) * len(record.processes)
    return once_by_pass(
        (number, (median, position))
        for number, rounds, position in zip(
            record.process_passes, record.processes, positions, strict=True
        )
        for median in process_medians([rounds])
    )


def pass_pairs(
    baseline: Record, other: Record
) -> tuple[list[tuple[int, float, float]], tuple[list[int], list[int]]]:
    """(pass, baseline, other) per-process medians of the passes in which both records have a
    process, and the passes of each that have no partner in the other. Records without pass
    numbers (made before runs were made in passes) give neither."""
    mine, doubled_mine = _by_pass(baseline)
    theirs, doubled_theirs = _by_pass(other)
    pairs = [(k, mine[k][0], theirs[k][0]) for k in sorted(mine) if k in theirs]
    lone_mine = sorted({*(k for k in mine if k not in theirs), *doubled_mine})
    lone_theirs = sorted({*(k for k in theirs if k not in mine), *doubled_theirs})
    return pairs, (lone_mine, lone_theirs)


def _same_moment(baseline: Record, other: Record, passes: Sequence[int]) -> bool:
    """Whether the two records' workers of every one of *passes* shared their position in the
    pass: they ran at the same moment (``--pairing duet``), not one after the other."""
    mine, _ = _by_pass(baseline)
    theirs, _ = _by_pass(other)
    return all(mine[k][1] == theirs[k][1] != 0 for k in passes)


def same_run_variants(old: Run, new: Run) -> bool:
    """Whether *old* and *new* are two variants of one run (files that share a run's id): their
    processes of a pass ran beside each other, and pair."""
    if not old.run_id or old.run_id != new.run_id:
        return False
    variants_old = {record.variant for record in old.records}
    variants_new = {record.variant for record in new.records}
    return not variants_old & variants_new


def variant_pairing(runs: Sequence[Run]) -> str | None:
    """How the variants of one run among *runs* met in each pass: BY_DUET when every pass's
    workers of a benchmark's variants shared their place (they ran at the same moment; BY_TURNS
    where the run says they took turns, ``--pairing lockstep``), else BY_PASS (one after the
    other); None when *runs* hold no two variants of one run."""
    by_turns = {run.run_id for run in runs if run.pairing == "lockstep"}
    by_run: dict[str, dict[tuple[str, int, str], list[Record]]] = {}
    for run in runs:
        for record in run.records:
            if run.run_id:
                by_key = by_run.setdefault(run.run_id, {})
                by_key.setdefault((record.scenario, record.n, record.runtime), []).append(record)
    found = None
    for run_id, by_key in by_run.items():
        for records in by_key.values():
            for a, b in itertools.pairwise(records):
                if a.variant == b.variant:
                    continue
                pairs, _ = pass_pairs(a, b)
                if not pairs:
                    continue
                if not _same_moment(a, b, [k for k, _, _ in pairs]):
                    return BY_PASS
                found = BY_TURNS if run_id in by_turns else BY_DUET
    return found


def machines_differ(old: Run, new: Run) -> list[str]:
    """What differs between the machines and software of two runs (empty when comparable)."""
    differences = []
    for key, label in (
        ("node", "machine"),
        ("python_version", "Python"),
        ("python_implementation", "Python implementation"),
    ):
        a, b = old.machine_info.get(key), new.machine_info.get(key)
        if a != b:
            differences.append(f"{label}: {a} -> {b}")
    cpu_a = (old.machine_info.get("cpu") or {}).get("brand_raw")
    cpu_b = (new.machine_info.get("cpu") or {}).get("brand_raw")
    if cpu_a != cpu_b:
        differences.append(f"CPU: {cpu_a} -> {cpu_b}")
    libs_a = old.anybench_info.get("libraries", {})
    libs_b = new.anybench_info.get("libraries", {})
    for lib in sorted(set(libs_a) | set(libs_b)):
        if libs_a.get(lib) != libs_b.get(lib):
            differences.append(f"{lib}: {libs_a.get(lib)} -> {libs_b.get(lib)}")
    return differences


@dataclass(frozen=True)
class Drift:
    """How two runs made at different times are put on one footing.

    Code under test does not touch the *controls* (the native baselines), so their change from
    one run to the other is the machine's drift: their median log ratio is taken off every
    benchmark (``shift``) and their spread is added to every interval (``var``, with ``df``).
    Without enough controls nothing is taken off, and the spread of all benchmarks widens the
    intervals instead: a uniform change then stays visible, at the price of width.
    """

    shift: float = 0.0
    var: float = 0.0
    df: float = math.inf
    note: str = ""

    def kwargs(self) -> dict[str, float]:
        return {"shift": self.shift, "extra_var": self.var, "extra_df": self.df}


#: Fewest control benchmarks from which the drift between two runs is estimated.
MIN_CONTROLS = 3


def drift_between(old: Run, new: Run, pairs: Sequence[tuple[Record, Record]]) -> Drift:
    """The correction for comparing *old* and *new* (none when one run made both)."""
    if old.run_id and old.run_id == new.run_id:
        return Drift(note="both from one run, interleaved: no drift correction needed")
    logs = {id(o): math.log(Ratio.of(o, n).ratio) for o, n in pairs if not o.unstable}
    controls = [logs[id(o)] for o, n in pairs if o.native_of and id(o) in logs]
    if len(controls) >= MIN_CONTROLS:
        center, spread = robust_spread(controls)
        # The controls ran at their own minutes of the runs; the drift at other minutes can be
        # larger. The robust spread of all benchmarks (most of which did not change) bounds it
        # from below, so the wider of the two widens every interval.
        _, everything = robust_spread(list(logs.values()))
        spread = max(spread, everything)
        return Drift(
            center,
            spread**2,
            len(controls) - 1,
            f"made at different times: the {len(controls)} native baselines, which the code "
            f"under test does not touch, moved by {math.expm1(center):+.1%} (taken off every "
            f"benchmark); the drift's spread, ±{math.expm1(spread):.1%} (the wider of theirs and "
            "that of all benchmarks), is added to every interval",
        )
    if len(logs) >= MIN_CONTROLS:
        _, spread = robust_spread(list(logs.values()))
        return Drift(
            0.0,
            spread**2,
            len(logs) - 1,
            f"made at different times, with no native baselines to control for the machine's "
            f"drift: every interval is widened by the spread of all benchmarks "
            f"(±{math.expm1(spread):.1%}); an interleaved A/B run judges far finer",
        )
    return Drift(
        0.0,
        math.inf,
        1.0,
        "made at different times, with too few benchmarks to estimate the machine's drift: "
        "no verdicts; make an interleaved A/B run instead",
    )


@dataclass(frozen=True)
class Change:
    """One benchmark in two runs, and the verdict on it."""

    key: tuple[str, int, str]
    old: Record
    new: Record
    ratio: Ratio
    verdict: str = ""

    @property
    def p99_change(self) -> float | None:
        """Relative change of the p99 of the first latency series both runs have, if any."""
        for series, summary in self.old.latency_ns.items():
            other = self.new.latency_ns.get(series)
            if other and summary.get("p99") and other.get("p99") is not None:
                return float(other["p99"]) / float(summary["p99"]) - 1
        return None


#: False discovery rate across all benchmarks of a comparison (Benjamini-Hochberg).
FALSE_DISCOVERY_RATE = 0.05


def compare_runs(
    old: Run, new: Run, threshold: float = 0.10, min_change: float = MIN_CHANGE
) -> tuple[list[Change], list[Record], list[Record], Drift]:
    """Match benchmarks of two runs and judge each; return the changes, the records only in old
    and only in new, and the drift correction used.

    A change is a REGRESSION only when its whole 95% interval lies above *threshold* and it
    survives Benjamini-Hochberg at FALSE_DISCOVERY_RATE across all the benchmarks compared;
    "slower" or "faster" only when its interval lies wholly beyond ±*min_change* and that
    survives the same control (pyperf's ``compare_to --min-speed``).
    """
    old_by_key = {(r.scenario, r.n, r.runtime): r for r in old.records}
    new_by_key = {(r.scenario, r.n, r.runtime): r for r in new.records}
    common = [key for key in old_by_key if key in new_by_key]
    drift = drift_between(old, new, [(old_by_key[k], new_by_key[k]) for k in common])
    if same_run_variants(old, new):
        by_turns = "lockstep" in (old.pairing, new.pairing)
        ratios = [
            Ratio.between_variants(old_by_key[k], new_by_key[k], by_turns=by_turns) for k in common
        ]
    else:
        ratios = [Ratio.of(old_by_key[k], new_by_key[k], **drift.kwargs()) for k in common]
    judged = [
        i
        for i, k in enumerate(common)
        if ratios[i].known and not _unstable(old_by_key[k], new_by_key[k])
    ]
    rejected = benjamini_hochberg(
        [ratios[i].log.p_above(threshold) for i in judged], FALSE_DISCOVERY_RATE
    )
    regressions = {i for i, r in zip(judged, rejected, strict=True) if r}
    # "slower" and "faster" are claims too: they face the same false-discovery control.
    changed = benjamini_hochberg(
        [ratios[i].log.p_changed(min_change) for i in judged], FALSE_DISCOVERY_RATE
    )
    changes_found = {i for i, r in zip(judged, changed, strict=True) if r}
    changes = []
    for i, key in enumerate(common):
        ratio = ratios[i]
        if i not in judged:
            verdict = "unstable: not judged" if ratio.known else "no interval: not judged"
        elif i in regressions and ratio.low > 1 + threshold:
            verdict = "REGRESSION"
        elif not ratio.log.beyond(min_change) or i not in changes_found:
            verdict = "not significant"
        else:
            verdict = "slower" if ratio.ratio > 1 else "faster"
        changes.append(Change(key, old_by_key[key], new_by_key[key], ratio, verdict))
    only_old = [record for key, record in old_by_key.items() if key not in new_by_key]
    only_new = [record for key, record in new_by_key.items() if key not in old_by_key]
    return changes, only_old, only_new, drift


def _unstable(old: Record, new: Record) -> bool:
    return bool(old.unstable or new.unstable)
