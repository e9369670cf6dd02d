"""The runtime registry and the command-line choices made from it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import anybench._runtimes
from anybench import BASELINE, RUNTIMES, Runtime, UnknownRuntimeError, select_runtimes
from anybench._adapter import current_backend
from anybench._runtimes import (
    COMMON_DISTRIBUTIONS,
    TOOL_DISTRIBUTIONS,
    library_versions,
    runtime_distributions,
)


def test_registry_is_keyed_by_name_and_runs_on_anyios_backends() -> None:
    assert all(name == rt.name for name, rt in RUNTIMES.items())
    assert BASELINE in RUNTIMES
    assert {rt.backend for rt in RUNTIMES.values()} <= {"asyncio", "trio"}


def test_the_recorded_libraries_are_the_runtimes_distributions() -> None:
    versions = library_versions()
    assert list(versions)[: len(COMMON_DISTRIBUTIONS)] == list(COMMON_DISTRIBUTIONS)
    for runtime in RUNTIMES.values():
        assert set(runtime.distributions) <= set(versions), runtime.name
    assert set(versions) == {*runtime_distributions(), *TOOL_DISTRIBUTIONS}


def test_the_registry_file_loads_without_its_package_as_the_noxfile_loads_it() -> None:
    # noxfile.py runs outside anybench's environment and reads the distributions from the file.
    path = Path(anybench._runtimes.__file__)
    code = (
        "import importlib.util, json, sys\n"
        f"spec = importlib.util.spec_from_file_location('registry', {str(path)!r})\n"
        "registry = importlib.util.module_from_spec(spec)\n"
        "sys.modules['registry'] = registry\n"
        "spec.loader.exec_module(registry)\n"
        "print(json.dumps([registry.runtime_distributions(), 'anybench' in sys.modules]))"
    )
    proc = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True
    )
    assert json.loads(proc.stdout) == [runtime_distributions(), False]


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="eager tasks exist from Python 3.12")
def test_eager_tasks_need_python_3_12() -> None:
    assert RUNTIMES["asyncio-eager"].unavailable_reason() == "needs Python 3.12 or newer"


def test_select_all_by_default_in_registry_order() -> None:
    assert select_runtimes() == list(RUNTIMES.values())
    assert [rt.name for rt in select_runtimes(["trio", "asyncio"])] == ["asyncio", "trio"]


def test_unknown_runtime_lists_the_known_ones() -> None:
    with pytest.raises(
        UnknownRuntimeError,
        match=rf"^unknown runtime 'tokio'; choose from: {', '.join(RUNTIMES)}$",
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
    if runtime.backend == "asyncio":
        # A runtime that comes from a library of its own runs that library's loop.
        assert loop_module.startswith((*runtime.distributions, "asyncio")[0])
    if runtime.name == "asyncio-eager":
        import asyncio

        assert task_factory is asyncio.eager_task_factory  # type: ignore[attr-defined]
