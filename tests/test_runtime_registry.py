"""Adding a runtime is one registry entry: a runtime registered from outside anybench runs in the
matrix, is recorded in the results' metadata and gets its column in the report."""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from anybench import RUNTIMES, Runtime, register_runtime
from anybench._cli import main
from anybench._runtimes import (
    ENTRY_POINT_GROUP,
    RUNTIME_MODULES_ENV,
    library_versions,
    runtime_named,
)

from .conftest import run_benchmarks

#: A pytest plugin that registers "fakeloop": the asyncio backend on a loop of its own making.
#: Workers are fresh interpreters: they import this module again to learn of the runtime.
FAKELOOP_PLUGIN = r"""
import asyncio
import os

from anybench import Runtime, register_runtime


def _fake_loop():
    # Each worker that runs a round on this runtime leaves its pid behind.
    with open(os.environ["FAKELOOP_MARKS"], "a") as marks:
        marks.write(f"{os.getpid()}\n")
    return asyncio.new_event_loop()


register_runtime(
    Runtime(
        "fakeloop",
        "asyncio",
        "asyncio on a loop the fakeloop plugin makes",
        options=lambda: {"loop_factory": _fake_loop},
        distributions=("fakeloop-dist",),
    )
)
"""


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Whatever a test registers is gone after it, from the registry and the environment."""
    # Set first, so that monkeypatch restores it (unset, most often) after the test: a runtime
    # registered in the test names its module there, for the worker processes.
    monkeypatch.setenv(RUNTIME_MODULES_ENV, "")
    monkeypatch.delenv(RUNTIME_MODULES_ENV)
    saved = dict(RUNTIMES)
    yield
    RUNTIMES.clear()
    RUNTIMES.update(saved)


@pytest.mark.usefixtures("registry")
def test_a_registered_runtime_joins_the_registry_and_its_library_is_recorded() -> None:
    extra = Runtime("extra", "asyncio", "one more", distributions=("extra-dist",))
    assert register_runtime(extra) is extra
    assert list(RUNTIMES)[-1] == "extra"
    assert runtime_named("extra") is extra
    assert register_runtime(extra) is extra  # again: harmless
    assert library_versions()["extra-dist"] is None  # recorded, though not installed
    # Workers, which inherit the environment, import this module to learn of it.
    assert os.environ[RUNTIME_MODULES_ENV].split(",") == [__name__]


@pytest.mark.usefixtures("registry")
def test_a_taken_name_is_refused_in_one_line() -> None:
    with pytest.raises(ValueError, match=r"^runtime 'trio' is registered already; choose another"):
        register_runtime(Runtime("trio", "asyncio", "an impostor"))
    assert RUNTIMES["trio"].backend == "trio"


@pytest.mark.usefixtures("registry")
def test_a_worker_imports_the_modules_named_in_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "late_runtime.py").write_text(
        "from anybench import Runtime, register_runtime\n"
        "register_runtime(Runtime('late', 'trio', 'registered on import'))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(RUNTIME_MODULES_ENV, "late_runtime")
    assert "late" not in RUNTIMES
    assert runtime_named("late").description == "registered on import"


@pytest.mark.usefixtures("registry")
def test_an_installed_distribution_adds_runtimes_through_its_entry_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What pip leaves for a distribution that declares
    # [project.entry-points."anybench.runtimes"] in its pyproject.toml.
    (tmp_path / "ep_runtimes.py").write_text(
        "from anybench import Runtime\n"
        "EPLOOP = Runtime('eploop', 'asyncio', 'from an entry point', distributions=('ep-dist',))\n"
    )
    info = tmp_path / "ep_dist-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-dist\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\neploop = ep_runtimes:EPLOOP\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr("anybench._runtimes._entry_points_loaded", False)
    assert runtime_named("eploop").description == "from an entry point"
    assert library_versions()["ep-dist"] == "1.0"
    assert RUNTIME_MODULES_ENV not in os.environ  # workers read the entry points themselves


@pytest.mark.usefixtures("registry")
def test_a_module_that_cannot_be_imported_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(RUNTIME_MODULES_ENV, "no_such_module_x")
    with pytest.raises(ValueError, match=r"^cannot import 'no_such_module_x' \(named in"):
        runtime_named("nowhere")


def test_a_fake_runtime_from_a_plugin_is_in_the_matrix_the_metadata_and_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "fakeloop_plugin.py").write_text(textwrap.dedent(FAKELOOP_PLUGIN))
    marks = tmp_path / "marks"
    monkeypatch.setenv("FAKELOOP_MARKS", str(marks))
    # Set first, so that monkeypatch restores it (unset, most often) after the test: a runtime
    # registered in the test names its module there, for the worker processes.
    monkeypatch.setenv(RUNTIME_MODULES_ENV, "")
    monkeypatch.delenv(RUNTIME_MODULES_ENV)
    out = tmp_path / "fake.json"
    proc = run_benchmarks(
        "-p",
        "fakeloop_plugin",
        "--scenario",
        "spawn",
        "--scales",
        "10",
        "--processes",
        "2",
        "--max-processes",
        "2",
        "--rounds",
        "1",
        "--runtime",
        "asyncio,fakeloop",
        f"--benchmark-json={out}",
        env_path=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads(out.read_text())
    ran = {(b["extra_info"]["runtime"], b["extra_info"]["processes"]) for b in data["benchmarks"]}
    assert ran == {("asyncio", 2), ("fakeloop", 2)}
    # fakeloop's rounds ran on its own loop, in two worker processes other than pytest's.
    pids = set(marks.read_text().split())
    assert len(pids) == 2
    assert str(os.getpid()) not in pids
    runtimes = data["anybench_run"]["runtimes"]  # the run's own figures
    assert list(runtimes) == ["asyncio", "fakeloop"]
    assert runtimes["fakeloop"] == "asyncio on a loop the fakeloop plugin makes"
    assert "fakeloop-dist" in data["machine_info"]["anybench"]["libraries"]  # the software
    report = tmp_path / "report"
    assert main(["report", str(out), "--out", str(report)]) == 0
    page = (report / "index.md").read_text()
    assert "| scenario | N | asyncio | fakeloop |" in page
    assert "fakeloop-dist" in page  # the Runs table's library columns
