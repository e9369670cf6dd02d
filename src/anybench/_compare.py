"""The text of ``anybench compare``: one run against another, benchmark by benchmark.

The verdicts are :mod:`anybench._verdicts`'; this module writes them for a terminal or a CI log,
every line escaped there (:func:`anybench._escape.terminal`): a name from a file cannot move the
cursor, colour the log, reorder the text or start a line of its own.
"""

from __future__ import annotations

import math

from ._busy import NOISY_SPREAD, noisy, round_spread
from ._counts_compare import CountsChange, identity_differences, partial_lines
from ._counts_report import differs_from_counts
from ._counts_results import CountsRun
from ._escape import terminal
from ._layout import dagger, dagger_notes, scale_text
from ._results import Record, Run
from ._verdicts import (
    BY_DUET,
    BY_PASS,
    BY_TURNS,
    FALSE_DISCOVERY_RATE,
    MIN_CHANGE,
    WELCH,
    Change,
    Drift,
    Ratio,
    compare_runs,
    machines_differ,
)


def _name(record: Record) -> str:
    """A benchmark as a line of the comparison names it: ``spawn N=1,000 trio``."""
    return f"{record.scenario} {scale_text(record)} {record.runtime}"


def method_text(ratio: Ratio) -> str:
    """How a comparison's interval was made, in a column: ``6 pairs`` (by pass, back to back),
    ``6 duets`` (by pass, at the same moment), ``6 turns`` (by pass, rounds taking turns) or
    ``Welch``."""
    if ratio.method == BY_DUET:
        return f"{ratio.pairs} duets"
    if ratio.method == BY_TURNS:
        return f"{ratio.pairs} turns"
    if ratio.paired:
        return f"{ratio.pairs} pairs"
    return "Welch"


def _interval_text(changes: list[Change], drift: Drift) -> str:
    """The footer's sentence on how the intervals were made, for the methods *changes* used."""
    methods = {change.ratio.method for change in changes}
    welch = "95% Welch t on the logs of the per-process medians (each worker process one unit)" + (
        ", with the drift correction above" if drift.var or drift.shift else ""
    )
    if not methods & {BY_PASS, BY_DUET, BY_TURNS}:
        return f"Interval: {welch}."
    moments = []
    if BY_PASS in methods:
        moments.append("`N pairs`: back to back, in an order that alternated from pass to pass")
    if BY_DUET in methods:
        moments.append("`N duets`: at the same moment, one per CPU (--pairing duet)")
    if BY_TURNS in methods:
        moments.append(
            "`N turns`: alive at once, their rounds taking turns one at a time (--pairing lockstep)"
        )
    text = (
        "Interval (two variants of one run, paired by pass): the 95% paired t interval of the "
        "log ratios new/old over the N passes that gave both a process, each pass's process "
        f"of new against that pass's of old, which ran beside it ({'; '.join(moments)}): what "
        "the minutes of the run did to the machine cancels out of the ratio."
    )
    if WELCH in methods:
        text += f" `Welch`: fewer than two passes paired (see the notes): {welch}."
    return text


def noisy_lines(label: str, run: Run) -> list[str]:
    """A warning when *run*'s rounds within a process spread past NOISY_SPREAD (see
    :func:`~anybench._busy.round_spread`); none otherwise."""
    spread = round_spread(record.processes for record in run.records)
    if spread is None or not noisy(spread):
        return []
    return [
        f"NOISY {label} run: its rounds within a worker process spread ±{spread:.0%} (above "
        f"±{NOISY_SPREAD:.0%}: the machine was noisy while it measured, whatever its busy "
        "figures say); floors are wide, and what it flags may hold only on such a machine: "
        "measure again at a quieter hour."
    ]


def placement_lines(old: Run, new: Run) -> list[str]:
    """Where the two runs' compiled code did not lie somewhere new in every process (see
    :attr:`~anybench._results.Run.placement`), or only one run's code and objects did (see
    :attr:`~anybench._results.Run.placed_afresh`): one line each."""
    lines = [
        f"PLACEMENT {label} run: {run.placement}."
        for label, run in (("old", old), ("new", new))
        if run.placement
    ]
    if old.placed_afresh != new.placed_afresh:
        placed, other = ("new", "old") if new.placed_afresh else ("old", "new")
        lines.append(
            f"PLACEMENT: only the {placed} run's workers placed their code and objects afresh "
            "(copies of compiled code, a random shift of the heap: anybench from 2026-12-05); "
            f"the {other} run's laid them out alike in every process of an environment, an "
            "offset which may be part of a change, a native row's too."
        )
    return lines


