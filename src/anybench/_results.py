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
- each benchmark's ``extra_info``: scenario, runtime, N, its raw rounds, latency and memory.

Reading never modifies a file. A file that cannot be used raises :class:`ResultsError` with one line
that names it and says what is wrong. Saving never overwrites: a new file gets a fresh name.
This module imports neither anyio nor the harness: reading results needs neither.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._files import OutputError, unwritable
from ._stats import geometric_mean, percentile, summarize_latency, summarize_round

if TYPE_CHECKING:
    from ._measure import Measurement
    from ._runtimes import Runtime
    from ._scenario import ScenarioSpec

#: Version of the results anybench writes; readers refuse other versions. 3: per-run figures
#: moved out of the machine info into ``anybench_run``; scenario parameters recorded.
RESULTS_FORMAT = 3
#: Formats this anybench reads: 1 (one process per benchmark, before worker processes), 2 and 3.
READABLE_FORMATS = (1, 2, RESULTS_FORMAT)
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
)

#: Extra-info keys every anybench record must carry.
REQUIRED_EXTRA = ("scenario", "runtime", "n", "ops_per_round", "rounds", "ns_per_op")


class ResultsError(ValueError):
    """A results file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class Record:
    """One benchmark: a scenario at scale N on one runtime."""

    scenario: str
    runtime: str
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
    #: The environment it ran in, when several were interleaved in one run ("" otherwise).
    variant: str = ""
    #: Why its figure is left out of summaries (a region under 1 ms), or None.
    unstable: str | None = None
    #: Median ns/op of its latency rounds (stamps on): the instrument's cost is the difference.
    stamped_ns_per_op: float | None = None
    #: The scenario's own constants (see :class:`anybench.ScenarioSpec`); empty before format 3.
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def process_medians(self) -> list[float]:
        """The median ns/op of each process: the unit of every interval and test."""
        return [percentile(sorted(p), 50.0) for p in self.processes if p]

    @property
    def scale_label(self) -> str:
        """N as shown to a person: ``1,000``, or ``B=1,000`` for a load sweep."""
        return f"B={self.n:,}" if self.axis == "load" else f"{self.n:,}"

    @property
    def key(self) -> tuple[str, int]:
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
    def run_id(self) -> str:
        """The id of the run that made this file: files split from one interleaved run share it."""
        return str(self.run_info.get("run_id") or "")

    @property
    def unavailable_runtimes(self) -> dict[str, str]:
        return dict(self.run_info.get("unavailable_runtimes", {}))

    @property
    def failed(self) -> list[dict[str, str]]:
        """Benchmarks that failed in this run (missing from its records), with their errors."""
        return list(self.run_info.get("failed", []))


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


def load(path: str | os.PathLike[str]) -> Run:
    """Read one results file; raise :class:`ResultsError` if it is not usable."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read it ({exc.strerror or exc})") from None
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
    if info.get("format") not in READABLE_FORMATS:
        raise ResultsError(
            f"{path}: anybench results format {info.get('format')!r}, this anybench reads format "
            f"{RESULTS_FORMAT}; use the anybench version that wrote it"
        )
    # Everything the table, report and compare read outside the records, checked here so that a
    # malformed file is named in one line and the files given beside it still report.
    try:
        run_info = read_run_info(data)
    except ValueError as exc:
        raise ResultsError(f"{path}: {exc}; was the file edited by hand?") from None
    problem = _machine_info_problem(data["machine_info"], {**info, **run_info})
    if problem is None and not isinstance(data.get("commit_info") or {}, dict):
        problem = "'commit_info' is not a mapping"
    if problem is None and not isinstance((data.get("commit_info") or {}).get("id", ""), str):
        problem = "commit_info 'id' is not a string"
    if problem is not None:
        raise ResultsError(f"{path}: {problem}; was the file edited by hand?")
    records = [_record(path, bench) for bench in data["benchmarks"]]
    if not records and not run_info.get("failed"):
        raise ResultsError(f"{path}: holds no benchmarks; was the run interrupted?")
    return Run(
        path=path,
        records=records,
        machine_info=data["machine_info"],
        commit_info=data.get("commit_info") or {},
        datetime=str(data.get("datetime", "")),
        run_info=run_info,
    )


def _machine_info_problem(machine: dict[str, Any], info: dict[str, Any]) -> str | None:
    """What is wrong with the machine info of a results file, in a few words; None if nothing."""
    for key in ("node", "python_version", "python_implementation", "processor"):
        if not isinstance(machine.get(key) or "", str):
            return f"machine info {key!r} is not a string"
    if not isinstance(machine.get("cpu") or {}, dict):
        return "machine info 'cpu' is not a mapping"
    for key in ("libraries", "unavailable_runtimes"):
        value = info.get(key, {})
        if not isinstance(value, dict):
            return f"anybench machine info {key!r} is not a mapping"
        if not all(isinstance(v, str) or v is None for v in value.values()):
            return f"anybench machine info {key!r} maps to something other than text"
    timer = info.get("timer_cost_ns")
    if timer is not None and (isinstance(timer, bool) or not isinstance(timer, (int, float))):
        return f"anybench machine info 'timer_cost_ns' is not a number: {timer!r}"
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


