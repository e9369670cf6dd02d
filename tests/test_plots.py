"""Every plot reads: each kind drawn, its tick labels read back as a person would read them.

A figure is drawn (``fig.canvas.draw()``) and each axis's labels are taken as drawn: every one must
be a plain number with its unit (no mathtext such as ``$\\mathdefault{10^{1}}$``), the numbers must
grow along the axis, there must be at least two to read a scale from, and no two may overlap.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from matplotlib.axis import Axis, XAxis
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from anybench import _plots
from anybench._layout import Entry, entries
from anybench._results import Record, load

from .conftest import ROOT, TinyReport
from .test_outputs import _latency_bench, _results

COMMITTED = ROOT / "results" / "20261201T200246_vm_cpython3.11.json"

UNITS = {"ns": 1e-9, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "": 1.0, "%": 1.0}
SUFFIXES = {"": 1, "k": 1e3, "M": 1e6}
LABEL = re.compile(
    r"(?:[NB]=)?(?P<sign>[-−]?)(?P<number>\d{1,3}(?:,\d{3})*(?:\.\d+)?)(?P<suffix>[kM]?)"
    r"(?:\s(?P<unit>ns|µs|ms|s))?(?P<percent>%?)"
)


def value_of(text: str) -> float:
    """What a tick label says, as a number (seconds for a time); ValueError if it says nothing
    a person reads as a number: ``10``, ``1,000``, ``10k``, ``1M``, ``N=1,000``, ``-1 µs``."""
    match = LABEL.fullmatch(text)
    if not match:
        raise ValueError(f"tick label {text!r} is not a plain number with a unit")
    number = float(match["number"].replace(",", "")) * SUFFIXES[match["suffix"]]
    number *= UNITS[match["unit"] or ""]
    return -number if match["sign"] else number


def drawn_labels(axis: Axis) -> list[Text]:
    """The tick labels *axis* drew (within its view, visible, not empty), in axis order."""
    low, high = sorted(axis.get_view_interval())
    slack = 1e-9 * max(abs(low), abs(high), 1e-30)
    labels = []
    for tick in [*axis.get_major_ticks(), *axis.get_minor_ticks()]:
        label = tick.label1
        if (
            label.get_visible()
            and label.get_text()
            and low - slack <= tick.get_loc() <= high + slack
        ):
            labels.append((tick.get_loc(), label))
    return [label for _, label in sorted(labels, key=lambda pair: pair[0])]


def label_problems(fig: Figure, what: str) -> list[str]:
    """Everything wrong with *fig*'s tick labels, one line each (empty if it reads well)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    problems = []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            name = f"{what}, {'x' if isinstance(axis, XAxis) else 'y'} axis"
            labels = drawn_labels(axis)
            texts = [label.get_text() for label in labels]
            if any("$" in text or "mathdefault" in text for text in texts):
                problems.append(f"{name}: mathtext in tick labels {texts}")
                continue
            try:
                values = [value_of(text) for text in texts]
            except ValueError as exc:
                problems.append(f"{name}: {exc} (all: {texts})")
                continue
            categorical = all("=" in text for text in texts)  # the bars' N=… labels
            if len(texts) < 2 and not categorical:
                problems.append(f"{name}: {len(texts)} labelled tick(s) {texts}: no scale to read")
            if any(b <= a for a, b in itertools.pairwise(values)):
                problems.append(f"{name}: tick labels do not grow along the axis: {texts}")
            boxes = [label.get_window_extent(renderer).padded(1) for label in labels]
            for (a, box_a), (b, box_b) in itertools.pairwise(zip(texts, boxes, strict=True)):
                if Bbox.intersection(box_a, box_b) is not None:
                    problems.append(f"{name}: labels {a!r} and {b!r} overlap (all: {texts})")
    return problems


def figures(all_entries: Sequence[Entry]) -> Iterator[tuple[str, Figure]]:
    """Every figure the report draws for *all_entries*, as its plot section chooses them."""
    for scenario in dict.fromkeys(e.record.scenario for e in all_entries):
        mine = [e for e in all_entries if e.record.scenario == scenario]
        scales = {e.record.n for e in mine}
        yield f"{scenario} bars", _plots.bars_figure(scenario, "one thing", mine)
        if len(scales) > 1:
            yield f"{scenario} scaling", _plots.scaling_figure(scenario, mine)
        for series in dict.fromkeys(s for e in mine for s in e.record.latency_ns):
            if len(scales) > 1:
                figure = _plots.latency_vs_scale_figure(scenario, series, mine)
                yield f"{scenario} {series} latency", figure
            figure = _plots.cdf_figure(scenario, series, max(scales), mine)
            yield f"{scenario} {series} cdf", figure


def all_problems(all_entries: Sequence[Entry]) -> list[str]:
    return [problem for what, fig in figures(all_entries) for problem in label_problems(fig, what)]


