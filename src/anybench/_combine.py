"""Several runs, one figure: ``anybench combine A.json B.json ... [--out FILE]``.

One run's interval sees only the minutes its processes ran in; the machine's state moves over
hours, and moves runtimes differently, so the next run of the same code can land far outside
it. Runs of the same code made at different times are combined here with the run as a level of
its own (processes within runs, runs within the machine: Kalibera and Jones, "Rigorous
benchmarking in reasonable time", 2013): per ratio cell, each run gives its own figure (the
report's ratio, paired by process: :func:`anybench._agree.cell_ratios`); the combined ratio is
the geometric mean of the runs' figures, and its 95% interval a t interval over the runs
(df = runs - 1), whose spread holds both the processes' noise and the drift between runs. A
cell in one run only keeps that run's own (process-level) interval. Each cell also shows how far
the runs' own figures spread (their lowest and highest), and where another run should land (a
prediction interval, wider than the mean's by sqrt(1 + 1/runs)).

Runs of different code or software are not one machine's repeated measurement: they are refused
(as pyperf refuses to merge runs whose CPU or Python differ) unless forced.

Whether the combination earns its keep is checked by leaving one run out at a time
(:func:`leave_one_out`, ``anybench combine --leave-one-out``): the others' combined figure says
where another run should land (the prediction interval); the left-out run is that other run.
Per left-out run: the share of its cells inside, against :data:`REQUIRED_SHARE`, the cells that
miss, worst first, and the same share had the run level been ignored (every process of the
others pooled as if one run had made them all), which is what one run's interval claims.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ._agree import Cell, cell_ratios, run_notes, variants_differ
from ._busy import summary_line
from ._escape import markdown, markdown_code, terminal, terminal_table
from ._format import format_ns
from ._layout import caveat_mark, dagger_notes
from ._results import Run, differences_text, moments, software_differs
from ._runtimes import BASELINE
from ._stats import log_interval_halfwidth, run_level_interval
from ._sweep import scale_text

#: The confidence of every interval.
CONFIDENCE = 0.95
#: Leave one out: the share of a left-out run's cells the others' combined figure must hold
#: for the runs to agree (the prediction interval's nominal level is CONFIDENCE).
REQUIRED_SHARE = 0.90


class CombineError(ValueError):
    """Runs that cannot be combined; the message says why in one line."""


@dataclass(frozen=True)
class Combined:
    """One ratio cell over several runs."""

    cell: Cell
    #: The runs' own figures (ratio to the baseline), in the order the runs were given.
    run_ratios: tuple[float, ...]
    ratio: float
    low: float
    high: float
    #: Where another run's figure should fall (None from a single run).
    next_low: float | None = None
    next_high: float | None = None

    @property
    def runs(self) -> int:
        return len(self.run_ratios)

    @property
    def spread(self) -> tuple[float, float]:
        """The lowest and the highest of the runs' own figures."""
        return min(self.run_ratios), max(self.run_ratios)


def combine_cell(cell: Cell, figures: Sequence[tuple[float, float, float]]) -> Combined:
    """*cell* from each run's (ratio, low, high): over two or more runs, the geometric mean of
    the ratios with a t interval over the runs; from one, that run's own."""
    ratios = tuple(ratio for ratio, _, _ in figures)
    if len(figures) == 1:
        ratio, low, high = figures[0]
        return Combined(cell, ratios, ratio, low, high)
    mean, half, ahead = run_level_interval([math.log(r) for r in ratios], CONFIDENCE)
    return Combined(
        cell,
        ratios,
        math.exp(mean),
        math.exp(mean - half),
        math.exp(mean + half),
        math.exp(mean - ahead),
        math.exp(mean + ahead),
    )


def _same_software(runs: Sequence[Run], force: bool) -> None:
    differences = software_differs(runs)
    if differences and not force:
        raise CombineError(
            f"the runs are not of the same code and software ({differences_text(differences)}); "
            "combine runs of one version, or pass --force"
        )


