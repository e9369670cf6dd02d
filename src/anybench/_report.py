"""``anybench report``: from results files to a Markdown page and PNG plots.

The report reads results files only (never the scenarios): what it says of a scenario beyond its
figures is what the scenario declared (its ``REMARKS`` and ``CAVEATS``), recorded in the results.
Every name from the files is escaped for Markdown where it is written into the page
(:mod:`anybench._escape`): in a table by :func:`_row`, elsewhere as it is put in a line.

The page is written into a fresh temporary directory beside its destination and renamed into
place, so an interrupted report leaves no half-written page. It is marked as anybench's, and only
such a report is ever replaced, and only when asked: never an input, a results directory or
anything anybench did not write.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from . import _plots
from ._busy import (
    BUSY_REASON,
    NOISY_SPREAD,
    busy_processes,
    busy_reasons,
    noisy,
    round_spread,
    summary_line,
)
from ._counts_report import work_section
from ._counts_results import CountsRun
from ._escape import markdown, markdown_code, plot_text
from ._explain import explained_section
from ._files import (
    REPORT_MARKER,
    FileNames,
    OutputError,
    existing_report,
    mark_report,
    staging_directory,
    swap_directory,
    unwritable,
)
from ._format import format_ns
from ._layout import (
    Entry,
    baseline_column,
    baseline_columns,
    cells_by_key,
    column_order,
    dagger,
    dagger_notes,
    entries,
    one_per_file,
    recorded_libraries,
    scale_text,
    sorted_keys,
)
from ._results import Run, below_clock_note
from ._runtimes import BASELINE
from ._stats import geometric_mean, scaling_class, scaling_slope, stability_warnings
from ._sweep import AXES, N
from ._verdicts import BY_DUET, BY_TURNS, Ratio, variant_pairing


class ReportExistsError(OutputError):
    """The report directory exists and replacing it was not asked for."""


def default_report_dir(runs: Sequence[Run]) -> Path:
    """``report-<newest file's stem>`` beside the newest results file (``DIR/report-<stem>``
    for ``DIR/<stem>.json``)."""
    newest = max(runs, key=lambda run: run.datetime)
    return newest.path.parent / f"report-{newest.path.stem}"


def write_report(
    runs: Sequence[Run],
    out_dir: Path,
    *,
    replace: bool = False,
    counts: Sequence[CountsRun] = (),
) -> Path:
    """Write ``index.md`` and its plots for *runs* into *out_dir*; return the page's path.

    The report is marked as anybench's (see :mod:`anybench._files`). With *replace*, an existing
    report anybench wrote at *out_dir* is replaced; anything else there (an input, a file,
    results, a directory without the mark) raises :class:`OutputError` and nothing changes, as
    does an existing report without *replace* (:class:`ReportExistsError`). A directory that
    cannot be written raises :class:`OutputError` too, naming it.
    """
    out_dir = Path(out_dir)
    inputs = [run.path for run in runs] + [Path(c.source) for c in counts if c.source]

    def may_replace() -> bool:
        """Whether a report of anybench's is there; raise if it is not to be replaced."""
        found = existing_report(out_dir, inputs)
        if found and not replace:
            raise ReportExistsError(
                f"{out_dir} exists; pass --force to replace it or --out elsewhere"
            )
        return found

    may_replace()
    try:
        staging = staging_directory(out_dir)
    except OSError as exc:
        raise unwritable(out_dir.parent, exc, "write a report into it", "--out") from None
    try:
        (staging / "index.md").write_text(render(runs, staging, counts), encoding="utf-8")
        mark_report(staging)
        may_replace()  # checked again: it may have changed while the plots were drawn
        swap_directory(staging, out_dir)
    except OSError as exc:
        raise unwritable(out_dir.parent, exc, "write a report into it", "--out") from None
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return out_dir / "index.md"


