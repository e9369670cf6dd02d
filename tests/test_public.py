"""anybench as another project uses it: an installed wheel, a scenario of the user's own, the
pytest11 plugin left inert in a project that does not use it, and the scenario contract's
one-line errors.

These run anybench in subprocesses at tiny scale; they check what is recorded, never timings.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import site
import subprocess
import sys
import textwrap
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from anybench import ScenarioError, ScenarioSpec
from anybench._run import pytest_command

from .conftest import ROOT

EXAMPLE = ROOT / "examples" / "request_reply.py"
TINY = ["--scales", "3,20", "--processes", "2", "--max-processes", "2", "--rounds", "2"]


def _run(cmd: list[str], cwd: Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS")}
    return subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, timeout=300, env=env, **kwargs
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment outside the repository with a wheel of anybench installed;
    its dependencies come from this interpreter's site-packages (no download)."""
    base = tmp_path_factory.mktemp("public")
    wheels = base / "wheels"
    isolation = [] if importlib.util.find_spec("hatchling") is None else ["--no-build-isolation"]
    command = [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q"]
    built = _run([*command, "-w", str(wheels), *isolation], cwd=base)
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = wheels.glob("anybench-*.whl")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = _run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=base
    ).stdout.strip()
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q"]
    done = _run([*pip, str(wheel)], cwd=base)
    assert done.returncode == 0, done.stderr[-2000:]
    # anyio, trio, pytest-benchmark, ... from here; anybench from the wheel, which comes first.
    # Only now: with this interpreter's site-packages in view, pip would take an anybench
    # installed there (nox installs one) for the wheel, and install nothing.
    (Path(purelib) / "_anybench_test_deps.pth").write_text(
        "\n".join([*site.getsitepackages(), site.getusersitepackages()]) + "\n"
    )
    return venv


def test_a_users_scenario_runs_from_an_installed_wheel(installed: Path, tmp_path: Path) -> None:
    """The README's "Benchmark your own code", in an empty directory: run, report, compare."""
    work = tmp_path / "project"
    work.mkdir()
    shutil.copy(EXAMPLE, work / "my_scenario.py")
    bin_dir = installed / "bin"
    where = _run([str(bin_dir / "python"), "-c", "import anybench; print(anybench.__file__)"], work)
    assert Path(where.stdout.strip()).is_relative_to(installed), where.stdout + where.stderr
    # The dependencies come from this interpreter here, so check that the wheel declares what
    # `pip install anybench` must bring for `anybench run` on a fresh machine.
    code = "from importlib.metadata import requires; print('\\n'.join(requires('anybench')))"
    declared = _run([str(bin_dir / "python"), "-c", code], work).stdout.split("\n")
    names = {re.split(r"[ ;<>=!~\[]", line, maxsplit=1)[0].lower() for line in declared if line}
    assert {"anyio", "trio", "pytest", "pytest-benchmark", "scipy", "matplotlib"} <= names, names
    runtimes = ["asyncio", "trio"]
    if importlib.util.find_spec("uvloop") is not None:
        runtimes.append("uvloop")
    anybench = str(bin_dir / "anybench")
    cmd = [anybench, "run", "my_scenario.py", "--runtime", ",".join(runtimes), *TINY]
    first = _run([*cmd, "-p", "no:cacheprovider"], work)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    # The default place, said out loud (what a run reports is checked on the first).
    second = _run([*cmd, "--into", "results", "--no-report"], work)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    saved = sorted((work / "results").glob("*.json"))
    assert len(saved) == 2  # never overwritten
    assert f"results saved to {saved[0].relative_to(work)}" in first.stdout
    assert "report written to results/report-" in first.stdout
    # The matrix is measured before any test reports: each pass says so as it ends.
    assert "anybench: pass 1 over the matrix done (2 groups" in first.stdout, first.stdout[-3000:]
    data = json.loads(saved[0].read_text())
    got = {(b["extra_info"]["scenario"], b["extra_info"]["scale"], b["extra_info"]["runtime"])
           for b in data["benchmarks"]}  # fmt: skip
    assert got == {("request_reply", n, rt) for n in (3, 20) for rt in runtimes}
    assert {b["extra_info"]["parameters"]["BUFFER"] for b in data["benchmarks"]} == {64}
    assert data["anybench_run"]["failed"] == []
    report = _run([anybench, "report", *map(str, saved), "--out", "both"], work)
    assert report.returncode == 0, report.stderr
    assert "request_reply" in (work / "both" / "index.md").read_text()
    compare = _run([anybench, "compare", *map(str, saved)], work)
    assert compare.returncode in (0, 1), compare.stderr  # 1 is a verdict, not a crash
    assert "request_reply" in compare.stdout
    assert "Traceback" not in compare.stderr + report.stderr + first.stderr