def _record(path: Path, bench: Any) -> Record:
    name = bench.get("name", "?") if isinstance(bench, dict) else "?"
    extra = bench.get("extra_info") if isinstance(bench, dict) else None
    missing = [key for key in REQUIRED_EXTRA if not isinstance(extra, dict) or key not in extra]
    if missing or not isinstance(extra, dict):
        raise ResultsError(
            f"{path}: benchmark {name} lacks anybench extra info ({', '.join(missing)}); "
            "re-run it with anybench's benchmarks"
        )
    try:
        return read_record(name, extra)
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
        "n": n,
        "ops_per_round": ops,
        "passes_per_round": m.passes,
        "processes": len(m.processes),
        "rounds": sum(len(rounds) for rounds in m.processes),
        "ns_per_op": geometric_mean(medians),
        "process_round_elapsed_ns": m.processes,
        "process_ids": m.process_ids,
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


def read_record(name: str, extra: dict[str, Any]) -> Record:
    """One benchmark's :class:`Record` from the extra info :func:`write_extra_info` wrote (any
    readable format); raise TypeError, ValueError or KeyError on a malformed one."""

    def positive(key: str, kind: type[int] | type[float]) -> Any:
        value = extra[key]
        if not _number(value) or not value > 0:
            raise ValueError(f"{key} must be a positive number, not {value!r}")
        return kind(value)

    ops = positive("ops_per_round", int)
    elapsed = extra.get("round_elapsed_ns") or []
    latency = extra.get("latency_ns") or {}
    memory = extra.get("memory")
    if not isinstance(elapsed, list) or not all(_number(e) and e > 0 for e in elapsed):
        raise ValueError("round_elapsed_ns must be a list of positive numbers")
    if not isinstance(latency, dict) or not all(isinstance(s, dict) for s in latency.values()):
        raise ValueError("latency_ns must map series names to summaries")
    for series, summary in latency.items():
        _check_latency_summary(series, summary)
    if memory is not None and not isinstance(memory, dict):
        raise ValueError("memory must be a mapping")
    if memory and not (_number(memory.get("bytes_per_op")) and memory["bytes_per_op"] >= 0):
        raise ValueError(
            f"memory bytes_per_op must be a number, not {memory.get('bytes_per_op')!r}"
        )
    n = extra["n"]
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a whole number, not {n!r}")
    for key in ("scenario", "runtime"):
        if not isinstance(extra[key], str) or not extra[key]:
            raise ValueError(f"{key} must be a name, not {extra[key]!r}")
    for key in ("native_of", "caveat", "operation"):
        if not isinstance(extra.get(key) or "", str):
            raise ValueError(f"{key} must be text, not {extra[key]!r}")
    remarks = extra.get("remarks") or {}
    if not isinstance(remarks, dict) or not all(isinstance(v, str) for v in remarks.values()):
        raise ValueError(f"remarks must map topics to text, not {remarks!r}")
    parameters = extra.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ValueError(f"parameters must be a mapping, not {parameters!r}")
    process_ids = extra.get("process_ids") or []
    if not isinstance(process_ids, list) or not all(
        isinstance(pid, int) and not isinstance(pid, bool) for pid in process_ids
    ):
        raise ValueError(f"process_ids must be a list of pids, not {process_ids!r}")
    return Record(
        scenario=str(extra["scenario"]),
        runtime=str(extra["runtime"]),
        n=n,
        ns_per_op=positive("ns_per_op", float),
        rounds=positive("rounds", int),
        ops_per_round=ops,
        round_ns_per_op=tuple(e / ops for e in elapsed),
        latency_ns=latency,
        name=str(name),
        operation=str(extra.get("operation", "")),
        axis=str(extra.get("axis", "n")),
        memory=memory,
        native_of=extra.get("native_of"),
        caveat=extra.get("caveat"),
        remarks=remarks,
        processes=_processes(extra, ops, elapsed),
        process_ids=tuple(process_ids),
        variant=str(extra.get("variant") or ""),
        unstable=extra.get("unstable") or None,
        stamped_ns_per_op=extra.get("stamped_ns_per_op"),
        parameters=parameters,
    )


def _processes(
    extra: dict[str, Any], ops: int, elapsed: list[float]
) -> tuple[tuple[float, ...], ...]:
    """Per-process ns/op of each round; a format-1 record's rounds all came from one process."""
    per_process = extra.get("process_round_elapsed_ns")
    if per_process is None:
        return (tuple(e / ops for e in elapsed),) if elapsed else ()
    if not isinstance(per_process, list) or not all(
        isinstance(p, list) and p and all(_number(e) and e > 0 for e in p) for p in per_process
    ):
        raise ValueError("process_round_elapsed_ns must be lists of positive numbers")
    return tuple(tuple(e / ops for e in p) for p in per_process)