@dataclass(frozen=True)
class Context:
    """What every section of the report is drawn from."""

    runs: Sequence[Run]
    entries: Sequence[Entry]
    #: The runtimes' columns, in order (see :func:`anybench._layout.column_order`).
    columns: list[str]
    #: The baseline runtime's first column, or None when no run has the baseline runtime.
    base: str | None
    #: Each column's baseline: the baseline runtime's column of the same run.
    base_of: dict[str, str]
    #: The scenarios, in the order the results hold them.
    scenarios: list[str]
    #: Where the plots are written; the page links them relatively.
    plot_dir: Path
    #: The files given more than once (shown once), with the number of times.
    repeated: Sequence[tuple[Run, int]] = ()
    #: Counts files shown beside the time results (the "Work per operation" section).
    counts: Sequence[CountsRun] = ()

    @classmethod
    def of(cls, given: Sequence[Run], plot_dir: Path, counts: Sequence[CountsRun] = ()) -> Context:
        runs, repeated = one_per_file(given)
        all_entries = entries(runs)
        return cls(
            runs,
            all_entries,
            column_order(all_entries),
            baseline_column(all_entries),
            baseline_columns(all_entries),
            list(dict.fromkeys(e.record.scenario for e in all_entries)),
            plot_dir,
            repeated,
            counts,
        )


#: A section of the page: its Markdown lines, or none to leave it out.
Section = Callable[[Context], list[str]]


def render(runs: Sequence[Run], plot_dir: Path, counts: Sequence[CountsRun] = ()) -> str:
    """The Markdown page, its sections (:data:`SECTIONS`) a blank line apart; plots are written
    into *plot_dir* and linked relatively."""
    context = Context.of(runs, plot_dir, counts)
    out: list[str] = []
    for i, section in enumerate(SECTIONS):
        if i:
            out.append("")  # an empty section leaves a blank line: the page stays as it was
        out += section(context)
    return "\n".join(out) + "\n"


def _title(ctx: Context) -> list[str]:
    return [
        "# anybench report",
        "",
        f"Generated {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M UTC} from "
        + ", ".join(markdown_code(run.path.name) for run in ctx.runs)
        + ".",
    ]


def _table_head(labels: list[str], numeric: list[str]) -> list[str]:
    """A Markdown table's header: *labels* left-aligned, then *numeric* columns right-aligned
    (names, escaped here)."""
    return [
        _row([*labels, *numeric], []),
        "|" + "---|" * len(labels) + "---:|" * len(numeric),
    ]


def _row(names: list[str], cells: list[str]) -> str:
    """A Markdown table's row: *names* (scenario, series, ... as the files hold them: escaped
    here), then *cells*, Markdown the report made of figures (escaped where it was made)."""
    return "| " + " | ".join([*map(markdown, names), *cells]) + " |"


def _footnotes(caveats: list[str]) -> list[str]:
    """The † notes of the caveats a table marked (see :func:`anybench._layout.dagger`)."""
    return ["\n" + note for note in dagger_notes([markdown(caveat) for caveat in caveats])]


def _without_remarks(run: Run) -> bool:
    """Whether *run*'s file predates the scenarios' ``REMARKS`` in results files (format 3 and
    before): no benchmark of it has the key, where a scenario without remarks records {}."""
    benchmarks = run.data.get("benchmarks") or []
    return bool(benchmarks) and not any(
        "remarks" in (b.get("extra_info") or {}) for b in benchmarks if isinstance(b, dict)
    )


def _remarks(ctx: Context, topic: str, scenarios: list[str]) -> list[str]:
    """What *scenarios* declared of their figures on *topic* (their ``REMARKS``), one item
    each, as the results recorded it."""
    out = []
    for scenario in scenarios:
        remark = next(
            (
                e.record.remarks[topic]
                for e in ctx.entries
                if e.record.scenario == scenario and topic in e.record.remarks
            ),
            None,
        )
        if remark:
            out.append(f"- {markdown_code(scenario)}: {markdown(remark)}.")
    return ["", "What the scenarios declare of these figures:", "", *out] if out else []