def _foreign_project(tmp_path: Path) -> Path:
    project = tmp_path / "foreign"
    project.mkdir()
    (project / "conftest.py").write_text(
        textwrap.dedent(
            """
            import pytest

            @pytest.fixture
            def runtime():
                return "the project's own runtime"

            @pytest.fixture
            def scenario():
                return "the project's own scenario"
            """
        )
    )
    (project / "test_own.py").write_text(
        textwrap.dedent(
            """
            def test_own(runtime, scenario):
                assert runtime == "the project's own runtime"
                assert scenario == "the project's own scenario"

            def test_benchmarked(benchmark):
                benchmark(sum, range(10))
            """
        )
    )
    return project


def test_the_plugin_is_inert_in_a_project_that_does_not_use_it(tmp_path: Path) -> None:
    project = _foreign_project(tmp_path)
    proc = _run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v", "--benchmark-json=b.json"],
        project,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "test_own.py::test_own PASSED" in proc.stdout  # not parametrized over runtimes
    assert "2 passed" in proc.stdout
    assert not list(project.rglob("*.journal"))
    assert "anybench_run" not in json.loads((project / "b.json").read_text())
    # ... and it is there, with its options.
    helped = _run([sys.executable, "-m", "pytest", "--help"], project)
    assert "--scenarios=PATHS" in helped.stdout


def test_a_projects_own_test_of_measure_scenario_runs_on_each_runtime(tmp_path: Path) -> None:
    project = tmp_path / "own"
    project.mkdir()
    shutil.copy(EXAMPLE, project / "my_scenario.py")
    (project / "test_bench.py").write_text(
        textwrap.dedent(
            """
            import my_scenario

            def test_my_client(measure_scenario, runtime):
                measure_scenario(my_scenario, runtime, 20)
            """
        )
    )
    proc = _run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v", "--rootdir", ".",
         "--runtime", "asyncio,trio", *TINY[2:], "--benchmark-json=b.json"],
        project,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "test_my_client[asyncio] PASSED" in proc.stdout
    assert "test_my_client[trio] PASSED" in proc.stdout
    data = json.loads((project / "b.json").read_text())
    assert {b["extra_info"]["runtime"] for b in data["benchmarks"]} == {"asyncio", "trio"}
    assert data["anybench_run"]["failed"] == []


#: How long the measured region of the scenarios written here lasts: above the 2 ms a round's
#: region is planned to reach (anybench._worker.TARGET_REGION_NS), so that a round is one pass;
#: an empty region is repeated 2,000 times a round, with a collection before each (7 s a run).
REGION_S = 0.0025


def _write_scenario(directory: Path, body: str, name: str = "my_scen.py") -> Path:
    path = directory / name
    path.write_text(
        textwrap.dedent(
            """
            import time

            import anybench

            NAME = "my_scen"
            OPERATION = "nothing much"
            LATENCIES = {}

            async def run(n, probe):
                probe.start(ops=n)
                time.sleep(REGION_S)
                probe.stop()
            """
        ).replace("REGION_S", repr(REGION_S))
        + textwrap.dedent(body)
    )
    return path


def test_a_misspelled_field_fails_collection_in_one_line(tmp_path: Path) -> None:
    _write_scenario(tmp_path, "MAXN = 10\n")
    proc = _run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--scenarios",
                 "my_scen.py"], tmp_path)  # fmt: skip
    assert proc.returncode == 4
    assert proc.stderr.strip() == "ERROR: my_scen.py: unknown field MAXN (did you mean MAX_N?)"
    run = _run([sys.executable, "-m", "anybench", "run", "my_scen.py"], tmp_path)
    assert run.returncode == 4
    assert "my_scen.py: unknown field MAXN (did you mean MAX_N?)" in run.stderr
    assert "Traceback" not in run.stderr


