"""The journal: every finished benchmark on disk the moment it finishes, so a run is never lost.

pytest-benchmark writes its JSON only at the end of a run. Beside it (``<json>.journal``), the
anybench plugin appends one JSON line per event, flushed and fsynced: a header with the
journal's format, the machine and commit info when measuring starts; then, as the passes over
the matrix go (see :mod:`anybench._measure`), each worker process's rounds for each benchmark it
finished (``process``: its pid, pass and position, and the benchmark's record as it stands with
that process in it) and the end of each pass (``pass``); then, as pytest's tests record them,
each finished benchmark complete with its extra info, and each failure. Ctrl-C, ``kill -9``, a
power cut or an out-of-memory kill lose at most the process in progress: :func:`recover` turns
a journal left behind into a results file marked partial, which says how many passes were
complete. Writing and reading the journal live here, side by side.

A journal has an owner: the process writing it holds an exclusive ``flock`` on it from its
first line until the run ends, and ``anybench run`` holds a lock file beside it until it has
saved the run (a lock goes with its process, however it ends). Recovery takes both first and
leaves a journal whose locks it cannot take: its run is still going. Recovery
deletes only what it read and recognised: a journal of its own format, and the raw results
file beside it only where that is anybench's own (``DIR/.incoming/run-*.json``) and only once
read: empty, or every benchmark it holds saved (one of another run's is saved as a file of its
own, never merged into the journal's run, whose machine and run info it may not share). A file it
cannot read is left where it is (in ``.incoming``, moved aside so that later runs do not trip
on it), with one line that says why.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ._files import open_regular

if sys.platform != "win32":
    import fcntl

#: The journal's own format version (its lines carry pytest-benchmark records unchanged). 2:
#: ``process`` and ``pass`` events, written while the passes over the matrix run.
JOURNAL_FORMAT = 2
#: Formats :func:`parse` reads: a format-1 journal is one without process or pass events.
READABLE_JOURNAL_FORMATS = (1, JOURNAL_FORMAT)
SUFFIX = ".journal"
#: Where ``anybench run`` puts a run's raw results and journal until they are saved.
INCOMING = ".incoming"
#: The raw results file ``anybench run`` makes in ``INCOMING`` (``run-XXXX.json``).
RAW_PREFIX, RAW_SUFFIX = "run-", ".json"
#: Beside a raw results file while its ``anybench run`` is going (see :func:`running`).
LOCK_SUFFIX = ".lock"
#: What an unreadable journal in ``INCOMING`` is renamed to (appended), out of later runs' way.
ASIDE_SUFFIX = ".unreadable"


class JournalError(ValueError):
    """A journal that cannot be read as one of anybench's; the message says why, in one line."""


def _lock(f: IO[Any], wait: bool) -> bool:
    """Take *f*'s exclusive lock; without *wait*, False if another process holds it."""
    if sys.platform == "win32":  # no flock: journals have no owner to check, as before
        return True
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


class Journal:
    """Appends events to a journal file, each line flushed and fsynced before it returns; holds
    the journal's lock from the first line until :meth:`close` (or the process's end)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: Any = None

    def _open(self) -> IO[str]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            f = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (kept open)
            _lock(f, wait=True)
            # A recovery may have held the lock and removed the file meanwhile: lock the file
            # that is under the name now, never one that is gone.
            try:
                if os.path.samestat(os.fstat(f.fileno()), os.stat(self.path)):
                    return f
            except FileNotFoundError:
                pass
            f.close()

    def _write(self, event: dict[str, Any]) -> None:
        if self._file is None:
            self._file = self._open()
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

    def process(
        self,
        test: str,
        pass_number: int,
        position: int,
        pid: int,
        rounds_ns: list[int],
        record: dict[str, Any],
    ) -> None:
        """One worker process finished benchmark *test* (a node id): its pid, the pass it ran
        in and its position there, its throughput rounds (ns each), and the benchmark's record
        with every process so far, which recovery saves if the benchmark's own never comes."""
        self._write(
            {
                "event": "process",
                "test": test,
                "pass": pass_number,
                "position": position,
                "pid": pid,
                "rounds_ns": rounds_ns,
                "record": record,
            }
        )

    def passed(self, number: int, planned: int) -> None:
        """Pass *number* (from 1) over the matrix ended, of at most *planned*."""
        self._write({"event": "pass", "pass": number, "planned": planned})

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


