"""pytest plugin: anybench's options and hooks (the fixture's machinery is in
:mod:`anybench._fixture`).

Installed, it registers itself through the ``pytest11`` entry point, and is inert until used: in
a project that does not use its options or fixtures it adds its options and changes nothing
else (no parametrization, no measurement, no journal). It acts on

- tests that request the ``measure_scenario`` fixture: parametrized over the selected runtimes
  (``runtime``) and variants (``variant``), measured in worker processes and recorded through
  pytest-benchmark;
- ``--scenarios PATHS``: the scenario modules named (files, directories of them, or importable
  module names) become a benchmark matrix of their own, ``<file>::test_scenario[NAME-N-RUNTIME]``,
  every scale of the sweep on every selected runtime; ``anybench run`` runs exactly this.

Options (also usable after ``nox -s bench --``): ``--runtime``, ``--scenario``, ``--scenarios``,
``--profile``, ``--scales``, ``--loads``, ``--processes``, ``--max-processes``, ``--rounds``,
``--variant``, ``--pairing``, ``--memory-limit``, ``--deadline`` (see ``pytest --help``).

Public helpers for a project's own conftest, from :mod:`anybench._matrix` (which scenarios,
scales and runtimes the options choose): :func:`runtime_params` (one ``pytest.param`` per
selected runtime, a missing one a skip), :func:`scenario_params` (scenario x scale),
:func:`selected_scenarios`, :func:`selected_scales`, :func:`scenario_scales` and
:func:`check_runnable`. Each scale option (``--scales``, ``--loads``) is an axis of
:data:`anybench._sweep.AXES`.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import pytest

from . import __version__
from ._fixture import STATE, InLoopClock, Measurer, MeasureScenario, RunState, peak_rss_bytes
from ._harness import DEFAULT_DEADLINE_S
from ._matrix import (
    BOUNDS,
    MAX_DEADLINE_S,
    ScenarioFile,
    check_choices,
    check_runnable,
    comma_list,
    physical_memory_mb,
    runtime_params,
    scale_params,
    scenario_params,
    scenario_scales,
    selected_runtimes,
    selected_scales,
    selected_scenarios,
    selected_variants,
)
from ._measure import DEFAULT_PAIRING, Plan, resolved_pairing
from ._results import RESULTS_FORMAT, write_run_info
from ._runtimes import RUNTIMES, Runtime, library_versions
from ._scenario import ScenarioError, ScenarioSpec, load_scenarios
from ._sweep import AXES, DEFAULT_PROFILE, MAX_ROUNDS, PROFILES, profile, scale_text

__all__ = [
    "InLoopClock",
    "MeasureScenario",
    "check_runnable",
    "runtime_params",
    "scenario_params",
    "scenario_scales",
    "selected_runtimes",
    "selected_scales",
    "selected_scenarios",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("anybench")
    group.addoption(
        "--scenarios",
        action="append",
        default=[],
        metavar="PATHS",
        help="benchmark these scenario modules (comma-separated files, directories of them, or "
        "module names) on every selected runtime; without test paths, only these run",
    )
    group.addoption(
        "--scenario",
        action="append",
        default=[],
        metavar="NAMES",
        help="comma-separated scenario NAMEs to run, of those found (default: all)",
    )
    group.addoption(
        "--runtime",
        action="append",
        default=[],
        metavar="NAMES",
        help=f"comma-separated runtimes to run; known: {', '.join(RUNTIMES)} (default: all)",
    )
    group.addoption(
        "--profile",
        default=DEFAULT_PROFILE,
        metavar="NAME",
        help=f"scale sweep for benchmarks (default: {DEFAULT_PROFILE})",
    )
    for axis in AXES.values():  # --scales (N), --loads (B)
        group.addoption(
            axis.option,
            default=None,
            metavar=f"{axis.symbol},{axis.symbol}",
            help=f"comma-separated {axis.meaning}, instead of the profile's",
        )
    group.addoption(
        "--processes",
        type=int,
        default=None,
        metavar="P",
        help=f"fresh worker processes per benchmark, at least, {_bounds('processes')} "
        "(default: the profile's, 3; raises the profile's --max-processes if above it)",
    )
    group.addoption(
        "--max-processes",
        type=int,
        default=None,
        metavar="P",
        help="more processes, up to this many, for benchmarks whose interval is still wider "
        "than ±2%% (with several --variant options: whose ratio between two variants, paired "
        f"by pass, is wider than ±5%%) (default: the profile's; {_bounds('max_processes')}, "
        "not fewer than --processes)",
    )
    group.addoption(
        "--rounds",
        type=int,
        default=None,
        metavar="R",
        help=f"throughput rounds per process, fixed, {_bounds('rounds')} (default: planned "
        f"from the profile's budget, {min(p.budget.min_rounds for p in PROFILES.values())} to "
        f"{MAX_ROUNDS})",
    )
    group.addoption(
        "--variant",
        action="append",
        default=[],
        metavar="LABEL=PYTHON",
        help="also measure in this environment (a Python with anybench and its own library "
        "versions installed), interleaved with the others; repeatable",
    )
    group.addoption(
        "--pairing",
        default=None,
        metavar="HOW",
        help="how the --variant's workers of a benchmark meet in each pass: 'alternate' "
        "(one after the other, their order reversed each pass), 'duet' (at the same moment, "
        "one per CPU; needs two CPUs and exactly two variants) or 'lockstep' (alive at once, "
        "pinned to one CPU, their rounds taking turns, one at a time); default: "
        f"{DEFAULT_PAIRING} (with one variant there is nothing to pair)",
    )
    group.addoption(
        "--memory-limit",
        type=float,
        default=_default_memory_limit_mb(),
        metavar="MIB",
        help="kill a worker whose resident memory passes this (default: 3/4 of physical "
        "memory; at most twice it)",
    )
    group.addoption(
        "--deadline",
        type=float,
        default=DEFAULT_DEADLINE_S,
        metavar="SECONDS",
        help=f"fail a round that takes longer than this (default: {DEFAULT_DEADLINE_S:g}; at "
        f"most {MAX_DEADLINE_S}, a day)",
    )


def _bounds(option: str) -> str:
    lowest, highest = BOUNDS[option]
    return f"{lowest} to {highest}"


def _default_memory_limit_mb() -> float | None:
    physical = physical_memory_mb()
    return physical * 0.75 if physical else None


_SCENARIO_FILES = pytest.StashKey[dict[Path, ScenarioSpec]]()


def pytest_configure(config: pytest.Config) -> None:
    check_choices(config)
    variants = selected_variants(config)
    config.stash[STATE] = RunState(
        plan=_plan(config),
        variants=variants,
        pairing=resolved_pairing(config.getoption("pairing"), len(variants)),
        deadline_s=config.getoption("deadline"),
        journal_target=config.getoption("benchmark_json", None),
    )
    # Its hooks record the benchmarks' failures and end the journal.
    config.pluginmanager.register(config.stash[STATE], "anybench-run-state")
    config.stash[_SCENARIO_FILES] = {}
    targets = [t for value in config.getoption("scenarios") for t in comma_list(value, "scenarios")]
    if not targets:
        return
    target = config.getoption("benchmark_json", None)
    problem = _unwritable_reason(Path(target)) if target else None
    if problem:
        # Its journal goes beside it: a run that cannot write there would lose everything.
        raise pytest.UsageError(
            f"--benchmark-json {target}: cannot write there ({problem}); choose a path in a "
            "directory you can write to"
        )
    try:
        found = load_scenarios(targets)
    except ScenarioError as exc:
        raise pytest.UsageError(str(exc)) from None
    chosen = {spec.name for spec in selected_scenarios(config, [spec for _, spec in found])}
    check_runnable(config, [spec for _, spec in found if spec.name in chosen])
    files = {path: spec for path, spec in found if path is not None and spec.name in chosen}
    config.stash[_SCENARIO_FILES] = files
    # The scenario files are what this run collects: beside the test paths given, or instead of
    # the default ones (testpaths, the current directory).
    paths = [str(path) for path in files]
    if config.args_source == pytest.Config.ArgsSource.ARGS:
        config.args = [*config.args, *paths]
    else:
        config.args = paths


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> Any:
    if module_path.resolve() in parent.config.stash.get(_SCENARIO_FILES, {}):
        return ScenarioFile.from_parent(parent, path=module_path)
    return None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Only tests that use anybench's fixture, or its matrix: a project's own fixture called
    # ``runtime`` or ``variant`` is left alone.
    if "measure_scenario" not in metafunc.fixturenames:
        return
    config = metafunc.config
    parent = metafunc.definition.parent
    if isinstance(parent, ScenarioFile):
        spec = config.stash[_SCENARIO_FILES][parent.path.resolve()]
        # chosen by --scenario already: only the chosen files are collected
        metafunc.parametrize(("scenario", "n"), scale_params(config, [spec]))
    if "runtime" in metafunc.fixturenames:
        metafunc.parametrize("runtime", runtime_params(config))
    variants = config.stash[STATE].variants
    if variants and "variant" in metafunc.fixturenames:
        metafunc.parametrize("variant", list(variants), ids=list(variants))


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_machine_info(
    config: pytest.Config, machine_info: dict[str, Any]
) -> None:
    """Record, beside pytest-benchmark's machine info, what anybench's numbers depend on.

    Only what identifies the machine and the software: pytest-benchmark compares machine infos
    between runs and warns when they differ. The run's own figures are in ``anybench_run``
    (see :func:`pytest_benchmark_update_json`).
    """
    machine_info["anybench"] = {
        "format": RESULTS_FORMAT,
        "method": "worker processes, runtimes interleaved; throughput and latency rounds apart",
        "version": __version__,
        "libraries": library_versions(),
        "python_implementation": platform.python_implementation(),
        "timer": "time.perf_counter_ns",
    }


def run_info(config: pytest.Config) -> dict[str, Any]:
    """The run's own figures, as :func:`anybench._results.write_run_info` lays them out."""
    state = config.stash[STATE]
    runtimes = selected_runtimes(config)
    return write_run_info(
        run_id=state.run_id,
        profile=config.getoption("profile"),
        scales={axis: list(selected_scales(config, axis=axis)) for axis in AXES},
        runtimes={rt.name: rt.description for rt in runtimes},
        unavailable_runtimes={
            rt.name: reason for rt in runtimes if (reason := rt.unavailable_reason()) is not None
        },
        timer_cost_ns=state.timer_cost_ns,
        failed=state.failures,
        peak_rss_bytes=peak_rss_bytes(),
        pairing=state.pairing if len(state.variants) > 1 else None,
        started=state.started or None,
    )


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_json(
    config: pytest.Config, benchmarks: Any, output_json: dict[str, Any]
) -> None:
    """Put the run's own figures in the results file, at its top level (``anybench_run``),
    where pytest-benchmark does not compare them; only in a run of anybench benchmarks."""
    state = config.stash.get(STATE, None)
    if state is not None and state.nodeids:
        output_json["anybench_run"] = run_info(config)