def _module(**fields: Any) -> types.ModuleType:
    module = types.ModuleType("scen")
    module.__file__ = "scen.py"

    async def run(n: int, probe: Any) -> None:
        pass

    defaults: dict[str, Any] = {"NAME": "s", "OPERATION": "op", "LATENCIES": {}, "run": run}
    for key, value in {**defaults, **fields}.items():
        if value is not None:
            setattr(module, key, value)
    return module


def _sync_run(n: int, probe: Any) -> None:
    pass


async def _async_run(n: int, probe: Any) -> None:
    pass


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"OPERATION": None}, "scen.py: missing field OPERATION ("),
        ({"run": None}, "scen.py: missing field run ("),
        ({"run": _sync_run}, "scen.py: run must be an async function"),
        ({"MAX_N": "10"}, "scen.py: MAX_N must be a whole number of at least 1, not '10'"),
        ({"AXIS": "B"}, "scen.py: AXIS must be one of 'n', 'load', not 'B'"),
        ({"AXIS": "load"}, "scen.py: AXIS 'load' needs SAMPLES"),
        ({"LATENCIES": ["wake"]}, "scen.py: LATENCIES must map names to text"),
        ({"CAVEATS": {"tokio": "x"}}, "scen.py: CAVEATS names unknown backend 'tokio'"),
        ({"LATENCY": {}}, "scen.py: unknown field LATENCY (did you mean LATENCIES?)"),
        ({"runn": _async_run}, "scen.py: unknown field runn (did you mean run?)"),
    ],
)
def test_the_contract_is_checked_in_one_line(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        ScenarioSpec.from_module(_module(**fields))
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_constants_are_parameters_and_declared_near_misses_are_allowed() -> None:
    import anybench

    spec = ScenarioSpec.from_module(
        _module(
            BACKGROUND_TASKS=8,
            SAMPLE=3,
            PARAMETERS=("SAMPLE",),
            TRIO_CALLBACKS_CAVEAT=anybench.TRIO_CALLBACKS_CAVEAT,  # imported: not a parameter
            LOOKUP={"a": 1},
            HELPER=object(),  # not plain data: not a parameter
        )
    )
    assert dict(spec.parameters) == {"BACKGROUND_TASKS": 8, "LOOKUP": {"a": 1}, "SAMPLE": 3}
    assert spec.max_n is None
    assert spec.axis == "n"
    assert spec.ops(7) == 7


def test_every_field_default_is_what_a_minimal_scenario_gets() -> None:
    from anybench._scenario import FIELDS

    spec = ScenarioSpec.from_module(_module())
    by_attr: dict[str, Callable[[ScenarioSpec], Any]] = {
        "AXIS": lambda s: s.axis,
        "MAX_N": lambda s: s.max_n,
        "NATIVE_OF": lambda s: s.native_of,
        "CAVEATS": lambda s: dict(s.caveats),
        "SAMPLES": lambda s: s.samples,
        "OPS_PER_N": lambda s: s.ops_per_n,
        "EARLY_TOLERANCE_NS": lambda s: s.early_tolerance_ns,
    }
    for f in FIELDS:
        assert f.meaning
        if f.name in by_attr:
            default = dict(f.default) if f.name == "CAVEATS" else f.default
            assert by_attr[f.name](spec) == default, f.name


def test_pytest_benchmark_save_compare_and_histogram_work(tmp_path: Path) -> None:
    """README's promise: pytest-benchmark's own options, on anybench's benchmarks."""
    storage = tmp_path / "storage"
    args = pytest_command([str(ROOT / "scenarios")], None, [
        "--scenario", "done_callback", "--runtime", "asyncio", "--scales", "40", *TINY[2:],
        f"--benchmark-storage=file://{storage}",
    ])  # fmt: skip
    saved = _run([*args, "--benchmark-save=one"], ROOT)
    assert saved.returncode == 0, saved.stdout[-3000:] + saved.stderr[-3000:]
    [file] = storage.glob("*/0001_one.json")
    assert "anybench_run" in json.loads(file.read_text())
    histogram = tmp_path / "hist"
    compared = _run(
        [
            *args,
            "--benchmark-compare=0001",
            "--benchmark-compare-fail=mean:100000%",
            f"--benchmark-histogram={histogram}",
        ],
        ROOT,
    )
    assert compared.returncode == 0, compared.stdout[-3000:] + compared.stderr[-3000:]
    assert "Comparing against benchmarks from" in compared.stdout + compared.stderr
    assert "0001_one" in compared.stdout
    assert list(tmp_path.glob("hist*.svg"))


def test_scenarios_are_found_by_file_directory_or_module_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from anybench._scenario import load_scenarios

    monkeypatch.setattr(sys, "path", list(sys.path))  # the import adds the package's root
    try:
        _find_scenarios(tmp_path, load_scenarios)
    finally:
        for name in ("mypkg", "mypkg.first", "mypkg.second", "again"):
            sys.modules.pop(name, None)


def _find_scenarios(tmp_path: Path, load_scenarios: Any) -> None:

    package = tmp_path / "mypkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    _write_scenario(package, "", name="first.py")
    _write_scenario(package, "NAME = 'second'\n", name="second.py")
    (package / "_helpers.py").write_text("X = 1\n")  # private: not a scenario
    found = load_scenarios([str(package)])
    assert [spec.name for _, spec in found] == ["my_scen", "second"]
    assert [spec.module for _, spec in found] == ["mypkg.first", "mypkg.second"]
    assert {spec.import_root for _, spec in found} == {str(tmp_path)}
    [(path, _)] = load_scenarios(["mypkg.second"])  # importable now that its root is on the path
    assert path == package / "second.py"
    with pytest.raises(ScenarioError, match=r"^nowhere\.py: no such scenario file or directory$"):
        load_scenarios(["nowhere.py"])
    # One scenario named twice (a file twice, its directory, its module name) is one scenario:
    # two of its benchmarks would share a key.
    first = str(package / "first.py")
    twice = load_scenarios([first, first, str(package), "mypkg.first"])
    assert [(path, spec.name) for path, spec in twice] == [
        (package / "first.py", "my_scen"),
        (package / "second.py", "second"),
    ]
    not_one = tmp_path / "some.json"
    not_one.write_text("{}")
    with pytest.raises(ScenarioError) as info:
        load_scenarios([str(not_one)])
    assert str(info.value) == (
        f"{not_one} is not a scenario (a .py file, a directory of them, or an importable "
        "module name)"
    )
    _write_scenario(tmp_path, "", name="again.py")
    with pytest.raises(ScenarioError, match="NAME 'my_scen' is also the NAME of"):
        load_scenarios([str(package / "first.py"), str(tmp_path / "again.py")])


def test_a_benchmark_collected_twice_is_one_line_before_measuring(tmp_path: Path) -> None:
    """A project's own test of a scenario and ``--scenarios`` of the same one would make two
    benchmarks of one key, which no results file can hold: refused before anything runs."""
    _write_scenario(tmp_path, "")
    (tmp_path / "test_mine.py").write_text(
        textwrap.dedent(
            """
            import pytest
            import my_scen

            @pytest.mark.parametrize(("scenario", "n"), [(my_scen, 3)])
            def test_mine(measure_scenario, scenario, n, runtime):
                measure_scenario(scenario, runtime, n)
            """
        )
    )
    options = ["--scenarios", "my_scen.py", "--runtime", "asyncio", "--scales", "3"]
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_mine.py"]
    proc = _run([*command, *options, "--collect-only", "-q"], cwd=tmp_path)
    assert proc.returncode == 4, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines() == [
        "ERROR: my_scen N=3 on asyncio is collected twice (test_mine.py::test_mine[asyncio-"
        "my_scen-3] and my_scen.py::test_scenario[my_scen-3-asyncio]); a results file holds each "
        "benchmark once: run the scenario through one of them"
    ]


#: nox's session.run, as the noxfile's run_benchmarks calls it, without making a venv: the
#: noxfile's own call (its interrupt_timeout) through nox's own popen.
_NOX_SESSION = """
import sys
from pathlib import Path

sys.path.insert(0, sys.argv[1])
import nox.popen
import noxfile


class Session:
    def run(self, *args, success_codes=(0,), **timeouts):
        cmd = [sys.executable, "-m", "anybench", *args[1:]] if args[0] == "anybench" else args
        code, _ = nox.popen.popen(cmd, stderr=None, **timeouts)
        if code not in success_codes:
            raise SystemExit(f"nox: command failed with exit code {code}")

    def log(self, message):
        print(message)

    def error(self, message):
        raise SystemExit(message)


paths = noxfile.run_benchmarks(
    Session(), *sys.argv[2:], targets=["a_fast.py", "b_hangs.py"], into=Path("results")
)
"""


def test_an_interrupted_run_saves_what_finished_marked_partial(tmp_path: Path) -> None:
    """Ctrl-C in a terminal (the whole foreground group gets it) during ``anybench run``, or
    during ``nox -s bench`` (nox's session.run, which terminates its command shortly after an
    interrupt unless told to wait): the finished scenario is saved at once and its path
    printed, the rest is not lost. Through nox where it is installed (``nox -s tests`` does not
    install it), else through ``anybench run`` alone."""
    through = "anybench" if importlib.util.find_spec("nox") is None else "nox"
    # The passes run the two in a shuffled order: a_fast finishes in the first worker process
    # that runs it and hangs in any later one, so that whichever comes first, the run is stuck
    # (and interrupted) with one process of a_fast finished and none of b_hangs.
    first = tmp_path / "a_fast.pid"
    _write_scenario(
        tmp_path,
        f"""
        NAME = "a_fast"
        import os
        from pathlib import Path

        import anyio

        async def run(n, probe):
            first = Path({str(first)!r})
            if not first.exists():
                first.write_text(str(os.getpid()))
            probe.start(ops=n)
            if first.read_text() != str(os.getpid()):
                await anyio.Event().wait()
            time.sleep({REGION_S})
            probe.stop()
        """,
        name="a_fast.py",
    )
    _write_scenario(
        tmp_path,
        """
        NAME = "b_hangs"
        import anyio

        async def run(n, probe):
            probe.start(ops=n)
            await anyio.Event().wait()
        """,
        name="b_hangs.py",
    )
    # A project whose pytest makes every warning an error (as anybench's own does): the stop
    # still ends in one line, not a traceback of pytest-benchmark's "Not saving anything".
    (tmp_path / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\nfilterwarnings = ["error"]\n'
    )
    incoming = tmp_path / "results" / ".incoming"
    # A hang fails at the deadline, and the run goes on to the other scenario.
    options = ["--runtime", "asyncio", "--scales", "3", *TINY[2:], "--deadline", "2"]
    if through == "nox":
        cmd = [sys.executable, "-c", _NOX_SESSION, str(ROOT), *options]
    else:
        cmd = [sys.executable, "-m", "anybench", "run", "a_fast.py", "b_hangs.py", *options]
    proc = subprocess.Popen(
        cmd,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # our signal reaches its pytest and workers, never us
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(
        '"event": "process"' in j.read_text() for j in incoming.glob("*.journal")
    ):
        time.sleep(0.2)
    time.sleep(1)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode not in (0, 1), out[-2000:] + err[-2000:]
    assert "PytestBenchmarkWarning" not in out + err, out[-2000:] + err[-2000:]
    if through == "anybench":  # (the stand-in for nox above lets its KeyboardInterrupt out)
        assert "Traceback" not in out + err, out[-2000:] + err[-2000:]
    [saved] = (tmp_path / "results").glob("*.json")
    assert f"results saved to results/{saved.name}" in out, out[-2000:] + err[-2000:]
    data = json.loads(saved.read_text())
    assert "interrupted" in data["anybench_run"]["partial"]
    assert {b["extra_info"]["scenario"] for b in data["benchmarks"]} == {"a_fast"}
    assert not incoming.exists()


def test_two_runs_at_once_into_one_directory_save_everything_and_leave_nothing_else(
    tmp_path: Path,
) -> None:
    """A run that starts while another writes into the same results directory leaves the
    other's journal to it; both save every benchmark; nothing else is left in the project
    (no .pytest_cache, .benchmarks, __pycache__ or .incoming)."""
    _write_scenario(tmp_path, "NAME = 'a_fast'\n", name="a_fast.py")
    # Its workers wait for the gate once the first run has a journal (a finished process, in
    # whichever order the shuffled passes take the two): the first run is still going, and its
    # journal live, while the second runs.
    gate = tmp_path / "gate"
    journals = str(tmp_path / "results" / ".incoming" / "*.journal")
    _write_scenario(
        tmp_path,
        f"""
        NAME = "b_gated"
        import glob, os, sys, time

        if "anybench._worker" in sys.orig_argv and glob.glob({journals!r}):
            for _ in range(1200):
                if os.path.exists({str(gate)!r}):
                    break
                time.sleep(0.05)
        """,
        name="b_gated.py",
    )
    incoming = tmp_path / "results" / ".incoming"
    options = ["--runtime", "asyncio", "--scales", "3", *TINY[2:]]
    run = [sys.executable, "-m", "anybench", "run"]
    first = subprocess.Popen(
        [*run, "a_fast.py", "b_gated.py", *options],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while (
            time.monotonic() < deadline
            and first.poll() is None
            and not any('"event": "process"' in j.read_text() for j in incoming.glob("*.journal"))
        ):
            time.sleep(0.1)
        assert first.poll() is None, "the first run ended before the second could start"
        second = _run([*run, "a_fast.py", *options], tmp_path)
        assert first.poll() is None, "the second run did not overlap the first"
    finally:
        gate.write_text("")
        out, err = first.communicate(timeout=120)
    assert first.returncode == 0, out[-2000:] + err[-2000:]
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-2000:]
    assert "recover" not in second.stdout + second.stderr
    scenarios_of = {}
    for saved in (tmp_path / "results").glob("*.json"):
        data = json.loads(saved.read_text())
        assert "partial" not in data["anybench_run"], saved
        scenarios_of[saved.name] = sorted(b["extra_info"]["scenario"] for b in data["benchmarks"])
    assert sorted(scenarios_of.values()) == [["a_fast"], ["a_fast", "b_gated"]]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a_fast.py",
        "b_gated.py",
        "gate",
        "results",
    ]
    left = sorted(p.name for p in (tmp_path / "results").iterdir())
    reports = [f"report-{Path(name).stem}" for name in scenarios_of]
    assert left == sorted([*scenarios_of, *reports])


def test_when_no_benchmark_finishes_the_last_line_says_why(tmp_path: Path) -> None:
    _write_scenario(
        tmp_path,
        """
        NAME = "broken"

        async def run(n, probe):
            raise RuntimeError(f"broken at {n}")
        """,
        name="broken.py",
    )
    run = _run([sys.executable, "-m", "anybench", "run", "broken.py", "--runtime", "asyncio",
                "--scales", "3", *TINY[2:]], tmp_path)  # fmt: skip
    assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-2000:]
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("anybench: no benchmark finished: 1 failed ("), last
    assert "RuntimeError: broken at 3" in last, last
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.py"]


