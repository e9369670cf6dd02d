"""A worker loads its environment's compiled extension modules from copies of their files made
for that process alone, and shifts its heap by a random amount, so that where their code lies in
the machine's memory, and where the objects it measures lie in its heap, are drawn anew in every
process.

Why: every process that maps the same file shares the same pages of the kernel's page cache,
placed once, when the file was first read. Which cache sets a library's hot code falls into
follows from those pages, and so does a difference in speed that is the same in every process
that maps that file and different for another copy of it. Two environments of an A/B run each
have their own copy of uvloop and of rloop: the same bytes, other pages. Measured on this
project's machine (uvloop 0.23, a future awaited by a task, N = 100, four copies of uvloop's
``loop.so`` in fresh directories, eight processes each, interleaved): one copy was 8% slower
than the others in each of its eight processes. In A/A runs (two environments with the same
versions) the ratios on uvloop and rloop left no change outside their 95% interval about three
times as often as those on asyncio and trio, whose compiled code both environments share; one
said rloop was 6.3% slower [+5.4%, +7.2%], eleven pairs of processes agreeing. No number of
processes averages such an offset away, since all of a variant's processes share it, and no
pairing cancels it. A copy per process turns it into one more thing that varies between
processes, which the intervals see and more processes average out (as Stabilizer randomises a
program's layout: Curtsinger and Berger, ASPLOS 2013).

What is copied: every extension module imported after :func:`install`, from anywhere but the
interpreter's own standard library (the base installation both variants share, as they share
the interpreter). Each copy is made as the module loads and removed once it has (the process
keeps its mapping; the module's ``__file__`` stays its own file). A module
that does not load from its copy (one that finds its libraries beside its own file, a temporary
directory that forbids executing, or is full) loads from its own file, and :data:`FROM_OWN_FILE`
names it.

The heap (:func:`shift_heap`): a process's objects land where its allocation history puts them,
and that history is the same in every process of an environment, so their layout is too (which
objects share a cache line or a page, how far apart the hot ones lie). Another environment
imports other code first, another library version, and lays them out otherwise, in every one of
its processes. Measured on this project's machine on 2026-12-05 (anyio 4.13 and 4.16
environments, each with uvloop 0.23; the native ``done_callback`` on uvloop at N = 10,000,
which runs no anyio code; fresh workers interleaved): 4.16's processes read 7.5-8.5% slower
than 4.13's, twice, 12 processes each, every one of the 4.16 processes above the 4.13 median;
an A/B run flagged it "slower", +10.1% [+7.7%, +12.5%], six pairs of processes agreeing. With a
random shift before the scenario is imported, the same comparison read +0.5% and -1.2%. So every
worker holds, for its life, a random number of objects of random sizes up to the small-object
allocator's largest, and a few larger blocks, before it imports the scenario and the runtimes.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import random
import shutil
import sys
import sysconfig
import tempfile
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

#: The modules this process loaded from a copy of their file, and those loaded from their own
#: file after their copy would not load (with why).
FROM_COPY: list[str] = []
FROM_OWN_FILE: dict[str, str] = {}

#: How far :func:`shift_heap` shifts the heap: up to SMALL_OBJECTS byte strings of 1 to
#: SMALL_BYTES bytes of data each (objects of 34 to 545 bytes: CPython's small-object allocator
#: serves those up to 512, in all but its two smallest size classes, and the C allocator the
#: rest), and up to LARGE_BLOCKS blocks of up to LARGE_BYTES each (from the C allocator, below
#: the size it maps on its own): about 3.6 MB on average, at most about 15 MB; a few ms.
SMALL_OBJECTS, SMALL_BYTES = 20_000, 512
LARGE_BLOCKS, LARGE_BYTES = 64, 65_536
#: What this process holds to shift its heap, and how many bytes (None: not shifted); see
#: :func:`shift_heap`.
_SHIFT: list[bytes | bytearray] = []
SHIFTED_BYTES: int | None = None


def shared_roots() -> tuple[list[str], list[str]]:
    """Where the interpreter's own standard library lies (in its base installation, which
    every environment made from it shares), then where installed libraries lie (the
    environment's own, even where they are inside the standard library's directory); both
    resolved."""
    base = {"installed_base": sys.base_prefix, "base": sys.base_prefix}
    base |= {"installed_platbase": sys.base_exec_prefix, "platbase": sys.base_exec_prefix}
    stdlib = {sysconfig.get_path(name, vars=base) for name in ("stdlib", "platstdlib")}
    installed = {sysconfig.get_path(name) for name in ("purelib", "platlib")}
    return _resolved(stdlib), _resolved(installed)


def _resolved(paths: set[str]) -> list[str]:
    return sorted({str(Path(path).resolve()) for path in paths if path})


def lies_under(path: str, roots: Sequence[str]) -> bool:
    """Whether *path*, resolved, is one of the (resolved) directories *roots* or inside one."""
    resolved = str(Path(path).resolve())
    return any(resolved == root or resolved.startswith(root + os.sep) for root in roots)


def _from_own_file(name: str, exc: BaseException) -> None:
    why = FROM_OWN_FILE[name] = (str(exc).splitlines() or [type(exc).__name__])[0]
    print(
        f"anybench: {name} loads from its own file, its copy would not ({why}): where its code "
        "lies in memory is the same in every process of this environment",
        file=sys.stderr,
    )


class _CopyLoader(importlib.machinery.ExtensionFileLoader):
    """Loads an extension module from a copy of its file made as it loads, then removes the
    copy; from its own file if the copy cannot be made or loaded. The module's ``__file__``
    stays its own file."""

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        original = self.path
        try:
            # A directory of its own: the file keeps its name, and nothing can be in the way.
            directory = tempfile.mkdtemp(prefix="anybench-")
        except OSError as exc:  # a full or read-only temporary directory
            _from_own_file(spec.name, exc)
            return super().create_module(spec)
        try:
            spec.origin = os.path.join(directory, os.path.basename(original))
            shutil.copyfile(original, spec.origin)
            module = super().create_module(spec)  # dlopen: the process maps the copy
        except (OSError, ImportError) as exc:
            spec.origin = original
            module = super().create_module(spec)
            _from_own_file(spec.name, exc)
        else:
            FROM_COPY.append(spec.name)
            if getattr(module, "__file__", None) == spec.origin:  # set as it initialised
                module.__file__ = original
        finally:
            spec.origin = original
            shutil.rmtree(directory, ignore_errors=True)
        return module


class FreshCopies(importlib.abc.MetaPathFinder):
    """Finds extension modules as the path finder does, and has each one that does not lie in
    the standard library's directories (*stdlib*), or that lies in an installed library's
    (*installed*), load from a fresh copy of its file. Finding it copies nothing: a module
    looked up and never loaded leaves nothing behind."""

    def __init__(self, stdlib: Sequence[str], installed: Sequence[str]) -> None:
        self.stdlib, self.installed = list(stdlib), list(installed)

    def copies(self, origin: str) -> bool:
        """Whether an extension module whose file is *origin* loads from a copy."""
        return lies_under(origin, self.installed) or not lies_under(origin, self.stdlib)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if (
            spec is None
            or not isinstance(spec.loader, importlib.machinery.ExtensionFileLoader)
            or spec.origin is None
            or not self.copies(spec.origin)
        ):
            return None  # the path finder after this one finds it as ever
        spec.loader = _CopyLoader(fullname, spec.origin)
        return spec


def install() -> None:
    """From now on, this process loads extension modules from fresh copies (see the module's
    docstring). Once per process; a second call changes nothing. Not on Windows, where a
    loaded library's file cannot be removed: there every copy would stay behind."""
    if os.name == "nt" or installed():
        return
    # Just before the path finder: the built-in and frozen importers, and any hook installed
    # before it, still come first.
    path_finder = importlib.machinery.PathFinder
    at = next((i for i, f in enumerate(sys.meta_path) if f is path_finder), len(sys.meta_path))
    sys.meta_path.insert(at, FreshCopies(*shared_roots()))


def installed() -> bool:
    """Whether this process loads extension modules from fresh copies (:func:`install`)."""
    return any(isinstance(finder, FreshCopies) for finder in sys.meta_path)


def shift_heap(rng: random.Random | None = None) -> int:
    """Allocate, and hold for the life of the process, a random number of objects of random
    sizes (see the module's docstring and SMALL_OBJECTS); return the bytes they hold. Once per
    process: a second call adds nothing. *rng*: where the amounts come from (by default, the
    operating system's randomness, another draw in every process). The objects are bytes, which
    the garbage collector never visits."""
    global SHIFTED_BYTES
    if SHIFTED_BYTES is not None:
        return 0
    rng = rng or random.Random()
    small = [bytes(rng.randint(1, SMALL_BYTES)) for _ in range(rng.randint(0, SMALL_OBJECTS))]
    large = [
        bytearray(rng.randint(SMALL_BYTES + 1, LARGE_BYTES))
        for _ in range(rng.randint(0, LARGE_BLOCKS))
    ]
    _SHIFT.extend([*small, *large])
    SHIFTED_BYTES = sum(len(item) for item in _SHIFT)
    return SHIFTED_BYTES