def _summary(ctx: Context) -> list[str]:
    all_entries, columns, base, scenarios = ctx.entries, ctx.columns, ctx.base, ctx.scenarios
    out = ["## Summary: time per operation", ""]
    if base is None:
        out.append("(No asyncio run among these results: ratios are not shown.)")
        out.append("")
    out += _table_head(["scenario", "N"], columns)
    cells = cells_by_key(all_entries)
    # Geometric means are kept apart for unlike things: anyio scenarios scaled by N, and the
    # native baselines (a scenario on another axis, whose cost is its load's, stays out of both).
    kinds = {"anyio scenarios": "anyio", "native baselines": "native"}
    ratios: dict[str, dict[str, list[float]]] = {
        k: {c: [] for c in columns} for k in kinds.values()
    }
    caveats: list[str] = []
    left_out = busy = 0
    for key in sorted_keys(cells, scenarios):
        row = cells[key]
        parts = []
        for column in columns:
            entry = row.get(column)
            if entry is None:
                parts.append("–")
                continue
            record = entry.record
            text = format_ns(record.ns_per_op) + dagger(record, caveats)
            if busy_processes(record.process_busy):
                busy += 1
                text += " \\*"
            baseline = row.get(ctx.base_of.get(column, ""))
            if record.unstable:
                text += " (unstable)"
            elif baseline is not None and baseline is not entry:
                ratio = Ratio.within_run(baseline.record, record)
                # Only like with like enters a mean: no unstable row, no row whose runtime uses
                # a mechanism of its own (†), no scenario on another axis than N.
                if record.axis == N.name and not record.caveat and not baseline.record.unstable:
                    kind = "native" if record.native_of else "anyio"
                    ratios[kind][column].append(ratio.ratio)
                else:
                    left_out += 1
                text += f" ({ratio})"
            parts.append(text)
        label = next(iter(row.values())).record.scale_label
        out.append(_row([key[0], label], parts))
    if base is not None:
        for label, kind in kinds.items():
            if not any(ratios[kind].values()):
                continue
            geo = [
                f"{geometric_mean(ratios[kind][c]):.2f}x" if ratios[kind][c] else "–"
                for c in columns
            ]
            for column in set(ctx.base_of.values()):
                geo[columns.index(column)] = "1.00x"
            out.append(f"| **geometric mean**, {label} | | " + " | ".join(geo) + " |")
        out += [
            "",
            "Time per operation: the geometric mean of the per-process medians (each benchmark "
            "ran in several fresh worker processes, every runtime of a scenario in the same "
            "workers, their rounds taking turns). In brackets: the ratio to "
            f"`{BASELINE}` of the same run (lower is faster; never across runs) and its 95% "
            "interval: the paired t interval of the per-process log ratios where both ran in "
            "the same processes (a process that ran slow ran slow for both, and cancels out), "
            "else Welch's t on the logs of the per-process medians (one process is one unit: "
            "the variance between processes is in the interval); `~` marks a difference that "
            "is not significant (the interval "
            "contains 1). `(unstable)`: the measured region stayed under 1 ms; no ratio is "
            "drawn from it. Each geometric mean is over the stable rows of its kind that both "
            "columns have, without the rows marked † (a mechanism of their own on that "
            f"runtime) and without the scenarios scaled by another axis than {N.symbol}, whose "
            f"cost is their load's{_other_axes(ctx)} ({left_out} cells left out).",
        ]
    if busy:
        out += [
            "",
            f"\\* measured while the machine was busy ({busy} figures): {BUSY_REASON}; it may "
            "read that much slow, more than its interval says (see How busy the machine was).",
        ]
    return out + _footnotes(caveats)


def _other_axes(ctx: Context) -> str:
    """``: `a`, `b` `` for the scenarios on another axis than N, "" for none."""
    others = [
        s
        for s in ctx.scenarios
        if any(e.record.scenario == s and e.record.axis != N.name for e in ctx.entries)
    ]
    return ": " + ", ".join(map(markdown_code, others)) if others else ""


def _anyio_tax(ctx: Context) -> list[str]:
    all_entries, columns, scenarios = ctx.entries, ctx.columns, ctx.scenarios
    natives = [e for e in all_entries if e.record.native_of]
    if not natives:
        return []
    anyio_by_key = {(e.record.scenario, e.record.n, e.column): e for e in all_entries}
    rows: dict[tuple[str, int], dict[str, str]] = {}
    caveats: list[str] = []
    for native in natives:
        twin = anyio_by_key.get((native.record.native_of or "", native.record.n, native.column))
        if twin is None:
            continue
        text = str(Ratio.of(native.record, twin.record))
        text += dagger(native.record, caveats) + dagger(twin.record, caveats)
        rows.setdefault((twin.record.scenario, twin.record.n), {})[native.column] = text
    if not rows:
        return []
    out = ["## The anyio tax: anyio time per operation ÷ native", ""]
    out += _table_head(["scenario", "N"], columns)
    for scenario, n in sorted(rows, key=lambda k: (scenarios.index(k[0]), k[1])):
        row = rows[(scenario, n)]
        label = next(e.record.scale_label for e in all_entries if e.record.key == (scenario, n))
        out.append(_row([scenario, label], [row.get(c, "–") for c in columns]))
    out += [
        "",
        "Each `*_native` scenario does the same work as its anyio twin in plain asyncio (on every "
        "asyncio-based runtime) or plain trio, with the same checks. 1.00x means anyio costs "
        "nothing; 3x means the anyio version takes three times as long per operation. In "
        "brackets, the 95% process-level interval; `~`: not significant.",
    ]
    out += _remarks(ctx, "anyio_tax", list(dict.fromkeys(scenario for scenario, _ in rows)))
    return out + _footnotes(caveats)


