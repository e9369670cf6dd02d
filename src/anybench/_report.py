"""``anybench report``: from results files to a Markdown page and PNG plots.

The report reads results files only (never the scenarios). It is written into a fresh temporary
directory beside its destination and renamed into place, so an interrupted report leaves no
half-written page. It is marked as anybench's, and only such a report is ever replaced, and only
when asked: never an input, a results directory or anything anybench did not write.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import _plots
from ._compare import (
    Entry,
    Ratio,
    baseline_column,
    baseline_columns,
    cells_by_key,
    column_order,
    dagger,
    entries,
    recorded_libraries,
    sorted_keys,
)
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
from ._results import Run
from ._runtimes import BASELINE
from ._stats import geometric_mean, scaling_class, scaling_slope, stability_warnings
from ._sweep import N


class ReportExistsError(OutputError):
    """The report directory exists and replacing it was not asked for."""


def default_report_dir(runs: Sequence[Run]) -> Path:
    """``results/report-<newest file's stem>``, beside the newest results file."""
    newest = max(runs, key=lambda run: run.datetime)
    return newest.path.parent / f"report-{newest.path.stem}"


def write_report(runs: Sequence[Run], out_dir: Path, *, replace: bool = False) -> Path:
    """Write ``index.md`` and its plots for *runs* into *out_dir*; return the page's path.

    The report is marked as anybench's (see :mod:`anybench._files`). With *replace*, an existing
    report anybench wrote at *out_dir* is replaced; anything else there (an input, a file,
    results, a directory without the mark) raises :class:`OutputError` and nothing changes, as
    does an existing report without *replace* (:class:`ReportExistsError`). A directory that
    cannot be written raises :class:`OutputError` too, naming it.
    """
    out_dir = Path(out_dir)
    inputs = [run.path for run in runs]

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
        (staging / "index.md").write_text(render(runs, staging), encoding="utf-8")
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
    #: The runtimes' columns, in order (see :func:`anybench._compare.column_order`).
    columns: list[str]
    #: The baseline runtime's first column, or None when no run has the baseline runtime.
    base: str | None
    #: Each column's baseline: the baseline runtime's column of the same run.
    base_of: dict[str, str]
    #: The scenarios, in the order the results hold them.
    scenarios: list[str]
    #: Where the plots are written; the page links them relatively.
    plot_dir: Path

    @classmethod
    def of(cls, runs: Sequence[Run], plot_dir: Path) -> Context:
        all_entries = entries(runs)
        return cls(
            runs,
            all_entries,
            column_order(all_entries),
            baseline_column(all_entries),
            baseline_columns(all_entries),
            list(dict.fromkeys(e.record.scenario for e in all_entries)),
            plot_dir,
        )


#: A section of the page: its Markdown lines, or none to leave it out.
Section = Callable[[Context], list[str]]


def render(runs: Sequence[Run], plot_dir: Path) -> str:
    """The Markdown page, its sections (:data:`SECTIONS`) a blank line apart; plots are written
    into *plot_dir* and linked relatively."""
    context = Context.of(runs, plot_dir)
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
        + ", ".join(f"`{run.path.name}`" for run in ctx.runs)
        + ".",
    ]


def _table_head(labels: list[str], numeric: list[str]) -> list[str]:
    """A Markdown table's header: *labels* left-aligned, then *numeric* columns right-aligned."""
    names = [*labels, *numeric]
    return [
        "| " + " | ".join(names) + " |",
        "|" + "---|" * len(labels) + "---:|" * len(numeric),
    ]


