"""The arrows run one way: no module imports one built on it, and reading results never imports
the measuring half."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

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


PACKAGE = ROOT / "src" / "anybench"

#: The package's modules by stage, lowest first. A module imports only from its own stage or a
#: lower one, wherever the import is (inside a function, under TYPE_CHECKING): the package
#: itself (``anybench``, ``from . import __version__``) is the top, so only the public face
#: imports it.
STAGES: tuple[frozenset[str], ...] = (
    # the ground: declarations and pure functions, importing nothing of anybench
    frozenset(
        {
            "_adapter",
            "_callgrind",
            "_escape",
            "_files",
            "_format",
            "_probe",
            "_runtimes",
            "_signals",
            "_stats",
            "_sweep",
            "_valgrind",
        }
    ),
    # the contracts: what a scenario is; the portable future
    frozenset({"_scenario", "_future"}),
    # measuring: one round, a worker process, a group of them
    frozenset(
        {
            "_harness",
            "_protocol",
            "_busy",
            "_fresh",
            "_worker",
            "_measure",
            "_counts_worker",
            "_bytecodes",
        }
    ),
    # the results files, written and read
    frozenset({"_results", "_journal", "_counts_results"}),
    # reading results: analyses and reports
    frozenset(
        {
            "_layout",
            "_verdicts",
            "_compare",
            "_agree",
            "_combine",
            "_plots",
            "_table",
            "_report",
            "_counts_compare",
            "_counts_report",
            "_explain",
            "_attribution",
            "_flame",
        }
    ),
    # the drivers: the fixture, the matrix, anybench run
    frozenset({"_fixture", "_matrix", "_run", "_cli", "_counts", "_sampling"}),
    # the public face: the package, python -m anybench, the pytest plugin
    frozenset({"__init__", "__main__", "pytest_plugin"}),
)


def _modules() -> dict[str, Path]:
    """Every module of the package, by its dotted name below it (``__init__`` for the package)."""
    return {
        ".".join(path.relative_to(PACKAGE).with_suffix("").parts): path
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def _anybench_imports(path: Path, modules: set[str]) -> list[tuple[int, str]]:
    """The modules of the package (*modules*, named as :func:`_modules` names them) that the
    module at *path* imports, each with its line: ``__init__`` for the package itself
    (``import anybench``, ``from anybench import Probe``, ``from . import __version__``)."""

    def module(dotted: str | None) -> str | None:
        inner = (dotted or "").removeprefix("anybench").strip(".")
        return "__init__" if inner == "" else inner if inner in modules else None

    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            dotted = [a.name for a in node.names if a.name.split(".")[0] == "anybench"]
        elif isinstance(node, ast.ImportFrom) and (
            node.level == 1 or (node.module or "").split(".")[0] == "anybench"
        ):
            base = (node.module or "") if node.level == 0 else f"anybench.{node.module or ''}"
            # A name that is a module of the package is that module; any other name is an
            # attribute of the base, so it imports the base.
            dotted = [
                f"{base}.{a.name}" if module(f"{base}.{a.name}") else base for a in node.names
            ]
        else:
            continue
        found += [(node.lineno, m) for d in dict.fromkeys(dotted) if (m := module(d))]
    return found


def test_every_module_has_a_stage() -> None:
    staged = set().union(*STAGES)
    modules = set(_modules())
    assert sorted(modules - staged) == [], "put each new module in a stage of STAGES"
    assert sorted(staged - modules) == [], "a module of STAGES is gone: take it out"


def test_no_module_imports_one_of_a_higher_stage_or_the_package() -> None:
    stage = {module: i for i, modules in enumerate(STAGES) for module in modules}
    modules = _modules()
    upward = [
        f"{path.relative_to(ROOT)}:{line} imports {target}"
        for module, path in modules.items()
        for line, target in _anybench_imports(path, set(modules))
        if stage.get(target, -1) > stage.get(module, len(STAGES))
    ]
    assert upward == []


def test_the_layering_check_sees_an_import_of_the_package(tmp_path: Path) -> None:
    module = tmp_path / "_low.py"
    module.write_text(
        "from . import __version__\n"
        "from ._sweep import AXES\n"
        "from . import _sweep, _report\n"
        "import os, anybench._sweep\n"
        "def f():\n"
        "    import anybench\n"
        "    from anybench._report import write_report\n"
        "    from . import _report\n"
    )
    found = _anybench_imports(module, {"_sweep", "_report"})
    assert sorted(found) == [
        (1, "__init__"),
        (2, "_sweep"),
        (3, "_report"),
        (3, "_sweep"),
        (4, "_sweep"),
        (6, "__init__"),
        (7, "_report"),
        (8, "_report"),
    ]


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
