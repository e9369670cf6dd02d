"""pytest plugin: runtime selection for tests and benchmarks, and the bridge to pytest-benchmark.

pytest-benchmark times a plain call and cannot await (pytest-benchmark issue #66), and timing a
whole ``anyio.run`` would count loop start-up. So each measured round is one fresh ``anyio.run``,
the scenario times its own region inside the loop, and :class:`InLoopClock` is handed to
pytest-benchmark as its timer: it advances only by that in-loop time, divided by the operation
count. pytest-benchmark's statistics, comparisons and histograms are therefore **per operation**.

Options (also usable after ``nox -s bench --``):

``--runtime NAMES``   comma-separated runtimes to run (default: all in the registry)
``--profile NAME``    the scale sweep (see :data:`anybench._sweep.PROFILES`)
``--scales N,N``      explicit scales instead of a profile
``--deadline S``      seconds one round may take before it is failed as hung
"""

from __future__ import annotations

import datetime
import math
import os
import platform
import shutil
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from . import RESULTS_FORMAT, __version__
from ._harness import DEFAULT_DEADLINE_S, Scenario, run_round
from ._journal import SUFFIX as JOURNAL_SUFFIX
from ._journal import Journal
from ._measure import Key, Measurement, Plan, Variant, measure_group
from ._probe import ScenarioFailed, timer_cost_ns
from ._runtimes import RUNTIMES, Runtime, UnknownRuntimeError, library_versions, select_runtimes
from ._stats import geometric_mean, percentile, summarize_latency, summarize_round
from ._sweep import (
    AXES,
    DEFAULT_PROFILE,
    MAX_ROUNDS,
    MIN_ROUNDS,
    UnknownProfileError,
    profile,
    scales,
)
from ._worker import MIN_REGION_NS


def _comma_list(value: str, option: str = "") -> list[str]:
    """The names in a comma-separated option value; with *option*, an empty one is an error
    (an empty value must not silently mean "all")."""
    names = [part.strip() for part in value.split(",") if part.strip()]
    if option and not names:
        raise pytest.UsageError(
            f"--{option} {value!r} names nothing; give one or more names, or leave it out for all"
        )
    return names


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("anybench")
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
    group.addoption(
        "--scales",
        default=None,
        metavar="N,N",
        help="comma-separated N for benchmarks, instead of the profile's",
    )
    group.addoption(
        "--loads",
        default=None,
        metavar="B,B",
        help="comma-separated background loads B for load scenarios, instead of the profile's",
    )
    group.addoption(
        "--processes",
        type=int,
        default=None,
        metavar="P",
        help="fresh worker processes per benchmark, at least (default: the profile's, 3)",
    )
    group.addoption(
        "--max-processes",
        type=int,
        default=None,
        metavar="P",
        help="more processes, up to this many, for benchmarks whose interval is still wider "
        "than ±2%% (default: the profile's)",
    )
    group.addoption(
        "--rounds",
        type=int,
        default=None,
        metavar="R",
        help=f"throughput rounds per process, fixed (default: planned from the profile's "
        f"budget, {MIN_ROUNDS} to {MAX_ROUNDS})",
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
        "--memory-limit",
        type=float,
        default=_default_memory_limit_mb(),
        metavar="MIB",
        help="kill a worker whose resident memory passes this (default: 3/4 of physical memory)",
    )
    group.addoption(
        "--deadline",
        type=float,
        default=DEFAULT_DEADLINE_S,
        metavar="SECONDS",
        help=f"fail a round that takes longer than this (default: {DEFAULT_DEADLINE_S:g})",
    )


def _default_memory_limit_mb() -> float | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 0.75 / 2**20
    except (ValueError, OSError, AttributeError):
        return None


