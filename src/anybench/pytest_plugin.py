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

import platform
import sys
from collections.abc import Callable
from typing import Any

import pytest

from . import RESULTS_FORMAT, __version__
from ._harness import DEFAULT_DEADLINE_S, RoundResult, Scenario, run_round
from ._probe import timer_cost_ns
from ._runtimes import RUNTIMES, Runtime, UnknownRuntimeError, library_versions, select_runtimes
from ._stats import percentile, summarize_latency
from ._sweep import AXES, DEFAULT_PROFILE, UnknownProfileError, profile, rounds_for, scales


def _comma_list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


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
        "--deadline",
        type=float,
        default=DEFAULT_DEADLINE_S,
        metavar="SECONDS",
        help=f"fail a round that takes longer than this (default: {DEFAULT_DEADLINE_S:g})",
    )


def selected_runtimes(config: pytest.Config) -> list[Runtime]:
    """The runtimes chosen with ``--runtime`` (all by default)."""
    names = [name for value in config.getoption("runtime") for name in _comma_list(value)]
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


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_FAILURES] = _FailureLog()
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
    if config.getoption("deadline") <= 0:
        raise pytest.UsageError("--deadline takes a positive number of seconds")


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


class _FailureLog:
    """Keeps failed tests so that a results file says which benchmarks are missing, and why."""

    def __init__(self) -> None:
        self.failures: list[dict[str, str]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:
            crash = getattr(report.longrepr, "reprcrash", None)
            message = crash.message if crash is not None else str(report.longrepr)
            self.failures.append({"test": report.nodeid, "error": message.splitlines()[0]})


_FAILURES = pytest.StashKey[_FailureLog]()


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_machine_info(
    config: pytest.Config, machine_info: dict[str, Any]
) -> None:
    """Record, beside pytest-benchmark's machine info, what anybench's numbers depend on."""
    machine_info["anybench"] = {
        "format": RESULTS_FORMAT,
        "version": __version__,
        "libraries": library_versions(),
        "python_implementation": platform.python_implementation(),
        "timer": "time.perf_counter_ns",
        "timer_cost_ns": timer_cost_ns(),
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


#: How much longer than the deadline the one round traced by tracemalloc may take.
TRACED_DEADLINE_FACTOR = 5


class InLoopClock:
    """A pytest-benchmark timer that only moves by in-loop measured time per operation."""

    __name__ = "InLoopClock"

    def __init__(self) -> None:
        self._now_s = 0.0

    def __call__(self) -> float:
        return self._now_s

    def advance(self, round_result: RoundResult) -> None:
        self._now_s += round_result.ns_per_op / 1e9


MeasureScenario = Callable[[Scenario, Runtime, int], list[RoundResult]]


@pytest.fixture
def measure_scenario(request: pytest.FixtureRequest) -> MeasureScenario:
    """Benchmark a scenario at scale N on a runtime; record it through pytest-benchmark.

    Returns the measured rounds. The benchmark's group is the scenario and N, so that one
    pytest-benchmark table holds the runtimes side by side. One warm-up round comes first (it
    also tells the operation count, hence the number of rounds). At the largest N of the sweep,
    one more round runs under tracemalloc for the peak memory per operation.
    """

    def measure(scenario: Scenario, runtime: Runtime, n: int) -> list[RoundResult]:
        clock = InLoopClock()
        request.node.add_marker(pytest.mark.benchmark(timer=clock, group=f"{scenario.NAME} N={n}"))
        deadline_s = request.config.getoption("deadline")
        # Before the benchmark fixture exists: a round that fails here is one failure, not two.
        warm_up = run_round(scenario, runtime, n, deadline_s)
        benchmark = request.getfixturevalue("benchmark")
        rounds: list[RoundResult] = []

        def one_round() -> None:
            result = run_round(scenario, runtime, n, deadline_s)
            clock.advance(result)
            rounds.append(result)

        sweep = profile(request.config.getoption("profile"))
        planned = rounds_for(warm_up.ops, warm_up.elapsed_ns / 1e9, sweep)
        benchmark.pedantic(one_round, rounds=planned)
        # Recorded before anything else can fail: the timings stand on their own.
        benchmark.extra_info.update(extra_info(scenario, runtime, n, rounds))
        if n == max(scenario_scales(request.config, scenario), default=None):
            # tracemalloc slows a round several times over: give it room beyond the deadline.
            traced = run_round(
                scenario, runtime, n, deadline_s * TRACED_DEADLINE_FACTOR, trace_memory=True
            )
            benchmark.extra_info["memory"] = {
                "peak_bytes": traced.peak_bytes,
                "bytes_per_op": (traced.peak_bytes or 0) / traced.ops,
                "method": "tracemalloc peak from the scenario's start to the end of its region, "
                "in one extra untimed round",
            }
        return rounds

    return measure


def extra_info(
    scenario: Scenario, runtime: Runtime, n: int, rounds: list[RoundResult]
) -> dict[str, Any]:
    """What anybench stores beside each pytest-benchmark record (raw figures included)."""
    per_op = sorted(r.ns_per_op for r in rounds)
    samples: dict[str, list[int]] = {}
    for r in rounds:
        for series, values in r.samples.items():
            samples.setdefault(series, []).extend(values)
    return {
        "anybench_format": RESULTS_FORMAT,
        "scenario": scenario.NAME,
        "operation": scenario.OPERATION,
        "axis": scenario_axis(scenario),
        "native_of": getattr(scenario, "NATIVE_OF", None),
        "caveat": getattr(scenario, "CAVEATS", {}).get(runtime.backend),
        "runtime": runtime.name,
        "backend": runtime.backend,
        "n": n,
        "ops_per_round": rounds[0].ops if rounds else 0,
        "rounds": len(rounds),
        "ns_per_op": percentile(per_op, 50.0),
        "round_elapsed_ns": [r.elapsed_ns for r in rounds],
        "latency_ns": {
            series: {"description": scenario.LATENCIES[series], **summarize_latency(values)}
            for series, values in samples.items()
        },
    }
