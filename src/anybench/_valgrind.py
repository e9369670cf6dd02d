"""valgrind's client requests from Python, with no compiler: the region a count covers.

valgrind counts every instruction a process executes; callgrind, started with
``--instr-atstart=no``, counts only while instrumentation is on. A program turns it on and
off with *client requests*: a sequence of instructions that does nothing on a real CPU and that
valgrind, which translates every instruction before running it, recognises and acts on.
valgrind.h emits them with inline assembly; a user of anybench may have no compiler, so this
module writes the same few instructions into an executable page and calls them through
:mod:`ctypes`. Natively the call returns its default argument, so
:meth:`ClientRequests.running_on_valgrind` is true only under valgrind.

The sequence (valgrind.h, ``VALGRIND_DO_CLIENT_REQUEST_EXPR`` for amd64): rax holds the address of
six words (the request's code and five arguments), rdx the default result; the "special
instruction preamble" ``rol rdi,3; rol rdi,13; rol rdi,61; rol rdi,51`` (128 bits of rotation:
rdi unchanged) followed by ``xchg rbx,rbx`` is the request; the result comes back in rdx. Only
x86-64 Linux is written out here; elsewhere :func:`client_request_support` says why not.
"""

from __future__ import annotations

import ctypes
import mmap
import platform
import re
import shutil
import subprocess
import sys
from functools import cache

# -- the request codes (valgrind.h and callgrind.h, valgrind 3.x) ----------------------------
#: ``VG_USERREQ__RUNNING_ON_VALGRIND = 0x1001`` (valgrind.h): 1 under valgrind (more when
#: valgrind runs under valgrind), the default (0) natively.
RUNNING_ON_VALGRIND = 0x1001
#: ``VG_USERREQ_TOOL_BASE('C','T')`` = ('C' & 0xff) << 24 | ('T' & 0xff) << 16 = 0x43 << 24 |
#: 0x54 << 16: callgrind's requests are the enum that starts there (callgrind.h).
_CALLGRIND_BASE = (ord("C") & 0xFF) << 24 | (ord("T") & 0xFF) << 16
#: ``VG_USERREQ__DUMP_STATS``: write the counts so far to a new file, and zero them.
CALLGRIND_DUMP_STATS = _CALLGRIND_BASE + 0
#: ``VG_USERREQ__ZERO_STATS``: zero the counts.
CALLGRIND_ZERO_STATS = _CALLGRIND_BASE + 1
#: ``VG_USERREQ__TOGGLE_COLLECT``: turn collection on if off, off if on.
CALLGRIND_TOGGLE_COLLECT = _CALLGRIND_BASE + 2
#: ``VG_USERREQ__DUMP_STATS_AT``: as DUMP_STATS, its first argument a C string the dump's
#: ``desc: Trigger: Client Request:`` line names.
CALLGRIND_DUMP_STATS_AT = _CALLGRIND_BASE + 3
#: ``VG_USERREQ__START_INSTRUMENTATION``: instrument (and count) from here on.
CALLGRIND_START_INSTRUMENTATION = _CALLGRIND_BASE + 4
#: ``VG_USERREQ__STOP_INSTRUMENTATION``: run uninstrumented from here on (counting nothing,
#: not even calls, and several times faster).
CALLGRIND_STOP_INSTRUMENTATION = _CALLGRIND_BASE + 5
assert CALLGRIND_DUMP_STATS == 0x43540000

# mov rax,rdi; mov rdx,rsi; the preamble; xchg rbx,rbx; mov rax,rdx; ret. As a C function:
# uint64_t request(uint64_t *args /* rdi */, uint64_t default_ /* rsi */).
_AMD64_REQUEST = bytes.fromhex(
    "4889f8"  # mov rax, rdi        the request block's address, where valgrind looks for it
    "4889f2"  # mov rdx, rsi        the default result
    "48c1c703"  # rol rdi, 3
    "48c1c70d"  # rol rdi, 13
    "48c1c73d"  # rol rdi, 61
    "48c1c733"  # rol rdi, 51
    "4887db"  # xchg rbx, rbx       the request itself
    "4889d0"  # mov rax, rdx        the result
    "c3"  # ret
)

_Words = ctypes.c_uint64 * 6
_RequestFn = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_void_p, ctypes.c_uint64)


