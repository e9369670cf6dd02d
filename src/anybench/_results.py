"""The results schema, and reading and saving results files: pytest-benchmark JSON with
anybench's extra info.

The schema is written and read here, side by side, with its version: :func:`write_extra_info`
and :func:`read_record` for each benchmark's extra info, :func:`write_run_info` and
:func:`read_run_info` for the run's own figures (the machine identity is written by the
plugin's ``pytest_benchmark_update_machine_info`` and checked on reading here).

A file holds, beside pytest-benchmark's own keys:

- ``machine_info["anybench"]``: what identifies the machine and software (format, anybench's
  version, library versions, timer, method). pytest-benchmark compares machine infos between
  runs (``--benchmark-compare``) and warns when they differ, so nothing here changes from run
  to run on one machine.
- ``anybench_run`` (top level, which pytest-benchmark does not compare): the run's own figures
  (its id, profile, scales, runtimes chosen and unavailable, timer cost, peak memory, failed
  benchmarks, and why it is partial). Format 1 and 2 files kept these in
  ``machine_info["anybench"]``; they are read from there.
- each benchmark's ``extra_info``: scenario, runtime, its scale (``scale`` on its ``axis``; format
  3 and earlier called it ``n``), its raw rounds, latency summaries and memory.

Reading never modifies a file, reads at most :data:`MAX_FILE_BYTES`, and checks every field a
command uses, once: a file that cannot be used raises :class:`ResultsError` with one line that
names it and says what is wrong. Saving never overwrites (a new file gets a fresh name) and writes
compact JSON (:func:`dumps`).
This module imports neither anyio nor the harness: reading results needs neither.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._busy import Busy
from ._files import NotRegularFile, OutputError, open_regular, safe_name, unwritable, write_new
from ._stats import (
    geometric_mean,
    percentile,
    process_medians,
    summarize_latency,
    summarize_round,
)
from ._sweep import AXES, N

if TYPE_CHECKING:
    from ._measure import Measurement
    from ._runtimes import Runtime
    from ._scenario import ScenarioSpec

#: Version of the results anybench writes; readers refuse other versions. 3: per-run figures
#: moved out of the machine info into ``anybench_run``; scenario parameters recorded. 4: a
#: record's scale is ``scale`` (on its ``axis``), no longer ``n``; files written compactly.
RESULTS_FORMAT = 4
#: Formats this anybench reads: 1 (one process per benchmark, before worker processes), 2, 3, 4.
READABLE_FORMATS = (1, 2, 3, RESULTS_FORMAT)
#: The run-level keys, which format 1 and 2 kept in ``machine_info["anybench"]``.
RUN_KEYS = (
    "run_id",
    "profile",
    "scales",
    "runtimes",
    "unavailable_runtimes",
    "timer_cost_ns",
    "peak_rss_bytes",
    "failed",
    "partial",
    #: How the variants' workers met in each pass (``--pairing``), in a run of several.
    "pairing",
    #: When the run began measuring (ISO 8601, UTC). The file's own ``datetime`` is
    #: pytest-benchmark's: when the file was written, at the run's end.
    "started",
)

#: Bounds on what a record's integers may be, so that every figure fits the float and numpy
#: arithmetic done with it (a scale of 10**30 broke the report): far above any real run's.
MAX_SCALE = 10**12
MAX_OPS_PER_ROUND = 10**15
MAX_ROUNDS = 10**7
#: A round's elapsed time: 10**16 ns is four months.
MAX_ELAPSED_NS = 10**16
#: A pid is a 32-bit number on every system anybench runs on.
MAX_PID = 2**32

#: How far a record's ns_per_op may be from the one its rounds give (float rounding only).
NS_PER_OP_TOLERANCE = 1e-6

#: Extra-info keys every anybench record must carry, besides its scale (see :func:`_scale_key`).
REQUIRED_EXTRA = ("scenario", "runtime", "ops_per_round", "rounds", "ns_per_op")


def _scale_key(results_format: int) -> str:
    """The extra-info key of a record's scale: ``scale`` (on the axis named by ``axis``) from
    format 4; ``n`` before, though on the load axis it held B."""
    return "scale" if results_format >= 4 else "n"


class ResultsError(ValueError):
    """A results file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class Record:
    """One benchmark: a scenario at scale N on one runtime."""

    scenario: str
    runtime: str
    #: The scale on the record's axis: N operations, or B background tasks on the load axis
    #: (``scale`` in the file from format 4, ``n`` before).
    n: int
    ns_per_op: float
    rounds: int
    ops_per_round: int
    round_ns_per_op: tuple[float, ...]
    latency_ns: dict[str, dict[str, Any]] = field(default_factory=dict)
    name: str = ""
    operation: str = ""
    #: The sweep axis N is on: "n" (operations) or "load" (background load B).
    axis: str = "n"
    memory: dict[str, Any] | None = None
    #: For a native baseline, the anyio scenario it mirrors.
    native_of: str | None = None
    #: What this measurement does differently on its runtime, if anything: a mechanism of its
    #: own there (marked † wherever the figure appears).
    caveat: str | None = None
    #: The scenario's remarks on its figures, by report topic (its ``REMARKS``).
    remarks: dict[str, str] = field(default_factory=dict)
    #: Per worker process, ns/op of each throughput round (a format-1 file: one process).
    processes: tuple[tuple[float, ...], ...] = ()
    #: Per worker process, its pid; the records of one scale and run that share a pid were
    #: measured in the same process, their rounds taking turns. Empty before workers were
    #: shared (files of format 2 and earlier).
    process_ids: tuple[int, ...] = ()
    #: Per worker process, beside its pid: how busy the machine was over its throughput rounds
    #: (see :mod:`anybench._busy`); None for a process that did not measure it. Empty in files
    #: written before anybench measured it.
    process_busy: tuple[Busy | None, ...] = ()
    #: Per worker process, the pass over the matrix it ran in and its worker's position in that
    #: pass (both from 1): how the benchmark's processes were spread over the run. Empty before
    #: runs were made in passes.
    process_passes: tuple[int, ...] = ()
    process_positions: tuple[int, ...] = ()
    #: The environment it ran in, when several were interleaved in one run ("" otherwise).
    variant: str = ""
    #: Why its figure is left out of summaries (a region under 1 ms), or None.
    unstable: str | None = None
    #: Median ns/op of its latency rounds (stamps on): the instrument's cost is the difference.
    stamped_ns_per_op: float | None = None
    #: The scenario's own constants (see :class:`anybench.ScenarioSpec`); empty before format 3.
    parameters: dict[str, Any] = field(default_factory=dict)
    #: The compiled modules its worker processes loaded from fresh copies of their files (see
    #: :mod:`anybench._fresh`); None in files written before workers made copies (2026-12-05).
    copied_modules: tuple[str, ...] | None = None
    #: Those that some of its processes loaded from their own file, as workers did before, with
    #: why; and in how many of its processes.
    own_file_modules: dict[str, str] = field(default_factory=dict)
    own_file_processes: int = 0
    #: Per worker process, the bytes it held to shift its heap (see :mod:`anybench._fresh`);
    #: None for one that did not. Empty in files written before workers shifted it.
    process_heap_shift: tuple[int | None, ...] = ()

    @property
    def process_medians(self) -> list[float]:
        """The median ns/op of each process: the unit of every interval and test."""
        return process_medians(self.processes)

    @property
    def scale_label(self) -> str:
        """N as shown to a person: ``1,000``, or ``B=1,000`` for a load sweep."""
        return f"B={self.n:,}" if self.axis == "load" else f"{self.n:,}"

    @property
    def key(self) -> tuple[str, int]:
        """(scenario, scale): unique among the records of one variant (checked on loading)."""
        return self.scenario, self.n