def combine(runs: Sequence[Run], *, force: bool = False) -> list[Combined]:
    """Every ratio cell of *runs*, combined over the runs that have it. Raises
    :class:`CombineError` for fewer than two runs, runs of different software (unless
    *force*), or runs without a ratio cell in two of them."""
    if len(runs) < 2:
        raise CombineError(
            f"combine needs two or more results files, not {len(runs)}; pass runs of the same "
            "code made at different times"
        )
    _same_software(runs, force)
    per_run = [cell_ratios(run) for run in runs]
    cells = list(dict.fromkeys(cell for cells in per_run for cell in cells))
    if not cells:
        raise CombineError(
            f"the runs have no ratio cell (a runtime beside {BASELINE} at the same scenario "
            "and N); pass runs with the baseline and another runtime"
        )
    if not any(sum(cell in cells_of_run for cells_of_run in per_run) > 1 for cell in cells):
        raise CombineError(
            "no ratio cell (a runtime beside "
            f"{BASELINE} at the same scenario and N) is in two of the runs{variants_differ(runs)}"
        )
    return [
        combine_cell(
            cell,
            [
                (c.ratio.ratio, c.ratio.low, c.ratio.high)
                for cells_of_run in per_run
                if (c := cells_of_run.get(cell)) is not None
            ],
        )
        for cell in cells
    ]


@dataclass(frozen=True)
class HeldOut:
    """One cell of a left-out run against the combined figure of the other runs."""

    cell: Cell
    #: The left-out run's own figure.
    ratio: float
    #: The others' combined figure (two or more runs: it has a prediction interval).
    combined: Combined
    #: The run level ignored: the t interval of every process of the others pooled, as if one
    #: run had made them all (what one run's interval claims).
    pooled_low: float
    pooled_high: float
    #: The scale's axis, for its label (N or B).
    axis: str = "n"

    @property
    def inside(self) -> bool:
        """Whether the left-out ratio lies where the others say another run should land."""
        low, high = self.combined.next_low, self.combined.next_high
        return low is not None and high is not None and low <= self.ratio <= high

    @property
    def inside_pooled(self) -> bool:
        return self.pooled_low <= self.ratio <= self.pooled_high

    @property
    def miss(self) -> float:
        """How far the left-out ratio lies outside the interval, as a factor beyond its nearer
        end (1 inside; 1.2: 20% above its top; 0.8: 20% below its bottom)."""
        low, high = self.combined.next_low, self.combined.next_high
        if self.inside or low is None or high is None:
            return 1.0
        return self.ratio / (high if self.ratio > high else low)

    @property
    def label(self) -> str:
        scenario, scale, runtime, variant = self.cell
        return f"{scenario} {scale_text(self.axis, scale)} {runtime}" + (
            f" [{variant}]" if variant else ""
        )


@dataclass(frozen=True)
class LeftOut:
    """One run left out: its cells against the combined figure of the others."""

    run: Run
    others: tuple[Run, ...]
    cells: list[HeldOut]
    #: Cells of the run that fewer than two of the others have (no prediction interval).
    unchecked: int

    @property
    def share(self) -> float:
        """The share of the run's checked cells inside the others' interval."""
        return sum(c.inside for c in self.cells) / len(self.cells) if self.cells else math.nan

    @property
    def share_pooled(self) -> float:
        """The same, with the run level ignored."""
        return (
            sum(c.inside_pooled for c in self.cells) / len(self.cells) if self.cells else math.nan
        )

    @property
    def agrees(self) -> bool:
        return bool(self.cells) and self.share >= REQUIRED_SHARE

    def misses(self) -> list[HeldOut]:
        """The cells outside the others' interval, the farthest first."""
        return sorted((c for c in self.cells if not c.inside), key=lambda c: -abs(math.log(c.miss)))


def _pooled(logs: Sequence[float]) -> tuple[float, float]:
    """The t interval (CONFIDENCE) of the mean of *logs*, as ratios (0, inf for fewer than two)."""
    mean = sum(logs) / len(logs)
    half = log_interval_halfwidth([math.exp(x) for x in logs], CONFIDENCE)
    return math.exp(mean - half), math.exp(mean + half)