def test_label_values_are_read_as_a_person_reads_them() -> None:
    assert value_of("1,000") == 1000
    assert value_of("10k") == 10_000
    assert value_of("1M") == 1_000_000
    assert value_of("N=1,000") == 1000
    assert value_of("10 ms") == pytest.approx(0.01)
    assert value_of("−1 µs") == pytest.approx(-1e-6)
    assert value_of("2.5 µs") == pytest.approx(2.5e-6)
    for bad in ("$\\mathdefault{10^{1}}$", "9 ms10 ms", "1e3", "", "10 kg"):
        with pytest.raises(ValueError, match="not a plain number"):
            value_of(bad)


# Made-up entries, each the shape of a case that read badly once.


def _latency(values_ns: Sequence[float]) -> dict[str, Any]:
    ordered = sorted(values_ns)
    cdf = [[100.0 * i / (len(ordered) - 1), v] for i, v in enumerate(ordered)]
    middle = ordered[len(ordered) // 2]
    return {"count": len(ordered), "min": ordered[0], "p50": middle, "p99": ordered[-1],
            "max": ordered[-1], "cdf": cdf}  # fmt: skip


def _entry(
    scenario: str,
    runtime: str,
    n: int,
    ns_per_op: float,
    latency_ns: Sequence[float] | None = None,
    axis: str = "n",
) -> Entry:
    latency = {"wake": _latency(latency_ns)} if latency_ns else {}
    record = Record(
        scenario, runtime, n, ns_per_op, 3, n, (ns_per_op,) * 3, latency, axis=axis,
        processes=((ns_per_op * 0.98, ns_per_op, ns_per_op * 1.03),) * 3,
    )  # fmt: skip
    return Entry(runtime, runtime, record)


def _spread(low_ns: float, high_ns: float, count: int = 50) -> list[float]:
    """*count* values from *low_ns* to *high_ns*, evenly on a log scale."""
    ratio = (high_ns / low_ns) ** (1 / (count - 1))
    return [low_ns * ratio**i for i in range(count)]


CASES: dict[str, list[Entry]] = {
    # N from 10 to a million: every decade labelled, 1,000 and beyond in few characters.
    "a wide sweep": [
        _entry("wide", runtime, n, 400.0 * math.log10(n) + k * 50, _spread(1e3 * k + 500, 1e6))
        for k, runtime in enumerate(("asyncio", "trio"), 1)
        for n in (10, 100, 1000, 10_000, 100_000, 1_000_000)
    ],
    # Latencies within one decade (3.5 to 20 ms): "9 ms10 ms" once.
    "a narrow latency range": [
        _entry("narrow", runtime, n, 5000.0 * k, _spread(3.5e6 * k, 1.2e7 + k * 4e6))
        for k, runtime in enumerate(("asyncio", "uvloop", "trio", "rloop"), 1)
        for n in (10, 10_000)
    ],
    # Latencies over a decade and a half with one power of ten inside: one label once.
    "a decade and a half": [
        _entry("cancellation", runtime, n, 9000.0 * k, _spread(1.5e7 * k, 5e8))
        for k, runtime in enumerate(("asyncio", "trio"), 1)
        for n in (10, 10_000)
    ],
    # Two close N (3 and 40) with no power of ten but one between them.
    "two scales within a decade": [
        _entry("close", runtime, n, 1000.0 * k + n, _spread(2e3, 9e3))
        for k, runtime in enumerate(("asyncio", "trio"), 1)
        for n in (3, 40)
    ],
    # A load sweep from B = 0.
    "a load sweep": [
        _entry("load", runtime, b, 1000.0 * k + b, _spread(1e3 * k, 1e5 + b * 1e3), axis="load")
        for k, runtime in enumerate(("asyncio", "trio"), 1)
        for b in (0, 10, 100, 1000)
    ],
    # Timers that fire before their deadline by the loop clock (uvloop's, in whole ms).
    "negative lateness": [
        _entry("timers", "uvloop", 10, 19_000.0, [-900.0, -400.0, -200.0, 0.0, 999_700.0]),
        _entry("timers", "uvloop", 1000, 9_000.0, _spread(9.9e5, 1e7)),
        _entry("timers", "asyncio", 10, 18_000.0, _spread(5.7e4, 2.6e5)),
        _entry("timers", "asyncio", 1000, 8_000.0, _spread(2.1e6, 1.3e7)),
    ],
    # Names that are mathtext to matplotlib are shown as written.
    "names with $": [_entry("$x^{$", "$a$", n, 1000.0 + n, _spread(1e3, 1e4)) for n in (10, 100)],
}


@pytest.mark.parametrize("case", CASES)
def test_every_plot_kind_reads(case: str) -> None:
    assert all_problems(CASES[case]) == []


@functools.cache
def committed_entries() -> list[Entry]:
    return entries([load(COMMITTED)])


@pytest.mark.parametrize(
    "scenario", list(dict.fromkeys(e.record.scenario for e in committed_entries()))
)
def test_every_plot_of_the_committed_reference_run_reads(scenario: str) -> None:
    mine = [e for e in committed_entries() if e.record.scenario == scenario]
    assert all_problems(mine) == []


def test_every_plot_of_a_small_real_run_reads(tiny_report: TinyReport) -> None:
    # Read as the report of the tiny results saved them (the fixture): every plot it links.
    page = (tiny_report.path / "index.md").read_text()
    assert tiny_report.plots == re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page)
    assert tiny_report.plot_problems == []


