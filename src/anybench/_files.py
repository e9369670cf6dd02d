"""Where anybench writes: file names made from data, safe writes, and the mark on the reports
it wrote.

Three promises live here. A name taken from a results file (a scenario, a latency series, a
runtime, a machine) becomes one plain file-name component that cannot climb out of the output
directory, and different names never share a file (:func:`safe_name`, the one rule). A file or
directory appears whole or not at all: it is written beside its destination, flushed to disk and
renamed or linked into place (:func:`create_text`, :func:`write_new`, :func:`swap_directory`),
readable as the umask allows. And a directory is replaced only when anybench wrote it as a
report: it carries the mark :data:`REPORT_MARKER`, which lists every file of the report, and it
holds nothing else, so a results directory, an input or anyone's own files are never removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

#: The file that marks a directory as a report anybench wrote (and may replace).
REPORT_MARKER = ".anybench-report"

#: Version of the marker's contents.
REPORT_MARKER_FORMAT = 1

#: Characters a name keeps as they are; any run of others becomes one ``-``.
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

#: Longest part of a file name taken from data (several parts make one name: stay under 255).
MAX_PART_CHARS = 60

#: Names Windows reserves whatever their extension.
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10))}
_RESERVED |= {f"LPT{i}" for i in range(10)}


class OutputError(Exception):
    """An output that cannot or must not be written; the message says where, why and what to do."""


def unwritable(path: Path, exc: OSError, doing: str, option: str) -> OutputError:
    """The one line for an OSError while *doing* something at *path* (chosen with *option*)."""
    if isinstance(exc, PermissionError):
        remedy = f"make it writable or pass {option} elsewhere"
    else:
        remedy = f"fix that or pass {option} elsewhere"
    return OutputError(f"{path}: cannot {doing} ({exc.strerror or exc}); {remedy}")


def safe_name(text: str) -> str:
    """*text* as one file-name component, safe on every file system.

    A name of ASCII letters, digits, ``.``, ``_`` and ``-`` that does not start with ``.`` or
    ``-`` is kept as it is (``spawn`` stays ``spawn``). Any other name has each run of other
    characters replaced by ``-``, loses leading and trailing dots and dashes, is shortened to
    :data:`MAX_PART_CHARS` and is followed by a short hash of the original, so ``../victim``
    becomes ``victim-<hash>``: never a path, never hidden, and distinct from every kept name
    (different originals share a name only if their hashes collide; :class:`FileNames` makes even
    that impossible within one directory).
    """
    cleaned = _UNSAFE.sub("-", text).strip(".-")
    reserved = cleaned.split(".")[0].upper() in _RESERVED
    if cleaned and cleaned == text and len(text) <= MAX_PART_CHARS and not reserved:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{cleaned[:MAX_PART_CHARS] or '_'}-{digest}"


class FileNames:
    """Hands out the file names of one output directory: safe, and never the same one twice.

    Names are compared without case, as on macOS and Windows. A name already given out (two
    parts that join the same way, ``a-b`` + ``c`` and ``a`` + ``b-c``) gets ``-2``, ``-3``, ...
    """

    def __init__(self, reserved: Iterable[str] = ()) -> None:
        self._taken = {name.casefold() for name in reserved}

    def name(self, *parts: str, suffix: str) -> str:
        """A fresh file name: the safe *parts* joined by ``-``, then *suffix* (``.png``)."""
        stem = "-".join(safe_name(part) for part in parts)
        candidate, count = stem + suffix, 1
        while candidate.casefold() in self._taken:
            count += 1
            candidate = f"{stem}-{count}{suffix}"
        self._taken.add(candidate.casefold())
        return candidate


def current_umask() -> int:
    """The process's file-creation mask (read by setting it and putting it back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def _staged_file(directory: Path, data: bytes, suffix: str) -> Iterator[Path]:
    """A hidden temporary file in *directory* holding *data*, on disk and readable as the umask
    allows; removed on leaving unless it was renamed away."""
    fd, name = tempfile.mkstemp(dir=directory, prefix=".incoming-", suffix=suffix)
    staged = Path(name)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(staged, 0o666 & ~current_umask())  # mkstemp makes it private
        yield staged
    finally:
        staged.unlink(missing_ok=True)


def create_text(path: Path, text: str) -> None:
    """Write *text* (UTF-8) to *path* as a new file, whole or not at all, even if the process is
    killed. Raises FileExistsError if *path* exists, even if it appeared a moment ago: a file is
    never replaced."""
    path = Path(path)
    with _staged_file(path.parent, text.encode("utf-8"), path.suffix) as staged:
        os.link(staged, path)  # unlike a rename, a link never replaces a file


def write_new(directory: Path, name: str, data: bytes) -> Path:
    """Write *data* into *directory* as *name*, or as *name* with ``-2``, ``-3``... before its
    suffix if that is taken; return the path. Never overwrites, never leaves half a file."""
    directory = Path(directory)
    stem, suffix = os.path.splitext(name)
    with _staged_file(directory, data, suffix) as staged:
        for attempt in range(1, 1000):
            target = directory / (name if attempt == 1 else f"{stem}-{attempt}{suffix}")
            try:
                os.link(staged, target)  # unlike a rename, a link never replaces a file
            except FileExistsError:
                continue
            return target
    raise OutputError(f"{directory}: too many files named {stem}*; move some away")