@dataclass
class Run:
    """One results file."""

    path: Path
    records: list[Record]
    machine_info: dict[str, Any]
    commit_info: dict[str, Any]
    datetime: str
    #: The run's own figures (see the module docstring), whatever the file's format.
    run_info: dict[str, Any] = field(default_factory=dict)
    #: The variant this run is, when it was split out of a file holding several (see
    #: :meth:`by_variant`); "" for a whole file.
    variant: str = ""
    #: The JSON it was read from (for a split run, as a file of its own would hold it).
    data: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def source(self) -> str:
        """Where the run was read from, for a person: its file, and its variant if split."""
        return f"{self.path} [variant {self.variant}]" if self.variant else str(self.path)

    @property
    def stem(self) -> str:
        """A short name for the run: its file's stem, and its variant if split."""
        return f"{self.path.stem}[{self.variant}]" if self.variant else self.path.stem

    def by_variant(self) -> list[Run]:
        """This run, one :class:`Run` per variant if it interleaved several (each as ``save``
        would write it: that variant's records, Python and library versions), else itself.

        Records of different variants share scenario, scale and runtime: shown as one run,
        one would hide the other, so every command shows a split run's variants apart.
        """
        variants = list(dict.fromkeys(record.variant for record in self.records))
        if len(variants) <= 1 or not self.data:
            return [self]
        return [
            _run_from(self.path, _variant_data(self.data, variant), variant) for variant in variants
        ]

    @property
    def anybench_info(self) -> dict[str, Any]:
        """The machine's identity and the run's figures together (what ``machine_info
        ["anybench"]`` held up to format 2)."""
        return {**self.machine_info.get("anybench", {}), **self.run_info}

    @property
    def partial(self) -> str | None:
        """Why this run is incomplete (recovered from the journal of an interrupted run)."""
        value = self.run_info.get("partial")
        return str(value) if value else None

    @property
    def pairing(self) -> str:
        """How this run's variants met in each pass (``--pairing``; "" if not said: a run of
        one variant, or one made before runs said it)."""
        return str(self.run_info.get("pairing") or "")

    @property
    def run_id(self) -> str:
        """The id of the run that made this file: files split from one interleaved run share it."""
        return str(self.run_info.get("run_id") or "")

    @property
    def unavailable_runtimes(self) -> dict[str, str]:
        return dict(self.run_info.get("unavailable_runtimes", {}))

    @property
    def busy(self) -> list[Busy]:
        """How busy the machine was for each worker process over each scale it measured, once
        each (the runtimes of a scale share their processes, and so their figures)."""
        seen: dict[tuple[str, str, int, int], Busy] = {}
        for record in self.records:
            for i, busy in enumerate(record.process_busy):
                pid = record.process_ids[i] if i < len(record.process_ids) else 0
                # A process known by its pid once; one without (pid 0) by its place.
                process = pid if pid > 0 else -1 - i
                if busy is not None:
                    seen.setdefault((record.variant, record.scenario, record.n, process), busy)
        return list(seen.values())

    @property
    def placement(self) -> str | None:
        """Where this run's compiled code did not lie somewhere new in every worker process
        (see :mod:`anybench._fresh`), as one sentence; None where it did, and where nothing was
        said (files written before workers made copies: see :attr:`placed_afresh`)."""
        loaded = {name: why for r in self.records for name, why in r.own_file_modules.items()}
        if not loaded:
            return None
        # A worker names every module it loaded so far: all the benchmarks it measured do.
        benchmarks = sum(1 for r in self.records if r.own_file_processes)
        most = max(r.own_file_processes for r in self.records)
        names = "; ".join(f"{name} ({why})" for name, why in sorted(loaded.items()))
        return (
            f"compiled code loaded from its own file, not a fresh copy, in the worker processes "
            f"of {benchmarks} benchmarks (in at most {most} of one's): {names}. Where that code "
            "lies in memory was the same in each such process, an offset more processes do not "
            "average away"
        )

    @property
    def placed_afresh(self) -> bool:
        """Whether every worker process of this run loaded compiled code from fresh copies and
        shifted its heap (files written from 2026-12-05 on say so; before, every process of an
        environment laid out its code and objects alike)."""
        return all(
            r.copied_modules is not None
            and len(r.process_heap_shift) == len(r.processes)
            and None not in r.process_heap_shift
            for r in self.records
        )

    @property
    def started(self) -> dt.datetime | None:
        """When the run began measuring; None in files written before runs said it."""
        return _moment(self.run_info.get("started"))

    @property
    def when(self) -> tuple[dt.datetime | None, str]:
        """When the run was made, and which moment that is: (its start, "started") where the
        file says, else (the file's own date, "dated": the run's end, or its start for a file
        recovered from a journal); the moment is None for a file without either."""
        started = self.started
        return (started, "started") if started else (_moment(self.datetime), "dated")

    @property
    def failed(self) -> list[dict[str, str]]:
        """Benchmarks that failed in this run (missing from its records), with their errors."""
        return list(self.run_info.get("failed", []))


