"""The report's plots (matplotlib, no display needed).

Each kind of plot is two functions: ``*_figure`` builds the :class:`~matplotlib.figure.Figure`
(what a test draws and reads back), and the one named for the kind writes it as one PNG.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter, NullFormatter

from ._compare import Entry, column_order
from ._sweep import LOAD, N
from ._sweep import Axis as SweepAxis

# Titles and legends hold names from results files: "$" in one is text, not a formula to parse.
matplotlib.rcParams["text.parse_math"] = False

#: Dots per inch of the PNGs written.
DPI = 110


def _sweep_axis(entries: Sequence[Entry]) -> SweepAxis:
    """The sweep axis a scenario's entries are on: the load's if any is, else N."""
    return LOAD if any(e.record.axis == LOAD.name for e in entries) else N


def _time_axis(axis: Axis) -> None:
    """Label a time axis in engineering units (ns, µs, ms): values are plotted in seconds."""
    axis.set_major_formatter(EngFormatter(unit="s"))
    low, high = axis.get_view_interval()
    # On a log axis spanning less than a decade there may be no major tick: label the minor ones.
    narrow = axis.get_scale() == "log" and low > 0 and high / low < 10
    axis.set_minor_formatter(EngFormatter(unit="s") if narrow else NullFormatter())


def _scale_axis(ax: Axes, entries: Sequence[Entry]) -> None:
    """A log x axis for N, or for the load B (symmetric-log there, since B starts at 0)."""
    axis = _sweep_axis(entries)
    if axis is LOAD:
        ax.set_xscale("symlog", linthresh=1)
    else:
        ax.set_xscale("log")
    ax.set_xlabel(axis.label)


def _latency_scale(ax: Axes, which: str) -> None:
    """Log scale for latencies; symmetric-log where some are zero or negative (early timers)."""
    low = ax.dataLim.x0 if which == "x" else ax.dataLim.y0
    set_scale = ax.set_xscale if which == "x" else ax.set_yscale
    if low <= 0:
        set_scale("symlog", linthresh=1e-6)  # linear within ±1 µs
    else:
        set_scale("log")


def _legend(ax: Axes, **options: Any) -> None:
    """A legend, if anything was drawn (a series may have no samples in a results file)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**options)


def _figure(width_in: float) -> tuple[Figure, Axes]:
    """A figure of its own, drawn by Agg to files only: no pyplot, no display, nothing global."""
    fig = Figure(figsize=(width_in, 4))
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def _save(fig: Figure, path: Path) -> None:
    fig.savefig(path, dpi=DPI)


def bars_figure(scenario: str, operation: str, entries: Sequence[Entry]) -> Figure:
    """Grouped bars: ns/op per N, one bar per runtime, whiskers over the process medians."""
    columns = column_order(entries)
    scales = sorted({e.record.n for e in entries})
    fig, ax = _figure(7.5)
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
        ax.bar(xs, ys, width, yerr=[low, high], capsize=3, label=column)
    symbol = _sweep_axis(entries).symbol
    ax.set_xticks(range(len(scales)), [f"{symbol}={n:,}" for n in scales])
    ax.set_ylabel("time per operation (whiskers: range of process medians)")
    _time_axis(ax.yaxis)
    ax.set_title(f"{scenario}: {operation}", fontsize=10)
    _legend(ax, title="runtime")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def scaling_figure(scenario: str, entries: Sequence[Entry]) -> Figure:
    """Per-operation cost against N, log-log, one line per runtime."""
    fig, ax = _figure(6.5)
    for column in column_order(entries):
        points = sorted((e.record.n, e.record.ns_per_op) for e in entries if e.column == column)
        ax.plot([p[0] for p in points], [p[1] / 1e9 for p in points], marker="o", label=column)
    _scale_axis(ax, entries)
    ax.set_yscale("log")
    ax.set_ylabel("time per operation (median)")
    _time_axis(ax.yaxis)
    ax.set_title(f"{scenario}: cost per operation as N grows", fontsize=10)
    _legend(ax, title="runtime")
    ax.grid(which="both", alpha=0.3)
    fig.tight_layout()
    return fig


def latency_vs_scale_figure(scenario: str, series: str, entries: Sequence[Entry]) -> Figure:
    """p50 and p99 latency against N (or background load), one colour per runtime."""
    fig, ax = _figure(6.5)
    for k, column in enumerate(column_order(entries)):
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
        colour = f"C{k}"
        xs = [p[0] for p in points]
        ax.plot(
            xs, [p[1]["p50"] / 1e9 for p in points], marker="o", color=colour, label=f"{column} p50"
        )
        tail = [(n, summary["p99"]) for n, summary in points if "p99" in summary]
        if tail:  # p99 is left out of summaries with too few samples
            ax.plot(
                [p[0] for p in tail],
                [p[1] / 1e9 for p in tail],
                marker="^",
                ls="--",
                color=colour,
                label=f"{column} p99",
            )
    _scale_axis(ax, entries)
    _latency_scale(ax, "y")
    ax.set_ylabel(f"{series} latency")
    _time_axis(ax.yaxis)
    ax.set_title(f"{scenario}: {series} latency percentiles", fontsize=10)
    _legend(ax, fontsize=8)
    ax.grid(which="both", alpha=0.3)
    fig.tight_layout()
    return fig


def cdf_figure(scenario: str, series: str, n: int, entries: Sequence[Entry]) -> Figure:
    """The latency distribution at scale *n*, as a CDF, one line per runtime."""
    fig, ax = _figure(6.5)
    for column in column_order(entries):
        for e in entries:
            summary = e.record.latency_ns.get(series)
            if e.column == column and e.record.n == n and summary and "cdf" in summary:
                points = summary["cdf"]
                ax.plot([p[1] / 1e9 for p in points], [p[0] for p in points], label=column)
    _latency_scale(ax, "x")
    ax.set_xlabel(f"{series} latency (log scale; below 1 µs and negative: linear)")
    _time_axis(ax.xaxis)
    ax.set_ylabel("percent of samples at or below")
    scale = _sweep_axis(entries).symbol
    ax.set_title(f"{scenario} at {scale}={n:,}: {series} latency distribution", fontsize=10)
    _legend(ax, title="runtime")
    ax.grid(which="both", alpha=0.3)
    fig.tight_layout()
    return fig


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