def _variants(config: pytest.Config) -> dict[str, Variant]:
    """The environments named with ``--variant LABEL=PYTHON``, by label."""
    variants = {}
    for value in config.getoption("variant"):
        label, sep, python = value.partition("=")
        if not sep or not label.strip() or not python.strip():
            raise pytest.UsageError(
                f"--variant takes LABEL=PYTHON, like anyio-4.13=.venv/bin/python; got {value!r}"
            )
        if label in variants:
            raise pytest.UsageError(
                f"--variant {label!r} is given twice; give each a label of its own"
            )
        if shutil.which(python) is None:
            raise pytest.UsageError(f"--variant {label}: {python!r} is not an executable Python")
        variants[label.strip()] = Variant(label.strip(), python.strip())
    return variants


def selected_runtimes(config: pytest.Config) -> list[Runtime]:
    """The runtimes chosen with ``--runtime`` (all by default)."""
    names = [n for value in config.getoption("runtime") for n in _comma_list(value, "runtime")]
    return select_runtimes(names)


def selected_scales(
    config: pytest.Config, max_n: int | None = None, axis: str = "n"
) -> tuple[int, ...]:
    """The values chosen with ``--scales`` (N) or ``--loads`` (B), or else by ``--profile``, on
    *axis*, capped at *max_n*."""
    option = _AXIS_OPTIONS[axis]
    explicit = config.getoption(option)
    if explicit is None:
        return scales(config.getoption("profile"), max_n, axis)
    return tuple(n for n in _parse_scales(explicit, option) if max_n is None or n <= max_n)


_AXIS_OPTIONS = {"n": "scales", "load": "loads"}


def scenario_scales(config: pytest.Config, scenario: Scenario) -> tuple[int, ...]:
    """The values a scenario runs at: its axis of the sweep, capped at its MAX_N."""
    return selected_scales(config, getattr(scenario, "MAX_N", None), scenario_axis(scenario))


def scenario_axis(scenario: Scenario) -> str:
    """The sweep axis a scenario scales along: ``"n"`` (operations) or ``"load"``."""
    axis: str = getattr(scenario, "AXIS", "n")
    return axis


def _parse_scales(value: str, option: str) -> list[int]:
    lowest = 0 if option == "loads" else 1  # no load is a load; no operations is not a scale
    try:
        values = [int(part.replace("_", "")) for part in _comma_list(value)]
    except ValueError:
        values = []
    if not values or min(values) < lowest:
        raise pytest.UsageError(
            f"--{option} takes integers of at least {lowest} like 10,1000; got {value!r}"
        )
    return values


_RUN_ID = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_RUN_ID] = uuid.uuid4().hex
    config.stash[_FAILURES] = _FailureLog(config)
    config.pluginmanager.register(config.stash[_FAILURES], "anybench-failure-log")
    # Check the choices once, up front, so that a typo is one clear line and not a traceback.
    try:
        selected_runtimes(config)
        scales(config.getoption("profile"))
        for option in _AXIS_OPTIONS.values():
            if config.getoption(option) is not None:
                _parse_scales(config.getoption(option), option)
    except (UnknownRuntimeError, UnknownProfileError) as exc:
        raise pytest.UsageError(str(exc)) from None
    deadline = config.getoption("deadline")
    if not (math.isfinite(deadline) and deadline > 0):
        raise pytest.UsageError(f"--deadline takes a positive number of seconds, not {deadline}")
    for option, lowest in (("processes", 2), ("max_processes", 2), ("rounds", 1)):
        value = config.getoption(option)
        if value is not None and value < lowest:
            flag = option.replace("_", "-")
            raise pytest.UsageError(f"--{flag} takes {lowest} or more, not {value}")
    limit = config.getoption("memory_limit")
    if limit is not None and not (math.isfinite(limit) and limit > 0):
        raise pytest.UsageError(f"--memory-limit takes a positive number of MiB, not {limit}")
    if config.getoption("benchmark_disable_gc", False):
        raise pytest.UsageError(
            "--benchmark-disable-gc is not supported: anybench keeps the collector on inside "
            "the region, as in a real program (it collects before each region instead)"
        )
    _variants(config)