def _check_header(event: dict[str, Any]) -> None:
    """Raise :class:`JournalError` if the header lacks what a results file is made of."""
    if isinstance(event.get("format"), bool) or event.get("format") not in (
        READABLE_JOURNAL_FORMATS
    ):
        readable = " or ".join(map(str, READABLE_JOURNAL_FORMATS))
        raise JournalError(
            f"its header is of format {event.get('format')!r}, not {readable}; "
            "recover it with the anybench that wrote it"
        )
    if not isinstance(event.get("machine_info"), dict):
        raise JournalError("its header's machine_info is not a mapping")
    for key in ("commit_info", "anybench_run"):
        if not isinstance(event.get(key) or {}, dict):
            raise JournalError(f"its header's {key} is not a mapping")
    if not isinstance(event.get("datetime", ""), str):
        raise JournalError("its header's datetime is not text")


def parse(text: str) -> dict[str, Any] | None:
    """The results (pytest-benchmark JSON) a journal's *text* holds, marked partial unless the
    run ran to its end; None if it is empty.

    Raise :class:`JournalError` if it is not a journal of this format: its first line must be
    a header of it. A torn line (the process died while writing it) is ignored.
    """
    lines = text.splitlines()
    if not lines:
        return None
    try:
        header = json.loads(lines[0])
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("event") != "header":
        raise JournalError("its first line is not an anybench journal header")
    _check_header(header)
    complete = False
    records: list[dict[str, Any]] = []
    # The last record of each benchmark written as its processes finished, by test.
    so_far: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    passes = planned = 0
    for line in lines[1:]:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict):
            continue
        kind = event.get("event")
        if kind == "benchmark" and isinstance(event.get("record"), dict):
            records.append(event["record"])
        elif kind == "process" and isinstance(event.get("record"), dict):
            so_far[str(event.get("test"))] = event["record"]
        elif kind == "pass" and _count(event.get("pass")):
            passes = max(passes, event["pass"])
            planned = event["planned"] if _count(event.get("planned")) else planned
        elif kind == "failed":
            # Noted as measuring found it, and again as its test failed: once, the last word.
            failed[str(event.get("test"))] = str(event.get("error"))
        elif kind == "end":
            complete = event.get("complete") is True
    recorded = {record.get("fullname") for record in records}
    unrecorded = [r for test, r in so_far.items() if test not in recorded and test not in failed]
    from ._results import read_run_info

    machine_info = header["machine_info"]
    # A journal written before results format 3 kept the run's figures in the machine info.
    try:
        run_info = read_run_info(
            {"machine_info": machine_info, "anybench_run": header.get("anybench_run")}
        )
    except (ValueError, TypeError, AttributeError) as exc:
        raise JournalError(f"its header's run info cannot be read ({exc})") from None
    run_info["failed"] = [{"test": test, "error": error} for test, error in failed.items()]
    if not complete:
        run_info["partial"] = _partial(records, unrecorded, passes, planned)
    records += unrecorded
    return {
        "machine_info": machine_info,
        "commit_info": header.get("commit_info") or {},
        "anybench_run": run_info,
        "benchmarks": records,
        "datetime": header.get("datetime", ""),
    }


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _partial(
    records: list[dict[str, Any]], unrecorded: list[dict[str, Any]], passes: int, planned: int
) -> str:
    """Why a recovered run is partial, and how much of it there is (of all its variants: the
    note goes into each variant's file)."""
    labels = {r.get("extra_info", {}).get("variant") or "" for r in (*records, *unrecorded)}
    of = f" of {len(labels)} variants" if len(labels) > 1 else ""
    recorded = len(records)
    if not unrecorded and not passes:  # a format-1 journal, or stopped before measuring
        return (
            f"interrupted: {recorded} finished benchmark(s){of} recovered from its journal; "
            "the rest did not run"
        )
    counts = sorted({len(r.get("extra_info", {}).get("process_ids") or ()) for r in unrecorded})
    spread = "-".join(str(c) for c in counts[:: max(len(counts) - 1, 1)])
    so_far = f", {len(unrecorded)} with the processes they had so far ({spread} each)"
    return (
        f"interrupted after {passes} complete pass(es) over the matrix"
        f"{f' (of up to {planned})' if planned else ''}: {recorded + len(unrecorded)} "
        f"benchmark(s){of} recovered from its journal{so_far if counts else ''}; the passes after "
        "did not run"
    )


def read(path: Path) -> dict[str, Any] | None:
    """:func:`parse` of the journal at *path*."""
    with open_regular(path) as f:
        return parse(f.read().decode("utf-8", errors="replace"))


