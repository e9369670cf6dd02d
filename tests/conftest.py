from __future__ import annotations

import gc
import importlib.util
import json
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import pytest

from anybench import Runtime, ScenarioSpec, _run
from anybench.pytest_plugin import runtime_params


@pytest.fixture(autouse=True, scope="session")
def _ctrl_c_as_from_a_terminal() -> Iterator[None]:
    """The tests of a stop (Ctrl-C, SIGTERM) need the SIGINT handler an interactive Python
    has: a shell's background job (``.ci/run &``, and pytest-xdist's workers under it) starts
    with SIGINT ignored, anybench then leaves it ignored, and such a test waited 30 s for a
    signal nobody heard, and failed."""
    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Every test that takes a runtime runs on each selected one (--runtime); the plugin does
    # this by itself only for tests of its measure_scenario fixture.
    if "runtime" in metafunc.fixturenames and "measure_scenario" not in metafunc.fixturenames:
        metafunc.parametrize("runtime", runtime_params(metafunc.config))


@pytest.fixture
def run_on(runtime: Runtime) -> Callable[[Callable[[], Awaitable[object]]], object]:
    """Run an async function to completion on the test's runtime (a fresh anyio.run)."""

    def run(fn: Callable[[], Awaitable[object]]) -> object:
        return anyio.run(fn, backend=runtime.backend, backend_options=runtime.backend_options())

    return run


def expected_ops(scenario: Any, n: int) -> int:
    """How many operations a round of *scenario* at scale *n* does, from what it declares."""
    return ScenarioSpec.of(scenario).ops(n)


ROOT = Path(__file__).resolve().parent.parent
#: anybench's own scenarios: the matrix ``nox -s bench`` runs.
SCENARIOS = ROOT / "scenarios"
#: The scripts beside the matrix (cross-checks, estimates), run as ``python benchmarks/X.py``.
BENCHMARKS = ROOT / "benchmarks"