def pair_variants(old: Run, new: Run) -> list[tuple[Run, Run]]:
    """The runs to compare, old against new: the two runs, or, when either file interleaved
    several variants, each variant of *old* against the same variant of *new* (see
    :meth:`Run.by_variant`). Raise :class:`ResultsError` when the variants do not match up."""
    olds, news = old.by_variant(), new.by_variant()
    if len(olds) == len(news) == 1:
        return [(old, new)]
    names_old = [run.variant for run in olds]
    names_new = [run.variant for run in news]
    if sorted(names_old) != sorted(names_new):

        def listed(runs: list[Run]) -> str:
            return f"variants {', '.join(r.variant for r in runs)}" if len(runs) > 1 else "one run"

        raise ResultsError(
            f"{old.path} holds {listed(olds)} and {new.path} holds {listed(news)}: compare "
            "runs of one variant each ('anybench save' splits an interleaved run into them)"
        )
    by_name = {run.variant: run for run in news}
    return [(run, by_name[run.variant]) for run in olds]


def write_run_info(**figures: Any) -> dict[str, Any]:
    """The run's own figures as a results file holds them (``anybench_run``); keys from
    :data:`RUN_KEYS` only."""
    unknown = set(figures) - set(RUN_KEYS)
    if unknown:
        raise TypeError(f"not run-level keys: {sorted(unknown)}")
    return dict(figures)


def read_run_info(data: dict[str, Any]) -> dict[str, Any]:
    """The run's own figures from a results file's JSON, whatever its format."""
    legacy = data["machine_info"].get("anybench", {})
    run = data.get("anybench_run")
    if run is not None and not isinstance(run, dict):
        raise ValueError("'anybench_run' is not a mapping")
    merged = {**{k: legacy[k] for k in RUN_KEYS if k in legacy}, **(run or {})}
    if isinstance(legacy.get("failed"), list) and run and isinstance(run.get("failed"), list):
        # A failure is never hidden: one noted where format 2 kept them counts too.
        merged["failed"] = legacy["failed"] + [
            f for f in run["failed"] if f not in legacy["failed"]
        ]
    return merged


#: Largest results file read; a bigger one is refused unread (a reference run's is ~1.5 MB).
MAX_FILE_BYTES = 256 * 1024 * 1024


def load(path: str | os.PathLike[str]) -> Run:
    """Read one results file; raise :class:`ResultsError` if it is not usable.

    Every field a command uses is checked here, once, so that a malformed file is named in one
    line and the files given beside it still report. A file holding several variants (an
    interleaved run, as ``pytest --variant ... --benchmark-json`` writes it) loads as one run;
    :meth:`Run.by_variant` splits it.
    """
    path = Path(path)
    return _run_from(path, read_json(path))


def read_json(path: Path) -> dict[str, Any]:
    """The JSON of the results file *path*, read at most :data:`MAX_FILE_BYTES`; raise
    :class:`ResultsError` if it is not a pytest-benchmark results file of anybench's."""
    try:
        with open_regular(path) as file:
            if os.fstat(file.fileno()).st_size > MAX_FILE_BYTES:
                raise ResultsError(_too_big(path))
            raw = file.read(MAX_FILE_BYTES + 1)
    except NotRegularFile:
        raise ResultsError(f"{path}: not a regular file; pass a results file") from None
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if len(raw) > MAX_FILE_BYTES:  # it grew while being read
        raise ResultsError(_too_big(path))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ResultsError(f"{path}: not a text file; expected pytest-benchmark JSON") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultsError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); "
            "is it a half-written or hand-edited file?"
        ) from None
    except RecursionError:
        raise ResultsError(
            f"{path}: JSON nested too deeply to be a results file; pass a file written by "
            "'nox -s bench' or pytest --benchmark-json"
        ) from None
    except ValueError:  # a number with thousands of digits, say
        raise ResultsError(
            f"{path}: JSON with a number too long to read; is it a results file?"
        ) from None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("benchmarks"), list)
        or not isinstance(data.get("machine_info"), dict)
    ):
        raise ResultsError(
            f"{path}: not a pytest-benchmark results file (no 'benchmarks' and 'machine_info'); "
            "pass a file written by 'nox -s bench' or pytest --benchmark-json"
        )
    info = data["machine_info"].get("anybench")
    if not isinstance(info, dict):
        raise ResultsError(
            f"{path}: pytest-benchmark results without anybench's machine info; "
            "was it written by anybench's benchmarks?"
        )
    fmt: Any = info.get("format")
    if not _whole(fmt):
        raise ResultsError(
            f"{path}: anybench results format {_short(fmt)} is not a whole number; "
            "was the file edited by hand?"
        )
    if fmt > RESULTS_FORMAT:
        raise ResultsError(_newer(path, fmt))
    if fmt not in READABLE_FORMATS:
        raise ResultsError(
            f"{path}: anybench results format {info.get('format')!r}, this anybench reads formats "
            f"{', '.join(map(str, READABLE_FORMATS))}; use the anybench version that wrote it"
        )
    return data


def _newer(path: Path, results_format: int) -> str:
    return f"{path}: made by a newer anybench (format {results_format}); upgrade anybench"


def _too_big(path: Path) -> str:
    return (
        f"{path}: over {MAX_FILE_BYTES // 2**20} MiB, far more than a results file holds; "
        "pass a results file"
    )


