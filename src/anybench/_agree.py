"""Whether runs agree: ``anybench agree A.json B.json ...``.

A figure is worth publishing only if the next run, on the same machine and code, lands inside
its interval. Per ratio cell (scenario x scale x runtime, the ratio to the baseline runtime
paired by process within each run, as the report computes it: :meth:`anybench._verdicts.Ratio
.within_run`), for every pair of runs, this says whether the two runs differ (Welch's t on
their per-process log ratios, Benjamini-Hochberg across the pair's cells), whether each run's
ratio lies outside the other's 95% interval, and whether the two intervals are disjoint; then
the cells that disagree, worst first. A person runs it to learn how far their machine lets them
trust one run.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from ._escape import terminal, terminal_table
from ._layout import dagger, dagger_notes
from ._results import (
    Record,
    Run,
    differences_text,
    machine_differs,
    moments,
    software_differs,
)
from ._runtimes import BASELINE
from ._stats import benjamini_hochberg, welch_log_ratio
from ._sweep import scale_text
from ._verdicts import Ratio, shared_processes

#: A ratio cell: (scenario, scale, runtime, variant).
Cell = tuple[str, int, str, str]

#: The false discovery rate of "the runs differ".
FDR = 0.05


class AgreeError(ValueError):
    """Runs that cannot be compared cell by cell; the message says why in one line."""


@dataclass(frozen=True)
class CellRatio:
    """One run's ratio to the baseline in one cell: the report's figure and interval, and the
    per-process log ratios it rests on."""

    record: Record
    ratio: Ratio
    #: Per process, log(other / baseline): paired by pid where the runtimes shared their
    #: processes; else each process of *record* against the baseline's mean log.
    logs: tuple[float, ...]


def cell_ratios(run: Run) -> dict[Cell, CellRatio]:
    """Every ratio cell of *run*: each runtime other than the baseline, against the baseline
    of the same scenario, scale and variant."""
    baselines = {
        (r.scenario, r.n, r.variant): r for r in reversed(run.records) if r.runtime == BASELINE
    }
    cells: dict[Cell, CellRatio] = {}
    for record in run.records:
        base = baselines.get((record.scenario, record.n, record.variant))
        cell = (record.scenario, record.n, record.runtime, record.variant)
        if base is None or record.runtime == BASELINE or cell in cells:
            continue
        pairs = shared_processes(base, record)
        if len(pairs) >= 2:
            logs = tuple(math.log(other / mine) for mine, other in pairs)
        else:
            base_values = base.process_medians or [base.ns_per_op]
            base_log = sum(math.log(v) for v in base_values) / len(base_values)
            values = record.process_medians or [record.ns_per_op]
            logs = tuple(math.log(v) - base_log for v in values)
        cells[cell] = CellRatio(record, Ratio.within_run(base, record), logs)
    return cells


@dataclass(frozen=True)
class CellAgreement:
    """One cell in two runs, *a* and *b*."""

    cell: Cell
    a: CellRatio
    b: CellRatio
    #: Two-sided p-value of Welch's t on the two runs' per-process log ratios (1 when a run
    #: has fewer than two processes), and whether it survives Benjamini-Hochberg.
    p: float
    differs: bool

    @property
    def marked(self) -> Record:
        """The record whose caveat (†) the cell carries: a's, or b's where only b says one (a
        file from before a caveat was written down says none)."""
        return self.a.record if self.a.record.caveat or not self.b.record.caveat else self.b.record

    @property
    def shift(self) -> float:
        """b's ratio over a's."""
        return self.b.ratio.ratio / self.a.ratio.ratio

    @property
    def a_outside_b(self) -> bool:
        """Whether a's ratio lies outside b's 95% interval."""
        return _outside(self.a.ratio.ratio, self.b.ratio)

    @property
    def b_outside_a(self) -> bool:
        return _outside(self.b.ratio.ratio, self.a.ratio)

    @property
    def disjoint(self) -> bool:
        """Whether the two 95% intervals do not overlap."""
        a, b = self.a.ratio, self.b.ratio
        return a.known and b.known and (a.high < b.low or b.high < a.low)

    @property
    def disagrees(self) -> bool:
        return self.differs or self.disjoint


def _outside(value: float, ratio: Ratio) -> bool:
    return ratio.known and not ratio.low <= value <= ratio.high


@dataclass(frozen=True)
class PairAgreement:
    """Two runs, cell by cell."""

    a: Run
    b: Run
    cells: list[CellAgreement]

    @property
    def hours_apart(self) -> float | None:
        (start, end), _ = moments([self.a, self.b])
        return None if start is None or end is None else abs(end - start).total_seconds() / 3600

    def worst_first(self) -> list[CellAgreement]:
        """The cells that disagree, the largest shift first."""
        return sorted(
            (c for c in self.cells if c.disagrees), key=lambda c: (-abs(math.log(c.shift)), c.p)
        )


def agree_pair(a: Run, b: Run) -> PairAgreement:
    """*a* and *b*, over the ratio cells they share."""
    ours, theirs = cell_ratios(a), cell_ratios(b)
    common = [cell for cell in ours if cell in theirs]
    p_values = []
    for cell in common:
        left, right = ours[cell].logs, theirs[cell].logs
        if len(left) < 2 or len(right) < 2:
            p_values.append(1.0)
            continue
        test = welch_log_ratio([math.exp(x) for x in left], [math.exp(x) for x in right])
        p_values.append(test.p_changed())
    differs = benjamini_hochberg(p_values, FDR)
    return PairAgreement(
        a,
        b,
        [
            CellAgreement(cell, ours[cell], theirs[cell], p, flag)
            for cell, p, flag in zip(common, p_values, differs, strict=True)
        ],
    )


def agree(runs: Sequence[Run]) -> list[PairAgreement]:
    """Every pair of *runs*, in the order given; :class:`AgreeError` for fewer than two runs or
    runs with no ratio cell in common."""
    if len(runs) < 2:
        raise AgreeError(
            f"agree needs two or more results files, not {len(runs)}; pass the runs to compare"
        )
    pairs = [agree_pair(a, b) for a, b in itertools.combinations(runs, 2)]
    if not any(pair.cells for pair in pairs):
        raise AgreeError(
            "the runs have no ratio cell (scenario, N and a runtime beside "
            f"{BASELINE}) in common{variants_differ(runs)}"
        )
    return pairs


def variants_differ(runs: Sequence[Run]) -> str:
    """Why runs with the same scenarios can share no cell, as the end of a message: their
    variant labels differ (an A/B run's files each hold one variant); else the usual advice."""
    labels = [", ".join(sorted({r.variant for r in run.records})) for run in runs]
    unlabelled = [{(r.scenario, r.n, r.runtime) for r in run.records} for run in runs]
    overlap = any(a & b for a, b in itertools.combinations(unlabelled, 2))
    if len(set(labels)) < 2 or not overlap:
        return "; pass runs of the same scenarios and runtimes"
    said = ", ".join(
        f"{label or 'none'} in {run.stem}" for run, label in zip(runs, labels, strict=True)
    )
    return (
        f": a cell is also its variant, and theirs differ ({said}); the variants of one A/B "
        "run are compared with anybench compare"
    )


def run_notes(runs: Sequence[Run]) -> list[str]:
    """What a reader of a comparison of *runs* must know first: a run that was stopped before
    its end (its cells rest on fewer processes), runs that are not of the same code, and runs
    made on different machines."""
    notes = [f"PARTIAL {run.stem}: {run.partial}." for run in runs if run.partial]
    differences = software_differs(runs)
    if differences:
        notes.append(
            f"NOT THE SAME CODE: {differences_text(differences)}: a cell that differs may be the "
            "code's doing, not the machine's."
        )
    machines = machine_differs(runs)
    if machines:
        notes.append(
            f"NOT ONE MACHINE: {differences_text(machines)}: what differs between the runs "
            "includes what differs between the machines."
        )
    return notes


def _label(agreement: CellAgreement) -> str:
    scenario, scale, runtime, variant = agreement.cell
    where = scale_text(agreement.a.record.axis, scale)  # B=10 on the load axis
    return f"{scenario} {where} {runtime}" + (f" [{variant}]" if variant else "")


def format_agreement(pairs: Sequence[PairAgreement], *, worst: int = 10) -> str:
    """The agreement of every pair as text for a terminal: a table of counts per pair, then
    each pair's disagreeing cells, worst first (at most *worst* each)."""
    names = _names([run for pair in pairs for run in (pair.a, pair.b)])
    header = [
        "runs compared",
        "hours apart",
        "cells",
        f"differ (Welch, BH {FDR:.0%})",
        "A outside B's 95%",
        "B outside A's 95%",
        "intervals disjoint",
    ]
    rows = [header]
    for pair in pairs:
        n = len(pair.cells)
        hours = pair.hours_apart
        rows.append(
            [
                f"A {names[id(pair.a)]} vs B {names[id(pair.b)]}",
                "?" if hours is None else f"{hours:.1f}",
                str(n),
                f"{sum(c.differs for c in pair.cells)} of {n}",
                f"{sum(c.a_outside_b for c in pair.cells)} of {n}",
                f"{sum(c.b_outside_a for c in pair.cells)} of {n}",
                str(sum(c.disjoint for c in pair.cells)),
            ]
        )
    notes = run_notes(list({id(run): run for pair in pairs for run in (pair.a, pair.b)}.values()))
    lines = [*notes, *([""] if notes else []), *terminal_table(rows)]
    lines += [
        "",
        f"Ratios to {BASELINE}, paired by process within each run. A cell differs when Welch's t "
        "on the two runs' per-process log ratios rejects 'no change' after Benjamini-Hochberg; "
        "about 5% of a run's ratios may fall outside another's 95% interval by chance alone.",
    ]
    caveats: list[str] = []
    for pair in pairs:
        bad = pair.worst_first()
        title = f"A {names[id(pair.a)]} vs B {names[id(pair.b)]}"
        if not pair.cells:
            lines += ["", f"{title}: no ratio cell in common; not compared."]
            continue
        if not bad:
            lines += ["", f"{title}: every cell agrees."]
            continue
        lines += ["", f"{title}: {len(bad)} cells disagree, worst first:"]
        for c in bad[:worst]:
            marks = [m for m, on in (("differs", c.differs), ("disjoint", c.disjoint)) if on]
            lines.append(
                f"  {_label(c)}{dagger(c.marked, caveats)}: {c.a.ratio} -> {c.b.ratio} "
                f"({c.shift - 1:+.0%}, "
                f"p={c.p:.2g}; {', '.join(marks)})"
            )
        if len(bad) > worst:
            lines.append(f"  ... and {len(bad) - worst} more")
    lines += dagger_notes(caveats)
    return "\n".join(terminal(line) for line in lines)


def _names(runs: Sequence[Run]) -> dict[int, str]:
    """A short name per run: its file's stem, or its path where two stems are the same."""
    stems = [run.stem for run in runs]
    return {
        id(run): run.stem if stems.count(run.stem) == sum(r is run for r in runs) else run.source
        for run in runs
    }