def leave_one_out(runs: Sequence[Run], *, force: bool = False) -> list[LeftOut]:
    """Each of *runs* left out in turn, its ratio cells against the combined figure of the
    others (see the module docstring). Raises :class:`CombineError` for fewer than three runs
    (two would leave one to combine), runs of different software (unless *force*), or runs
    with no ratio cell that three of them share."""
    if len(runs) < 3:
        raise CombineError(
            f"leave-one-out needs three or more results files, not {len(runs)}; pass runs of "
            "the same code made at different times"
        )
    _same_software(runs, force)
    per_run = [cell_ratios(run) for run in runs]
    out = []
    for i, run in enumerate(runs):
        others = [cells for j, cells in enumerate(per_run) if j != i]
        held, unchecked = [], 0
        for cell, mine in per_run[i].items():
            theirs = [c for c in (cells.get(cell) for cells in others) if c is not None]
            if len(theirs) < 2:
                unchecked += 1
                continue
            combined = combine_cell(
                cell, [(c.ratio.ratio, c.ratio.low, c.ratio.high) for c in theirs]
            )
            low, high = _pooled([x for c in theirs for x in c.logs])
            held.append(HeldOut(cell, mine.ratio.ratio, combined, low, high, mine.record.axis))
        out.append(LeftOut(run, tuple(r for j, r in enumerate(runs) if j != i), held, unchecked))
    if not any(left.cells for left in out):
        raise CombineError(
            "no ratio cell is in three of the runs (a runtime beside "
            f"{BASELINE} at the same scenario and N); pass runs of the same scenarios and runtimes"
        )
    return out


def format_leave_one_out(left_out: Sequence[LeftOut], *, worst: int = 10) -> str:
    """Leave one out as text for a terminal: a row per left-out run, a verdict line each, then
    each run's misses, the farthest first (at most *worst* each)."""
    header = [
        "left out",
        "made",
        "cells",
        f"inside the others' {CONFIDENCE:.0%}",
        "run level ignored",
    ]
    rows = [header]
    for left in left_out:
        n = len(left.cells)
        rows.append(
            [
                left.run.stem,
                _made(left.run),
                str(n),
                f"{sum(c.inside for c in left.cells)} ({_share(left.share)})",
                f"{sum(c.inside_pooled for c in left.cells)} ({_share(left.share_pooled)})",
            ]
        )
    lines = terminal_table(rows)
    lines += [
        "",
        f"Each run left out in turn: its ratios to {BASELINE} against where the other runs, "
        "combined with the run a level of its own, say another run should land (their "
        f"{CONFIDENCE:.0%} prediction interval). 'run level ignored': against the interval of "
        "every process of the others pooled, as one run's interval would claim.",
        "",
    ]
    for left in left_out:
        if not left.cells:
            lines.append(f"{left.run.stem}: no cell that two of the others have; not checked")
            continue
        verdict = "agrees" if left.agrees else "DISAGREES"
        unchecked = f"; {left.unchecked} cells unchecked" if left.unchecked else ""
        lines.append(
            f"{left.run.stem}: {_share(left.share)} of {len(left.cells)} cells inside "
            f"(needed {REQUIRED_SHARE:.0%}): {verdict}{unchecked}"
        )
    for left in left_out:
        misses = left.misses()
        if not misses:
            continue
        lines += ["", f"{left.run.stem}: {len(misses)} cells outside, farthest first:"]
        for c in misses[:worst]:
            # Three decimals and a tenth of a percent: a miss of a fraction of a percent is
            # still a miss, and two decimals would show the ratio inside its interval.
            lines.append(
                f"  {c.label}: {c.ratio:.3f}x, the others "
                f"{_interval(c.combined.next_low, c.combined.next_high, digits=3)} "
                f"({c.miss - 1:+.{1 if c.miss - 1 >= 0.0005 else 3}%} beyond)"
            )
        if len(misses) > worst:
            lines.append(f"  ... and {len(misses) - worst} more")
    return "\n".join(terminal(line) for line in lines)


def _share(share: float) -> str:
    """*share* as a percentage, with the decimals it takes not to land on the other side of
    :data:`REQUIRED_SHARE` (89.6% is not "90%")."""
    if math.isnan(share):
        return "–"
    for digits in range(4):
        text = f"{share:.{digits}%}"
        if (float(text[:-1]) / 100 >= REQUIRED_SHARE) == (share >= REQUIRED_SHARE):
            return text
    return f"{math.floor(share * 100_000) / 1000:.3f}%"  # just below: cut, not rounded up