def load_script(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` imported as module *name* (registered in ``sys.modules``, where
    a dataclass of the script looks its module up)."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# pytest-xdist marks its workers in their environment (PYTEST_XDIST_WORKER), and
# pytest-benchmark switches itself off in any process that inherits the mark: the pytest runs
# that these tests start are runs of their own, not xdist workers.
for _name in [name for name in os.environ if name.startswith("PYTEST_XDIST_")]:
    del os.environ[_name]


def run_benchmarks(*args: str, env_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run anybench's own benchmark matrix (``scenarios/``) with pytest *args* in a subprocess,
    through the one entry point ``anybench run`` and ``nox -s bench`` use
    (:func:`anybench._run.pytest_command`), writing where *args* say.

    *env_path* goes first on PYTHONPATH, for a test plugin passed with ``-p``.
    """
    env = None
    if env_path is not None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(env_path), str(ROOT)])}
    return subprocess.run(
        _run.pytest_command([str(SCENARIOS)], None, args),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


@pytest.fixture
def frozen_heap() -> Iterator[None]:
    """What the test process holds, frozen out of the collector's reach for the test, as a
    worker freezes its own once at start-up: a round run here collects only what the test made.

    For tests that run rounds in this process (:func:`anybench.run_round` collects before
    each): a collection of pytest's whole heap, 150,000 objects and more, took a tenth of a
    second, most of such a test's time. A test with more than one round passes
    ``freeze_heap=False``, as a worker does: a round that freezes the heap itself unfreezes
    all of it when it ends.
    """
    gc.freeze()
    yield
    gc.unfreeze()


@pytest.fixture
def unplotted(monkeypatch: pytest.MonkeyPatch) -> None:
    """The report's plots left undrawn, for tests of its page's text alone: the page is the
    same (it links files that are not written), and drawing is most of a report's time. The
    plots themselves are read in tests/test_plots.py, the tiny report's among them."""
    from anybench import _plots

    for writer in ("bars", "scaling", "latency_vs_scale", "cdf"):
        monkeypatch.setattr(_plots, writer, lambda *args: None)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The tests of the tiny results first (in their order): under pytest-xdist the first
    # worker's first batch takes them all, makes the results (a minute, on one core) and reads
    # them, while the other worker runs the rest; collected in file order, both workers came to
    # them and one waited idle on the other's lock.
    items.sort(key=lambda item: "tiny_results" not in getattr(item, "fixturenames", ()))


@pytest.fixture(scope="session")
def tiny_results(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """A real results file: the whole matrix at N of 40 and 400, and B of 0 and 3.

    Made once per test session, whatever the number of pytest-xdist workers: the first to come
    makes it, under a lock, in the directory they all share.
    """
    if not hasattr(request.config, "workerinput"):  # not a pytest-xdist worker
        return _make_tiny_results(tmp_path_factory.mktemp("bench") / "tiny.json")
    # Imported here: pytest loads this file in the benchmark environment too (nox -s bench
    # runs from the repository, whose testpaths are tests/), which has no filelock.
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp().parent
    with FileLock(str(shared / "tiny.json.lock")):
        out = shared / "tiny.json"
        if not out.exists():
            _make_tiny_results(out)
    return out


def _make_tiny_results(out: Path) -> Path:
    staged = out.with_name(out.name + ".partial")
    # N of 40 and 400, not smaller: a round repeats a short region until it lasts about 2 ms,
    # and below N of 40 the passes' set-ups cost more than the regions (at N=3, timers alone
    # took 9 s of the run's 54: a 10 ms lead before each pass's burst of timers).
    proc = run_benchmarks(
        "--profile",
        "default",
        "--scales",
        "40,400",
        "--loads",
        "0,3",
        "--processes",
        "2",
        "--max-processes",
        "2",
        "--rounds",
        "2",
        f"--benchmark-json={staged}",
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    staged.rename(out)
    return out


@dataclass(frozen=True)
class TinyReport:
    """``anybench report`` of the tiny results, and what reading its plots found."""

    #: The report's directory.
    path: Path
    #: The plots it wrote, by file name, in the order it drew them.
    plots: list[str]
    #: What :func:`tests.test_plots.label_problems` found wrong in them, one line each.
    plot_problems: list[str]


@pytest.fixture(scope="session")
def tiny_report(tiny_results: Path, tmp_path_factory: pytest.TempPathFactory) -> TinyReport:
    """``anybench report`` of the tiny results, written once for the tests that read it.

    Each plot's tick labels are read (tests/test_plots.py) as the report saves it: the whole
    matrix's plots take seconds to draw, and are checked on the very figures the report
    draws rather than drawn a second time.
    """
    from anybench import _plots
    from anybench._cli import main

    from .test_plots import label_problems

    plots: list[str] = []
    problems: list[str] = []
    save = _plots._save

    def read_then_save(fig: Any, path: Path) -> None:
        plots.append(path.name)
        problems.extend(label_problems(fig, path.name))
        save(fig, path)

    out = tmp_path_factory.mktemp("tiny-report") / "report"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_plots, "_save", read_then_save)
        assert main(["report", str(tiny_results), "--out", str(out)]) == 0
    return TinyReport(out, plots, problems)


def remeasured(path: Path, dest: Path, factor: float = 1.0) -> Path:
    """*path*'s run as if measured again into *dest*: every round *factor* times as long and a
    thousandth more or less, process by process (so not the same run twice, which compare,
    agree and combine refuse), and its figures to match."""
    data = json.loads(path.read_text())
    for i, bench in enumerate(data["benchmarks"]):
        info = bench["extra_info"]
        if "round_elapsed_ns" not in info:
            continue
        f = factor * (1.001 if i % 2 else 0.999)
        info["round_elapsed_ns"] = [e * f for e in info["round_elapsed_ns"]]
        if info.get("process_round_elapsed_ns"):
            info["process_round_elapsed_ns"] = [
                [e * f for e in rounds] for rounds in info["process_round_elapsed_ns"]
            ]
        info["ns_per_op"] *= f
    dest.write_text(json.dumps(data))
    return dest