def _scaling(ctx: Context) -> list[str]:
    columns, scenarios = ctx.columns, ctx.scenarios
    out = ["## Scaling: cost per operation from one N to the next", ""]
    out += _table_head(["scenario", "N from → to"], columns)
    rows = 0
    for scenario in scenarios:
        mine = [e for e in ctx.entries if e.record.scenario == scenario and e.record.axis == N.name]
        scales = sorted({e.record.n for e in mine})
        for low_n, high_n in itertools.pairwise(scales):
            parts = []
            for column in columns:
                at = {e.record.n: e.record for e in mine if e.column == column}
                if low_n not in at or high_n not in at:
                    parts.append("–")
                    continue
                ratio = Ratio.of(at[low_n], at[high_n]).log
                slope, low, high = scaling_slope(ratio, low_n, high_n)
                interval = f" [{low:+.2f}, {high:+.2f}]" if math.isfinite(high - low) else ""
                parts.append(f"{slope:+.2f}{interval} {scaling_class(slope, low, high)}")
            out.append(_row([scenario, f"{low_n:,} → {high_n:,}"], parts))
            rows += 1
    if not rows:
        return []
    out += [
        "",
        "The local exponent k of ns/op ∝ N^k between two neighbouring N, log(ratio of ns/op) / "
        "log(ratio of N), with its 95% interval (from the process-level interval of the "
        "ratio): about 0 is a flat cost per operation; about 1 is a cost per operation that "
        "grows linearly with N (quadratic in total); in between, a slow growth such as log N "
        "or a garbage collector walking more live objects; below 0, fixed costs spread over "
        "more operations. `~`: an estimate beyond ±0.1 whose interval still holds 0, so no "
        "growth or fall is claimed. See the scaling plots below for the shape.",
    ]
    return out


def _memory(ctx: Context) -> list[str]:
    all_entries, columns, scenarios = ctx.entries, ctx.columns, ctx.scenarios
    measured = [e for e in all_entries if e.record.memory]
    if not measured:
        return []
    out = ["## Memory per operation", ""]
    out += _table_head(["scenario", "N"], columns)
    by_scenario: dict[str, dict[str, Entry]] = {}
    for entry in measured:
        by_scenario.setdefault(entry.record.scenario, {})[entry.column] = entry
    for scenario in scenarios:
        row = by_scenario.get(scenario)
        if not row:
            continue
        # The N the memory was measured at (a round of its own, at most the profile's memory
        # N): in the N column where every cell shares it, else in each cell that differs.
        first = next(iter(row.values())).record
        measured_at = {
            (e.record.memory or {}).get("n", e.record.n) for e in row.values() if e.record.memory
        }
        shared = measured_at.pop() if len(measured_at) == 1 else None
        label = (first if shared is None else replace(first, n=shared)).scale_label
        parts = []
        for column in columns:
            memory = row[column].record.memory if column in row else None
            text = f"{memory['bytes_per_op']:,.0f} B" if memory else "–"
            if memory and memory.get("peak_bytes") is not None:
                text += f", peak {memory['peak_bytes'] / 2**20:,.1f} MiB"
            record = row[column].record if column in row else None
            if memory and record and shared is None and memory.get("n", record.n) != first.n:
                text += f" (at {scale_text(replace(record, n=memory['n']))})"
            parts.append(text)
        out.append(_row([scenario, label], parts))
    out += [
        "",
        "Peak memory the scenario allocated from its start (set-up included) to the end of its "
        "measured region (tracemalloc, in one extra untimed round at the N shown: the largest, "
        "or the profile's largest for memory), divided by the operations, and that peak itself. "
        "It includes the scenario's own bookkeeping (timestamps and result lists: a few "
        "integers, about 32 B each, per operation).",
    ]
    return out + _remarks(ctx, "memory", [s for s in scenarios if s in by_scenario])