def repeated_run(runs: Sequence[Run]) -> tuple[Run, Run] | None:
    """Two of *runs* that are one run's measurements given twice (the same file, or a copy of
    it, whatever its name or metadata: the same rounds in every benchmark), or None."""
    seen: dict[tuple[Any, ...], Run] = {}
    for run in runs:
        key = tuple((r.scenario, r.n, r.runtime, r.variant, r.processes) for r in run.records)
        if key in seen:
            return seen[key], run
        seen[key] = run
    return None


def _identity_differences(
    runs: Sequence[Run], identity: Callable[[Run], dict[str, object]], *, unknown_differs: bool
) -> list[str]:
    """What differs in *identity* of each of *runs* from the first's, one line a key; a value
    not recorded (None) on either side differs only if *unknown_differs*."""
    if not runs:
        return []
    first = identity(runs[0])
    differences = []
    for run in runs[1:]:
        mine = identity(run)
        for key in dict.fromkeys([*first, *mine]):
            a, b = first.get(key), mine.get(key)
            if a != b and (unknown_differs or (a is not None and b is not None)):
                differences.append(f"{key} {a} in {runs[0].stem}, {b} in {run.stem}")
    return differences


def software_differs(runs: Sequence[Run]) -> list[str]:
    """What differs in the code and software of *runs* from the first's: anybench's version,
    the commit, the library versions, Python (empty when they are the same)."""

    def identity(run: Run) -> dict[str, object]:
        info = run.anybench_info
        libraries = info.get("libraries") or {}
        return {
            "anybench": info.get("version"),
            "commit": (run.commit_info.get("id") or "")[:12] or None,
            **{lib: libraries.get(lib) for lib in sorted(libraries)},
            "Python": " ".join(
                str(run.machine_info.get(key) or "")
                for key in ("python_implementation", "python_version")
            ).strip(),
        }

    return _identity_differences(runs, identity, unknown_differs=True)


def machine_differs(runs: Sequence[Run]) -> list[str]:
    """What differs in the machine of *runs* from the first's: its name, its CPU (a VM that
    moved to another host keeps its name and changes its CPU); where a file does not say, nothing
    is claimed."""

    def identity(run: Run) -> dict[str, object]:
        return {
            "machine": run.machine_info.get("node"),
            "CPU": (run.machine_info.get("cpu") or {}).get("brand_raw"),
        }

    return _identity_differences(runs, identity, unknown_differs=False)


def differences_text(differences: Sequence[str]) -> str:
    """The first three differences (of :func:`software_differs` or :func:`machine_differs`), for
    a one-line message."""
    return "; ".join(differences[:3]) + ("; ..." if len(differences) > 3 else "")


def moments(runs: Sequence[Run]) -> tuple[list[dt.datetime | None], str]:
    """The same moment of each of *runs*, and its name: their starts where every run says its
    own, else the files' dates (so that the hours between two runs are not off by a run's
    length)."""
    found = [run.when for run in runs]
    if all(name == "started" for _, name in found):
        return [moment for moment, _ in found], "started"
    return [_moment(run.datetime) for run in runs], "dated"


def _moment(text: Any) -> dt.datetime | None:
    """An ISO 8601 time as an aware datetime (UTC when it names no zone); None if it is not one."""
    try:
        moment = dt.datetime.fromisoformat(str(text or ""))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def _run_from(path: Path, data: dict[str, Any], variant: str = "") -> Run:
    """The :class:`Run` of *data* (checked by :func:`read_json`), every field it exposes checked."""
    info = data["machine_info"]["anybench"]
    try:
        run_info = read_run_info(data)
    except ValueError as exc:
        raise ResultsError(f"{path}: {exc}; was the file edited by hand?") from None
    problem = _machine_info_problem(data["machine_info"], {**info, **run_info})
    problem = problem or _run_info_problem(run_info)
    if problem is None and not isinstance(data.get("commit_info") or {}, dict):
        problem = "'commit_info' is not a mapping"
    if problem is None and not isinstance((data.get("commit_info") or {}).get("id") or "", str):
        problem = "commit_info 'id' is not a string"
    if problem is None and not isinstance(data.get("datetime") or "", str):
        problem = "'datetime' is not text"
    if problem is not None:
        raise ResultsError(f"{path}: {problem}; was the file edited by hand?")
    records = [_record(path, bench, info["format"]) for bench in data["benchmarks"]]
    if not records and not run_info.get("failed"):
        raise ResultsError(f"{path}: holds no benchmarks; was the run interrupted?")
    seen: dict[tuple[str, int, str, str], str] = {}
    for record in records:
        key = (record.scenario, record.n, record.runtime, record.variant)
        if key in seen:
            raise ResultsError(
                f"{path}: benchmarks {seen[key]} and {record.name} both measure {record.scenario} "
                f"at {record.scale_label} on {record.runtime}"
                f"{f' (variant {record.variant})' if record.variant else ''}; "
                "was the file merged or edited by hand?"
            )
        seen[key] = record.name
    return Run(
        path=path,
        records=records,
        machine_info=data["machine_info"],
        commit_info=data.get("commit_info") or {},
        datetime=str(data.get("datetime") or ""),
        run_info=run_info,
        variant=variant,
        data=data,
    )


def _run_info_problem(run: dict[str, Any]) -> str | None:
    """What is wrong with the run's own figures (``anybench_run``), in a few words; or None."""
    runtimes = run.get("runtimes") or []
    if not isinstance(runtimes, (list, dict)) or not all(isinstance(r, str) for r in runtimes):
        return f"anybench_run 'runtimes' is not a list of names: {_short(runtimes)}"
    if isinstance(runtimes, dict) and not all(isinstance(d, str) for d in runtimes.values()):
        return "anybench_run 'runtimes' maps names to something other than text"
    scales = run.get("scales") or {}
    lists = scales.values() if isinstance(scales, dict) else [scales]
    if not isinstance(scales, (list, dict)) or not all(
        isinstance(values, list) and all(_whole(v) for v in values) for values in lists
    ):
        return f"anybench_run 'scales' is not lists of whole numbers: {_short(scales)}"
    for key in ("run_id", "profile", "partial", "pairing"):
        if not isinstance(run.get(key) or "", str):
            return f"anybench_run {key!r} is not text: {_short(run[key])}"
    started = run.get("started")
    if started not in (None, "") and (not isinstance(started, str) or _moment(started) is None):
        return f"anybench_run 'started' is not an ISO 8601 time: {_short(run['started'])}"
    peak = run.get("peak_rss_bytes")
    if peak is not None and not (_number(peak) and peak >= 0):
        return f"anybench_run 'peak_rss_bytes' is not a number of bytes: {_short(peak)}"
    return None