def client_request_support() -> str | None:
    """Why this machine cannot issue valgrind client requests from Python, or None if it can."""
    machine = platform.machine().lower()
    if not sys.platform.startswith("linux") or machine not in ("x86_64", "amd64"):
        return (
            f"counts need x86-64 Linux (valgrind's client requests are written out for it "
            f"only); this is {sys.platform} on {platform.machine()}"
        )
    return None


class ClientRequests:
    """valgrind's client requests, issued through a few instructions in an executable page.

    Each request's argument block is built once, so that issuing one costs the same few
    instructions every time (the part of it inside a counted region is the instrument's own
    cost, measured by an empty region and subtracted).
    """

    def __init__(self) -> None:
        reason = client_request_support()
        if reason:
            raise OSError(reason)
        page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        page.write(_AMD64_REQUEST)
        self._page = page  # kept alive: the function lives in it
        self._call = _RequestFn(ctypes.addressof(ctypes.c_char.from_buffer(page)))
        self._blocks: dict[tuple[int, int], ctypes.Array[ctypes.c_uint64]] = {}
        self._names: dict[str, ctypes.Array[ctypes.c_char]] = {}

    def request(self, code: int, arg1: int = 0, default: int = 0) -> int:
        """Issue request *code* with first argument *arg1*; *default* natively."""
        block = self._blocks.get((code, arg1))
        if block is None:
            block = self._blocks[code, arg1] = _Words(code, arg1, 0, 0, 0, 0)
        return int(self._call(ctypes.addressof(block), default))

    def running_on_valgrind(self) -> bool:
        """Whether this process runs under valgrind."""
        return self.request(RUNNING_ON_VALGRIND) > 0

    def toggle_collect(self) -> None:
        """callgrind: turn counting on if it is off, off if it is on."""
        self.request(CALLGRIND_TOGGLE_COLLECT)

    def start_instrumentation(self) -> None:
        """callgrind (started with ``--instr-atstart=no``): count from here on."""
        self.request(CALLGRIND_START_INSTRUMENTATION)

    def stop_instrumentation(self) -> None:
        """callgrind: count nothing from here on."""
        self.request(CALLGRIND_STOP_INSTRUMENTATION)

    def zero_stats(self) -> None:
        """callgrind: forget what was counted since the last dump."""
        self.request(CALLGRIND_ZERO_STATS)

    def dump_stats_at(self, name: str) -> None:
        """callgrind: write what was counted since the last dump to a new file whose
        ``desc: Trigger: Client Request:`` line is *name*, and zero the counts."""
        buffer = self._names.get(name)
        if buffer is None:
            buffer = self._names[name] = ctypes.create_string_buffer(name.encode())
        self.request(CALLGRIND_DUMP_STATS_AT, ctypes.addressof(buffer))


# -- valgrind itself ---------------------------------------------------------------------------

#: How to install valgrind, by the package manager found on PATH.
_INSTALL = (
    ("apt-get", "sudo apt-get install valgrind"),
    ("dnf", "sudo dnf install valgrind"),
    ("yum", "sudo yum install valgrind"),
    ("pacman", "sudo pacman -S valgrind"),
    ("apk", "apk add valgrind"),
    ("zypper", "sudo zypper install valgrind"),
)


class ValgrindMissing(RuntimeError):
    """valgrind cannot count here; the message is one line that says how to get it."""


def missing_valgrind_message() -> str:
    """One line: valgrind is not on PATH, and how to install it on this machine."""
    known = [command for tool, command in _INSTALL if shutil.which(tool)]
    how = (
        known[0]
        if known
        else "apt-get install valgrind (Debian, Ubuntu), dnf install valgrind (Fedora)"
    )
    return f"counts need valgrind, which is not on PATH; install it ({how}) and run again"


def find_valgrind() -> str:
    """The valgrind executable; :class:`ValgrindMissing` (one line) when counts cannot run."""
    reason = client_request_support()
    if reason:
        raise ValgrindMissing(reason)
    found = shutil.which("valgrind")
    if found is None:
        raise ValgrindMissing(missing_valgrind_message())
    return found


@cache
def valgrind_version(executable: str) -> str:
    """``3.19.0`` for valgrind-3.19.0; "" if it does not say."""
    try:
        out = subprocess.run(
            [executable, "--version"], capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    match = re.search(r"(\d+\.\d+(\.\d+)?)", out)
    return match.group(1) if match else ""
