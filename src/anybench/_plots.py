"""The report's plots (matplotlib, no display needed).

Each kind of plot is two functions: ``*_figure`` builds the :class:`~matplotlib.figure.Figure`
(what a test draws and reads back), and the one named for the kind writes it as one PNG.

Every axis is labelled in plain text that a person reads as it is: N as ``10``, ``1,000``,
``10k``, ``1M``; times as ``1 µs``, ``10 ms``. Never by matplotlib's default log formatter,
whose ``$\\mathdefault{10^{1}}$`` is mathtext; and every text that holds a name from a results
file is drawn with mathtext off, so a ``$`` in a name is shown as written.
"""

from __future__ import annotations

import itertools
import math
import textwrap
import warnings
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.scale import SymmetricalLogTransform
from matplotlib.ticker import EngFormatter, FixedLocator, FuncFormatter, MaxNLocator, NullFormatter

from ._escape import plot_text
from ._layout import Entry, column_order
from ._sweep import LOAD, N
from ._sweep import Axis as SweepAxis

#: Dots per inch of the PNGs written.
DPI = 110
#: Figure size in inches: room on the right for a legend beside the axes, never over the data.
WIDTH_IN, HEIGHT_IN = 8.0, 4.2
#: Round values a log time axis is labelled at, sparsest first: decades, then 1-3, 1-2-5, …
MANTISSAS = ((1,), (1, 3), (1, 2, 5), (1, 2, 3, 5, 7), (1, 2, 3, 4, 5, 6, 7, 8, 9))
#: Labelled ticks wanted on an axis: at least (where round values allow), at most.
FEWEST_TICKS, MOST_TICKS = 3, 8
#: Entries a legend holds in one column at the figure's height (more go into more columns);
#: the width of a legend column: a character of its longest entry, and the handle and padding;
#: the width the axes and their labels keep beside it.
LEGEND_ROWS, LEGEND_CHAR_IN, LEGEND_HANDLE_IN, AXES_IN = 16, 0.075, 0.8, 5.6
#: How the runs of a report of several files are told apart (a runtime keeps its colour in
#: every run): a marker, a line style and a bar hatch per run, in the order given.
RUN_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
#: (Seven line styles against eight markers: 56 runs before a marker and line pair repeats.)
RUN_LINES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1)), (0, (1, 3)), (0, (8, 2)))
RUN_HATCHES = ("", "//", "..", "xx", "\\\\", "oo", "--", "++")
#: What a plot says where a latency is below zero (timers: lateness by the runtime's own clock).
NEGATIVE_NOTE = (
    "Below 0: before the deadline as read on the runtime's own clock; a clock that counts whole "
    "milliseconds (uvloop's) reads 0 to 1 ms early for a timer that was late in real time."
)


class Style(NamedTuple):
    """How one column is drawn."""

    color: str
    marker: str
    linestyle: Any
    hatch: str