def leftovers(directory: Path) -> list[Path]:
    """Journals in *directory* (a results directory's ``INCOMING``): of runs that did not
    finish, or of runs still going (see :func:`recover`)."""
    return sorted(directory.glob(f"*{SUFFIX}")) if directory.is_dir() else []


def is_own_raw(path: Path) -> bool:
    """Whether *path* is a raw results file ``anybench run`` made (and may remove)."""
    return (
        path.parent.name == INCOMING
        and re.fullmatch(rf"{re.escape(RAW_PREFIX)}[A-Za-z0-9_]+{re.escape(RAW_SUFFIX)}", path.name)
        is not None
    )


@dataclass
class Recovery:
    """What :func:`recover` did with one journal."""

    journal: Path
    #: The results files saved from it.
    saved: list[Path] = field(default_factory=list)
    #: Its run is still going (another process holds the journal): it was left alone.
    live: bool = False
    #: Why it was left (one line, without the journal's path) when it could not be used.
    problem: str | None = None
    #: It was recognised and held no finished benchmark: it was removed, nothing saved.
    empty: bool = False
    #: The results files saved from the raw results file beside it, which held benchmarks the
    #: journal did not (another run's, say).
    raw_saved: list[Path] = field(default_factory=list)
    #: Why the raw results file beside it could not be read (one line, with its path): it was
    #: left, moved aside, not removed.
    raw_problem: str | None = None


def _names(benchmarks: list[Any]) -> set[str]:
    """The names of pytest-benchmark records: unique within a run (a results file never holds
    one twice)."""
    return {str(b.get("name")) if isinstance(b, dict) else repr(b) for b in benchmarks}


@contextmanager
def running(raw: Path) -> Iterator[None]:
    """Mark the run whose raw results file is *raw* as live for the ``with`` block: a lock
    file beside it (``<raw>.lock``), held, removed at the end. ``anybench run`` holds it from
    before pytest starts until it has saved the run, so that no other recovery takes the
    journal in between, when pytest (which holds the journal itself) has ended."""
    lock = raw.with_name(raw.name + LOCK_SUFFIX)
    with open(lock, "wb") as f:
        _lock(f, wait=True)
        try:
            yield
        finally:
            lock.unlink(missing_ok=True)


def _still_linked(f: IO[Any], path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(f.fileno()), os.stat(path))
    except FileNotFoundError:
        return False


def _run_is_live(raw: Path) -> bool:
    """Whether the ``anybench run`` of *raw* holds its lock file (see :func:`running`)."""
    try:
        f = open_regular(raw.with_name(raw.name + LOCK_SUFFIX))
    except FileNotFoundError:
        return False
    with f:
        return not _lock(f, wait=False)


@contextmanager
def _owned(journal: Path, ours: bool) -> Iterator[IO[bytes] | None]:
    """The journal open and locked by us, or None if a live run holds it (or it went meanwhile).
    *ours*: it is this process's own run's, whose pytest has ended: wait for the lock (another
    recovery may hold it a moment) and ignore the run's lock file (this process holds it)."""
    raw = journal.with_name(journal.name[: -len(SUFFIX)])
    with open_regular(journal) as f:
        taken = _lock(f, wait=ours) and _still_linked(f, journal)
        yield f if taken and (ours or not _run_is_live(raw)) else None


def _aside(journal: Path) -> Path:
    target = journal.with_name(journal.name + ASIDE_SUFFIX)
    number = 2
    while target.exists():
        target = journal.with_name(f"{journal.name}{ASIDE_SUFFIX}-{number}")
        number += 1
    journal.rename(target)
    return target