def _machine_info_problem(machine: dict[str, Any], info: dict[str, Any]) -> str | None:
    """What is wrong with the machine info of a results file, in a few words; None if nothing."""
    for key in ("node", "python_version", "python_implementation", "processor", "system"):
        if not isinstance(machine.get(key) or "", str):
            return f"machine info {key!r} is not a string"
    if not isinstance(machine.get("cpu") or {}, dict):
        return "machine info 'cpu' is not a mapping"
    if not isinstance((machine.get("cpu") or {}).get("brand_raw") or "", str):
        return "machine info cpu 'brand_raw' is not a string"
    for key in ("libraries", "unavailable_runtimes"):
        value = info.get(key, {})
        if not isinstance(value, dict):
            return f"anybench machine info {key!r} is not a mapping"
        if not all(isinstance(v, str) or v is None for v in value.values()):
            return f"anybench machine info {key!r} maps to something other than text"
    timer = info.get("timer_cost_ns", 0.0)
    if not (_number(timer) and timer >= 0):
        return f"anybench 'timer_cost_ns' is not a number of ns: {_short(timer)}"
    failed = info.get("failed", [])
    if not isinstance(failed, list):
        return "anybench machine info 'failed' is not a list"
    for failure in failed:
        if not (
            isinstance(failure, dict)
            and isinstance(failure.get("test"), str)
            and isinstance(failure.get("error"), str)
        ):
            return (
                "anybench machine info 'failed' holds "
                f"{_short(failure)} where a {{'test': ..., 'error': ...}} mapping of text belongs"
            )
    return None