def work_mismatch(old: Run, new: Run, work: tuple[CountsRun, CountsRun]) -> str | None:
    """Why the counts *work* (old's, new's) are not of the two timed runs' software, in one
    line, or None: a counts file of another anyio or Python would put that change in the work
    column (Python's version and the runtimes' libraries are compared, where both say)."""
    builds = identity_differences(work[0], work[1])
    if builds:
        return (
            f"the two counts files were made on different builds ({builds[0]}), so their "
            "instructions do not compare; count both sides on one"
        )
    for side, run, counts in (("old", old, work[0]), ("new", new, work[1])):
        variant = run.records[0].variant if run.records else ""
        differs = differs_from_counts(run, variant, counts)
        if differs:
            return (
                f"the {side} counts ({counts.source}) are not of the {side} run's software: "
                f"{differs[0]}; give --work the counts of each side's environment, old first"
            )
    return None


#: The work column's words for a counts verdict (anybench._counts_compare.CountsChange): the
#: table's verdicts, REGRESSION among them, are time's.
_WORK_VERDICTS = {"REGRESSION": "more", "improved": "less"}


def _work_changes(work: tuple[CountsRun, CountsRun]) -> dict[tuple[str, int, str], CountsChange]:
    """The benchmarks both counts files hold, by the key of a time comparison's rows
    (:attr:`anybench._verdicts.Change.key`: scenario, scale, runtime)."""
    after = work[1].by_key()
    return {
        (scenario, scale, runtime): CountsChange(before, after[scenario, runtime, scale])
        for (scenario, runtime, scale), before in work[0].by_key().items()
        if (scenario, runtime, scale) in after
    }


def _work_text(change: Change, counted: CountsChange | None) -> tuple[str, str]:
    """The row's work column (instructions per operation, old to new) and, where time and work
    part, a line saying so; empty where the counts hold no such benchmark.

    They part where a reader would conclude otherwise from each: time's verdict moved and the
    work stayed the same (within its floor) or moved the other way, or the work moved and
    time's interval holds no change at all. How much each moved is in the row: instructions do
    not turn into time one for one, so a difference in size alone is not called a parting. A
    benchmark whose counts are not deterministic is shown, never said to part."""
    if counted is None:
        return "", ""
    said = _WORK_VERDICTS.get(counted.verdict, counted.verdict)
    mark = " \N{DOUBLE DAGGER}" if counted.depends_on_time else ""
    text = f"  work {counted.change:+.1%} {said}{mark}"
    ratio = change.ratio
    if not (counted.deterministic and ratio.known and math.isfinite(ratio.high)):
        return text, ""
    worked = {"REGRESSION": 1, "improved": -1}.get(counted.verdict, 0)
    timed = 1 if ratio.ratio > 1 else -1
    moved = change.verdict in ("slower", "faster", "REGRESSION")
    interval = f"[{ratio.low - 1:+.1%}, {ratio.high - 1:+.1%}]"
    head = (
        f"{_name(change.new)}{mark}: time {ratio.ratio - 1:+.1%} {interval} ({change.verdict}), "
        f"instructions {counted.change:+.2%}"
    )
    if moved and worked == 0:
        why = (
            f" (the same within its ±{counted.floor:.0%} floor): the same work took another "
            "time: memory, cache, the kernel or waiting"
        )
    elif moved and worked == -timed:
        why = f" ({said} work): time and work moved opposite ways"
    elif worked and ratio.low <= 1 <= ratio.high:
        why = (
            f" ({said} work): time's interval holds no change; the work's change cost too "
            "little time to show here, or the machine hid it"
        )
    else:
        return text, ""
    return text, head + why


