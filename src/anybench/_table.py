"""The compact comparison printed at the end of a benchmark run: ns/op per runtime and N.

It is written for a terminal or a CI log: every cell and line is escaped
(:func:`anybench._escape.terminal`) before the columns are aligned.
"""

from __future__ import annotations

from ._busy import BUSY_REASON, busy_processes, summary_line
from ._escape import terminal, terminal_table
from ._format import format_ns
from ._layout import cells_by_key, column_order, dagger, dagger_notes, entries, sorted_keys
from ._results import Record, Run, below_clock_note
from ._runtimes import BASELINE
from ._verdicts import Ratio


def comparison_table(run: Run) -> str:
    """ns/op per scenario and N on each runtime, with the ratio to the baseline runtime.

    Several records of the same benchmark (the same file read twice, say) keep the first.
    """
    run_entries = entries([run])  # one run: a column is a runtime
    runtimes = column_order(run_entries)
    cells = cells_by_key(run_entries)
    keys = sorted_keys(cells, list(dict.fromkeys(r.scenario for r in run.records)))

    busy_marks = 0
    caveats: list[str] = []
    header = ["scenario", "N", *runtimes]
    rows = [header]
    for key in keys:
        by_runtime = {name: entry.record for name, entry in cells[key].items()}
        base = by_runtime.get(BASELINE)
        row = [key[0], next(iter(by_runtime.values())).scale_label]
        for name in runtimes:
            cell = by_runtime.get(name)
            if cell is None:
                row.append("-")
                continue
            if base is None or name == BASELINE:
                text = format_ns(cell.ns_per_op)
            else:
                # As the report's: paired by process, and "~" where its interval holds 1.
                ratio = Ratio.within_run(base, cell)
                unclear = " ~" if ratio.known and not ratio.significant else ""
                text = f"{format_ns(cell.ns_per_op)} ({ratio.ratio:.2f}x{unclear})"
            text += dagger(cell, caveats)
            if _busy(cell):
                busy_marks += 1
                text += " *"
            row.append(text)
        rows.append(row)

    lines = terminal_table(rows)
    lines.append("")
    lines.append(
        f"ns per operation (geometric mean of the per-process medians); (x) = ratio to "
        f"{BASELINE}, lower is faster, paired by process where both ran in the same processes; "
        "~ = not significant (its 95% interval, in the report, holds 1). "
        f"Timer cost: {run.anybench_info.get('timer_cost_ns', float('nan')):.0f} ns per reading."
    )
    lines += dagger_notes(caveats)
    busy = summary_line(run.busy)
    if busy is not None:
        lines.append(busy)
    if busy_marks:
        lines.append(
            f"* measured while the machine was busy: {BUSY_REASON} ({busy_marks} figures); "
            "re-run on a quieter machine to trust them."
        )
    timer_cost_ns = run.anybench_info.get("timer_cost_ns")
    for record in run.records:
        where = f"{record.scenario} {record.scale_label} on {record.runtime}"
        note = below_clock_note(where, record.ns_per_op, timer_cost_ns)
        if note is not None:
            lines.append(f"! {note}")
    for name, reason in run.unavailable_runtimes.items():
        lines.append(f"skipped {name}: {reason}")
    for failure in run.failed:
        lines.append(f"FAILED {failure.get('test')}: {failure.get('error')}")
    return "\n".join(terminal(line) for line in lines)


def _busy(record: Record) -> bool:
    """Whether any process of *record* was measured while the machine was busy."""
    return busy_processes(record.process_busy) > 0
