"""The column layout of the report, the table and the plots: which record is shown where.

Records of one or more runs (files) become entries, each under a column (its runtime, plus the
run's label when several runs are shown side by side); the columns are ordered by runtime, rows
by scenario and scale. This module judges nothing (see :mod:`anybench._verdicts`) and writes no
text for a medium (names are escaped where they are written, see :mod:`anybench._escape`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import _sweep
from ._results import Record, Run
from ._runtimes import BASELINE, RUNTIMES, TOOL_DISTRIBUTIONS


def scale_text(record: Record) -> str:
    """The scale of *record* for people, with its axis' symbol: ``N=1,000``, ``B=10``."""
    return _sweep.scale_text(record.axis, record.n)


def file_labels(paths: Sequence[Path]) -> list[str]:
    """A short label per file: its name without ``.json``, with as many of its parent
    directories as tell it from another file of that name (``a/run``, ``b/run``). One file
    given twice keeps one label: it is one run."""
    files = [Path(path).resolve() for path in paths]
    depth = [0] * len(files)

    def label(i: int) -> str:
        parents = files[i].parent.parts[len(files[i].parent.parts) - depth[i] :]
        return "/".join([*parents, files[i].stem]) if depth[i] else files[i].stem

    for _ in range(max((len(f.parts) for f in files), default=0)):
        labels = [label(i) for i in range(len(files))]
        clashing = [
            i
            for i, name in enumerate(labels)
            if any(other == name and files[j] != files[i] for j, other in enumerate(labels))
        ]
        if not clashing:
            return labels
        for i in clashing:
            depth[i] = min(depth[i] + 1, len(files[i].parent.parts))
    return [label(i) for i in range(len(files))]


def variant_labels(runs: Sequence[Run]) -> dict[int, str]:
    """A short label per run that tells runs apart when they are shown side by side.

    One run needs no label. Several are labelled by what differs between them: the machine
    (operating system, and host where two of one system differ), the Python version, the
    versions of the libraries the runtimes come from; failing that, by file (see
    :func:`file_labels`).
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
        files = file_labels([run.path for run in runs])
        # A file holding several variants is split into one run each (Run.by_variant).
        labels = [
            f"{name}[{run.variant}]" if run.variant else name
            for name, run in zip(files, runs, strict=True)
        ]
    return {id(run): label for run, label in zip(runs, labels, strict=True)}


def one_per_file(runs: Sequence[Run]) -> tuple[list[Run], list[tuple[Run, int]]]:
    """*runs* with each file once (the first time it was given), and the files given more than
    once, each with the number of times: the report shows a file once, and says so."""
    by_file: dict[tuple[Path, str], list[Run]] = {}
    for run in runs:  # the variants of one file are runs of their own (Run.by_variant)
        by_file.setdefault((run.path.resolve(), run.variant), []).append(run)
    repeated = [(same[0], len(same)) for same in by_file.values() if len(same) > 1]
    return [same[0] for same in by_file.values()], repeated


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


def dagger(record: Record, caveats: list[str]) -> str:
    """The † mark of a record whose runtime uses a mechanism of its own (numbered by *caveats*,
    to which a new caveat is added); "" for none."""
    return caveat_mark(record.caveat, caveats)


def caveat_mark(caveat: str | None, caveats: list[str]) -> str:
    """The mark of *caveat*: †, ††, ... by its place in *caveats* (added there if new); "" for
    no caveat."""
    if not caveat:
        return ""
    if caveat not in caveats:
        caveats.append(caveat)
    return " " + "†" * (caveats.index(caveat) + 1)


def dagger_notes(caveats: Sequence[str]) -> list[str]:
    """The plain-text notes under a table for the marks :func:`dagger` handed out."""
    return [f"{'†' * (i + 1)} {caveat}." for i, caveat in enumerate(caveats)]