def _summary(ctx: Context) -> list[str]:
    all_entries, columns, base, scenarios = ctx.entries, ctx.columns, ctx.base, ctx.scenarios
    out = ["## Summary: time per operation", ""]
    if base is None:
        out.append("(No asyncio run among these results: ratios are not shown.)")
        out.append("")
    out += _table_head(["scenario", "N"], columns)
    cells = cells_by_key(all_entries)
    # Geometric means are kept apart for unlike things: anyio scenarios scaled by N, and the
    # native baselines (the load scenario, whose cost is B's, stays out of both).
    kinds = {"anyio scenarios": "anyio", "native baselines": "native"}
    ratios: dict[str, dict[str, list[float]]] = {
        k: {c: [] for c in columns} for k in kinds.values()
    }
    caveats: list[str] = []
    left_out = 0
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
            baseline = row.get(ctx.base_of.get(column, ""))
            if record.unstable:
                text += " (unstable)"
            elif baseline is not None and baseline is not entry:
                ratio = Ratio.within_run(baseline.record, record)
                # Only like with like enters a mean: no unstable row, no row whose runtime uses
                # a mechanism of its own (†), no load scenario.
                if record.axis == N.name and not record.caveat and not baseline.record.unstable:
                    kind = "native" if record.native_of else "anyio"
                    ratios[kind][column].append(ratio.ratio)
                else:
                    left_out += 1
                text += f" ({ratio})"
            parts.append(text)
        label = next(iter(row.values())).record.scale_label
        out.append(f"| {key[0]} | {label} | " + " | ".join(parts) + " |")
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
            f"runtime) and without `latency_under_load`, whose cost is the load's "
            f"({left_out} cells left out).",
        ]
    out += [f"\n{'†' * (i + 1)} {caveat}." for i, caveat in enumerate(caveats)]
    return out


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
        out.append(f"| {scenario} | {n:,} | " + " | ".join(row.get(c, "–") for c in columns) + " |")
    out += [
        "",
        "Each `*_native` scenario does the same work as its anyio twin in plain asyncio (on every "
        "asyncio-based runtime) or plain trio, with the same checks. 1.00x means anyio costs "
        "nothing; 3x means the anyio version takes three times as long per operation. In "
        "brackets, the 95% process-level interval; `~`: not significant. The anyio side of "
        "`done_callback`, `await_future` and `mixed` includes anybench's portable Future, since "
        "anyio has none: for those it is the tax of anyio and that Future together.",
    ]
    out += [f"\n{'†' * (i + 1)} {caveat}." for i, caveat in enumerate(caveats)]
    return out


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
                parts.append(f"{slope:+.2f}{interval} {scaling_class(slope)}")
            out.append(f"| {scenario} | {low_n:,} → {high_n:,} | " + " | ".join(parts) + " |")
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
        "more operations. See the scaling plots below for the shape.",
    ]
    return out


def _memory(ctx: Context) -> list[str]:
    all_entries, columns, scenarios = ctx.entries, ctx.columns, ctx.scenarios
    measured = [e for e in all_entries if e.record.memory]
    if not measured:
        return []
    out = ["## Memory per operation at the largest N", ""]
    out += _table_head(["scenario", "N"], columns)
    by_scenario: dict[str, dict[str, Entry]] = {}
    for entry in measured:
        by_scenario.setdefault(entry.record.scenario, {})[entry.column] = entry
    for scenario in scenarios:
        row = by_scenario.get(scenario)
        if not row:
            continue
        label = next(iter(row.values())).record.scale_label
        parts = []
        for column in columns:
            memory = row[column].record.memory if column in row else None
            text = f"{memory['bytes_per_op']:,.0f} B" if memory else "–"
            if memory and memory.get("n", row[column].record.n) != row[column].record.n:
                text += f" (at N={memory['n']:,})"
            parts.append(text)
        out.append(f"| {scenario} | {label} | " + " | ".join(parts) + " |")
    out += [
        "",
        "Peak memory the scenario allocated from its start (set-up included) to the end of its "
        "measured region (tracemalloc, in one extra untimed round), divided by the operations: "
        "for `spawn`, `mixed` and `fan_out_event` that is per live task, for `done_callback` "
        "per pending future with its callback. It includes the scenario's own bookkeeping "
        "(timestamps and result lists: a few integers, about 32 B each, per operation).",
    ]
    return out


