"""The runtimes anybench compares, declared once.

A runtime is an anyio backend plus the options that pick its event loop. Every benchmark, test and
report takes its list from :data:`RUNTIMES`; adding a runtime is adding one entry here.
"""

from __future__ import annotations

import importlib.util
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
        ),
        Runtime("trio", "trio", "trio's own scheduler", ("trio",)),
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


class UnknownRuntimeError(ValueError):
    """A runtime name that is not in the registry."""


def select_runtimes(names: Iterable[str] | None = None) -> list[Runtime]:
    """The runtimes named, in registry order; all of them when *names* is None or empty.

    Raises :class:`UnknownRuntimeError` naming the known runtimes for a name not in the registry.
    """
    wanted = [name.strip() for name in names or () if name.strip()]
    unknown = [name for name in wanted if name not in RUNTIMES]
    if unknown:
        raise UnknownRuntimeError(
            f"unknown runtime {', '.join(map(repr, unknown))}; choose from: {', '.join(RUNTIMES)}"
        )
    return [rt for name, rt in RUNTIMES.items() if not wanted or name in wanted]


def library_versions() -> dict[str, str | None]:
    """Installed versions of the libraries that make up the runtimes (None when missing)."""
    from importlib.metadata import PackageNotFoundError, version

    versions: dict[str, str | None] = {}
    for dist in ("anyio", "trio", "uvloop", "rloop", "pytest-benchmark"):
        try:
            versions[dist] = version(dist)
        except PackageNotFoundError:
            versions[dist] = None
    return versions