def _number(value: Any) -> bool:
    """Whether *value* is a finite int or float (not a bool, not NaN or infinite)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


#: The figures of a latency summary (see :func:`anybench._stats.summarize_latency`).
_LATENCY_FIGURES = ("min", "p50", "p90", "p99", "p99_9", "max", "mean")


def _check_latency_summary(series: str, summary: dict[str, Any]) -> None:
    """Raise ValueError unless *summary* has the types the report and compare read."""
    count = summary.get("count", 0)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"latency {series!r} count must be a whole number, not {count!r}")
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


def current_umask() -> int:
    """The process's file-creation mask (read by setting it and putting it back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def results_name(run: Run) -> str:
    """The file name a run is saved under: date, machine and Python version."""
    when = re.sub(r"[^0-9T]", "", run.datetime.split(".")[0])[:15] or "undated"
    node = run.machine_info.get("node") or "unknown-host"
    python = run.machine_info.get("python_version") or "unknown"
    impl = (run.machine_info.get("python_implementation") or "py").lower()
    major_minor = ".".join(str(python).split(".")[:2])
    stem = f"{when}_{node}_{impl}{major_minor}"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", stem) + ".json"


def save(source: str | os.PathLike[str], results_dir: str | os.PathLike[str]) -> list[Path]:
    """Copy a fresh results file into *results_dir* under a new name; return the new paths.

    A run that interleaved several variants (environments) is saved as one file per variant,
    each with that variant's Python and library versions in its machine info and the run's id,
    so that ``report`` shows them side by side and ``compare`` knows they ran interleaved.

    The file is checked first (a bad file raises :class:`ResultsError` and nothing is written),
    written to a temporary file and linked into place, so that no existing file is ever
    overwritten and no half-written file is ever left under the final name. A *results_dir*
    that is a file or cannot be written raises :class:`~anybench._files.OutputError`.
    """
    run = load(source)
    results_dir = Path(results_dir)
    if results_dir.exists() and not results_dir.is_dir():
        raise OutputError(
            f"{results_dir} is a file, not a directory; pass --into a directory (it is created "
            "if missing)"
        )
    try:
        results_dir.mkdir(parents=True, exist_ok=True)
        variants = list(dict.fromkeys(r.variant for r in run.records))
        if len(variants) <= 1:
            return [_link_new(Path(source).read_bytes(), results_dir, results_name(run))]
        data = json.loads(Path(source).read_text(encoding="utf-8"))
        return [
            _link_new(_variant_file(data, variant), results_dir, _variant_name(run, variant))
            for variant in variants
        ]
    except OSError as exc:
        raise unwritable(results_dir, exc, "save into it", "--into") from None


def _variant_file(data: dict[str, Any], variant: str) -> bytes:
    """The results of one variant of an interleaved run, as a results file of its own."""
    mine = [b for b in data["benchmarks"] if (b["extra_info"].get("variant") or "") == variant]
    machine = copy.deepcopy(data["machine_info"])
    first = mine[0]["extra_info"]
    if first.get("python"):
        machine["python_version"] = first["python"]
    info = machine["anybench"]
    if isinstance(first.get("libraries"), dict):
        info["libraries"] = first["libraries"]
    info["variant"] = variant
    run = read_run_info(data)
    run["failed"] = [f for f in run.get("failed", []) if f"-{variant}]" in f.get("test", "")]
    for key in RUN_KEYS:  # a format-2 file's run figures move to where format 3 keeps them
        info.pop(key, None)
    return json.dumps(
        {**data, "machine_info": machine, "anybench_run": run, "benchmarks": mine}, indent=1
    ).encode()


def _variant_name(run: Run, variant: str) -> str:
    stem = results_name(run)[: -len(".json")]
    return re.sub(r"[^A-Za-z0-9._-]+", "-", f"{stem}_{variant}") + ".json"


def _link_new(data: bytes, results_dir: Path, name: str) -> Path:
    """Write *data* under *results_dir* as *name*, or *name* with ``-2``, ``-3``... if taken."""
    fd, tmp_name = tempfile.mkstemp(dir=results_dir, prefix=".incoming-", suffix=".json")
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.chmod(tmp_name, 0o666 & ~current_umask())  # mkstemp makes it private
        stem = name[: -len(".json")]
        for attempt in range(1, 1000):
            target = results_dir / (f"{stem}.json" if attempt == 1 else f"{stem}-{attempt}.json")
            try:
                os.link(tmp_name, target)
            except FileExistsError:
                continue
            return target
        raise OutputError(f"{results_dir}: too many results named {stem}*; move some away")
    finally:
        os.unlink(tmp_name)