def runtime_params(config: pytest.Config) -> list[Any]:
    """``pytest.param`` per selected runtime; one that cannot run here is a skip with its reason."""
    params = []
    for runtime in selected_runtimes(config):
        reason = runtime.unavailable_reason()
        marks = [pytest.mark.filterwarnings(spec) for spec in runtime.known_warnings]
        if reason:
            marks.append(pytest.mark.skip(reason=f"{runtime.name}: {reason}"))
        params.append(pytest.param(runtime, id=runtime.name, marks=marks))
    return params


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "runtime" in metafunc.fixturenames:
        metafunc.parametrize("runtime", runtime_params(metafunc.config))
    variants = _variants(metafunc.config)
    if variants and "variant" in metafunc.fixturenames:
        metafunc.parametrize("variant", list(variants), ids=list(variants))


class _FailureLog:
    """Keeps failed tests so that a results file says which benchmarks are missing, and why;
    with ``--benchmark-json``, journals every finished benchmark and failure as it happens."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.failures: list[dict[str, str]] = []
        target = config.getoption("benchmark_json", None)
        self.journal = Journal(Path(f"{target}{JOURNAL_SUFFIX}")) if target else None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:
            crash = getattr(report.longrepr, "reprcrash", None)
            message = crash.message if crash is not None else str(report.longrepr)
            error = message.splitlines()[0] if message else "failed"
            self.failures.append({"test": report.nodeid, "error": error})
            if self.journal is not None and self.journal.started:
                self.journal.failure(report.nodeid, error)

    def finished(self, record: dict[str, Any]) -> None:
        """Journal one finished benchmark (its header first, at the first one)."""
        if self.journal is None:
            return
        if not self.journal.started:
            hook = self.config.hook
            machine_info = hook.pytest_benchmark_generate_machine_info(config=self.config)
            hook.pytest_benchmark_update_machine_info(config=self.config, machine_info=machine_info)
            commit_info = hook.pytest_benchmark_generate_commit_info(config=self.config)
            when = datetime.datetime.now(datetime.timezone.utc).isoformat()
            self.journal.header(machine_info, commit_info, when)
            for failure in self.failures:
                self.journal.failure(failure["test"], failure["error"])
        self.journal.benchmark(record)

    def pytest_sessionfinish(self, exitstatus: int) -> None:
        if self.journal is not None:
            # 0: all passed, 1: some benchmarks failed (named in the results); else stopped.
            self.journal.end(complete=exitstatus in (0, 1))

    def pytest_unconfigure(self) -> None:
        if self.journal is not None:
            self.journal.close()


_FAILURES = pytest.StashKey[_FailureLog]()


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_machine_info(
    config: pytest.Config, machine_info: dict[str, Any]
) -> None:
    """Record, beside pytest-benchmark's machine info, what anybench's numbers depend on."""
    machine_info["anybench"] = {
        "format": RESULTS_FORMAT,
        "run_id": config.stash[_RUN_ID],
        "method": "worker processes, runtimes interleaved; throughput and latency rounds apart",
        "version": __version__,
        "libraries": library_versions(),
        "python_implementation": platform.python_implementation(),
        "timer": "time.perf_counter_ns",
        "timer_cost_ns": request_timer_cost(),
        "profile": config.getoption("profile"),
        "scales": {axis: list(selected_scales(config, axis=axis)) for axis in AXES},
        "runtimes": {rt.name: rt.description for rt in selected_runtimes(config)},
        "unavailable_runtimes": {
            rt.name: reason
            for rt in selected_runtimes(config)
            if (reason := rt.unavailable_reason()) is not None
        },
        "failed": config.stash[_FAILURES].failures,
        "peak_rss_bytes": _peak_rss_bytes(),
    }


def _peak_rss_bytes() -> int | None:
    """The benchmark process's peak resident memory so far (None where it cannot be read)."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


class InLoopClock:
    """A pytest-benchmark timer that only moves by in-loop measured time per operation."""

    __name__ = "InLoopClock"

    def __init__(self) -> None:
        self._now_s = 0.0

    def __call__(self) -> float:
        return self._now_s

    def advance(self, ns_per_op: float) -> None:
        self._now_s += ns_per_op / 1e9