def _latency(ctx: Context) -> list[str]:
    all_entries, columns, scenarios = ctx.entries, ctx.columns, ctx.scenarios
    out = ["## Latency: p50 / p99 / max", ""]
    out += _table_head(["scenario", "series", "N"], [*columns, "samples"])
    cells = cells_by_key(all_entries)
    for key in sorted_keys(cells, scenarios):
        row = cells[key]
        series_names = list(dict.fromkeys(s for e in row.values() for s in e.record.latency_ns))
        for series in series_names:
            parts: list[str] = []
            counts: list[int | None] = []
            for column in columns:
                entry = row.get(column)
                summary = entry.record.latency_ns.get(series) if entry else None
                if not summary or "p50" not in summary:
                    parts.append("–")
                    counts.append(None)
                    continue
                counts.append(summary["count"])
                parts.append(
                    f"{format_ns(summary['p50'])} / "
                    f"{format_ns(summary['p99']) if 'p99' in summary else 'n/a'} / "
                    f"{format_ns(summary['max'])}"
                )
            # One count for the row where every cell has it, else each cell says its own (a
            # list in the last column could not be told apart: a p99 of 100 samples is the
            # largest but one).
            known = {c for c in counts if c is not None}
            if len(known) > 1:
                parts = [
                    p if c is None else f"{p} ({c:,})" for p, c in zip(parts, counts, strict=True)
                ]
                samples = "per cell"
            else:
                samples = ", ".join(f"{c:,}" for c in known)
            label = next(iter(row.values())).record.scale_label
            out.append(_row([key[0], series, label], [*parts, samples]))
    out += [
        "",
        "Delays from the trigger to the callback or awaiter running, over all rounds; the "
        "samples behind each (in a cell, in brackets, where the cells of a row differ). Where "
        "all N triggers of a round happen before the loop runs the reactions, a delay "
        "includes the queue of triggers before it and grows with N by design (see each "
        "scenario's docstring).",
    ]
    shown = [
        s
        for s in scenarios
        if any(e.record.scenario == s and e.record.latency_ns for e in all_entries)
    ]
    return out + _remarks(ctx, "latency", shown)


def _instrument(ctx: Context) -> list[str]:
    """What the latency stamps cost, on the cheapest operation measured: the same benchmark's
    ns/op in its latency rounds (stamps on) against its throughput rounds (none)."""
    all_entries, columns = ctx.entries, ctx.columns
    stamped = [e for e in all_entries if e.record.stamped_ns_per_op and not e.record.unstable]
    if not stamped:
        return []
    cheapest = min(stamped, key=lambda e: e.record.ns_per_op).record
    out = [
        "## The instrument's cost",
        "",
        f"On the cheapest benchmark measured, {markdown_code(cheapest.scenario)} at "
        f"{scale_text(cheapest)}: ns per "
        "operation in throughput rounds (no clock reading per operation) and in latency rounds "
        "(every operation stamped), and the stamps' share of the stamped figure.",
        "",
        *_table_head(["rounds"], columns),
    ]
    rows: dict[str, list[str]] = {"throughput": [], "latency (stamped)": [], "stamps' share": []}
    for column in columns:
        match = [e.record for e in stamped if e.column == column and e.record.key == cheapest.key]
        if not match:
            for row in rows.values():
                row.append("–")
            continue
        plain, with_stamps = match[0].ns_per_op, match[0].stamped_ns_per_op or 0.0
        rows["throughput"].append(format_ns(plain))
        rows["latency (stamped)"].append(format_ns(with_stamps))
        rows["stamps' share"].append(f"{(with_stamps - plain) / with_stamps:+.0%}")
    out += [_row([name], cells) for name, cells in rows.items()]
    return out