#: How a moment of :attr:`Run.when` or :func:`moments` is said, of one run and of several: a
#: file from before runs said their start has only its date, written at the run's end.
_SAID = {"started": ("started", "started"), "dated": ("file dated", "their files dated")}


def _made(run: Run) -> str:
    """When *run* was made, saying which moment: "started 2026-12-03 10:40" or "file dated ..."."""
    moment, name = run.when
    return f"{_SAID[name][0]} {moment:%Y-%m-%d %H:%M}" if moment else "undated"


def _hours(runs: Sequence[Run]) -> str:
    """When the runs were made: their dates, and the hours from the first to the last."""
    found, name = moments(runs)
    known = [moment for moment in found if moment is not None]
    if len(known) < 2:
        return ""
    first, last = min(known), max(known)
    span = (last - first).total_seconds() / 3600
    first_text, last_text = f"{first:%Y-%m-%d %H:%M}", f"{last:%Y-%m-%d %H:%M}"
    return f", {_SAID[name][1]} from {first_text} to {last_text} ({span:.1f} hours)"


def _interval(low: float | None, high: float | None, digits: int = 2) -> str:
    if low is None or high is None or not math.isfinite(high):
        return "–"
    return f"{low:.{digits}f}–{high:.{digits}f}"


def _caveat_cells(runs: Sequence[Run]) -> dict[Cell, str]:
    """The cells a run measured with a mechanism of its own there, and what it is (the latest
    run's words)."""
    return {
        (r.scenario, r.n, r.runtime, r.variant): r.caveat
        for run in runs
        for r in run.records
        if r.caveat
    }


def _rows(
    combined: Sequence[Combined], cell_caveats: Mapping[Cell, str], caveats: list[str]
) -> list[list[str]]:
    return [
        [
            c.cell[0],
            f"{c.cell[1]:,}",
            c.cell[2] + (f" [{c.cell[3]}]" if c.cell[3] else ""),
            f"{c.ratio:.2f}x" + caveat_mark(cell_caveats.get(c.cell, ""), caveats),
            _interval(c.low, c.high),
            str(c.runs),
            _interval(*c.spread) if c.runs > 1 else "–",
            _interval(c.next_low, c.next_high),
        ]
        for c in combined
    ]


HEADER = [
    "scenario",
    "N",
    "runtime",
    f"ratio to {BASELINE}",
    f"{CONFIDENCE:.0%} over runs",
    "runs",
    "runs' own figures",
    "next run within",
]


def _note(runs: Sequence[Run]) -> str:
    return (
        f"{len(runs)} runs{_of_code(runs)}{_hours(runs)}. Each run's ratio is paired by "
        "process; the combined ratio is their geometric mean, its interval a t interval over "
        "the runs (the run is a level of its own: Kalibera and Jones), so that it covers how the "
        "machine moves between runs. 'runs' own figures' is the lowest and highest run; "
        "'next run within' a prediction interval for another run. A cell in one run only keeps "
        "that run's own interval."
    )


def format_combined(runs: Sequence[Run], combined: Sequence[Combined]) -> str:
    """The combined cells as a table for a terminal."""
    caveats: list[str] = []
    notes = [terminal(note) for note in run_notes(runs)]
    lines = [*notes, *([""] if notes else [])]
    lines += terminal_table([HEADER, *_rows(combined, _caveat_cells(runs), caveats)], left=(0, 2))
    lines += ["", terminal(_note(runs)), *(terminal(note) for note in dagger_notes(caveats))]
    return "\n".join(lines)


def _baseline_ns(runs: Sequence[Run]) -> dict[tuple[str, int, str], list[float]]:
    """The baseline's ns/op in each run, by (scenario, scale, variant)."""
    found: dict[tuple[str, int, str], list[float]] = {}
    for run in runs:
        seen = set()
        for record in run.records:
            key = (record.scenario, record.n, record.variant)
            if record.runtime == BASELINE and key not in seen:
                seen.add(key)
                found.setdefault(key, []).append(record.ns_per_op)
    return found