def _latency(ctx: Context) -> list[str]:
    all_entries, columns, scenarios = ctx.entries, ctx.columns, ctx.scenarios
    out = ["## Latency: p50 / p99 / max", ""]
    out += _table_head(["scenario", "series", "N"], [*columns, "samples"])
    cells = cells_by_key(all_entries)
    for key in sorted_keys(cells, scenarios):
        row = cells[key]
        series_names = list(dict.fromkeys(s for e in row.values() for s in e.record.latency_ns))
        for series in series_names:
            parts = []
            counts = set()
            for column in columns:
                entry = row.get(column)
                summary = entry.record.latency_ns.get(series) if entry else None
                if not summary or "p50" not in summary:
                    parts.append("–")
                    continue
                counts.add(summary["count"])
                parts.append(
                    f"{format_ns(summary['p50'])} / "
                    f"{format_ns(summary['p99']) if 'p99' in summary else 'n/a'} / "
                    f"{format_ns(summary['max'])}"
                )
            samples = ", ".join(f"{c:,}" for c in sorted(counts))
            label = next(iter(row.values())).record.scale_label
            out.append(
                f"| {key[0]} | {series} | {label} | " + " | ".join(parts) + f" | {samples} |"
            )
    out += [
        "",
        "Delays from the trigger to the callback or awaiter running, over all rounds. In most "
        "scenarios all N triggers of a round happen before the loop runs the reactions, so a "
        "delay includes the queue of triggers before it and grows with N by design (see each "
        "scenario's docstring); `await_future`, `chain` and `latency_under_load` measure single "
        "wake-ups. uvloop's clock counts whole milliseconds, so its `timers` lateness is not "
        "comparable below 1 ms and can be negative.",
    ]
    return out


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
        f"On the cheapest benchmark measured, `{cheapest.scenario}` at N={cheapest.n:,}: ns per "
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
    out += [f"| {name} | " + " | ".join(cells) + " |" for name, cells in rows.items()]
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
        out += [f"### {scenario}", ""]
        if operation:
            out += [f"One operation: {operation}.", ""]
        name = names.name(scenario, "bars", suffix=".png")
        _plots.bars(scenario, operation, mine, plot_dir / name)
        out.append(f"![{scenario}: ns per operation by runtime]({name})")
        if len({e.record.n for e in mine}) > 1:
            name = names.name(scenario, "scaling", suffix=".png")
            _plots.scaling(scenario, mine, plot_dir / name)
            out.append(f"![{scenario}: cost per operation against N]({name})")
        series_names = list(dict.fromkeys(s for e in mine for s in e.record.latency_ns))
        largest = max(e.record.n for e in mine)
        for series in series_names:
            if len({e.record.n for e in mine}) > 1:
                name = names.name(scenario, series, "latency", suffix=".png")
                _plots.latency_vs_scale(scenario, series, mine, plot_dir / name)
                out.append(f"![{scenario}: {series} latency percentiles against N]({name})")
            name = names.name(scenario, series, "cdf", suffix=".png")
            _plots.cdf(scenario, series, largest, mine, plot_dir / name)
            out.append(f"![{scenario}: {series} latency distribution at N={largest:,}]({name})")
        out.append("")
    return out


def _warnings(ctx: Context) -> list[str]:
    runs, all_entries = ctx.runs, ctx.entries
    out = ["## Warnings", ""]
    for entry in all_entries:
        problems = stability_warnings(entry.record.round_ns_per_op)
        if problems:
            out.append(
                f"- `{entry.record.scenario}` N={entry.record.n:,} on {entry.column}: "
                + "; ".join(problems)
                + " — too unstable to trust; re-run it on a quieter machine."
            )
    for run in runs:
        if run.partial:
            out.append(f"- `{run.path.name}`: PARTIAL run, {run.partial}.")
        for name, reason in run.unavailable_runtimes.items():
            out.append(f"- `{run.path.name}`: runtime {name} skipped: {reason}")
        for failure in run.failed:
            out.append(
                f"- `{run.path.name}`: FAILED `{failure.get('test')}`: {failure.get('error')}"
            )
    if len(out) == 2:
        out.append("None: every benchmark passed pyperf's stability rules.")
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
        versions = " | ".join(libs.get(lib) or "–" for lib in libraries)
        timer_text = f"{timer:.0f} ns/reading" if timer else "?"
        out.append(
            f"| `{run.path.name}` | {run.datetime[:19]} | {info.get('node', '?')} | {cpu} | "
            f"{python} | {versions} | {commit} | {timer_text} |"
        )
    return out


def _method(ctx: Context) -> list[str]:
    return [
        "## Method",
        "",
        "Each benchmark ran in several fresh worker processes (at least three). One worker "
        "measured one scenario on every runtime, their throughput rounds taking turns, forward "
        "then backward, so that a process or a minute that ran slow ran slow for all of them "
        "alike; the workers of several variants (environments) ran in alternating order. A "
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


#: The page, section by section: a new section is one function and one line here.
SECTIONS: tuple[Section, ...] = (
    _title,
    _summary,
    _anyio_tax,
    _scaling,
    _memory,
    _latency,
    _instrument,
    _plots_section,
    _warnings,
    _metadata,
    _method,
)
