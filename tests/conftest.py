from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
import pytest

from anybench import Runtime

T = TypeVar("T")

RunOn = Callable[[Callable[[], Awaitable[T]]], T]


@pytest.fixture
def run_on(runtime: Runtime) -> Callable[[Callable[[], Awaitable[object]]], object]:
    """Run an async function to completion on the test's runtime (a fresh anyio.run)."""

    def run(fn: Callable[[], Awaitable[object]]) -> object:
        return anyio.run(fn, backend=runtime.backend, backend_options=runtime.backend_options())

    return run