@pytest.fixture
def variant(request: pytest.FixtureRequest) -> str:
    """The environment a benchmark runs in: "" for this interpreter (see ``--variant``)."""
    return ""


@pytest.fixture
def measure_scenario(request: pytest.FixtureRequest, variant: str) -> MeasureScenario:
    """``measure_scenario(scenario, runtime, n)``: benchmark a scenario (a module or
    :class:`~anybench.ScenarioSpec`) at a scale of its axis (N, or B) on a runtime, recorded
    through pytest-benchmark (see :class:`anybench._fixture.Measurer`)."""
    return Measurer(request, variant, lambda: run_info(request.config))


def _plan(config: pytest.Config) -> Plan:
    limit_mb = config.getoption("memory_limit")
    return Plan(
        budget=profile(config.getoption("profile")).budget.overridden(
            processes=config.getoption("processes"),
            max_processes=config.getoption("max_processes"),
            rounds=config.getoption("rounds"),
        ),
        deadline_s=config.getoption("deadline"),
        memory_limit_bytes=int(limit_mb * 2**20) if limit_mb else None,
    )


#: Why a benchmark refuses to run in a pytest-xdist worker.
_NOT_UNDER_XDIST = (
    "anybench benchmarks do not run under pytest-xdist (-n): benchmarks measured side by side "
    "slow each other down; drop -n (each benchmark has worker processes of its own)"
)