def staging_directory(dest: Path) -> Path:
    """A fresh hidden directory beside *dest*, readable as the umask allows, to fill and then
    put in place with :func:`swap_directory`. Raises OSError if it cannot be made."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}-"))
    try:
        os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp makes it private
    except OSError:
        staging.rmdir()
        raise
    return staging


def swap_directory(staging: Path, dest: Path) -> None:
    """Put the directory *staging* in place as *dest*, replacing what is there.

    The old *dest* (if any) is moved aside first and removed only once *staging* is in place;
    if that fails, it is put back and the OSError is raised. Whether *dest* may be replaced is
    the caller's decision (see :func:`existing_report`).
    """
    staging, dest = Path(staging), Path(dest)
    if not os.path.lexists(dest):
        os.replace(staging, dest)
        return
    trash = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}-old-"))
    old = trash / dest.name
    try:
        os.replace(dest, old)
    except OSError:
        trash.rmdir()
        raise
    try:
        os.replace(staging, dest)
    except OSError:
        os.replace(old, dest)  # put the old one back (if that fails, it stays in the trash)
        trash.rmdir()
        raise
    shutil.rmtree(trash, ignore_errors=True)


def mark_report(directory: Path) -> None:
    """Write the report mark into *directory*, listing the files it holds now."""
    files = sorted(entry.name for entry in os.scandir(directory) if entry.name != REPORT_MARKER)
    marker = {"format": REPORT_MARKER_FORMAT, "written_by": "anybench report", "files": files}
    (directory / REPORT_MARKER).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")


def existing_report(out_dir: Path, inputs: Iterable[Path]) -> bool:
    """Whether a report anybench wrote is at *out_dir* (False: nothing is there).

    Raises :class:`OutputError` if something else is there, which a report must never replace:
    one of *inputs* or a directory holding one, a file, a symbolic link, a directory holding
    results files, a directory without the report mark, or one holding files the mark does not
    list (someone's own notes, say).
    """
    if not os.path.lexists(out_dir):
        return False
    target = out_dir.resolve()
    for path in inputs:
        resolved = Path(path).resolve()
        if resolved == target or target in resolved.parents:
            what = "is" if resolved == target else "holds"
            raise OutputError(
                f"{out_dir} {what} the input {path}; a report never replaces its inputs: "
                "choose another --out"
            )
    if out_dir.is_symlink():
        raise OutputError(
            f"{out_dir} is a symbolic link; a report replaces only a directory anybench wrote: "
            "choose another --out"
        )
    if not out_dir.is_dir():
        raise OutputError(
            f"{out_dir} is a file, not a report directory; choose another --out (a new directory)"
        )
    try:
        entries = {entry.name: entry for entry in os.scandir(out_dir)}
    except OSError as exc:
        raise OutputError(
            f"{out_dir}: cannot look into it ({exc.strerror or exc}) to check that it is a report "
            "anybench wrote; choose another --out"
        ) from None
    results = sorted(
        name for name, entry in entries.items() if name.endswith(".json") and _is_results(entry)
    )
    if results:
        raise OutputError(
            f"{out_dir} holds results files ({', '.join(results[:3])}"
            f"{', ...' if len(results) > 3 else ''}); a report never replaces them: "
            "choose another --out"
        )
    listed = _marked_files(out_dir)
    if listed is None:
        raise OutputError(
            f"{out_dir} exists and is not a report anybench marked (no readable {REPORT_MARKER} "
            "in it); move it away yourself or choose another --out"
        )
    foreign = sorted(
        name
        for name, entry in entries.items()
        if name != REPORT_MARKER
        and (name not in listed or not entry.is_file(follow_symlinks=False))
    )
    if foreign:
        raise OutputError(
            f"{out_dir} is a report but also holds {', '.join(foreign[:3])}"
            f"{', ...' if len(foreign) > 3 else ''}, which anybench did not write there; move "
            "them out or choose another --out"
        )
    return True


def _marked_files(directory: Path) -> set[str] | None:
    """The files the report mark in *directory* lists; None if it has no readable mark."""
    try:
        marker = json.loads((directory / REPORT_MARKER).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(marker, dict) or not isinstance(marker.get("files"), list):
        return None
    files = marker["files"]
    if not all(isinstance(name, str) for name in files):
        return None
    return set(files)


def _is_results(entry: os.DirEntry[str]) -> bool:
    """Whether a ``*.json`` directory entry looks like a results file (pytest-benchmark JSON)."""
    if not entry.is_file():
        return False
    try:
        with open(entry.path, "rb") as file:
            head = file.read(1 << 20)
    except OSError:
        return True  # unreadable: assume the worst, it may be someone's results
    return b'"benchmarks"' in head or b'"machine_info"' in head


class NotRegularFile(OSError):
    """What :func:`open_regular` raises for a FIFO, a device or a directory."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(0, "not a regular file", str(path))


def open_regular(path: str | os.PathLike[str]) -> IO[bytes]:
    """*path* open for reading in binary, or :class:`NotRegularFile` if it is not a regular
    file: checked before it is opened, since opening a FIFO waits for a writer (forever) and a
    device may never end, and again once open (without waiting), in case it was swapped."""
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise NotRegularFile(path)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotRegularFile(path)
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")