MeasureScenario = Callable[[Scenario, Runtime, int], Measurement]


@pytest.fixture
def variant(request: pytest.FixtureRequest) -> str:
    """The environment a benchmark runs in: "" for this interpreter (see ``--variant``)."""
    return ""


@pytest.fixture
def measure_scenario(request: pytest.FixtureRequest, variant: str) -> MeasureScenario:
    """Benchmark a scenario at scale N on a runtime; record it through pytest-benchmark.

    The first benchmark of a scenario measures the whole group (every selected N, runtime and
    variant of it) in worker processes, runtimes interleaved (see :mod:`anybench._measure`);
    each benchmark then records its own rounds. pytest-benchmark sees the throughput rounds only,
    one per round of every process, per operation. A benchmark that failed in its worker fails
    here with the worker's reason.
    """

    def measure(scenario: Scenario, runtime: Runtime, n: int) -> Measurement:
        clock = InLoopClock()
        request.node.add_marker(pytest.mark.benchmark(timer=clock, group=f"{scenario.NAME} N={n}"))
        groups = request.config.stash[_GROUPS]
        if scenario.NAME not in groups:
            groups[scenario.NAME] = _measure_group(request.config, scenario)
        m = groups[scenario.NAME].get((n, runtime.name, variant))
        if m is None:
            raise ScenarioFailed(f"{scenario.NAME} on {runtime.name} at N={n} was not measured")
        if m.failure is not None:
            raise ScenarioFailed(m.failure)
        if not m.processes:
            raise ScenarioFailed(f"{scenario.NAME} on {runtime.name} at N={n}: no rounds")
        benchmark = request.getfixturevalue("benchmark")
        values = [e / m.ops_per_round for rounds in m.processes for e in rounds]
        feed = iter(values)

        def one_round() -> None:
            value = next(feed, None)
            if value is None:
                # An extra call (--benchmark-cprofile) profiles one in-process round; it is
                # not a timed round and moves no clock.
                run_round(scenario, runtime, n, request.config.getoption("deadline"))
                return
            clock.advance(value)

        benchmark.pedantic(one_round, rounds=len(values))
        benchmark.extra_info.update(extra_info(scenario, runtime, n, m, variant))
        # On disk before anything else can go wrong: Ctrl-C or a kill loses no finished one.
        request.config.stash[_FAILURES].finished(benchmark.stats.as_dict(include_data=False))
        return m

    return measure


def _measure_group(config: pytest.Config, scenario: Scenario) -> dict[Key, Measurement]:
    keys = config.stash[_SELECTED].get(scenario.NAME, [])
    if not keys:
        return {}
    variants = {"": Variant(), **_variants(config)}
    return measure_group(
        getattr(scenario, "__name__", scenario.NAME),  # the module a worker imports
        keys,
        _plan(config),
        variants,
        sys_path=[_import_root(scenario)],
        runtime_order=list(RUNTIMES),
    )


def _import_root(scenario: Scenario) -> str:
    """The directory a worker must put on its path to import *scenario*'s module, and nothing
    more: a variant's worker must import its own anybench, not this interpreter's."""
    name = getattr(scenario, "__name__", "")
    top = sys.modules.get(name.split(".")[0]) if name else None
    where = getattr(top, "__file__", None)
    if where is None:
        return os.getcwd()
    path = Path(where).parent
    return str(path.parent if Path(where).name == "__init__.py" else path)


def _plan(config: pytest.Config) -> Plan:
    sweep = profile(config.getoption("profile"))
    processes = config.getoption("processes") or sweep.processes
    max_processes = max(processes, config.getoption("max_processes") or sweep.max_processes)
    limit_mb = config.getoption("memory_limit")
    rounds = config.getoption("rounds")
    return Plan(
        processes=processes,
        max_processes=max_processes,
        target_ops=sweep.target_ops,
        time_budget_s=sweep.time_budget_s,
        latency_rounds=sweep.latency_rounds,
        latency_every_process=sweep.latency_every_process,
        memory_max_n=sweep.memory_max_n,
        min_rounds=rounds or sweep.min_rounds,
        max_rounds=rounds or MAX_ROUNDS,
        deadline_s=config.getoption("deadline"),
        memory_limit_bytes=int(limit_mb * 2**20) if limit_mb else None,
    )


