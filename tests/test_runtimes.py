"""The runtime registry and the command-line choices made from it."""

from __future__ import annotations

import pytest

from anybench import RUNTIMES, Runtime, UnknownRuntimeError, select_runtimes
from anybench._adapter import current_backend


def test_registry_names_the_three_runtimes() -> None:
    assert list(RUNTIMES) == ["asyncio", "uvloop", "trio"]
    assert {rt.backend for rt in RUNTIMES.values()} == {"asyncio", "trio"}


def test_select_all_by_default_in_registry_order() -> None:
    assert select_runtimes() == list(RUNTIMES.values())
    assert [rt.name for rt in select_runtimes(["trio", "asyncio"])] == ["asyncio", "trio"]


def test_unknown_runtime_lists_the_known_ones() -> None:
    with pytest.raises(
        UnknownRuntimeError, match="unknown runtime 'tokio'; choose from: asyncio, uvloop, trio"
    ):
        select_runtimes(["tokio"])


def test_missing_library_is_a_reason_not_an_error() -> None:
    absent = Runtime(
        "absent", "asyncio", "needs a library that is not there", ("no_such_module_x",)
    )
    assert absent.unavailable_reason() == (
        "no_such_module_x is not installed (pip install no_such_module_x)"
    )


def test_runtime_runs_the_loop_it_names(runtime: Runtime, run_on: object) -> None:
    import anyio

    async def which() -> tuple[str, str]:
        import asyncio

        loop_module = (
            type(asyncio.get_running_loop()).__module__ if runtime.backend == "asyncio" else ""
        )
        return current_backend(), loop_module

    backend, loop_module = anyio.run(
        which, backend=runtime.backend, backend_options=runtime.backend_options()
    )
    assert backend == runtime.backend
    if runtime.name == "uvloop":
        assert loop_module.startswith("uvloop")
    elif runtime.name == "asyncio":
        assert loop_module.startswith("asyncio")