def _short(value: Any, limit: int = 60) -> str:
    """*value*'s repr, cut to *limit* characters: an error line stays one short line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _record(path: Path, bench: Any, results_format: int) -> Record:
    name = bench.get("name", "?") if isinstance(bench, dict) else "?"
    if not isinstance(name, str):
        raise ResultsError(
            f"{path}: a benchmark's name is {_short(name)}, not text; was the file edited by hand?"
        )
    extra = bench.get("extra_info") if isinstance(bench, dict) else None
    required = (*REQUIRED_EXTRA, _scale_key(results_format))
    missing = [key for key in required if not isinstance(extra, dict) or key not in extra]
    if missing or not isinstance(extra, dict):
        raise ResultsError(
            f"{path}: benchmark {name} lacks anybench extra info ({', '.join(missing)}); "
            "re-run it with anybench's benchmarks"
        )
    record_format = extra.get("anybench_format", results_format)
    if _whole(record_format) and record_format > RESULTS_FORMAT:
        raise ResultsError(_newer(path, record_format))
    try:
        if not _whole(record_format):
            raise ValueError(f"anybench_format must be a whole number, not {_short(record_format)}")
        return read_record(name, extra, results_format)
    except (TypeError, ValueError, KeyError) as exc:
        raise ResultsError(
            f"{path}: benchmark {name} has malformed anybench extra info ({exc}); "
            "was the file edited by hand?"
        ) from None


def write_extra_info(
    spec: ScenarioSpec,
    runtime: Runtime,
    n: int,
    m: Measurement,
    variant: str = "",
    *,
    timer_cost_ns: float,
    min_region_ns: int,
) -> dict[str, Any]:
    """What anybench stores beside each pytest-benchmark record (raw figures included); read
    back by :func:`read_record`. A region whose typical round is under *min_region_ns* marks
    the figure unstable."""
    ops = m.ops_per_round
    medians = m.process_medians_ns_per_op()
    typical = percentile(sorted(e for rounds in m.processes for e in rounds), 50.0)
    pooled: dict[str, list[int]] = {}
    per_round: dict[str, list[dict[str, Any]]] = {}
    for latency_round in m.latency_rounds:
        for series, values in latency_round.items():
            pooled.setdefault(series, []).extend(values)
            per_round.setdefault(series, []).append(summarize_round(values))
    stamped = sorted(e / ops for e in m.stamped_elapsed_ns) if ops else []
    info: dict[str, Any] = {
        "anybench_format": RESULTS_FORMAT,
        "scenario": spec.name,
        "operation": spec.operation,
        "axis": spec.axis,
        "native_of": spec.native_of,
        "caveat": spec.caveats.get(runtime.backend),
        "remarks": dict(spec.remarks),
        "parameters": dict(spec.parameters),
        "runtime": runtime.name,
        "backend": runtime.backend,
        "variant": variant,
        "python": m.python,
        "libraries": m.libraries,
        _scale_key(RESULTS_FORMAT): n,
        "ops_per_round": ops,
        "passes_per_round": m.passes,
        "processes": len(m.processes),
        "rounds": sum(len(rounds) for rounds in m.processes),
        "ns_per_op": geometric_mean(medians),
        "process_round_elapsed_ns": m.processes,
        "process_ids": m.process_ids,
        "process_busy": [None if b is None else dataclasses.asdict(b) for b in m.process_busy],
        "process_passes": m.process_passes,
        "process_positions": m.process_positions,
        "copied_modules": None if m.copied is None else sorted(m.copied),
        "own_file_modules": m.own_file,
        "own_file_processes": m.own_file_processes,
        "process_heap_shift_bytes": m.process_heap_shift,
        "round_elapsed_ns": [e for rounds in m.processes for e in rounds],
        "timer_cost_ns": timer_cost_ns,
        "unstable": (
            f"its regions lasted {typical / 1e6:.2f} ms, under {min_region_ns / 1e6:g} ms"
            if typical < min_region_ns
            else None
        ),
        "stamped_ns_per_op": percentile(stamped, 50.0) if stamped else None,
        "latency_ns": {
            series: {
                "description": spec.latencies[series],
                **summarize_latency(values),
                "rounds": per_round[series],
            }
            for series, values in pooled.items()
        },
    }
    if m.peak_bytes is not None:
        info["memory"] = {
            "peak_bytes": m.peak_bytes,
            "bytes_per_op": m.peak_bytes / max(m.memory_ops, 1),
            "n": m.memory_n or n,
            "method": "tracemalloc peak from the scenario's start to the end of its region, "
            "in one extra untimed round",
        }
    info["measure_s"] = round(m.worker_s, 3)
    return info


def read_record(name: str, extra: dict[str, Any], results_format: int = RESULTS_FORMAT) -> Record:
    """One benchmark's :class:`Record` from the extra info :func:`write_extra_info` wrote (any
    readable format, *results_format*); raise TypeError, ValueError or KeyError on a malformed
    one. Every field the record exposes is checked for type, finiteness and range here."""

    def positive(key: str) -> float:
        value = extra[key]
        if not _number(value) or not value > 0:
            raise ValueError(f"{key} must be a positive number, not {_short(value)}")
        return float(value)

    def count(key: str, most: int) -> int:
        value = extra[key]
        if not _whole(value) or not 0 < value <= most:
            raise ValueError(
                f"{key} must be a positive whole number of at most {_power(most)}, "
                f"not {_short(value)}"
            )
        return int(value)

    def text(key: str) -> str | None:
        value = extra.get(key)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{key} must be text, not {_short(value)}")
        return value

    ops = count("ops_per_round", MAX_OPS_PER_ROUND)
    elapsed = extra.get("round_elapsed_ns") or []
    latency = extra.get("latency_ns") or {}
    memory = extra.get("memory")
    if not isinstance(elapsed, list) or not all(_elapsed(e) for e in elapsed):
        raise ValueError(
            f"round_elapsed_ns must be a list of positive numbers of at most "
            f"{_power(MAX_ELAPSED_NS)} ns"
        )
    if not isinstance(latency, dict) or not all(isinstance(s, dict) for s in latency.values()):
        raise ValueError("latency_ns must map series names to summaries")
    for series, summary in latency.items():
        _check_latency_summary(series, summary)
    axis = extra.get("axis") or N.name
    if axis not in AXES:
        raise ValueError(f"axis must be one of {', '.join(AXES)}, not {_short(axis)}")
    scale_key = _scale_key(results_format)
    scale = extra[scale_key]
    if not _whole(scale) or not AXES[axis].lowest <= scale <= MAX_SCALE:
        raise ValueError(
            f"{scale_key} must be a whole number of at least {AXES[axis].lowest} and at most "
            f"{_power(MAX_SCALE)} on the {axis} axis, not {_short(scale)}"
        )
    if memory is not None:
        _check_memory(memory, AXES[axis].lowest)
    for key in ("scenario", "runtime"):
        if not isinstance(extra[key], str) or not extra[key]:
            raise ValueError(f"{key} must be a name, not {_short(extra[key])}")
    remarks = extra.get("remarks") or {}
    if not isinstance(remarks, dict) or not all(isinstance(v, str) for v in remarks.values()):
        raise ValueError(f"remarks must map topics to text, not {_short(remarks)}")
    parameters = extra.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ValueError(f"parameters must be a mapping, not {_short(parameters)}")
    process_ids = extra.get("process_ids") or []
    if not isinstance(process_ids, list) or not all(
        _whole(pid) and 0 <= pid < MAX_PID for pid in process_ids
    ):
        raise ValueError(f"process_ids must be a list of pids, not {_short(process_ids)}")
    stamped = extra.get("stamped_ns_per_op")
    if stamped is not None and not (_number(stamped) and stamped > 0):
        raise ValueError(f"stamped_ns_per_op must be a positive number, not {_short(stamped)}")
    processes = _processes(extra, ops, elapsed)
    if process_ids and len(process_ids) != len(processes):
        raise ValueError(
            f"process_ids names {len(process_ids)} processes, but {len(processes)} have rounds"
        )
    ns_per_op = positive("ns_per_op")
    if processes:  # it is the geometric mean of the process medians (write_extra_info)
        from_rounds = geometric_mean(process_medians(processes))
        if not math.isclose(ns_per_op, from_rounds, rel_tol=NS_PER_OP_TOLERANCE):
            raise ValueError(f"ns_per_op is {ns_per_op:.3g} but its rounds give {from_rounds:.3g}")
    process_busy = _process_busy(extra.get("process_busy") or [], len(processes))
    copied, own_file, own_file_processes, heap_shift = _placement(extra, len(processes))
    order = {key: _process_order(extra, key, len(processes)) for key in _ORDER_KEYS}
    return Record(
        scenario=extra["scenario"],
        runtime=extra["runtime"],
        n=scale,
        ns_per_op=ns_per_op,
        rounds=count("rounds", MAX_ROUNDS),
        ops_per_round=ops,
        round_ns_per_op=tuple(e / ops for e in elapsed),
        latency_ns=latency,
        name=name,
        operation=text("operation") or "",
        axis=axis,
        memory=memory,
        native_of=text("native_of") or None,
        caveat=text("caveat") or None,
        remarks=remarks,
        processes=processes,
        process_ids=tuple(process_ids),
        process_busy=process_busy,
        process_passes=order["process_passes"],
        process_positions=order["process_positions"],
        variant=text("variant") or "",
        unstable=text("unstable") or None,
        stamped_ns_per_op=None if stamped is None else float(stamped),
        parameters=parameters,
        copied_modules=copied,
        own_file_modules=own_file,
        own_file_processes=own_file_processes,
        process_heap_shift=heap_shift,
    )


def _placement(
    extra: dict[str, Any], processes: int
) -> tuple[tuple[str, ...] | None, dict[str, str], int, tuple[int | None, ...]]:
    """Which compiled modules the processes loaded from copies and from their own file, in how
    many processes the latter, and each process's heap shift (as :func:`write_extra_info` wrote
    them); raise ValueError unless they are names, reasons, a count and bytes per process."""
    copied = extra.get("copied_modules")
    if copied is not None and not (
        isinstance(copied, list) and all(isinstance(name, str) and name for name in copied)
    ):
        raise ValueError(f"copied_modules must be a list of module names, not {_short(copied)}")
    own_file = extra.get("own_file_modules")
    own_file = {} if own_file is None else own_file
    if not isinstance(own_file, dict) or not all(
        name and isinstance(why, str) for name, why in own_file.items()
    ):
        raise ValueError(f"own_file_modules must map module names to why, not {_short(own_file)}")
    count = extra.get("own_file_processes")
    count = 0 if count is None else count
    if not (_whole(count) and 0 <= count <= processes) or bool(count) != bool(own_file):
        raise ValueError(
            f"own_file_processes must count the processes (of {processes}) that loaded "
            f"own_file_modules, not {_short(count)}"
        )
    shift = extra.get("process_heap_shift_bytes")
    shift = [] if shift is None else shift
    if not isinstance(shift, list) or not all(b is None or (_whole(b) and b >= 0) for b in shift):
        raise ValueError(
            f"process_heap_shift_bytes must list whole bytes or null, not {_short(shift)}"
        )
    if shift and len(shift) != processes:
        raise ValueError(
            f"process_heap_shift_bytes names {len(shift)} processes, but {processes} have rounds"
        )
    return (None if copied is None else tuple(copied)), own_file, count, tuple(shift)


def _process_busy(value: Any, processes: int) -> tuple[Busy | None, ...]:
    """Per process, how busy the machine was (``process_busy``, as :func:`write_extra_info`
    wrote it); raise ValueError unless every figure is in range."""
    if not isinstance(value, list):
        raise ValueError(f"process_busy must be a list, not {_short(value)}")
    if value and len(value) != processes:
        raise ValueError(f"process_busy names {len(value)} processes, but {processes} have rounds")
    out: list[Busy | None] = []
    for item in value:
        if item is None:
            out.append(None)
            continue
        if not isinstance(item, dict) or set(item) - _BUSY_FIELDS:
            raise ValueError(f"process_busy holds {_short(item)}, not a process's busy figures")
        wall, cpu, runqueue = (
            item.get("wall_ns", 0),
            item.get("cpu_ns", -1),
            item.get("runqueue_ns"),
        )
        if not (_whole(wall) and wall > 0 and _whole(cpu) and cpu >= 0):
            raise ValueError("process_busy wall_ns and cpu_ns must be whole ns, wall_ns over 0")
        if runqueue is not None and not (_whole(runqueue) and runqueue >= 0):
            raise ValueError(f"process_busy runqueue_ns must be whole ns, not {_short(runqueue)}")
        for key in ("steal_share", "pressure_share"):
            share = item.get(key)
            if share is not None and not (_number(share) and 0 <= share <= 1):
                raise ValueError(f"process_busy {key} must be a share from 0 to 1, not {share!r}")
        out.append(
            Busy(
                wall_ns=wall,
                cpu_ns=cpu,
                runqueue_ns=runqueue,
                steal_share=None if item.get("steal_share") is None else float(item["steal_share"]),
                pressure_share=(
                    None if item.get("pressure_share") is None else float(item["pressure_share"])
                ),
            )
        )
    return tuple(out)


#: The keys of one process's ``process_busy`` entry.
_BUSY_FIELDS = {"wall_ns", "cpu_ns", "runqueue_ns", "steal_share", "pressure_share"}


def _check_memory(memory: Any, lowest: int) -> None:
    """Raise ValueError unless *memory* has the types the report reads."""
    if not isinstance(memory, dict):
        raise ValueError("memory must be a mapping")
    for key in ("peak_bytes", "bytes_per_op"):
        if key in memory and not (_number(memory[key]) and memory[key] >= 0):
            raise ValueError(f"memory {key} must be a number of bytes, not {_short(memory[key])}")
    if memory and "bytes_per_op" not in memory:
        raise ValueError("memory has no bytes_per_op")
    if "n" in memory and not (_whole(memory["n"]) and lowest <= memory["n"] <= MAX_SCALE):
        raise ValueError(f"memory n must be a whole number, not {_short(memory['n'])}")


def _processes(
    extra: dict[str, Any], ops: int, elapsed: list[float]
) -> tuple[tuple[float, ...], ...]:
    """Per-process ns/op of each round; a format-1 record's rounds all came from one process."""
    per_process = extra.get("process_round_elapsed_ns")
    if per_process is None:
        return (tuple(e / ops for e in elapsed),) if elapsed else ()
    if not isinstance(per_process, list) or not all(
        isinstance(p, list) and p and all(_elapsed(e) for e in p) for p in per_process
    ):
        raise ValueError(
            "process_round_elapsed_ns must be lists of positive numbers of at most "
            f"{_power(MAX_ELAPSED_NS)} ns"
        )
    return tuple(tuple(e / ops for e in p) for p in per_process)


