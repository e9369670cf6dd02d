"""Reading callgrind's output files (format version 1), without callgrind_annotate.

A dump is text: a header (``desc: Trigger: Client Request: NAME``, ``events: Ir``, ``summary:``),
then per function a block: ``ob=`` (object), ``fl=`` (source file) and ``fn=`` (function) lines,
each name given once in full as ``(id) name`` and by ``(id)`` after that; cost lines
``POSITION COST`` (the function's own instructions at a line); and calls: ``cob=``/``cfi=``/
``cfn=`` name the callee, ``calls=COUNT POSITION`` how often it was called, and the cost line
after it is what those calls cost, callees included (not the caller's own). ``fi=``/``fe=``
switch the file of inlined code within a function. Files share one table of ids (``fl``,
``fi``, ``fe``, ``cfi``, ``cfl``), functions another (``fn``, ``cfn``), objects a third (``ob``,
``cob``).

From that, per function: its self instructions, its inclusive instructions (self plus the cost
of the calls it made; a recursive function counts its recursion more than once, as
callgrind_annotate's inclusive view does), and how many times it was called (the sum of the
``calls=`` to it from every caller). This module reads files only; it imports nothing of the
measuring side.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

#: Functions (by name, in the interpreter or libc) whose calls count the allocations: CPython's
#: allocator entry points behind ``PyObject_Malloc``/``PyMem_Malloc`` (pymalloc serves both in a
#: release build, and falls back to the raw allocator, i.e. ``malloc``, above 512 bytes).
#: ``_PyObject_Malloc`` and ``_PyObject_Calloc`` are static in obmalloc.c: every block asked of
#: the object and mem domains passes through one of them.
ALLOCATORS = ("_PyObject_Malloc", "_PyObject_Calloc")
#: The raw domain's and libc's: blocks the interpreter and extension modules get from ``malloc``
#: (large Python blocks among them).
RAW_ALLOCATORS = ("malloc", "calloc")
#: CPython's collector, one call per collection (of any generation): 3.11's gcmodule.c.
COLLECTORS = ("gc_collect_main",)
#: libc's system-call wrappers counted by name, their aliases folded together. ``clock_gettime``
#: is served by the vDSO natively (no system call); under valgrind the call is still counted
#: here, so read it as "clock readings".
SYSCALLS: dict[str, str] = {
    name: canonical
    for canonical, aliases in {
        "epoll_wait": ("epoll_wait", "epoll_pwait", "__epoll_wait"),
        "epoll_ctl": ("epoll_ctl",),
        "poll": ("poll", "__poll", "ppoll"),
        "select": ("select", "__select", "pselect"),
        "read": ("read", "__libc_read", "__read"),
        "write": ("write", "__libc_write", "__write"),
        "recv": ("recv", "__libc_recv", "recvfrom", "__libc_recvfrom"),
        "send": ("send", "__libc_send", "sendto", "__libc_sendto"),
        "recvmsg": ("recvmsg", "__libc_recvmsg"),
        "sendmsg": ("sendmsg", "__libc_sendmsg"),
        "clock_gettime": ("clock_gettime", "__clock_gettime"),
        "getpid": ("getpid", "__getpid"),
        "close": ("close", "__close", "__libc_close"),
        "socketpair": ("socketpair",),
        "socket": ("socket",),
        "pipe": ("pipe", "pipe2"),
        "eventfd": ("eventfd",),
        "fcntl": ("fcntl", "fcntl64", "__libc_fcntl64"),
        "futex": ("syscall",),
    }.items()
    for name in aliases
}
#: A function called in the loop's wait: one call is one loop iteration that waited (asyncio's
#: selector, trio's epoll and libuv all wait in epoll_wait on Linux).
LOOP_WAIT = "epoll_wait"


class CallgrindError(ValueError):
    """A file that is not a callgrind dump this module can read (one line, naming it)."""


@dataclass
class FunctionCost:
    """One function's figures in a dump."""

    name: str
    #: The object it is in (the shared library or executable, its base name).
    object: str
    #: The source file its code is in ("???" without debug information).
    file: str
    self_ir: int = 0
    inclusive_ir: int = 0
    calls: int = 0


@dataclass
class Dump:
    """One callgrind dump: its trigger's name, its total, and its functions by (object, name)."""

    name: str
    total_ir: int
    functions: dict[tuple[str, str], FunctionCost] = field(default_factory=dict)

    def calls_to(self, names: Iterable[str]) -> int:
        """Calls to any function called one of *names* (in any object)."""
        wanted = set(names)
        return sum(f.calls for f in self.functions.values() if f.name in wanted)

    def syscalls(self) -> dict[str, int]:
        """Calls to libc's system-call wrappers in :data:`SYSCALLS`, by canonical name (only
        those called at all)."""
        found: dict[str, int] = {}
        for f in self.functions.values():
            canonical = SYSCALLS.get(f.name)
            if canonical and f.calls and f.object.startswith("libc"):
                found[canonical] = found.get(canonical, 0) + f.calls
        return dict(sorted(found.items()))

    def top(self, count: int) -> list[FunctionCost]:
        """The *count* functions of most self instructions, most first (ties by name)."""
        ranked = sorted(self.functions.values(), key=lambda f: (-f.self_ir, f.object, f.name))
        return [f for f in ranked[:count] if f.self_ir > 0]


_TRIGGER = "desc: Trigger: Client Request: "
_NAMED = re.compile(r"^\((\d+)\)(?: (.*))?$")


class _Undefined(KeyError):
    """A compressed name used before its definition."""