def test_a_latency_below_zero_is_said_on_the_plot() -> None:
    """Timers on uvloop read as early on its millisecond clock: the plots say what that means."""
    negative = CASES["negative lateness"]
    for fig in (
        _plots.latency_vs_scale_figure("timers", "wake", negative),
        _plots.cdf_figure("timers", "wake", 10, negative),
    ):
        notes = [text.get_text() for text in fig.texts]
        assert any("Below 0" in note and "clock" in note for note in notes), notes
    for fig in (
        _plots.latency_vs_scale_figure("wide", "wake", CASES["a wide sweep"]),
        _plots.cdf_figure("wide", "wake", 10, CASES["a wide sweep"]),
    ):
        assert not fig.texts, "a note on a plot with nothing below zero"


def test_a_crowded_plot_is_laid_out_without_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A report of many runs at once (as every committed run in one report): every legend
    entry is drawn (48 here, in three columns: a legend of 24 was once cut at 17), a runtime
    keeps one colour in every run and every column has a style of its own, and the figure
    widens for the legend, so that tight_layout applies (a chart still too crowded for it:
    the next test).

    Made-up runs of the committed ones' size and names (a dozen files, four runtimes, four N),
    of one scenario: the same crowded chart as every committed file in one report, without the
    other fifteen scenarios' plots (every committed file loads: test_results)."""
    import warnings

    from anybench._report import write_report

    runs = []
    for i in range(12):
        data = _results("spawn")
        data["machine_info"]["anybench"]["unavailable_runtimes"] = {}
        data["benchmarks"] = [
            _latency_bench("spawn", runtime, n, 1000.0 * (k + 1) + n + i)
            for k, runtime in enumerate(("asyncio", "uvloop", "trio", "rloop"))
            for n in (10, 100, 1000, 10_000)
        ]
        path = tmp_path / f"202611{i + 10:02d}T021043_vm_cpython3.11_anyio-4.{i}.0.json"
        path.write_text(json.dumps(data))
        runs.append(load(path))
    real_save = _plots._save
    crowded: list[bool] = []
    legends: dict[str, list[tuple[str, object]]] = {}

    def save(fig: Figure, path: Path) -> None:
        crowded.append(fig in _plots._CROWDED)
        [ax] = fig.axes
        legend = ax.get_legend()
        legends[path.name] = [
            (text.get_text(), handle.get_facecolor() if hasattr(handle, "get_facecolor") else None)
            for text, handle in zip(legend.get_texts(), legend.legend_handles, strict=True)
        ]
        real_save(fig, path)

    monkeypatch.setattr(_plots, "_save", save)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        write_report(runs, tmp_path / "report")
    assert [str(w.message) for w in caught if "layout" in str(w.message)] == []
    bars = legends["spawn-bars.png"]
    assert len(bars) == 48
    colours = {label.split(" ")[0]: set() for label, _ in bars}
    for label, colour in bars:
        colours[label.split(" ")[0]].add(str(colour))
    assert sorted(colours) == ["asyncio", "rloop", "trio", "uvloop"]
    assert all(len(c) == 1 for c in colours.values()), colours  # one colour a runtime
    assert len({next(iter(c)) for c in colours.values()}) == 4  # and four colours
    assert not any(crowded)
    styles = _plots._styles(entries(runs))
    assert len(set(styles.values())) == len(styles) == 48


def test_a_chart_too_crowded_for_tight_layout_is_saved_whole_without_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where tight_layout gives up (matplotlib warns "Tight layout not applied", naming its
    source), the figure is saved with bbox_inches="tight" instead, and the warning is not
    passed on."""
    import warnings

    fig, _ = _plots._figure()

    def gives_up(*args: object, **kwargs: object) -> None:
        warnings.warn("Tight layout not applied. The margins ...", UserWarning, stacklevel=2)

    monkeypatch.setattr(fig, "tight_layout", gives_up)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _plots._finish(fig)
    assert caught == []
    assert fig in _plots._CROWDED
    _plots._save(fig, tmp_path / "crowded.png")
    assert (tmp_path / "crowded.png").stat().st_size > 0
