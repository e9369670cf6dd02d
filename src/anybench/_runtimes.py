"""The runtimes anybench compares, declared once.

A runtime is an anyio backend plus the options that pick its event loop, and the distributions it
comes from. Every benchmark, test and report takes its list from :data:`RUNTIMES`, and the library
versions a run records from the runtimes' distributions: adding a runtime is adding one entry here,
or calling :func:`register_runtime` from outside (see its docstring for how worker processes, which
are fresh interpreters, come to know such a runtime).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any


def _uvloop_options() -> dict[str, Any]:
    import uvloop

    return {"loop_factory": uvloop.new_event_loop}


def _rloop_options() -> dict[str, Any]:
    import rloop

    return {"loop_factory": rloop.new_event_loop}


def _eager_loop() -> Any:
    import asyncio

    loop = asyncio.new_event_loop()
    loop.set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined,unused-ignore]
    return loop


def _eager_options() -> dict[str, Any]:
    return {"loop_factory": _eager_loop}


def _no_options() -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Runtime:
    """One way to run an anyio program: an anyio backend and the options for it."""

    name: str
    backend: str
    description: str
    requires: tuple[str, ...] = ()
    options: Callable[[], dict[str, Any]] = field(default=_no_options, repr=False)
    min_python: tuple[int, int] = (3, 10)
    #: Warnings this runtime is known to raise on its own, as pytest ``filterwarnings`` specs:
    #: findings about the runtime, not failures of the scenarios run on it.
    known_warnings: tuple[str, ...] = ()
    #: The distributions (as pip names them) the runtime comes from, beyond those every runtime
    #: uses (:data:`COMMON_DISTRIBUTIONS`): their versions are recorded in every run.
    distributions: tuple[str, ...] = ()
    #: Why the work a region does on this runtime depends on wall time, where it does by the
    #: runtime's design: its work counts (``anybench counts``) then move with the machine's
    #: load, however the harness fixes the rest, and say so wherever they are shown.
    time_dependent_work: str = ""

    def unavailable_reason(self) -> str | None:
        """Why this runtime cannot run here, or None when it can."""
        if sys.version_info < self.min_python:
            return f"needs Python {'.'.join(map(str, self.min_python))} or newer"
        for module in self.requires:
            if importlib.util.find_spec(module) is None:
                return f"{module} is not installed (pip install {module})"
        return None

    def backend_options(self) -> dict[str, Any]:
        """The ``backend_options`` to pass to :func:`anyio.run`."""
        return self.options()


RUNTIMES: dict[str, Runtime] = {
    runtime.name: runtime
    for runtime in (
        Runtime("asyncio", "asyncio", "stdlib asyncio, default event loop", ("asyncio",)),
        Runtime(
            "uvloop",
            "asyncio",
            "asyncio API on uvloop's libuv event loop",
            ("uvloop",),
            _uvloop_options,
            distributions=("uvloop",),
        ),
        Runtime("trio", "trio", "trio's own scheduler", ("trio",), distributions=("trio",)),
        Runtime(
            "asyncio-eager",
            "asyncio",
            "stdlib asyncio with asyncio.eager_task_factory",
            ("asyncio",),
            _eager_options,
            min_python=(3, 12),
        ),
        Runtime(
            "rloop",
            "asyncio",
            "asyncio API on rloop's Rust event loop",
            ("rloop",),
            _rloop_options,
            distributions=("rloop",),
            time_dependent_work=(
                "rloop's loop skips its poll while callbacks are ready until 250 µs have "
                "passed since the last (EventLoop::step, src/event_loop.rs), so how many polls "
                "a region makes depends on how fast it ran"
            ),
            # rloop 0.5: closing the loop leaves its self-pipe socket pair open.
            known_warnings=(
                "ignore:Exception ignored in. <socket.socket"
                ":pytest.PytestUnraisableExceptionWarning",
            ),
        ),
    )
}

#: The runtime every ratio is taken against.
BASELINE = "asyncio"

#: The distributions every runtime uses: the scenarios are written against anyio.
COMMON_DISTRIBUTIONS: tuple[str, ...] = ("anyio",)
#: Distributions recorded beside the runtimes' that no runtime comes from (the recorder).
TOOL_DISTRIBUTIONS: tuple[str, ...] = ("pytest-benchmark",)

#: Modules that register runtimes when imported, comma-separated. :func:`register_runtime` adds
#: its caller's module here, and worker processes inherit the environment, so a worker imports
#: them before it looks up a runtime it does not know. A person may set it too, to bring
#: runtimes into a run without a pytest plugin.
RUNTIME_MODULES_ENV = "ANYBENCH_RUNTIME_MODULES"
#: The entry point group through which an installed distribution adds runtimes: each entry
#: point names a :class:`Runtime`, or a module that registers its runtimes when imported.
ENTRY_POINT_GROUP = "anybench.runtimes"
_entry_points_loaded = False


class UnknownRuntimeError(ValueError):
    """A runtime name that is not in the registry."""


def register_runtime(runtime: Runtime, *, module: str | None = None) -> Runtime:
    """Add *runtime* to :data:`RUNTIMES`, after those there; return it.

    Call it when your module is imported (at its top level, not from a hook or function): a worker
    process is a fresh interpreter that learns of the runtime by importing that *module* again (by
    default the caller's; it is added to :data:`RUNTIME_MODULES_ENV`, which workers inherit), so
    the module must be importable there too, e.g. from an installed package or PYTHONPATH. An
    empty *module* passes nothing on (for a runtime every process finds by itself, such as one
    from an :data:`ENTRY_POINT_GROUP` entry point).
    Registering the same runtime again is harmless; another runtime under a taken name raises
    :class:`ValueError`.
    """
    known = RUNTIMES.get(runtime.name)
    if known is not None and known != runtime:
        raise ValueError(f"runtime {runtime.name!r} is registered already; choose another name")
    RUNTIMES[runtime.name] = runtime
    if module is None:
        module = sys._getframe(1).f_globals.get("__name__")
    if module and module != "__main__":
        modules = _runtime_modules()
        if module not in modules:
            os.environ[RUNTIME_MODULES_ENV] = ",".join([*modules, module])
    return runtime


def _runtime_modules() -> list[str]:
    return [m.strip() for m in os.environ.get(RUNTIME_MODULES_ENV, "").split(",") if m.strip()]


def load_runtime_plugins() -> None:
    """Register the runtimes from outside anybench: the ``anybench.runtimes`` entry points of the
    installed distributions (once per process), then the modules named in
    :data:`RUNTIME_MODULES_ENV`.

    Raises :class:`UnknownRuntimeError` naming an entry point or module that cannot be loaded.
    """
    global _entry_points_loaded
    if not _entry_points_loaded:
        _entry_points_loaded = True
        from importlib.metadata import entry_points

        for point in entry_points(group=ENTRY_POINT_GROUP):
            try:
                loaded = point.load()
            except ImportError as exc:
                raise UnknownRuntimeError(
                    f"cannot load the {ENTRY_POINT_GROUP} entry point {point.value!r}: {exc}"
                ) from None
            if isinstance(loaded, Runtime):
                # Every worker reads the entry points itself: nothing to pass on.
                register_runtime(loaded, module="")
    for module in _runtime_modules():
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise UnknownRuntimeError(
                f"cannot import {module!r} (named in {RUNTIME_MODULES_ENV}) to register its "
                f"runtimes: {exc}"
            ) from None


def runtime_named(name: str) -> Runtime:
    """The registered runtime called *name*, once those from outside anybench are loaded (a
    worker process starts knowing the built-in runtimes only); see :func:`select_runtimes`."""
    return select_runtimes([name])[0]


def time_dependent_work(name: str) -> str:
    """Why runtime *name*'s work depends on wall time (see :class:`Runtime`), or "" where it
    does not or the runtime is not registered in this process. Plugins are not loaded for it:
    the commands that read files (``compare``, ``report``) import no runtime's code."""
    runtime = RUNTIMES.get(name)
    return runtime.time_dependent_work if runtime else ""


def select_runtimes(names: Iterable[str] | None = None) -> list[Runtime]:
    """The runtimes named, in registry order; all of them when *names* is None or empty. Those
    from outside anybench are loaded first (:func:`load_runtime_plugins`).

    Raises :class:`UnknownRuntimeError` naming the known runtimes for a name not in the registry.
    """
    load_runtime_plugins()
    wanted = [name.strip() for name in names or () if name.strip()]
    unknown = [name for name in wanted if name not in RUNTIMES]
    if unknown:
        raise UnknownRuntimeError(
            f"unknown runtime {', '.join(map(repr, unknown))}; choose from: {', '.join(RUNTIMES)}"
        )
    return [rt for name, rt in RUNTIMES.items() if not wanted or name in wanted]


def runtime_distributions() -> list[str]:
    """The distributions the registered runtimes come from, the common ones first, each once."""
    named = [*COMMON_DISTRIBUTIONS, *(d for rt in RUNTIMES.values() for d in rt.distributions)]
    return list(dict.fromkeys(named))


def library_versions() -> dict[str, str | None]:
    """Installed versions of the runtimes' distributions and the tools' (None when missing)."""
    from importlib.metadata import PackageNotFoundError, version

    versions: dict[str, str | None] = {}
    for dist in [*runtime_distributions(), *TOOL_DISTRIBUTIONS]:
        try:
            versions[dist] = version(dist)
        except PackageNotFoundError:
            versions[dist] = None
    return versions
