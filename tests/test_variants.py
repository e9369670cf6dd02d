"""A ``--variant``'s Python, checked once before anything is measured, and a worker that dies
before reading its job: one line each, naming the variant and what to do."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from anybench import _cli
from anybench._measure import Variant, WorkerFailed, run_worker
from anybench._protocol import Job, Plan, ScaleJob
from anybench._sweep import Budget

from .conftest import run_benchmarks


def _script(directory: Path, name: str, body: str) -> Path:
    path = directory / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("exit 1", "it exited with status 1"),
        ("echo hello", "it is not a Python with anybench (it answered 'hello')"),
        # A Python without anybench: site-packages (where anybench is installed) left out.
        (f'exec {sys.executable} -I -S "$@"', "No module named 'anybench'"),
    ],
)
def test_a_variant_that_cannot_run_anybench_is_one_line(
    tmp_path: Path, body: str, why: str
) -> None:
    python = _script(tmp_path, "python", body)
    proc = run_benchmarks("--variant", f"other={python}", "--collect-only", "-q")
    assert proc.returncode == 4, proc.stdout[-2000:] + proc.stderr[-2000:]
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith(f"ERROR: --variant other: {python} cannot run anybench (")
    assert why in line
    assert f"install it there: {python} -m pip install" in line


def test_a_worker_that_dies_before_reading_its_job_names_its_exit_status(tmp_path: Path) -> None:
    # It closes its input and exits; the job is larger than a pipe holds, so the write meets
    # the closed pipe rather than a buffer.
    python = _script(tmp_path, "python", "exec 0<&-\nsleep 0.2\nexit 3")
    job = Job(
        scenario_module="nothing",
        sys_path=tuple(f"/{i:07d}" for i in range(40_000)),
        runtimes=("asyncio",),
        plan=Plan(budget=Budget(processes=2), deadline_s=10),
        scales=(ScaleJob(n=3, runtimes=("asyncio",), latency_rounds=1),),
    )
    with pytest.raises(WorkerFailed) as info:
        list(run_worker(Variant("other", str(python)), job))
    assert str(info.value).startswith("starting: the worker exited with status 3")


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--profile", "quick"],
        ["run", "--profile", "quick", "scenarios/spawn.py"],
        ["run", "--into", "somewhere", "--runtime=asyncio", "scenarios/spawn.py"],
    ],
)
def test_run_needs_its_paths_first(
    argv: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # nothing may be written here
    assert _cli.main(argv) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "anybench: anybench run needs scenario files, directories or module names first: "
        "anybench run PATH... [options]"
    ]
    assert list(tmp_path.iterdir()) == []
