"""The journal: every finished benchmark on disk the moment it finishes, so a run is never lost.

pytest-benchmark writes its JSON only at the end of a run. Beside it (``<json>.journal``), the
anybench plugin appends one JSON line per event, flushed and fsynced: a header with the machine
and commit info when the first benchmark finishes, then each finished benchmark complete with
its extra info, and each failure. Ctrl-C, ``kill -9``, a power cut or an out-of-memory kill
lose at most the benchmark in progress: :func:`recover` turns a journal left behind into a
results file marked partial. Writing and reading the journal live here, side by side.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

#: The journal's own format version (its lines carry pytest-benchmark records unchanged).
JOURNAL_FORMAT = 1
SUFFIX = ".journal"


class Journal:
    """Appends events to a journal file, each line flushed and fsynced before it returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: Any = None

    def _write(self, event: dict[str, Any]) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (kept open)
        # Parameters that are objects (scenario modules, runtimes) are written as
        # pytest-benchmark's own JSON writes them.
        self._file.write(json.dumps(event, default=lambda o: f"UNSERIALIZABLE[{o!r}]") + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    @property
    def started(self) -> bool:
        return self._file is not None

    def header(
        self,
        machine_info: dict[str, Any],
        commit_info: dict[str, Any],
        when: str,
        run_info: dict[str, Any] | None = None,
    ) -> None:
        """The run's machine, commit and run-level info (see :mod:`anybench._results`), as
        they stood when its first benchmark finished."""
        self._write(
            {
                "event": "header",
                "format": JOURNAL_FORMAT,
                "machine_info": machine_info,
                "commit_info": commit_info,
                "anybench_run": run_info or {},
                "datetime": when,
            }
        )

    def benchmark(self, record: dict[str, Any]) -> None:
        self._write({"event": "benchmark", "record": record})

    def failure(self, test: str, error: str) -> None:
        self._write({"event": "failed", "test": test, "error": error})

    def end(self, complete: bool) -> None:
        """The run ended: *complete* when it ran to its end (not interrupted)."""
        if self._file is not None:
            self._write({"event": "end", "complete": complete})

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read(path: Path) -> dict[str, Any] | None:
    """The results (pytest-benchmark JSON) a journal holds, marked partial; None if it holds no
    header (the run was stopped before its first benchmark finished).

    A torn last line (the process died while writing it) is ignored.
    """
    header: dict[str, Any] | None = None
    complete = False
    records: list[dict[str, Any]] = []
    failed: list[dict[str, str]] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(event, dict):
                continue
            if event.get("event") == "header":
                header = event
            elif event.get("event") == "benchmark":
                records.append(event["record"])
            elif event.get("event") == "failed":
                failed.append({"test": str(event["test"]), "error": str(event["error"])})
            elif event.get("event") == "end":
                complete = bool(event.get("complete"))
    if header is None:
        return None
    from ._results import read_run_info

    machine_info = header["machine_info"]
    # A journal written before format 3 kept the run's figures in the machine info.
    run_info = read_run_info(
        {"machine_info": machine_info, "anybench_run": header.get("anybench_run")}
    )
    run_info["failed"] = failed
    if not complete:
        run_info["partial"] = (
            f"interrupted: {len(records)} finished benchmark(s) recovered from its journal; "
            "the rest did not run"
        )
    return {
        "machine_info": machine_info,
        "commit_info": header.get("commit_info") or {},
        "anybench_run": run_info,
        "benchmarks": records,
        "datetime": header.get("datetime", ""),
    }


def leftovers(directory: Path) -> list[Path]:
    """Journals left in *directory* by runs that did not finish."""
    return sorted(directory.glob(f"*{SUFFIX}")) if directory.is_dir() else []


def recover(journal: Path, results_dir: Path) -> list[Path]:
    """Save what the run behind *journal* finished into *results_dir*; return the new files.

    If the run ran to its end (the journal says so) and its own results file beside the journal
    is whole, that file is saved as it is; otherwise the journal's benchmarks are, marked
    partial unless the run was complete. The journal and the leftover files are removed
    only once the results are saved; a journal with no finished benchmark is removed and
    nothing is saved.
    """
    from ._results import ResultsError, load, save

    raw = journal.with_name(journal.name[: -len(SUFFIX)])
    saved: list[Path] = []
    data = read(journal)
    complete = data is not None and "partial" not in data["anybench_run"]
    try:
        if complete and raw.exists() and raw.stat().st_size and load(raw).records:
            saved = save(raw, results_dir)
    except ResultsError:
        saved = []
    measured = data is not None and (data["benchmarks"] or data["anybench_run"]["failed"])
    if not saved and measured:
        staged = journal.with_name(journal.name + ".json")
        staged.write_text(json.dumps(data, indent=1), encoding="utf-8")
        try:
            saved = save(staged, results_dir)
        finally:
            staged.unlink()
    for leftover in (raw, journal):
        if leftover.exists():
            leftover.unlink()
    return saved