def test_a_usage_error_recovers_nothing_and_a_bad_journal_never_stops_a_run(
    tmp_path: Path,
) -> None:
    _write_scenario(tmp_path, "")
    incoming = tmp_path / "results" / ".incoming"
    incoming.mkdir(parents=True)
    journal = incoming / "run-old.json.journal"
    bad = '{"event": "header", "format": 1, "machine_info": null}\n{"event": "benchmark"}\n'
    journal.write_text(bad)
    base = [sys.executable, "-m", "anybench", "run", "my_scen.py", "--no-report"]
    run = _run([*base, "--profile", "nope"], tmp_path)
    assert run.returncode == 4
    assert "unknown profile 'nope'" in run.stderr
    assert journal.read_text() == bad
    assert "recover" not in run.stdout + run.stderr
    # A journal whose header is unusable is moved aside in one line; the run goes on.
    run = _run([*base, "--runtime", "asyncio", "--scales", "3", *TINY[2:]], tmp_path)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert len(list((tmp_path / "results").glob("*.json"))) == 1
    [line] = [line for line in run.stderr.splitlines() if "run-old" in line]
    assert line.endswith(
        "machine_info is not a mapping; moved aside to run-old.json.journal.unreadable"
    )
    assert (incoming / "run-old.json.journal.unreadable").read_text() == bad


def test_the_reasons_nothing_finished_come_from_pytest(tmp_path: Path) -> None:
    from anybench._run import _why_nothing

    report = tmp_path / "outcomes.xml"
    report.write_text(
        """<testsuites><testsuite>
        <testcase name="a"><skipped type="pytest.skip" message="rloop: not installed"/></testcase>
        <testcase name="b"><skipped type="pytest.skip" message="rloop: not installed"/></testcase>
        <testcase name="c"><failure message="TypeError: run() takes 1 positional argument"/>
        </testcase></testsuite></testsuites>"""
    )
    assert _why_nothing(0, report) == (
        "no benchmark finished: 2 skipped (rloop: not installed) / "
        "1 failed (TypeError: run() takes 1 positional argument)"
    )
    assert _why_nothing(1, tmp_path / "missing.xml") == (
        "no benchmark finished: see pytest output above"
    )
    assert "interrupted" in _why_nothing(2, None)
