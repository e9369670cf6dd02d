"""The text of ``anybench compare``: one run against another, benchmark by benchmark.

The verdicts are :mod:`anybench._verdicts`'; this module writes them for a terminal or a CI log,
every line escaped there (:func:`anybench._escape.terminal`): a name from a file cannot move the
cursor, colour the log, reorder the text or start a line of its own.
"""

from __future__ import annotations

import math

from ._escape import terminal
from ._layout import dagger, scale_text
from ._results import Record, Run
from ._verdicts import FALSE_DISCOVERY_RATE, compare_runs, machines_differ


def _name(record: Record) -> str:
    """A benchmark as a line of the comparison names it: ``spawn N=1,000 trio``."""
    return f"{record.scenario} {scale_text(record)} {record.runtime}"


def format_comparison(old: Run, new: Run, threshold: float) -> tuple[str, bool]:
    """The text of ``anybench compare`` and whether it fails: a REGRESSION (see
    :func:`compare_runs`), or a benchmark of old that is missing from new or failed in it."""
    changes, only_old, only_new, drift = compare_runs(old, new, threshold)
    lines = [f"old: {old.source}", f"new: {new.source}", f"runs {drift.note}."]
    for label, run in (("old", old), ("new", new)):
        if run.partial:
            lines.append(f"PARTIAL {label} run: {run.partial}.")
    differences = machines_differ(old, new)
    if differences:
        lines.append("WARNING: the runs differ in machine or software, so part of any change is ")
        lines.append("         theirs, not the code's: " + "; ".join(differences))
    lines.append("")
    header = (
        f"{'benchmark':<36} {'old ns/op':>11} {'new ns/op':>11} {'change':>8}  "
        f"{'95% interval':<17} {'floor':>6}  verdict"
    )
    lines += [header, "-" * (len(header) + 10)]
    caveats: list[str] = []
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
        lines.append(
            f"{name:<36} {change.old.ns_per_op:>11,.0f} {change.new.ns_per_op:>11,.0f} "
            f"{ratio.ratio - 1:>+8.1%}  {interval:<17} {floor_text:>6}  {change.verdict}{p99_text}"
        )
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
        "change = new/old - 1 of ns/op (geometric mean of the per-process medians). Interval: "
        "95% Welch t on the logs of the per-process medians (each worker process one unit)"
        + (", with the drift correction above" if drift.var or drift.shift else "")
        + "; floor: the smallest change it could tell from none. slower/faster: the interval "
        "excludes no change and the change survives Benjamini-Hochberg at "
        f"{FALSE_DISCOVERY_RATE:.0%} false discoveries over all {len(changes)} benchmarks; "
        f"REGRESSION: the whole interval above +{threshold:.0%}, and that survives it too. "
        "A benchmark missing from new, or failed in it, also fails the comparison."
    )
    lines += [f"{'†' * (i + 1)} {caveat}." for i, caveat in enumerate(caveats)]
    return "\n".join(terminal(line) for line in lines), regressed
