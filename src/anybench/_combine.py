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
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

from ._agree import Cell, cell_ratios
from ._escape import markdown, markdown_code, terminal
from ._results import Run
from ._runtimes import BASELINE
from ._stats import run_level_interval

#: The confidence of every interval.
CONFIDENCE = 0.95


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


def software_differs(runs: Sequence[Run]) -> list[str]:
    """What differs in the code and software of *runs* from the first's: anybench's version,
    the commit, the library versions, Python (empty when they are the same)."""
    if not runs:
        return []

    def identity(run: Run) -> dict[str, object]:
        info = run.anybench_info
        libraries = info.get("libraries") or {}
        return {
            "anybench": info.get("version"),
            "commit": (run.commit_info.get("id") or "")[:12] or None,
            **{lib: libraries.get(lib) for lib in sorted(libraries)},
            "Python": " ".join(
                str(run.machine_info.get(key) or "")
                for key in ("python_implementation", "python_version")
            ).strip(),
        }

    first = identity(runs[0])
    differences = []
    for run in runs[1:]:
        mine = identity(run)
        for key in dict.fromkeys([*first, *mine]):
            if first.get(key) != mine.get(key):
                differences.append(
                    f"{key} {first.get(key)} in {runs[0].stem}, {mine.get(key)} in {run.stem}"
                )
    return differences


def combine(runs: Sequence[Run], *, force: bool = False) -> list[Combined]:
    """Every ratio cell of *runs*, combined over the runs that have it. Raises
    :class:`CombineError` for fewer than two runs, runs of different software (unless
    *force*), or runs without a ratio cell."""
    if len(runs) < 2:
        raise CombineError(
            f"combine needs two or more results files, not {len(runs)}; pass runs of the same "
            "code made at different times"
        )
    differences = software_differs(runs)
    if differences and not force:
        raise CombineError(
            f"the runs are not of the same code and software ({'; '.join(differences[:3])}"
            f"{'; ...' if len(differences) > 3 else ''}); combine runs of one version, or "
            "pass --force"
        )
    per_run = [cell_ratios(run) for run in runs]
    cells = list(dict.fromkeys(cell for cells in per_run for cell in cells))
    if not cells:
        raise CombineError(
            f"the runs have no ratio cell (a runtime beside {BASELINE} at the same scenario "
            "and N); pass runs with the baseline and another runtime"
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


def _hours(runs: Sequence[Run]) -> str:
    """When the runs were made: their dates, and the hours from the first to the last."""
    moments = []
    for run in runs:
        try:
            moments.append(dt.datetime.fromisoformat(run.datetime))
        except ValueError:
            continue
    if len(moments) < 2:
        return ""
    first, last = min(moments), max(moments)
    span = (last - first).total_seconds() / 3600
    return f", from {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} ({span:.1f} hours)"


def _interval(low: float | None, high: float | None) -> str:
    if low is None or high is None or not math.isfinite(high):
        return "–"
    return f"{low:.2f}–{high:.2f}"


def _rows(combined: Sequence[Combined]) -> list[list[str]]:
    return [
        [
            c.cell[0],
            f"{c.cell[1]:,}",
            c.cell[2] + (f" [{c.cell[3]}]" if c.cell[3] else ""),
            f"{c.ratio:.2f}x",
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
        f"{len(runs)} runs of the same code{_hours(runs)}. Each run's ratio is paired by "
        "process; the combined ratio is their geometric mean, its interval a t interval over "
        "the runs (the run is a level of its own: Kalibera and Jones), so that it covers how the "
        "machine moves between runs. 'runs' own figures' is the lowest and highest run; "
        "'next run within' a prediction interval for another run. A cell in one run only keeps "
        "that run's own interval."
    )


def format_combined(runs: Sequence[Run], combined: Sequence[Combined]) -> str:
    """The combined cells as a table for a terminal."""
    rows = [[terminal(cell) for cell in row] for row in [HEADER, *_rows(combined)]]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    lines = [
        "  ".join(
            c.ljust(w) if i in (0, 2) else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines += ["", terminal(_note(runs))]
    return "\n".join(lines)


def markdown_combined(runs: Sequence[Run], combined: Sequence[Combined]) -> str:
    """The combined cells as a Markdown table (for the README), with what it rests on."""
    out = [
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join("---" if i in (0, 2) else "---:" for i in range(len(HEADER))) + "|",
    ]
    for row in _rows(combined):
        cells = [markdown_code(row[0], in_table=True), *(markdown(cell) for cell in row[1:])]
        out.append("| " + " | ".join(cells) + " |")
    files = ", ".join(markdown_code(run.path.name) for run in runs)
    return "\n".join([*out, "", markdown(_note(runs)) + f" Files: {files}.", ""])