#: Per-process fields of a record that place each process in the run's passes.
_ORDER_KEYS = ("process_passes", "process_positions")


def _process_order(extra: dict[str, Any], key: str, processes: int) -> tuple[int, ...]:
    """*key*'s list (see :data:`_ORDER_KEYS`): empty, or a whole number from 1 per process."""
    values = extra.get(key) or []
    if not isinstance(values, list) or not all(_whole(v) and v >= 1 for v in values):
        raise ValueError(f"{key} must be a list of whole numbers from 1, not {_short(values)}")
    if values and len(values) != processes:
        raise ValueError(f"{key} names {len(values)} processes, but {processes} have rounds")
    return tuple(values)


def _number(value: Any) -> bool:
    """Whether *value* is a finite int or float (not a bool, not NaN or infinite; an int within
    64 bits, as numpy and a float take it)."""
    if isinstance(value, int):
        return _whole(value)
    return isinstance(value, float) and math.isfinite(value)


def _whole(value: Any) -> bool:
    """Whether *value* is an int (not a bool) within 64 bits, as numpy takes it."""
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63


def _elapsed(value: Any) -> bool:
    """Whether *value* is a round's elapsed ns: positive, at most :data:`MAX_ELAPSED_NS`."""
    return _number(value) and 0 < value <= MAX_ELAPSED_NS


