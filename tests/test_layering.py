"""The arrows run one way: reading results never imports the measuring half."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import anybench

from .conftest import ROOT

#: What reading results must not pull in: the harness and its parts, the pytest plugin, and the
#: runtimes' libraries.
MEASURING = {
    "anybench._harness",
    "anybench._measure",
    "anybench._worker",
    "anybench._adapter",
    "anybench._future",
    "anybench._probe",
    "anybench.pytest_plugin",
    "anyio",
    "trio",
    "uvloop",
    "rloop",
    "sniffio",
}


def _imported_after(*modules: str) -> set[str]:
    """The top-level and anybench modules a fresh interpreter holds after importing *modules*."""
    code = (
        "import json, sys\n"
        + "".join(f"import {module}\n" for module in modules)
        + "print(json.dumps(sorted(sys.modules)))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return set(json.loads(proc.stdout))


@pytest.mark.parametrize(
    "modules",
    [
        ("anybench._report", "anybench._compare"),
        ("anybench._plots", "anybench._table", "anybench._stats"),
        ("anybench._cli",),
    ],
    ids=["report+compare", "plots+table+stats", "cli"],
)
def test_reading_results_imports_nothing_of_the_measuring_half(modules: tuple[str, ...]) -> None:
    loaded = _imported_after(*modules)
    assert set(modules) <= loaded  # the check itself saw the imports
    assert sorted(MEASURING & loaded) == []


def test_the_report_commands_import_nothing_of_the_measuring_half() -> None:
    # The command-line paths, run as a person runs them: `anybench table` on a committed file.
    code = (
        "import json, sys\n"
        "from anybench._cli import main\n"
        "main(['table', 'results/20261129T112446_vm_cpython3.11_anyio-4.16.0.json'])\n"
        "from anybench._compare import format_comparison\n"
        "print(json.dumps(sorted(sys.modules)), file=sys.stderr)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "asyncio" in proc.stdout  # the table was printed
    loaded = set(json.loads(proc.stderr.splitlines()[-1]))
    assert sorted(MEASURING & loaded) == []


def test_public_names_still_import_from_the_package() -> None:
    from anybench import RESULTS_FORMAT, Future, check
    from anybench._future import Future as PrivateFuture
    from anybench._probe import check as private_check

    assert isinstance(RESULTS_FORMAT, int)
    assert Future is PrivateFuture
    assert check is private_check
    for name in anybench.__all__:
        assert getattr(anybench, name) is not None, name
    assert set(anybench.__all__) <= set(dir(anybench))


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'Futur'"):
        anybench.Futur  # noqa: B018