def pytest_runtest_setup(item: pytest.Item) -> None:
    # A pytest-xdist worker (config.workerinput) cannot stop the run at collection without an
    # internal error: each benchmark fails in one line instead, and nothing is measured.
    state = item.config.stash.get(STATE, None)
    if state is not None and item.nodeid in state.nodeids and hasattr(item.config, "workerinput"):
        pytest.fail(_NOT_UNDER_XDIST, pytrace=False)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Note which benchmarks are selected, so that a scenario's group measures exactly those."""
    state = config.stash[STATE]
    collected: dict[tuple[str, tuple[int, str, str]], str] = {}
    for item in items:
        if "measure_scenario" not in getattr(item, "fixturenames", ()):
            continue
        state.nodeids.add(item.nodeid)
        params = getattr(getattr(item, "callspec", None), "params", {})
        # "n" is the matrix's name for the scale, on every axis (see scenario_params).
        scenario, runtime, scale = params.get("scenario"), params.get("runtime"), params.get("n")
        if scenario is None or not isinstance(runtime, Runtime) or scale is None:
            continue  # measured on its own when it runs
        if runtime.unavailable_reason():
            continue
        key = (scale, runtime.name, params.get("variant", ""))
        spec = ScenarioSpec.of(scenario)
        first = collected.setdefault((spec.name, key), item.nodeid)
        if first != item.nodeid:
            # Two records of one key: no results file can hold them (nor a journal recover them).
            variant = f" in variant {key[2]}" if key[2] else ""
            raise pytest.UsageError(
                f"{spec.name} {scale_text(spec.axis, scale)} on {runtime.name}{variant} is "
                f"collected twice ({first} and {item.nodeid}); a results file holds each "
                "benchmark once: run the scenario through one of them"
            )
        state.select(item, spec, runtime, key)
    if state.nodeids and config.getoption("benchmark_disable_gc", False):
        raise pytest.UsageError(
            "--benchmark-disable-gc is not supported: anybench keeps the collector on inside "
            "the region, as in a real program (it collects before each region instead)"
        )
    disabled = config.getoption("benchmark_disable", False) and not config.getoption(
        "benchmark_enable", False
    )
    if state.nodeids and disabled:
        raise pytest.UsageError(
            "anybench measures in worker processes; --benchmark-disable would record nothing: "
            "leave it out"
        )
    # anybench's benchmarks ask for pytest-benchmark's fixture as they run, not in their
    # signature: --benchmark-only would mark them all skipped.
    if state.nodeids and config.getoption("benchmark_only", False):
        raise pytest.UsageError(
            "--benchmark-only would skip every anybench benchmark (pytest-benchmark takes them "
            "for other tests): leave it out"
        )


def _unwritable_reason(target: Path) -> str | None:
    """Why a file cannot be written at *target*, in a few words; None if it likely can."""
    directory = target.parent
    if not directory.is_dir():
        return f"no directory {directory}"
    if target.is_dir():
        return "it is a directory"
    if not os.access(directory, os.W_OK | os.X_OK):
        return f"{directory} is not writable"
    return None