def _plots_section(ctx: Context) -> list[str]:
    all_entries, scenarios, plot_dir = ctx.entries, ctx.scenarios, ctx.plot_dir
    out = ["## Plots", ""]
    # Scenario and series names come from the results files: each file name is made safe and
    # unique, so a name like "../x" stays inside plot_dir and never takes another plot's file.
    names = FileNames(reserved=("index.md", REPORT_MARKER))
    for scenario in scenarios:
        mine = [e for e in all_entries if e.record.scenario == scenario]
        operation = next((e.record.operation for e in mine if e.record.operation), "")
        shown, title = markdown(scenario), plot_text(scenario)
        out += [f"### {shown}", ""]
        if operation:
            out += [f"One operation: {markdown(operation)}.", ""]
        name = names.name(scenario, "bars", suffix=".png")
        _plots.bars(title, plot_text(operation), mine, plot_dir / name)
        out.append(f"![{shown}: ns per operation by runtime]({name})")
        axis = AXES.get(mine[0].record.axis, N)
        if len({e.record.n for e in mine}) > 1:
            name = names.name(scenario, "scaling", suffix=".png")
            _plots.scaling(title, mine, plot_dir / name)
            out.append(f"![{shown}: cost per operation against {axis.symbol}]({name})")
        series_names = list(dict.fromkeys(s for e in mine for s in e.record.latency_ns))
        largest = max(mine, key=lambda e: e.record.n).record
        for series in series_names:
            if len({e.record.n for e in mine}) > 1:
                name = names.name(scenario, series, "latency", suffix=".png")
                _plots.latency_vs_scale(title, series, mine, plot_dir / name)
                out.append(
                    f"![{shown}: {markdown(series)} latency percentiles against "
                    f"{axis.symbol}]({name})"
                )
            name = names.name(scenario, series, "cdf", suffix=".png")
            _plots.cdf(title, series, largest.n, mine, plot_dir / name)
            out.append(
                f"![{shown}: {markdown(series)} latency distribution at "
                f"{scale_text(largest)}]({name})"
            )
        out.append("")
    return out


def _warnings(ctx: Context) -> list[str]:
    runs, all_entries = ctx.runs, ctx.entries
    out = ["## Warnings", ""]
    for entry in all_entries:
        problems = stability_warnings(entry.record.round_ns_per_op)
        if problems:
            out.append(
                f"- {markdown_code(entry.record.scenario)} {scale_text(entry.record)} on "
                f"{markdown(entry.column)}: "
                + "; ".join(problems)
                + " — too unstable to trust; re-run it on a quieter machine."
            )
        note = below_clock_note(
            f"{entry.record.scenario} {scale_text(entry.record)} on {entry.column}",
            entry.record.ns_per_op,
            runs[entry.run].anybench_info.get("timer_cost_ns"),
        )
        if note is not None:
            out.append(f"- {markdown(note)}")
    for run, times in ctx.repeated:
        out.append(f"- {markdown_code(str(run.path))} was given {times} times: shown once.")
    for run in runs:
        file = markdown_code(run.path.name)
        if run.partial:
            out.append(f"- {file}: PARTIAL run, {markdown(run.partial)}.")
        if run.placement:
            out.append(f"- {file}: {markdown(run.placement)}.")
        if _without_remarks(run):
            out.append(
                f"- {file}: written before results files recorded what each scenario declares "
                f"of its figures (results format {run.anybench_info.get('format')}): no such "
                "remarks are shown for it."
            )
        for name, reason in run.unavailable_runtimes.items():
            out.append(f"- {file}: runtime {markdown(name)} skipped: {markdown(reason)}")
        for failure in run.failed:
            out.append(
                f"- {file}: FAILED {markdown_code(str(failure.get('test')))}: "
                f"{markdown(str(failure.get('error')))}"
            )
    if len(out) == 2:
        out.append("None: every benchmark passed pyperf's stability rules.")
    return out