def _styles(entries: Sequence[Entry]) -> dict[str, Style]:
    """Each column's colour (its runtime's: the same in every run), marker, line style and bar
    hatch (its run's), so that a report of several files stays readable: 24 series once drew
    in 10 colours, two runtimes of two runs in one."""
    runtimes = list(dict.fromkeys(e.runtime for e in sorted(entries, key=lambda e: e.rank)))
    runs = sorted({e.run for e in entries})
    styles: dict[str, Style] = {}
    for e in entries:
        k = runs.index(e.run)
        colour = f"C{runtimes.index(e.runtime) % 10}"
        # Past eight runs a bar's hatch doubles in density ("//" -> "////"; none -> "||").
        hatch = RUN_HATCHES[k % len(RUN_HATCHES)] * (1 + k // len(RUN_HATCHES)) or (
            "||" * (k // len(RUN_HATCHES))
        )
        style = Style(
            colour, RUN_MARKERS[k % len(RUN_MARKERS)], RUN_LINES[k % len(RUN_LINES)], hatch
        )
        styles.setdefault(e.column, style)
    return styles


def _legend_title(entries: Sequence[Entry]) -> str:
    """ "runtime", or "runtime (run)" where several runs are drawn (told apart by marker, line
    and hatch)."""
    return "runtime (run)" if len({e.run for e in entries}) > 1 else "runtime"


def _sweep_axis(entries: Sequence[Entry]) -> SweepAxis:
    """The sweep axis a scenario's entries are on: the load's if any is, else N."""
    return LOAD if any(e.record.axis == LOAD.name for e in entries) else N


def count_label(value: float) -> str:
    """A count as a person writes it on an axis: ``10``, ``1,000``, ``10k``, ``2.5M``."""
    if value >= 1_000_000 and value % 100_000 == 0:
        return f"{value / 1_000_000:g}M"
    if value >= 10_000 and value % 1_000 == 0:
        return f"{value / 1_000:g}k"
    return f"{value:,.0f}" if value == round(value) else f"{value:g}"


def _log_ticks(low: float, high: float) -> list[float]:
    """Round values within [*low*, *high*] (> 0) to label a log axis with.

    The sparsest of :data:`MANTISSAS` (then evenly spaced values, for a narrow axis) that gives
    FEWEST_TICKS to MOST_TICKS labels and leaves no stretch of more than half the axis without
    one; failing that, the one with the shortest such stretch; every second (third, …) decade
    on an axis of more decades than MOST_TICKS.
    """
    if not 0 < low < high:
        return []
    decades = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    powers = [10.0**e for e in decades if low <= 10.0**e <= high]
    if len(powers) > MOST_TICKS:
        return powers[:: math.ceil(len(powers) / MOST_TICKS)]
    candidates = [
        [m * 10.0**e for e in decades for m in mantissas if low <= m * 10.0**e <= high]
        for mantissas in MANTISSAS
    ]
    candidates.append([t for t in MaxNLocator(nbins=6).tick_values(low, high) if low <= t <= high])
    candidates = [ticks for ticks in candidates if 2 <= len(ticks) <= MOST_TICKS]
    if not candidates:
        return powers

    def widest_gap(ticks: list[float]) -> float:
        edges = [math.log10(v) for v in (low, *ticks, high)]
        return max(b - a for a, b in itertools.pairwise(edges))

    span = math.log10(high / low)
    for ticks in candidates:
        if len(ticks) >= FEWEST_TICKS and widest_gap(ticks) <= span / 2:
            return ticks
    return min(candidates, key=widest_gap)


def _linthresh(axis: Axis) -> float:
    """Where a symmetric-log *axis* turns from linear (around zero) to logarithmic."""
    transform = axis.get_transform()
    assert isinstance(transform, SymmetricalLogTransform), "not a symmetric-log axis"
    return float(transform.linthresh)


def _time_axis(axis: Axis) -> None:
    """Label a time axis (values in seconds) at round values, in ns, µs, ms or s.

    On a log axis the labelled values are chosen here (see :func:`_log_ticks`), and the minor
    ticks, left for the grid, carry no label; on a symmetric-log one (latencies below zero)
    the labels are -linthresh, 0 and round values above linthresh.
    """
    low, high = sorted(axis.get_view_interval())
    scale = axis.get_scale()
    if scale == "log":
        axis.set_major_locator(FixedLocator(_log_ticks(low, high)))
    elif scale == "symlog":
        linthresh = _linthresh(axis)
        ticks = [-linthresh] if low <= -linthresh else []
        ticks += [0.0, *_log_ticks(linthresh, high)]
        axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(EngFormatter(unit="s"))
    axis.set_minor_formatter(NullFormatter())


def _scale_axis(ax: Axes, entries: Sequence[Entry]) -> None:
    """A log x axis for N, or for the load B (symmetric-log there, since B starts at 0),
    labelled at the values measured (or at powers of ten, where those would crowd)."""
    sweep = _sweep_axis(entries)
    if sweep is LOAD:
        ax.set_xscale("symlog", linthresh=1)
    else:
        ax.set_xscale("log")
    ax.set_xlabel(f"{sweep.label}, log scale" + (" (linear from 0 to 1)" if sweep is LOAD else ""))
    values = sorted({e.record.n for e in entries})
    at = ax.xaxis.get_transform().transform([float(v) for v in values])
    span = max(at) - min(at) if len(values) > 1 else 0.0
    apart = all(b - a >= span / 10 for a, b in itertools.pairwise(at))
    if len(values) <= MOST_TICKS and apart:
        ax.xaxis.set_major_locator(FixedLocator(values))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: count_label(value)))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _scale_text(axis: Axis) -> str:
    """How a latency axis is scaled, for its label: log, or log with a linear band about 0."""
    if axis.get_scale() == "symlog":
        return f"log scale, linear within ±{EngFormatter(unit='s')(_linthresh(axis))}"
    return "log scale" if axis.get_scale() == "log" else "linear scale"


