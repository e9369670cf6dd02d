"""Reading and saving results files: pytest-benchmark JSON with anybench's extra info.

Reading never modifies a file. A file that cannot be used raises :class:`ResultsError` with one line
that names it and says what is wrong. Saving never overwrites: a new file gets a fresh name.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import RESULTS_FORMAT

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
    #: What this measurement does differently on its runtime, if anything (native baselines).
    caveat: str | None = None

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
    if info.get("format") != RESULTS_FORMAT:
        raise ResultsError(
            f"{path}: anybench results format {info.get('format')!r}, this anybench reads format "
            f"{RESULTS_FORMAT}; use the anybench version that wrote it"
        )
    for key in ("libraries", "unavailable_runtimes"):
        if not isinstance(info.get(key, {}), dict):
            raise ResultsError(f"{path}: anybench machine info {key!r} is not a mapping")
    if not isinstance(info.get("failed", []), list):
        raise ResultsError(f"{path}: anybench machine info 'failed' is not a list")
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
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{key} must be a positive number, not {value!r}")
        return kind(value)

    ops = positive("ops_per_round", int)
    elapsed = extra.get("round_elapsed_ns") or []
    latency = extra.get("latency_ns") or {}
    memory = extra.get("memory")
    if not isinstance(elapsed, list) or not all(
        isinstance(e, (int, float)) and e > 0 for e in elapsed
    ):
        raise ValueError("round_elapsed_ns must be a list of positive numbers")
    if not isinstance(latency, dict) or not all(isinstance(s, dict) for s in latency.values()):
        raise ValueError("latency_ns must map series names to summaries")
    if memory is not None and not isinstance(memory, dict):
        raise ValueError("memory must be a mapping")
    n = extra["n"]
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a whole number, not {n!r}")
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
    )


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


def save(source: str | os.PathLike[str], results_dir: str | os.PathLike[str]) -> Path:
    """Copy a fresh results file into *results_dir* under a new name and return that path.

    The file is checked first (a bad file raises :class:`ResultsError` and nothing is written),
    written to a temporary file and linked into place, so that no existing file is ever
    overwritten and no half-written file is ever left under the final name.
    """
    run = load(source)
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    data = Path(source).read_bytes()
    fd, tmp_name = tempfile.mkstemp(dir=results_dir, prefix=".incoming-", suffix=".json")
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.chmod(tmp_name, 0o666 & ~current_umask())  # mkstemp makes it private
        stem = results_name(run)[: -len(".json")]
        for attempt in range(1, 1000):
            target = results_dir / (f"{stem}.json" if attempt == 1 else f"{stem}-{attempt}.json")
            try:
                os.link(tmp_name, target)
            except FileExistsError:
                continue
            return target
        raise ResultsError(f"{results_dir}: too many results named {stem}*; move some away")
    finally:
        os.unlink(tmp_name)