def format_comparison(
    old: Run,
    new: Run,
    threshold: float,
    min_change: float = MIN_CHANGE,
    work: tuple[CountsRun, CountsRun] | None = None,
) -> tuple[str, bool]:
    """The text of ``anybench compare`` and whether it fails: a REGRESSION (see
    :func:`compare_runs`), or a benchmark of old that is missing from new or failed in it.

    With *work* (counts files of old's and new's software, see :func:`work_mismatch`), each
    row that both count also shows the change in instructions per operation, and the rows
    where time and work part are listed below the table. The verdicts stay time's."""
    changes, only_old, only_new, drift = compare_runs(old, new, threshold, min_change)
    lines = [f"old: {old.source}", f"new: {new.source}", f"runs {drift.note}."]
    for label, run in (("old", old), ("new", new)):
        if run.partial:
            lines.append(f"PARTIAL {label} run: {run.partial}.")
        lines += noisy_lines(label, run)
    lines += placement_lines(old, new)
    differences = machines_differ(old, new)
    if differences:
        lines.append("WARNING: the runs differ in machine or software, so part of any change is ")
        lines.append("         theirs, not the code's: " + "; ".join(differences))
    lines.append("")
    header = (
        f"{'benchmark':<36} {'old ns/op':>11} {'new ns/op':>11} {'change':>8}  "
        f"{'95% interval':<17} {'floor':>6}  {'method':<9} verdict"
    )
    lines += [header, "-" * (len(header) + 10)]
    caveats: list[str] = []
    notes: list[str] = []
    parted: list[str] = []
    counted = _work_changes(work) if work else {}
    work_texts: list[str] = []
    for change in changes:
        ratio = change.ratio
        interval = (
            f"[{ratio.low - 1:+.1%}, {ratio.high - 1:+.1%}]"
            if ratio.known and math.isfinite(ratio.high)
            else "[?]"
        )
        floor = ratio.log.floor()
        floor_text = f"±{floor:.0%}" if math.isfinite(floor) else "?"
        p99 = change.p99_change
        p99_text = f"  p99 latency {p99:+.0%}" if p99 is not None else ""
        name = _name(change.new) + dagger(change.new, caveats)
        work_text, parts = _work_text(change, counted.get(change.key))
        work_texts.append(work_text)
        if parts:
            parted.append(parts)
        lines.append(
            f"{name:<36} {change.old.ns_per_op:>11,.0f} {change.new.ns_per_op:>11,.0f} "
            f"{ratio.ratio - 1:>+8.1%}  {interval:<17} {floor_text:>6}  "
            f"{method_text(ratio):<9} {change.verdict}{p99_text}{work_text}"
        )
        if ratio.note:
            notes.append(f"{_name(change.new)}: {ratio.note}")
    for record in only_old:
        lines.append(f"{_name(record):<36} MISSING from new (it ran in old)")
    for record in only_new:
        lines.append(f"{_name(record):<36} only in new")
    for failure in new.failed:
        lines.append(f"FAILED in new: {failure.get('test')}: {failure.get('error')}")
    regressed = any(c.verdict == "REGRESSION" for c in changes)
    # A benchmark that stopped running (hung, crashed, lost) is the worst regression of all.
    regressed = regressed or bool(only_old) or bool(new.failed)
    lines.append("")
    lines.append(
        "change = new/old - 1 of ns/op (geometric mean of the per-process medians). "
        + _interval_text(changes, drift)
        + " floor: the smallest change it could tell from none. slower/faster: the interval "
        + (
            f"lies wholly beyond ±{min_change:.0%} (--min-change)"
            if min_change
            else "excludes no change"
        )
        + " and the change survives Benjamini-Hochberg at "
        f"{FALSE_DISCOVERY_RATE:.0%} false discoveries over all {len(changes)} benchmarks; "
        f"REGRESSION: the whole interval above +{threshold:.0%}, and that survives it too. "
        "A benchmark missing from new, or failed in it, also fails the comparison."
    )
    if work:
        lines.append(
            f"work = new/old - 1 of instructions per operation under valgrind ({work[0].source} "
            f"-> {work[1].source}; see `anybench compare` of the two): deterministic, it does "
            "not see memory, cache, the kernel or waiting; the verdicts are time's."
        )
        if not any(work_texts):
            lines.append(
                "WORK: no benchmark compared here is in both counts files (other scales or "
                "runtimes): count these with anybench counts --profile of the runs."
            )
        lines += partial_lines(*work)
        if any(text.endswith("\N{DOUBLE DAGGER}") for text in work_texts):
            lines.append(
                "\N{DOUBLE DAGGER} work that depends on wall time by the runtime's design "
                "(see anybench compare of the counts)."
            )
        if parted:
            lines += ["", "Where time and work part:", *(f"  {line}" for line in parted)]
    lines += dagger_notes(caveats)
    if notes:
        lines += ["", "Pairing notes:", *(f"  {note}" for note in notes)]
    return "\n".join(terminal(line) for line in lines), regressed
