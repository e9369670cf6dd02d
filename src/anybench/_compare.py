"""Comparing benchmarks: runtimes against the baseline within runs, and one run against another."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ._results import Record, Run
from ._runtimes import BASELINE, RUNTIMES, TOOL_DISTRIBUTIONS
from ._stats import (
    LogRatio,
    benjamini_hochberg,
    paired_log_ratio,
    robust_spread,
    welch_log_ratio,
)


@dataclass(frozen=True)
class Ratio:
    """``other / baseline`` of ns/op, with its 95% interval at the process level.

    The unit is one worker process (the median of its rounds); the interval is Welch's t on
    the logs of those (see :func:`anybench._stats.welch_log_ratio`). Records with a single
    process each (format-1 files) have no interval: ``known`` is false.
    """

    log: LogRatio

    @property
    def ratio(self) -> float:
        return self.log.ratio

    @property
    def low(self) -> float:
        return self.log.low

    @property
    def high(self) -> float:
        return self.log.high

    @property
    def known(self) -> bool:
        return self.log.known

    @property
    def significant(self) -> bool:
        return self.log.known and self.log.significant

    @classmethod
    def of(cls, baseline: Record, other: Record, **drift: float) -> Ratio:
        return cls(welch_log_ratio(_values(baseline), _values(other), **drift))

    @classmethod
    def within_run(cls, baseline: Record, other: Record) -> Ratio:
        """Two runtimes' records of one scale of one run: paired process by process where they
        were measured in the same worker processes (their rounds taking turns), so that a slow
        process cancels out; else as :meth:`of`."""
        pairs = shared_processes(baseline, other)
        if len(pairs) >= 2:
            return cls(paired_log_ratio(pairs))
        return cls.of(baseline, other)

    def __str__(self) -> str:
        if not self.known:
            return f"{self.ratio:.2f}x [one process: no interval]"
        mark = "" if self.significant else " ~"
        return f"{self.ratio:.2f}x [{self.low:.2f}–{self.high:.2f}]{mark}"


def _values(record: Record) -> list[float]:
    return record.process_medians or [record.ns_per_op]


def shared_processes(baseline: Record, other: Record) -> list[tuple[float, float]]:
    """(baseline, other) per-process medians of the worker processes both records came from,
    known by pid (files of format 2 and earlier have none: no pairs)."""
    if len(baseline.process_ids) != len(baseline.processes):
        return []
    if len(other.process_ids) != len(other.processes):
        return []
    mine = dict(zip(baseline.process_ids, baseline.process_medians, strict=True))
    return [
        (mine[pid], value)
        for pid, value in zip(other.process_ids, other.process_medians, strict=True)
        if pid in mine
    ]


def dagger(record: Record, caveats: list[str]) -> str:
    """The † mark of a record whose runtime uses a mechanism of its own (numbered by *caveats*,
    to which a new caveat is added); "" for none."""
    if not record.caveat:
        return ""
    if record.caveat not in caveats:
        caveats.append(record.caveat)
    return " " + "†" * (caveats.index(record.caveat) + 1)


def variant_labels(runs: Sequence[Run]) -> dict[int, str]:
    """A short label per run that tells runs apart when they are shown side by side.

    One run needs no label. Several are labelled by what differs between them: the machine
    (operating system, and host where two of one system differ), the Python version, the
    versions of the libraries the runtimes come from; failing that, by file name.
    """
    if len(runs) <= 1:
        return {id(run): "" for run in runs}
    systems = [str(run.machine_info.get("system", "?")) for run in runs]
    hosts = [str(run.machine_info.get("node", "?")) for run in runs]
    hosts_of = {
        s: {h for h, other in zip(hosts, systems, strict=True) if other == s} for s in systems
    }
    machines = [
        f"{system} {host}" if len(hosts_of[system]) > 1 else system
        for system, host in zip(systems, hosts, strict=True)
    ]
    pythons = [str(run.machine_info.get("python_version", "?")) for run in runs]
    libraries = [run.anybench_info.get("libraries", {}) for run in runs]
    differing = sorted(
        {
            lib
            for libs in libraries
            for lib in libs
            if lib not in TOOL_DISTRIBUTIONS
            and len({str(other.get(lib)) for other in libraries}) > 1
        }
    )
    labels = []
    for machine, python, libs in zip(machines, pythons, libraries, strict=True):
        parts = [machine] if len(set(machines)) > 1 else []
        parts += [f"py{python}"] if len(set(pythons)) > 1 else []
        parts += [f"{lib} {libs.get(lib)}" for lib in differing]
        labels.append(", ".join(parts))
    if len(set(labels)) < len(runs):  # the same software twice: tell the files apart
        labels = [run.stem for run in runs]
    return {id(run): label for run, label in zip(runs, labels, strict=True)}


@dataclass(frozen=True)
class Entry:
    """A record with the name it is shown under (runtime, plus the run's label if several), and
    the place of its runtime among the columns (see :func:`runtime_order`)."""

    column: str
    runtime: str
    record: Record
    rank: int = 0
    #: Which of the runs (files) shown together it comes from, by position.
    run: int = 0


def runtime_order(runs: Sequence[Run]) -> list[str]:
    """The runtimes as the results recorded them: those each run's metadata lists, in its order
    (run by run), then the rest of the registry, then any other a record names, as met."""
    names: list[str] = []
    for run in runs:
        names += run.anybench_info.get("runtimes") or ()
    names += RUNTIMES
    names += (record.runtime for run in runs for record in run.records)
    return list(dict.fromkeys(names))


def entries(runs: Sequence[Run]) -> list[Entry]:
    """Every record of *runs*, named for side-by-side display."""
    labels = variant_labels(runs)
    rank = {name: i for i, name in enumerate(runtime_order(runs))}
    result = []
    for i, run in enumerate(runs):
        label = labels[id(run)]
        for record in run.records:
            column = f"{record.runtime} ({label})" if label else record.runtime
            result.append(Entry(column, record.runtime, record, rank[record.runtime], i))
    return result


def column_order(entries: Sequence[Entry]) -> list[str]:
    """The columns of *entries*, by their runtime's rank, then in order of the runs."""
    first_seen = {e.column: (e.rank, i) for i, e in reversed(list(enumerate(entries)))}
    return sorted(first_seen, key=first_seen.__getitem__)


def recorded_libraries(runs: Sequence[Run]) -> list[str]:
    """The libraries whose versions *runs* recorded, as recorded, without the tools'."""
    names = (lib for run in runs for lib in run.anybench_info.get("libraries", {}))
    return [lib for lib in dict.fromkeys(names) if lib not in TOOL_DISTRIBUTIONS]


def cells_by_key(entries: Sequence[Entry]) -> dict[tuple[str, int], dict[str, Entry]]:
    """Entries by (scenario, N), then by column; of duplicates (a file read twice) the first."""
    cells: dict[tuple[str, int], dict[str, Entry]] = {}
    for entry in entries:
        cells.setdefault(entry.record.key, {}).setdefault(entry.column, entry)
    return cells


def sorted_keys(
    cells: dict[tuple[str, int], dict[str, Entry]], scenarios: list[str]
) -> list[tuple[str, int]]:
    """The (scenario, N) keys in the order of *scenarios*, then by N."""
    return sorted(cells, key=lambda k: (scenarios.index(k[0]), k[1]))


def baseline_column(entries: Sequence[Entry]) -> str | None:
    """The column every ratio is taken against: the first column of the baseline runtime."""
    for column in column_order(entries):
        if any(e.column == column and e.runtime == BASELINE for e in entries):
            return column
    return None


def baseline_columns(entries: Sequence[Entry]) -> dict[str, str]:
    """Each column's baseline: the baseline runtime's column of the same run. A ratio is never
    taken across runs (files): another machine, Python or library version, or another hour."""
    of_run = {e.run: e.column for e in reversed(entries) if e.runtime == BASELINE}
    return {e.column: of_run[e.run] for e in entries if e.run in of_run}


def machines_differ(old: Run, new: Run) -> list[str]:
    """What differs between the machines and software of two runs (empty when comparable)."""
    differences = []
    for key, label in (
        ("node", "machine"),
        ("python_version", "Python"),
        ("python_implementation", "Python implementation"),
    ):
        a, b = old.machine_info.get(key), new.machine_info.get(key)
        if a != b:
            differences.append(f"{label}: {a} -> {b}")
    cpu_a = (old.machine_info.get("cpu") or {}).get("brand_raw")
    cpu_b = (new.machine_info.get("cpu") or {}).get("brand_raw")
    if cpu_a != cpu_b:
        differences.append(f"CPU: {cpu_a} -> {cpu_b}")
    libs_a = old.anybench_info.get("libraries", {})
    libs_b = new.anybench_info.get("libraries", {})
    for lib in sorted(set(libs_a) | set(libs_b)):
        if libs_a.get(lib) != libs_b.get(lib):
            differences.append(f"{lib}: {libs_a.get(lib)} -> {libs_b.get(lib)}")
    return differences


@dataclass(frozen=True)
class Drift:
    """How two runs made at different times are put on one footing.

    Code under test does not touch the *controls* (the native baselines), so their change from
    one run to the other is the machine's drift: their median log ratio is taken off every
    benchmark (``shift``) and their spread is added to every interval (``var``, with ``df``).
    Without enough controls nothing is taken off, and the spread of all benchmarks widens the
    intervals instead: a uniform change then stays visible, at the price of width.
    """

    shift: float = 0.0
    var: float = 0.0
    df: float = math.inf
    note: str = ""

    def kwargs(self) -> dict[str, float]:
        return {"shift": self.shift, "extra_var": self.var, "extra_df": self.df}


#: Fewest control benchmarks from which the drift between two runs is estimated.
MIN_CONTROLS = 3


def drift_between(old: Run, new: Run, pairs: Sequence[tuple[Record, Record]]) -> Drift:
    """The correction for comparing *old* and *new* (none when one run made both)."""
    if old.run_id and old.run_id == new.run_id:
        return Drift(note="both from one run, interleaved: no drift correction needed")
    logs = {id(o): math.log(Ratio.of(o, n).ratio) for o, n in pairs if not o.unstable}
    controls = [logs[id(o)] for o, n in pairs if o.native_of and id(o) in logs]
    if len(controls) >= MIN_CONTROLS:
        center, spread = robust_spread(controls)
        # The controls ran at their own minutes of the runs; the drift at other minutes can be
        # larger. The robust spread of all benchmarks (most of which did not change) bounds it
        # from below, so the wider of the two widens every interval.
        _, everything = robust_spread(list(logs.values()))
        spread = max(spread, everything)
        return Drift(
            center,
            spread**2,
            len(controls) - 1,
            f"made at different times: the {len(controls)} native baselines, which the code "
            f"under test does not touch, moved by {math.expm1(center):+.1%} (taken off every "
            f"benchmark); the drift's spread, ±{math.expm1(spread):.1%} (the wider of theirs and "
            "that of all benchmarks), is added to every interval",
        )
    if len(logs) >= MIN_CONTROLS:
        _, spread = robust_spread(list(logs.values()))
        return Drift(
            0.0,
            spread**2,
            len(logs) - 1,
            f"made at different times, with no native baselines to control for the machine's "
            f"drift: every interval is widened by the spread of all benchmarks "
            f"(±{math.expm1(spread):.1%}); an interleaved A/B run judges far finer",
        )
    return Drift(
        0.0,
        math.inf,
        1.0,
        "made at different times, with too few benchmarks to estimate the machine's drift: "
        "no verdicts; make an interleaved A/B run instead",
    )


@dataclass(frozen=True)
class Change:
    """One benchmark in two runs, and the verdict on it."""

    key: tuple[str, int, str]
    old: Record
    new: Record
    ratio: Ratio
    verdict: str = ""

    @property
    def p99_change(self) -> float | None:
        """Relative change of the p99 of the first latency series both runs have, if any."""
        for series, summary in self.old.latency_ns.items():
            other = self.new.latency_ns.get(series)
            if other and summary.get("p99") and other.get("p99") is not None:
                return float(other["p99"]) / float(summary["p99"]) - 1
        return None


#: False discovery rate across all benchmarks of a comparison (Benjamini-Hochberg).
FALSE_DISCOVERY_RATE = 0.05


def compare_runs(
    old: Run, new: Run, threshold: float = 0.10
) -> tuple[list[Change], list[str], list[str], Drift]:
    """Match benchmarks of two runs and judge each; return the changes, the keys only in old
    and only in new, and the drift correction used.

    A change is a REGRESSION only when its whole 95% interval lies above *threshold* and it
    survives Benjamini-Hochberg at FALSE_DISCOVERY_RATE across all the benchmarks compared.
    """
    old_by_key = {(r.scenario, r.n, r.runtime): r for r in old.records}
    new_by_key = {(r.scenario, r.n, r.runtime): r for r in new.records}
    common = [key for key in old_by_key if key in new_by_key]
    drift = drift_between(old, new, [(old_by_key[k], new_by_key[k]) for k in common])
    ratios = [Ratio.of(old_by_key[k], new_by_key[k], **drift.kwargs()) for k in common]
    judged = [
        i
        for i, k in enumerate(common)
        if ratios[i].known and not _unstable(old_by_key[k], new_by_key[k])
    ]
    rejected = benjamini_hochberg(
        [ratios[i].log.p_above(threshold) for i in judged], FALSE_DISCOVERY_RATE
    )
    regressions = {i for i, r in zip(judged, rejected, strict=True) if r}
    # "slower" and "faster" are claims too: they face the same false-discovery control.
    changed = benjamini_hochberg([ratios[i].log.p_changed() for i in judged], FALSE_DISCOVERY_RATE)
    changes_found = {i for i, r in zip(judged, changed, strict=True) if r}
    changes = []
    for i, key in enumerate(common):
        ratio = ratios[i]
        if i not in judged:
            verdict = "unstable: not judged" if ratio.known else "no interval: not judged"
        elif i in regressions and ratio.low > 1 + threshold:
            verdict = "REGRESSION"
        elif not ratio.significant or i not in changes_found:
            verdict = "not significant"
        else:
            verdict = "slower" if ratio.ratio > 1 else "faster"
        changes.append(Change(key, old_by_key[key], new_by_key[key], ratio, verdict))
    only_old = [_name(key) for key in old_by_key if key not in new_by_key]
    only_new = [_name(key) for key in new_by_key if key not in old_by_key]
    return changes, only_old, only_new, drift


def _unstable(old: Record, new: Record) -> bool:
    return bool(old.unstable or new.unstable)


def _name(key: tuple[str, int, str]) -> str:
    return f"{key[0]} N={key[1]:,} {key[2]}"


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
        name = _name(change.key) + dagger(change.new, caveats)
        lines.append(
            f"{name:<36} {change.old.ns_per_op:>11,.0f} {change.new.ns_per_op:>11,.0f} "
            f"{ratio.ratio - 1:>+8.1%}  {interval:<17} {floor_text:>6}  {change.verdict}{p99_text}"
        )
    for name in only_old:
        lines.append(f"{name:<36} MISSING from new (it ran in old)")
    for name in only_new:
        lines.append(f"{name:<36} only in new")
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
    return "\n".join(lines), regressed