def _busy_section(ctx: Context) -> list[str]:
    """How busy the machine was in each run (as its workers measured it, where they did), how
    far its rounds spread within a process, and the benchmarks measured while it was busy."""
    lines = []
    for run in ctx.runs:
        busy = summary_line(run.busy) if run.busy else None
        parts = [busy] if busy else []
        spread = round_spread(record.processes for record in run.records)
        if spread is not None:
            mark = f": noisy, above ±{NOISY_SPREAD:.0%}" if noisy(spread) else ""
            parts.append(f"rounds within a worker process spread ±{spread:.1%}{mark}")
        if parts:
            lines.append(f"- {markdown_code(run.path.name)}: {markdown('; '.join(parts))}")
    if not lines:
        return []
    out = ["## How busy the machine was", "", *lines]
    marked = [e for e in ctx.entries if busy_processes(e.record.process_busy)]
    if marked:
        out += [
            "",
            "These benchmarks were measured while the machine was busy (a figure is marked "
            f"when {BUSY_REASON}): re-run them on a quieter machine before trusting their "
            "figures.",
            "",
        ]
        for entry in marked:
            record = entry.record
            reasons = [r for b in record.process_busy if b is not None for r in busy_reasons(b)]
            out.append(
                f"- {markdown_code(record.scenario)} {scale_text(record)} on "
                f"{markdown(entry.column)}: {busy_processes(record.process_busy)} of "
                f"{len(record.process_busy)} processes ({markdown('; '.join(reasons[:3]))})"
            )
    return out


def _metadata(ctx: Context) -> list[str]:
    runs = ctx.runs
    out = ["## Runs", ""]
    libraries = recorded_libraries(runs)
    out += _table_head(
        ["file", "date", "machine", "CPU", "Python", *libraries, "commit", "timer"], []
    )
    for run in runs:
        info = run.machine_info
        libs = run.anybench_info.get("libraries", {})
        cpu = (info.get("cpu") or {}).get("brand_raw") or info.get("processor") or "?"
        commit = run.commit_info.get("id", "")[:10] or "?"
        if run.commit_info.get("dirty"):
            commit += " (dirty)"
        timer = run.anybench_info.get("timer_cost_ns")
        python = f"{info.get('python_implementation', '')} {info.get('python_version', '?')}"
        versions = [libs.get(lib) or "–" for lib in libraries]
        timer_text = f"{timer:.0f} ns/reading" if timer else "?"
        out.append(
            f"| {markdown_code(run.path.name, in_table=True)} "
            + _row(
                [run.datetime[:19], info.get("node") or "?", cpu, python, *versions, commit],
                [timer_text],
            )
        )
    return out


def _variants_met(ctx: Context) -> str:
    """How the variants of one run met in its passes, for the Method section ("" for none)."""
    how = variant_pairing(ctx.runs)
    if how is None:
        return ""
    moment = {
        BY_DUET: "at the same moment, one per CPU (`--pairing duet`)",
        BY_TURNS: "alive at once, their rounds taking turns one at a time (`--pairing lockstep`)",
    }.get(how, "one after the other, in an order that alternated from pass to pass")
    return (
        "; each pass gave every benchmark one worker process per variant (environment), "
        f"{moment}, and `anybench compare` of two variants pairs their processes by pass"
    )


def _method(ctx: Context) -> list[str]:
    return [
        "## Method",
        "",
        "Each benchmark ran in several fresh worker processes (at least three). One worker "
        "measured one scenario on every runtime, their throughput rounds taking turns, forward "
        "then backward, so that a process or a minute that ran slow ran slow for all of them "
        f"alike{_variants_met(ctx)}. A "
        "ratio between runtimes of one run pairs their figures process by process. Each "
        "round is one fresh `anyio.run`; the "
        "scenario times only its own region inside the running loop with "
        "`time.perf_counter_ns` (loop start-up and set-up excluded), after a full garbage "
        "collection. Throughput rounds read no clock per operation; latency comes from rounds "
        "of its own, with the scenario's stamps on. A region shorter than 1 ms is repeated "
        "(independent passes in one round) until the round passes 1 ms. The unit of every "
        "interval is one process (the median of its rounds): a paired t on the per-process "
        "log ratios for two runtimes of one run, Welch's t on their logs otherwise. The "
        "timer's own cost per reading is in the Runs table. Numbers from different machines or "
        "Python versions are shown side by side only with that table beside them, and ratios "
        "are taken within each run, never across runs.",
    ]


def _work(ctx: Context) -> list[str]:
    return work_section(ctx.counts, ctx.entries, ctx.runs)


def _explained(ctx: Context) -> list[str]:
    return explained_section(ctx.counts, ctx.plot_dir)


#: The page, section by section: a new section is one function and one line here.
SECTIONS: tuple[Section, ...] = (
    _title,
    _summary,
    _anyio_tax,
    _scaling,
    _memory,
    _latency,
    _instrument,
    _work,
    _explained,
    _plots_section,
    _busy_section,
    _warnings,
    _metadata,
    _method,
)
