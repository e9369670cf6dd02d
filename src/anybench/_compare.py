"""Comparing benchmarks: runtimes against the baseline within runs, and one run against another."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ._results import Record, Run
from ._runtimes import BASELINE, RUNTIMES
from ._stats import bootstrap_ratio, significant


@dataclass(frozen=True)
class Ratio:
    """``other / baseline`` of median ns/op, with its 95% bootstrap interval."""

    ratio: float
    low: float
    high: float

    @property
    def significant(self) -> bool:
        return significant(self.low, self.high)

    @classmethod
    def of(cls, baseline: Record, other: Record) -> Ratio:
        base_values = baseline.round_ns_per_op or (baseline.ns_per_op,)
        other_values = other.round_ns_per_op or (other.ns_per_op,)
        ratio, low, high = bootstrap_ratio(base_values, other_values)
        return cls(ratio, low, high)

    def __str__(self) -> str:
        mark = "" if self.significant else " ~"
        return f"{self.ratio:.2f}x [{self.low:.2f}–{self.high:.2f}]{mark}"


def variant_labels(runs: Sequence[Run]) -> dict[int, str]:
    """A short label per run that tells runs apart when they are shown side by side.

    One run needs no label. Several are labelled by what differs between them: the Python
    version, the versions of anyio, trio, uvloop or rloop; failing that, by file name.
    """
    if len(runs) <= 1:
        return {id(run): "" for run in runs}
    pythons = [str(run.machine_info.get("python_version", "?")) for run in runs]
    libraries = [run.anybench_info.get("libraries", {}) for run in runs]
    differing = sorted(
        {
            lib
            for libs in libraries
            for lib in libs
            if lib != "pytest-benchmark" and len({str(other.get(lib)) for other in libraries}) > 1
        }
    )
    labels = []
    for python, libs in zip(pythons, libraries, strict=True):
        parts = [f"py{python}"] if len(set(pythons)) > 1 else []
        parts += [f"{lib} {libs.get(lib)}" for lib in differing]
        labels.append(", ".join(parts))
    if len(set(labels)) < len(runs):  # the same software twice: tell the files apart
        labels = [run.path.stem for run in runs]
    return {id(run): label for run, label in zip(runs, labels, strict=True)}


@dataclass(frozen=True)
class Entry:
    """A record with the name it is shown under (runtime, plus the run's label if several)."""

    column: str
    runtime: str
    record: Record


def entries(runs: Sequence[Run]) -> list[Entry]:
    """Every record of *runs*, named for side-by-side display."""
    labels = variant_labels(runs)
    result = []
    for run in runs:
        label = labels[id(run)]
        for record in run.records:
            column = f"{record.runtime} ({label})" if label else record.runtime
            result.append(Entry(column, record.runtime, record))
    return result


def column_order(entries: Sequence[Entry]) -> list[str]:
    """The columns of *entries*, in registry order of their runtime, then in order of the runs."""
    names = list(RUNTIMES)
    first_seen = {e.column: (e.runtime, i) for i, e in reversed(list(enumerate(entries)))}

    def key(column: str) -> tuple[int, int]:
        runtime, seen = first_seen[column]
        return (names.index(runtime) if runtime in names else len(names), seen)

    return sorted(first_seen, key=key)


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
class Change:
    """One benchmark in two runs."""

    key: tuple[str, int, str]
    old: Record
    new: Record
    ratio: Ratio

    @property
    def p99_change(self) -> float | None:
        """Relative change of the p99 of the first latency series both runs have, if any."""
        for series, summary in self.old.latency_ns.items():
            other = self.new.latency_ns.get(series)
            if other and summary.get("p99") and other.get("p99") is not None:
                return float(other["p99"]) / float(summary["p99"]) - 1
        return None


def compare_runs(old: Run, new: Run) -> tuple[list[Change], list[str], list[str]]:
    """Match benchmarks of two runs; return the changes and the keys only in old, only in new."""
    old_by_key = {(r.scenario, r.n, r.runtime): r for r in old.records}
    new_by_key = {(r.scenario, r.n, r.runtime): r for r in new.records}
    changes = [
        Change(key, old_by_key[key], new_by_key[key], Ratio.of(old_by_key[key], new_by_key[key]))
        for key in old_by_key
        if key in new_by_key
    ]
    only_old = [_name(key) for key in old_by_key if key not in new_by_key]
    only_new = [_name(key) for key in new_by_key if key not in old_by_key]
    return changes, only_old, only_new


def _name(key: tuple[str, int, str]) -> str:
    return f"{key[0]} N={key[1]:,} {key[2]}"


def format_comparison(old: Run, new: Run, threshold: float) -> tuple[str, bool]:
    """The text of ``anybench compare`` and whether it fails: a significant slow-down above
    *threshold*, or a benchmark of old that is missing from new or failed in it."""
    changes, only_old, only_new = compare_runs(old, new)
    lines = [f"old: {old.path}", f"new: {new.path}"]
    differences = machines_differ(old, new)
    if differences:
        lines.append("WARNING: the runs differ in machine or software, so part of any change is ")
        lines.append("         theirs, not the code's: " + "; ".join(differences))
    lines.append("")
    header = f"{'benchmark':<34} {'old ns/op':>11} {'new ns/op':>11} {'change':>8}  95% interval"
    lines += [header, "-" * (len(header) + 14)]
    regressed = False
    for change in changes:
        ratio = change.ratio
        pct = ratio.ratio - 1
        if not ratio.significant:
            verdict = "not significant"
        elif pct > threshold:
            verdict = "REGRESSION"
            regressed = True
        elif pct > 0:
            verdict = "slower"
        else:
            verdict = "faster"
        p99 = change.p99_change
        p99_text = f"  p99 latency {p99:+.0%}" if p99 is not None else ""
        old_ns, new_ns = change.old.ns_per_op, change.new.ns_per_op
        lines.append(
            f"{_name(change.key):<34} {old_ns:>11,.0f} {new_ns:>11,.0f} "
            f"{pct:>+8.1%}  [{ratio.low - 1:+.1%}, {ratio.high - 1:+.1%}] {verdict}{p99_text}"
        )
    for name in only_old:
        lines.append(f"{name:<34} MISSING from new (it ran in old)")
    for name in only_new:
        lines.append(f"{name:<34} only in new")
    for failure in new.failed:
        lines.append(f"FAILED in new: {failure.get('test')}: {failure.get('error')}")
    # A benchmark that stopped running (hung, crashed, lost) is the worst regression of all.
    regressed = regressed or bool(only_old) or bool(new.failed)
    lines.append("")
    lines.append(
        "change = new/old - 1 of median ns/op; interval: 95% bootstrap of the ratio of medians "
        f"over rounds; REGRESSION = significant and above {threshold:.0%}. A benchmark missing "
        "from new, or failed in it, also fails the comparison."
    )
    return "\n".join(lines), regressed