def recover(
    journal: Path, results_dir: Path, move_aside: bool = False, ours: bool = False
) -> Recovery:
    """Save what the run behind *journal* finished into *results_dir*.

    If the run ran to its end (the journal says so) and its own results file beside the journal
    is whole, that file is saved as it is; otherwise the journal's benchmarks are, marked
    partial unless the run was complete. Only once they are saved is the journal removed, with
    the raw file beside it if that is ``anybench run``'s own and was read: empty, or its every
    benchmark saved (a raw file holding others, as of another run, is saved too; one that cannot
    be read is moved aside, :attr:`Recovery.raw_problem`). A journal that a live run holds is
    left alone; one that is not this format's, or cannot be saved, is left in place (or, with
    *move_aside*, renamed with :data:`ASIDE_SUFFIX`) and the problem said; a journal of this
    format with no finished benchmark is removed and nothing saved. Errors writing into
    *results_dir* (:class:`~anybench._files.OutputError`) propagate, and nothing is removed.
    *ours*: the journal is of this process's own run (see :func:`running`), whose pytest ended.
    """
    from ._results import ResultsError, load, save

    outcome = Recovery(journal)
    raw = journal.with_name(journal.name[: -len(SUFFIX)])
    try:
        with _owned(journal, ours) as f:
            if f is None:
                outcome.live = True
                return outcome
            data = parse(f.read().decode("utf-8", errors="replace"))
            if data is None:
                # Its run may be opening it this instant: never moved, and nothing to save.
                outcome.problem = "it is empty; it is left in place"
                return outcome
            complete = "partial" not in data["anybench_run"]
            measured = bool(data["benchmarks"] or data["anybench_run"]["failed"])
            own_raw, raw_run, raw_problem = is_own_raw(raw), None, None
            try:
                if os.path.lexists(raw) and not (raw.is_file() and raw.stat().st_size == 0):
                    raw_run = load(raw)  # a FIFO or a broken link: a problem, never removed
            except ResultsError as exc:
                raw_problem = str(exc)
            run_id = str(data["anybench_run"].get("run_id") or "")
            if (  # the run's own whole results file: saved as it is
                complete
                and raw_run is not None
                and raw_run.records
                and raw_run.run_id == run_id
                and _names(data["benchmarks"]) <= {r.name for r in raw_run.records}
            ):
                outcome.saved = save(raw, results_dir)
                raw_run = None  # saved: nothing more to do with it
            if not outcome.saved and measured:
                with tempfile.TemporaryDirectory(prefix="anybench-recover-") as tmp:
                    staged = Path(tmp) / f"{raw.name}.json"
                    staged.write_text(json.dumps(data), encoding="utf-8")
                    try:
                        outcome.saved = save(staged, results_dir)
                    except ResultsError as exc:
                        raise JournalError(str(exc).removeprefix(f"{staged}: ")) from None
            outcome.empty = not measured
            if own_raw and raw_run is not None:
                # Removed only once every benchmark it holds is saved: of this run, or its own.
                saved = {r.name for path in outcome.saved for r in load(path).records}
                if raw_run.run_id != run_id or not {r.name for r in raw_run.records} <= saved:
                    outcome.raw_saved = save(raw, results_dir)
            # Removed while still locked: no other recovery can take it in between.
            if own_raw and raw_problem is None:
                raw.unlink(missing_ok=True)
            elif own_raw:
                try:
                    outcome.raw_problem = f"{raw_problem}; moved aside to {_aside(raw).name}"
                except OSError:
                    outcome.raw_problem = f"{raw_problem}; it is left in place"
            journal.unlink()
    except (JournalError, ResultsError) as exc:
        outcome.problem = str(exc)
    except (OSError, UnicodeError) as exc:
        outcome.problem = f"cannot read it ({getattr(exc, 'strerror', None) or exc})"
    if outcome.problem is not None:
        if move_aside and journal.exists():
            try:
                outcome.problem += f"; moved aside to {_aside(journal).name}"
            except OSError:
                outcome.problem += "; it is left in place"
        else:
            outcome.problem += "; it is left in place"
    return outcome


def recover_all(results_dir: Path) -> list[Recovery]:
    """:func:`recover` every journal in *results_dir*'s ``INCOMING`` into *results_dir*,
    moving aside those it cannot read; journals of live runs are left alone (and listed)."""
    return [
        recover(journal, results_dir, move_aside=True)
        for journal in leftovers(results_dir / INCOMING)
    ]


def describe(recovery: Recovery) -> list[str]:
    """What happened to a journal, for people: one line per fact."""
    where = recovery.journal
    if recovery.live:
        return [f"{where}: its run is still going; left alone"]
    if recovery.problem:
        return [f"anybench: {where}: {recovery.problem}"]
    lines = [f"recovered an unfinished run into {path}" for path in recovery.saved]
    if recovery.empty:
        lines = [f"{where}: no benchmark had finished; removed it"]
    raw = where.with_name(where.name[: -len(SUFFIX)])
    lines += [f"saved {raw.name}, the results file beside it, into {p}" for p in recovery.raw_saved]
    if recovery.raw_problem:
        lines.append(f"anybench: {raw}: {recovery.raw_problem.removeprefix(f'{raw}: ')}")
    return lines