def _markdown_cell(c: Combined, mark: str) -> str:
    if c.runs == 1:
        return f"{c.ratio:.2f}x{mark} [{_interval(c.low, c.high)}] (1 run)"
    low, high = c.spread
    return f"{c.ratio:.2f}x{mark} [{_interval(c.low, c.high)}] (runs {low:.2f}–{high:.2f})"


def _of_code(runs: Sequence[Run]) -> str:
    """ " of the same code", or what a combination forced over other code is (said above it)."""
    return " of the same code" if not software_differs(runs) else " (not all of one code)"


def _footer(runs: Sequence[Run], caveats: Sequence[str]) -> list[str]:
    """What the reader must know first (:func:`run_notes`), how many runs, when each was made
    and how busy the machine was for each; what the marks of *caveats* say."""
    out = [
        *(markdown(note) + "\n" for note in run_notes(runs)),
        f"Combined from {len(runs)} runs{_of_code(runs)}{_hours(runs)}; each run's ratio is "
        "paired by process, the combined ratio is their geometric mean and its interval a "
        f"{CONFIDENCE:.0%} t interval over the runs (the run a level of its own), so that it "
        "covers how the machine moves between runs; '(runs a–b)' is the lowest and highest run's "
        f"own figure. The {BASELINE} column is the geometric mean of the runs' ns/op (absolute "
        "figures move with the machine; compare ratios).",
        "",
        *(note + "\n" for note in dagger_notes([markdown(caveat) for caveat in caveats])),
    ]
    for run in runs:
        busy = (
            summary_line(run.busy)
            or "how busy: not measured (a run made before anybench measured it)"
        )
        out.append(f"- {markdown_code(run.path.name)}, {_made(run)}: {markdown(busy)}")
    return out


def markdown_combined(runs: Sequence[Run], combined: Sequence[Combined]) -> str:
    """The combined cells as a Markdown table for the README: a row per scenario and scale, the
    baseline's ns/op and a column per other runtime (the combined ratio, its interval over the
    runs, the runs' own spread), then what it rests on: the runs, their start and how busy
    each was."""
    runtimes = list(dict.fromkeys(c.cell[2] for c in combined))
    variants = list(dict.fromkeys(c.cell[3] for c in combined))
    cell_caveats = _caveat_cells(runs)
    caveats: list[str] = []
    axes = {(r.scenario, r.n): r.axis for run in runs for r in run.records}
    baseline = _baseline_ns(runs)
    by_row: dict[tuple[str, int, str], dict[str, Combined]] = {}
    for c in combined:
        scenario, scale, runtime, variant = c.cell
        by_row.setdefault((scenario, scale, variant), {})[runtime] = c
    head = ["scenario", "N", *([] if variants == [""] else ["variant"]), BASELINE, *runtimes]
    out = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---" if h in ("scenario", "variant") else "---:" for h in head) + "|",
    ]
    for (scenario, scale, variant), row in by_row.items():
        axis = axes.get((scenario, scale), "n")
        n_text = f"{scale:,}" if axis == "n" else scale_text(axis, scale)
        ns = baseline.get((scenario, scale, variant), [])
        base = "–"
        if ns:
            mean = math.exp(sum(math.log(v) for v in ns) / len(ns))
            base = format_ns(mean) + (
                f" ({format_ns(min(ns))}–{format_ns(max(ns))})" if len(ns) > 1 else ""
            )
        cells = [
            markdown_code(scenario, in_table=True),
            # The figures are anybench's own text (digits, brackets, dashes): left as they are,
            # so that the table reads in the README's source too.
            n_text,
            *([] if variants == [""] else [markdown(variant)]),
            base,
            *(
                _markdown_cell(
                    row[rt],
                    caveat_mark(cell_caveats.get((scenario, scale, rt, variant), ""), caveats),
                )
                if rt in row
                else "–"
                for rt in runtimes
            ),
        ]
        out.append("| " + " | ".join(cells) + " |")
    files = ", ".join(markdown_code(run.path.name) for run in runs)
    return "\n".join([*out, "", *_footer(runs, caveats), "", f"Files: {files}.", ""])