def _latency_scale(ax: Axes, which: str) -> bool:
    """Log scale for latencies; symmetric-log where some are zero or negative (early timers),
    linear from the most negative value's power of ten to zero and just above. Returns whether
    any is below zero, with a line drawn at zero."""
    low = ax.dataLim.x0 if which == "x" else ax.dataLim.y0
    set_scale = ax.set_xscale if which == "x" else ax.set_yscale
    if low > 0:
        set_scale("log")
        return False
    linthresh = 10.0 ** math.ceil(math.log10(-low)) if low < 0 else 1e-6
    set_scale("symlog", linthresh=linthresh)
    if low < 0:
        # From a little below -linthresh, so that its label is in view.
        if which == "x":
            ax.set_xlim(left=-1.5 * linthresh)
            ax.axvline(0, color="0.4", lw=0.8)
        else:
            ax.set_ylim(bottom=-1.5 * linthresh)
            ax.axhline(0, color="0.4", lw=0.8)
    return bool(low < 0)


def _legend(ax: Axes, title: str | None = None, handles: Sequence[Line2D] = ()) -> None:
    """A legend beside the axes (never over the data), if anything was drawn: a series may
    have no samples in a results file. Its texts are names from results files, shown as written."""
    if not handles and not ax.get_legend_handles_labels()[0]:
        return
    options = {"handles": list(handles)} if handles else {}
    labels = [h.get_label() for h in handles] if handles else ax.get_legend_handles_labels()[1]
    columns = math.ceil(len(labels) / LEGEND_ROWS)
    # Every entry shown, and the axes keep their width: the figure widens for a legend of long
    # names (a report of several files) or of several columns, rather than cutting it.
    legend_in = columns * (LEGEND_CHAR_IN * max(map(len, map(str, labels))) + LEGEND_HANDLE_IN)
    figure = ax.get_figure()
    assert isinstance(figure, Figure)
    figure.set_size_inches(max(WIDTH_IN, AXES_IN + legend_in), HEIGHT_IN)
    legend = ax.legend(
        title=title,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        borderaxespad=0.0,
        ncols=columns,
        **options,
    )
    for text in [*legend.get_texts(), legend.get_title()]:
        text.set_text(plot_text(text.get_text()))
        text.set_parse_math(False)


def _title(ax: Axes, text: str) -> None:
    """A title of at most two lines, shown as written (it holds names from results files)."""
    lines = textwrap.wrap(plot_text(text), 90, max_lines=2, placeholder=" …")
    ax.set_title("\n".join(lines), fontsize=10, parse_math=False)


def _figure() -> tuple[Figure, Axes]:
    """A figure of its own, drawn by Agg to files only: no pyplot, no display, nothing global."""
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN))
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


#: Figures too crowded for tight_layout (many columns, long names): saved grown to fit instead.
_CROWDED: weakref.WeakSet[Figure] = weakref.WeakSet()