class _Names:
    """One table of compressed names: ``(id) name`` defines, ``(id)`` refers."""

    def __init__(self) -> None:
        self.by_id: dict[str, str] = {}

    def read(self, value: str) -> str:
        match = _NAMED.match(value)
        if match is None:
            return value  # not compressed
        key, name = match.groups()
        if name is not None:
            self.by_id[key] = name
            return name
        try:
            return self.by_id[key]
        except KeyError:
            raise _Undefined(f"name ({key}) used before it is defined") from None


#: callgrind's mark of a recursion level or a cycle on a name (``f'2``, ``f'cycle 1``): folded into
#: the function itself.
_SUFFIX = re.compile(r"'(\d+|cycle \d+)$")


def _function(name: str) -> str:
    return _SUFFIX.sub("", name)


def _base(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _names_line(
    key: str, value: str, objects: _Names, files: _Names, functions: _Names
) -> str | None:
    """The name a naming line (``ob=``, ``fl=``, ``cfn=``...) gives, None for another line."""
    table = {
        "ob": objects,
        "cob": objects,
        "fl": files,
        "fi": files,
        "fe": files,
        "cfi": files,
        "cfl": files,
        "fn": functions,
        "cfn": functions,
    }.get(key)
    return None if table is None else table.read(value)


def parse_dump(text: str, source: str = "callgrind output") -> Dump:
    """The :class:`Dump` in *text* (one dump file); :class:`CallgrindError` in one line if it
    is not one."""
    if not text.startswith(("# callgrind format", "version: 1")):
        raise CallgrindError(f"{source}: not a callgrind output file")
    files, functions, objects = _Names(), _Names(), _Names()
    name = ""
    events: list[str] = []
    total: int | None = None
    summary: int | None = None
    table: dict[tuple[str, str], FunctionCost] = {}
    current: FunctionCost | None = None
    ob = fl = ""
    callee: tuple[str, str] | None = None  # (object, name) of the pending call
    call_ob: str | None = None
    call_fi = ""
    in_call = False  # the next cost line is a call's inclusive cost

    def fn_cost(key: tuple[str, str], file: str) -> FunctionCost:
        entry = table.get(key)
        if entry is None:
            entry = table[key] = FunctionCost(name=key[1], object=_base(key[0]), file=file)
        elif entry.file in ("", "???") and file:
            entry.file = file
        return entry

    def ir(fields: list[str], lineno: int) -> int:
        # POSITION then costs, Ir first (the only event asked for); a missing cost is 0.
        if len(fields) < 2:
            return 0
        try:
            return int(fields[1 + ir_index])
        except (ValueError, IndexError):
            if 1 + ir_index >= len(fields):
                return 0
            raise CallgrindError(f"{source}:{lineno}: bad cost line {' '.join(fields)!r}") from None

    ir_index = 0
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        first = line[0]
        if first.isdigit() or first in "+-*":
            if current is None:
                raise CallgrindError(f"{source}:{lineno}: a cost line outside any function")
            cost = ir(line.split(), lineno)
            if in_call:
                current.inclusive_ir += cost
                in_call = False
            else:
                current.self_ir += cost
                current.inclusive_ir += cost
            continue
        key, sep, value = line.partition("=")
        if not sep or " " in key or ":" in key:
            key, sep, value = line.partition(":")
            value = value.strip()
            if key == "desc" and line.startswith(_TRIGGER):
                name = line[len(_TRIGGER) :].strip()
            elif key == "events":
                events = value.split()
                if "Ir" not in events:
                    raise CallgrindError(f"{source}: counts no instructions (events: {value})")
                ir_index = events.index("Ir")
            elif key in ("summary", "totals"):
                try:
                    number = int(value.split()[ir_index])
                except (ValueError, IndexError):
                    raise CallgrindError(f"{source}:{lineno}: bad {key} line") from None
                if key == "summary":
                    summary = number
                else:
                    total = number
            elif key == "positions" and value.split() != ["line"]:
                raise CallgrindError(
                    f"{source}: positions {value!r}; anybench reads --dump-instr=no dumps"
                )
            continue
        try:
            names_line = _names_line(key, value, objects, files, functions)
        except _Undefined as exc:
            raise CallgrindError(f"{source}:{lineno}: {exc.args[0]}") from None
        if names_line is not None:
            if key == "ob":
                ob = names_line
            elif key == "fl":
                fl = names_line
            elif key == "fn":
                current = fn_cost((ob, _function(names_line)), _base(fl))
            elif key == "cob":
                call_ob = names_line
            elif key in ("cfi", "cfl"):
                call_fi = names_line
            elif key == "cfn":
                callee = (call_ob if call_ob is not None else ob, _function(names_line))
            continue
        if key == "calls":
            if current is None or callee is None:
                raise CallgrindError(f"{source}:{lineno}: a call outside any function")
            try:
                count = int(value.split()[0])
            except (ValueError, IndexError):
                raise CallgrindError(f"{source}:{lineno}: bad calls line {line!r}") from None
            fn_cost(callee, _base(call_fi)).calls += count
            in_call = True
            callee, call_ob, call_fi = None, None, ""
        # jump=, jcnd= and other keys (not asked for) are skipped.
    counted = total if total is not None else summary
    if counted is None:
        raise CallgrindError(f"{source}: has no summary or totals line; is it complete?")
    return Dump(name=name, total_ir=counted, functions=table)


def read_dump(path: Path) -> Dump:
    """The dump in the file at *path*."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise CallgrindError(f"{path}: cannot read it ({exc.strerror})") from None
    return parse_dump(text, str(path))


def read_dumps(paths: Iterable[Path]) -> Iterator[Dump]:
    """The dumps of *paths*, those triggered by a client request (named) only."""
    for path in paths:
        dump = read_dump(path)
        if dump.name:
            yield dump
