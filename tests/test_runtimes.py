"""The runtime registry and the command-line choices made from it."""

from __future__ import annotations

import sys

import pytest

from anybench import RUNTIMES, Runtime, UnknownRuntimeError, select_runtimes
from anybench._adapter import current_backend


def test_registry_names_the_runtimes() -> None:
    assert list(RUNTIMES) == ["asyncio", "uvloop", "trio", "asyncio-eager", "rloop"]
    assert {rt.backend for rt in RUNTIMES.values()} == {"asyncio", "trio"}


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="eager tasks exist from Python 3.12")
def test_eager_tasks_need_python_3_12() -> None:
    assert RUNTIMES["asyncio-eager"].unavailable_reason() == "needs Python 3.12 or newer"


def test_select_all_by_default_in_registry_order() -> None:
    assert select_runtimes() == list(RUNTIMES.values())
    assert [rt.name for rt in select_runtimes(["trio", "asyncio"])] == ["asyncio", "trio"]


def test_unknown_runtime_lists_the_known_ones() -> None:
    with pytest.raises(
        UnknownRuntimeError,
        match=r"unknown runtime 'tokio'; choose from: asyncio, uvloop, trio, asyncio-eager, rloop$",
    ):
        select_runtimes(["tokio"])


def test_missing_library_is_a_reason_not_an_error() -> None:
    absent = Runtime(
        "absent", "asyncio", "needs a library that is not there", ("no_such_module_x",)
    )
    assert absent.unavailable_reason() == (
        "no_such_module_x is not installed (pip install no_such_module_x)"
    )


def test_runtime_runs_the_loop_it_names(runtime: Runtime) -> None:
    import anyio

    async def which() -> tuple[str, str, object]:
        import asyncio

        if runtime.backend != "asyncio":
            return current_backend(), "", None
        loop = asyncio.get_running_loop()
        return current_backend(), type(loop).__module__, loop.get_task_factory()

    backend, loop_module, task_factory = anyio.run(
        which, backend=runtime.backend, backend_options=runtime.backend_options()
    )
    assert backend == runtime.backend
    expected_module = {"asyncio": "asyncio", "asyncio-eager": "asyncio", "uvloop": "uvloop"}
    expected_module["rloop"] = "rloop"
    if runtime.backend == "asyncio":
        assert loop_module.startswith(expected_module[runtime.name])
    if runtime.name == "asyncio-eager":
        import asyncio

        assert task_factory is asyncio.eager_task_factory  # type: ignore[attr-defined]