def _finish(fig: Figure, note: str | None = None) -> Figure:
    """Lay *fig* out, with *note* (if any) in small type under the axes."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.filterwarnings("always", "Tight layout not applied", UserWarning)
        if note:
            fig.text(0.01, 0.01, textwrap.fill(note, 130), fontsize=7.5, va="bottom", color="0.25")
            fig.tight_layout(rect=(0, 0.07, 1, 1))
        else:
            fig.tight_layout()
    for warning in caught:
        if str(warning.message).startswith("Tight layout not applied"):
            _CROWDED.add(fig)
        else:  # not ours to hide
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    return fig


def _save(fig: Figure, path: Path) -> None:
    fig.savefig(path, dpi=DPI, bbox_inches="tight" if fig in _CROWDED else None)


def bars_figure(scenario: str, operation: str, entries: Sequence[Entry]) -> Figure:
    """Grouped bars: ns/op per N, one bar per runtime, whiskers over the process medians."""
    columns = column_order(entries)
    styles = _styles(entries)
    scales = sorted({e.record.n for e in entries})
    fig, ax = _figure()
    width = 0.8 / max(len(columns), 1)
    for i, column in enumerate(columns):
        xs, ys, low, high = [], [], [], []
        for j, n in enumerate(scales):
            match = [e.record for e in entries if e.column == column and e.record.n == n]
            if not match:
                continue
            values = sorted(match[0].process_medians or (match[0].ns_per_op,))
            middle = match[0].ns_per_op
            xs.append(j + (i - (len(columns) - 1) / 2) * width)
            ys.append(middle / 1e9)
            low.append(max(0.0, middle - values[0]) / 1e9)
            high.append(max(0.0, values[-1] - middle) / 1e9)
        style = styles[column]
        ax.bar(
            xs,
            ys,
            width,
            yerr=[low, high],
            capsize=3,
            label=column,
            color=style.color,
            hatch=style.hatch,
            edgecolor="white" if style.hatch else None,
        )
    symbol = _sweep_axis(entries).symbol
    ax.set_xticks(range(len(scales)), [f"{symbol}={count_label(n)}" for n in scales])
    ax.set_ylabel("time per operation\n(geometric mean of process medians;\nwhiskers: their range)")
    _time_axis(ax.yaxis)
    _title(ax, f"{scenario}: {operation}" if operation else scenario)
    _legend(ax, title=_legend_title(entries))
    ax.grid(axis="y", alpha=0.3)
    return _finish(fig)


def scaling_figure(scenario: str, entries: Sequence[Entry]) -> Figure:
    """Per-operation cost against N, log-log, one line per runtime."""
    fig, ax = _figure()
    styles = _styles(entries)
    for column in column_order(entries):
        points = sorted((e.record.n, e.record.ns_per_op) for e in entries if e.column == column)
        style = styles[column]
        ax.plot(
            [p[0] for p in points],
            [p[1] / 1e9 for p in points],
            marker=style.marker,
            linestyle=style.linestyle,
            color=style.color,
            label=column,
        )
    _scale_axis(ax, entries)
    ax.set_yscale("log")
    ax.set_ylabel("time per operation, log scale\n(geometric mean of process medians)")
    _time_axis(ax.yaxis)
    _title(ax, f"{scenario}: cost per operation as {_sweep_axis(entries).symbol} grows")
    _legend(ax, title=_legend_title(entries))
    ax.grid(which="both", alpha=0.3)
    return _finish(fig)


def latency_vs_scale_figure(scenario: str, series: str, entries: Sequence[Entry]) -> Figure:
    """p50 and p99 latency against N (or background load), one colour per runtime."""
    fig, ax = _figure()
    styles = _styles(entries)
    runtimes, percentiles = [], {}
    for column in column_order(entries):
        points = sorted(
            (
                (e.record.n, e.record.latency_ns[series])
                for e in entries
                if e.column == column and "p50" in e.record.latency_ns.get(series, {})
            ),
            key=lambda point: point[0],  # by N only: a file given twice repeats an N
        )
        if not points:
            continue
        colour, marker = styles[column].color, styles[column].marker
        xs = [p[0] for p in points]
        ax.plot(xs, [p[1]["p50"] / 1e9 for p in points], marker=marker, color=colour)
        runtimes.append(Line2D([], [], color=colour, marker=marker, lw=2, label=column))
        percentiles["p50"] = Line2D([], [], color="0.3", marker="o", label="p50")
        tail = [(n, summary["p99"]) for n, summary in points if "p99" in summary]
        if tail:  # p99 is left out of summaries with too few samples
            ax.plot(
                [p[0] for p in tail],
                [p[1] / 1e9 for p in tail],
                marker=marker,
                ls="--",
                color=colour,
                mfc="none",
            )
            percentiles["p99"] = Line2D(
                [], [], color="0.3", marker="o", mfc="none", ls="--", label="p99"
            )
    _scale_axis(ax, entries)
    negative = bool(runtimes) and _latency_scale(ax, "y")
    ax.set_ylabel(f"{plot_text(series)} latency ({_scale_text(ax.yaxis)})", parse_math=False)
    _time_axis(ax.yaxis)
    _title(ax, f"{scenario}: {series} latency, median (p50) and p99")
    _legend(ax, title=_legend_title(entries), handles=[*runtimes, *percentiles.values()])
    ax.grid(which="both", alpha=0.3)
    return _finish(fig, NEGATIVE_NOTE if negative else None)


def cdf_figure(scenario: str, series: str, n: int, entries: Sequence[Entry]) -> Figure:
    """The latency distribution at scale *n*, as a CDF, one line per runtime."""
    fig, ax = _figure()
    styles = _styles(entries)
    for column in column_order(entries):
        for e in entries:
            summary = e.record.latency_ns.get(series)
            if e.column == column and e.record.n == n and summary and "cdf" in summary:
                points = summary["cdf"]
                ax.plot(
                    [p[1] / 1e9 for p in points],
                    [p[0] for p in points],
                    label=column,
                    color=styles[column].color,
                    linestyle=styles[column].linestyle,
                )
    drawn = bool(ax.get_legend_handles_labels()[0])
    negative = drawn and _latency_scale(ax, "x")
    ax.set_xlabel(f"{plot_text(series)} latency ({_scale_text(ax.xaxis)})", parse_math=False)
    _time_axis(ax.xaxis)
    ax.set_ylabel("percent of samples at or below")
    ax.set_ylim(-2, 102)  # a line at 0% or 100% is seen, not hidden by the frame
    ax.yaxis.set_major_locator(FixedLocator([0, 25, 50, 75, 100]))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}%"))
    symbol = _sweep_axis(entries).symbol
    _title(ax, f"{scenario} at {symbol}={count_label(n)}: {series} latency distribution")
    _legend(ax, title=_legend_title(entries))
    ax.grid(which="both", alpha=0.3)
    return _finish(fig, NEGATIVE_NOTE if negative else None)


def bars(scenario: str, operation: str, entries: Sequence[Entry], path: Path) -> None:
    """Write :func:`bars_figure` to *path*."""
    _save(bars_figure(scenario, operation, entries), path)


def scaling(scenario: str, entries: Sequence[Entry], path: Path) -> None:
    """Write :func:`scaling_figure` to *path*."""
    _save(scaling_figure(scenario, entries), path)


def latency_vs_scale(scenario: str, series: str, entries: Sequence[Entry], path: Path) -> None:
    """Write :func:`latency_vs_scale_figure` to *path*."""
    _save(latency_vs_scale_figure(scenario, series, entries), path)


def cdf(scenario: str, series: str, n: int, entries: Sequence[Entry], path: Path) -> None:
    """Write :func:`cdf_figure` to *path*."""
    _save(cdf_figure(scenario, series, n, entries), path)
