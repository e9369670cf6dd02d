"""Reading and saving results files: pytest-benchmark JSON with anybench's extra info.

Reading never modifies a file. A file that cannot be used raises :class:`ResultsError` with one line
that names it and says what is wrong. Saving never overwrites: a new file gets a fresh name.
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
from typing import Any

from . import RESULTS_FORMAT
from ._files import OutputError, unwritable
from ._stats import percentile

#: Formats this anybench reads: 1 (one process per benchmark, before worker processes) and 2.
READABLE_FORMATS = (1, RESULTS_FORMAT)

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
    #: Per worker process, ns/op of each throughput round (a format-1 file: one process).
    processes: tuple[tuple[float, ...], ...] = ()
    #: The environment it ran in, when several were interleaved in one run ("" otherwise).
    variant: str = ""
    #: Why its figure is left out of summaries (a region under 1 ms), or None.
    unstable: str | None = None
    #: Median ns/op of its latency rounds (stamps on): the instrument's cost is the difference.
    stamped_ns_per_op: float | None = None

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

    @property
    def anybench_info(self) -> dict[str, Any]:
        info: dict[str, Any] = self.machine_info.get("anybench", {})
        return info

    @property
    def partial(self) -> str | None:
        """Why this run is incomplete (recovered from the journal of an interrupted run)."""
        value = self.anybench_info.get("partial")
        return str(value) if value else None

    @property
    def run_id(self) -> str:
        """The id of the run that made this file: files split from one interleaved run share it."""
        return str(self.anybench_info.get("run_id") or "")

    @property
    def unavailable_runtimes(self) -> dict[str, str]:
        return dict(self.anybench_info.get("unavailable_runtimes", {}))

    @property
    def failed(self) -> list[dict[str, str]]:
        """Benchmarks that failed in this run (missing from its records), with their errors."""
        return list(self.anybench_info.get("failed", []))


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
    problem = _machine_info_problem(data["machine_info"], info)
    if problem is None and not isinstance(data.get("commit_info") or {}, dict):
        problem = "'commit_info' is not a mapping"
    if problem is None and not isinstance((data.get("commit_info") or {}).get("id", ""), str):
        problem = "commit_info 'id' is not a string"
    if problem is not None:
        raise ResultsError(f"{path}: {problem}; was the file edited by hand?")
    records = [_record(path, bench) for bench in data["benchmarks"]]
    if not records and not info.get("failed"):
        raise ResultsError(f"{path}: holds no benchmarks; was the run interrupted?")
    return Run(
        path=path,
        records=records,
        machine_info=data["machine_info"],
        commit_info=data.get("commit_info") or {},
        datetime=str(data.get("datetime", "")),
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
        return _checked_record(name, extra)
    except (TypeError, ValueError, KeyError) as exc:
        raise ResultsError(
            f"{path}: benchmark {name} has malformed anybench extra info ({exc}); "
            "was the file edited by hand?"
        ) from None


def _checked_record(name: str, extra: dict[str, Any]) -> Record:
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
        processes=_processes(extra, ops, elapsed),
        variant=str(extra.get("variant") or ""),
        unstable=extra.get("unstable") or None,
        stamped_ns_per_op=extra.get("stamped_ns_per_op"),
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
    info["failed"] = [f for f in info.get("failed", []) if f"-{variant}]" in f.get("test", "")]
    return json.dumps({**data, "machine_info": machine, "benchmarks": mine}, indent=1).encode()


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