def _power(value: int) -> str:
    """A bound as a person reads it: ``10**12`` (or ``2**32``), else with thousands commas."""
    for base in (10, 2):
        exponent = round(math.log(value, base))
        if base**exponent == value:
            return f"{base}**{exponent}"
    return f"{value:,}"


#: The figures of a latency summary (see :func:`anybench._stats.summarize_latency`).
_LATENCY_FIGURES = ("min", "p50", "p90", "p99", "p99_9", "max", "mean")


def _check_latency_summary(series: str, summary: dict[str, Any]) -> None:
    """Raise ValueError unless *summary* has the types the report and compare read."""
    count = summary.get("count", 0)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"latency {series!r} count must be a whole number, not {count!r}")
    if not isinstance(summary.get("description") or "", str):
        raise ValueError(f"latency {series!r} description must be text")
    for key in _LATENCY_FIGURES:
        if key in summary and not _number(summary[key]):
            raise ValueError(f"latency {series!r} {key} must be a number, not {summary[key]!r}")
    if "p50" in summary:  # p99 and rarer percentiles are left out below enough samples
        missing = [key for key in ("count", "max") if key not in summary]
        if missing:
            raise ValueError(f"latency {series!r} has p50 but no {', '.join(missing)}")
    cdf = summary.get("cdf", [])
    if not isinstance(cdf, list) or not all(
        isinstance(point, list) and len(point) == 2 and all(_number(v) for v in point)
        for point in cdf
    ):
        raise ValueError(f"latency {series!r} cdf must be a list of [percent, ns] pairs")


def dumps(data: dict[str, Any]) -> bytes:
    """A results file's bytes: compact JSON (a reference run's file is a tenth of its indented
    size), every key pytest-benchmark wrote kept, so its own readers still read it."""
    return json.dumps(data, separators=(",", ":")).encode("utf-8") + b"\n"


def results_name(run: Run) -> str:
    """The file name a run is saved under: date, machine and Python version."""
    when = re.sub(r"[^0-9T]", "", run.datetime.split(".")[0])[:15] or "undated"
    node = run.machine_info.get("node") or "unknown-host"
    python = run.machine_info.get("python_version") or "unknown"
    impl = (run.machine_info.get("python_implementation") or "py").lower()
    major_minor = ".".join(str(python).split(".")[:2])
    return "_".join(safe_name(part) for part in (when, node, f"{impl}{major_minor}")) + ".json"


def save(source: str | os.PathLike[str], results_dir: str | os.PathLike[str]) -> list[Path]:
    """Save a fresh results file into *results_dir* under a new name, as compact JSON (see
    :func:`dumps`); return the new paths.

    A run that interleaved several variants (environments) is saved as one file per variant,
    each with that variant's Python and library versions in its machine info and the run's id,
    so that ``report`` shows them side by side and ``compare`` knows they ran interleaved.

    The file is checked first and every output is made before any is written (a bad file
    raises :class:`ResultsError` and nothing is written); each is written to a temporary file
    and linked into place, so that no existing file is ever overwritten and no half-written
    file is ever left under the final name. A *results_dir* that is a file or cannot be
    written raises :class:`~anybench._files.OutputError`.
    """
    run = load(source)
    results_dir = Path(results_dir)
    if results_dir.exists() and not results_dir.is_dir():
        raise OutputError(
            f"{results_dir} is a file, not a directory; pass --into a directory (it is created "
            "if missing)"
        )
    parts = run.by_variant()
    labels = list(dict.fromkeys(record.variant for record in run.records))
    if len(parts) > 1:
        outputs = [(_variant_name(run, part.variant), dumps(part.data)) for part in parts]
    elif labels and labels[0]:
        # One variant measured anything (the other's workers all failed, say): its file keeps
        # its label, so that it is not taken for a plain run, and every failure, so that the
        # other variant's are not lost with it.
        data = _variant_data(run.data, labels[0])
        data["anybench_run"]["failed"] = read_run_info(run.data).get("failed", [])
        outputs = [(_variant_name(run, labels[0]), dumps(data))]
    else:
        outputs = [(results_name(run), dumps(run.data))]
    try:
        results_dir.mkdir(parents=True, exist_ok=True)
        return [write_new(results_dir, name, data) for name, data in outputs]
    except OSError as exc:
        raise unwritable(results_dir, exc, "save into it", "--into") from None


def _variant_data(data: dict[str, Any], variant: str) -> dict[str, Any]:
    """The results of one variant of an interleaved run, as the JSON of a results file of its
    own: that variant's benchmarks, failures, Python and library versions."""
    mine = [b for b in data["benchmarks"] if (b["extra_info"].get("variant") or "") == variant]
    machine = copy.deepcopy(data["machine_info"])
    first = mine[0]["extra_info"] if mine else {}
    if isinstance(first.get("python"), str) and first["python"]:
        machine["python_version"] = first["python"]
    info = machine["anybench"]
    if isinstance(first.get("libraries"), dict):
        info["libraries"] = first["libraries"]
    info["variant"] = variant
    run = read_run_info(data)
    run["failed"] = [f for f in run.get("failed", []) if f"-{variant}]" in f.get("test", "")]
    for key in RUN_KEYS:  # a format-2 file's run figures move to where format 3 keeps them
        info.pop(key, None)
    return {**data, "machine_info": machine, "anybench_run": run, "benchmarks": mine}


def _variant_name(run: Run, variant: str) -> str:
    return f"{results_name(run)[: -len('.json')]}_{safe_name(variant)}.json"


def below_clock_note(benchmark: str, ns_per_op: float, timer_cost_ns: float | None) -> str | None:
    """One line on a figure below the cost of one clock reading (which no operation that does
    anything can be), or None. The figure is kept: the note says what is probably wrong; the
    run prints it, and table and report say it again from the file."""
    if timer_cost_ns is None or not ns_per_op < timer_cost_ns:
        return None
    return (
        f"{benchmark}: {ns_per_op:.3g} ns/op is below one clock reading ({timer_cost_ns:.0f} "
        "ns): its operation count is probably wrong (OPS_PER_N, or the count given to "
        "probe.start)"
    )