_GROUPS = pytest.StashKey[dict[str, dict[Key, Measurement]]]()
_SELECTED = pytest.StashKey[dict[str, list[Key]]]()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Note which benchmarks are selected, so that a scenario's group measures exactly those."""
    selected: dict[str, list[Key]] = {}
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        scenario, runtime, n = params.get("scenario"), params.get("runtime"), params.get("n")
        if scenario is None or runtime is None or n is None or runtime.unavailable_reason():
            continue
        key = (n, runtime.name, params.get("variant", ""))
        keys = selected.setdefault(scenario.NAME, [])
        if key not in keys:
            keys.append(key)
    config.stash[_SELECTED] = selected
    config.stash[_GROUPS] = {}


_TIMER_COST_NS: list[float] = []


def request_timer_cost() -> float:
    """The cost of one clock reading in this process, measured once."""
    if not _TIMER_COST_NS:
        _TIMER_COST_NS.append(timer_cost_ns())
    return _TIMER_COST_NS[0]


def extra_info(
    scenario: Scenario, runtime: Runtime, n: int, m: Measurement, variant: str = ""
) -> dict[str, Any]:
    """What anybench stores beside each pytest-benchmark record (raw figures included)."""
    ops = m.ops_per_round
    medians = m.process_medians_ns_per_op()
    typical = percentile(sorted(e for rounds in m.processes for e in rounds), 50.0)
    pooled: dict[str, list[int]] = {}
    per_round: dict[str, list[dict[str, Any]]] = {}
    for latency_round in m.latency_rounds:
        for series, values in latency_round.items():
            pooled.setdefault(series, []).extend(values)
            per_round.setdefault(series, []).append(summarize_round(values))
    stamped = sorted(e / ops for e in m.stamped_elapsed_ns) if ops else []
    info: dict[str, Any] = {
        "anybench_format": RESULTS_FORMAT,
        "scenario": scenario.NAME,
        "operation": scenario.OPERATION,
        "axis": scenario_axis(scenario),
        "native_of": getattr(scenario, "NATIVE_OF", None),
        "caveat": getattr(scenario, "CAVEATS", {}).get(runtime.backend),
        "runtime": runtime.name,
        "backend": runtime.backend,
        "variant": variant,
        "python": m.python,
        "libraries": m.libraries,
        "n": n,
        "ops_per_round": ops,
        "passes_per_round": m.passes,
        "processes": len(m.processes),
        "rounds": sum(len(rounds) for rounds in m.processes),
        "ns_per_op": geometric_mean(medians),
        "process_round_elapsed_ns": m.processes,
        "round_elapsed_ns": [e for rounds in m.processes for e in rounds],
        "timer_cost_ns": request_timer_cost(),
        "unstable": (
            f"its regions lasted {typical / 1e6:.2f} ms, under {MIN_REGION_NS / 1e6:g} ms"
            if typical < MIN_REGION_NS
            else None
        ),
        "stamped_ns_per_op": percentile(stamped, 50.0) if stamped else None,
        "latency_ns": {
            series: {
                "description": scenario.LATENCIES[series],
                **summarize_latency(values),
                "rounds": per_round[series],
            }
            for series, values in pooled.items()
        },
    }
    if m.peak_bytes is not None:
        info["memory"] = {
            "peak_bytes": m.peak_bytes,
            "bytes_per_op": m.peak_bytes / max(m.memory_ops, 1),
            "n": m.memory_n or n,
            "method": "tracemalloc peak from the scenario's start to the end of its region, "
            "in one extra untimed round",
        }
    info["measure_s"] = round(m.worker_s, 3)
    return info
