"""nox sessions: ``tests`` (the suite), ``bench`` (the benchmark matrix), ``lint``.

Every session installs what it needs from pyproject.toml's dependency groups. Arguments after
``--`` pass through to pytest, e.g. ``nox -s bench -- --runtime trio,asyncio --profile quick``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import nox

nox.needs_version = ">=2024.3.2"
nox.options.sessions = ["tests", "lint"]
nox.options.default_venv_backend = "venv"

ROOT = Path(__file__).parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
RESULTS = ROOT / "results"


def install(session: nox.Session, group: str) -> None:
    session.install(*nox.project.dependency_groups(PYPROJECT, group))
    session.install(".")


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite: the future, the adapter, and every scenario on every runtime."""
    install(session, "test")
    session.run("pytest", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Run the benchmark matrix, save it as a new file under results/ and print the comparison."""
    install(session, "bench")
    with tempfile.TemporaryDirectory() as scratch:
        raw = Path(scratch) / "run.json"
        # Exit code 1 means some benchmarks failed (a hung scenario, say): the others are still
        # saved and compared, and the comparison names the failures and fails the session.
        session.run(
            "pytest",
            "benchmarks",
            f"--benchmark-json={raw}",
            *session.posargs,
            success_codes=[0, 1],
        )
        if not raw.exists():
            session.error("pytest wrote no results; see its output above")
        saved = session.run("anybench", "save", str(raw), "--into", str(RESULTS), silent=True)
    path = str(saved).strip().splitlines()[-1]
    session.log(f"results saved to {os.path.relpath(path, ROOT)}")
    session.run("python", "benchmarks/crosscheck_spawn.py", path)
    session.run("anybench", "report", path)
    # Last, so that it is what a person reads; it fails the session if a benchmark failed.
    session.run("anybench", "table", path)


def newest_results() -> str:
    runs = sorted(RESULTS.glob("*.json"), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise SystemExit("no results under results/; run 'nox -s bench' first")
    return str(runs[-1])


@nox.session
def report(session: nox.Session) -> None:
    """Write the Markdown and PNG report for results files (default: the newest one)."""
    session.install(".")
    session.run("anybench", "report", *(session.posargs or [newest_results()]))


@nox.session
def compare(session: nox.Session) -> None:
    """Compare two results files: nox -s compare -- OLD.json NEW.json [--threshold 10]."""
    if len([arg for arg in session.posargs if not arg.startswith("-")]) < 2:
        session.error("usage: nox -s compare -- OLD.json NEW.json [--threshold PERCENT]")
    session.install(".")
    session.run("anybench", "compare", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Check style and types: ruff and mypy."""
    install(session, "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
