"""Every scenario does its work and checks its own outcome, on every runtime."""

from __future__ import annotations

import time
from pathlib import Path
from typing import ClassVar

import anyio
import pytest

import scenarios
from anybench import (
    Future,
    Probe,
    Runtime,
    ScenarioFailed,
    ScenarioSpec,
    ScenarioTimeout,
    run_round,
)

from .conftest import expected_ops

# Rounds in this process, as a worker runs them: see frozen_heap.
pytestmark = pytest.mark.usefixtures("frozen_heap")


@pytest.mark.parametrize("scenario", scenarios.ALL, ids=lambda s: s.NAME)
@pytest.mark.parametrize("n", [1, 2, 57])
def test_scenario_runs_and_records(
    scenario: scenarios.ScenarioModule, n: int, runtime: Runtime
) -> None:
    throughput = run_round(scenario, runtime, n, freeze_heap=False)
    assert throughput.ops == expected_ops(scenario, n)
    assert throughput.elapsed_ns > 0
    assert throughput.samples == {}  # no stamps in a throughput round
    result = run_round(scenario, runtime, n, latency=True, freeze_heap=False)
    assert result.ops == expected_ops(scenario, n)
    assert result.elapsed_ns > 0
    # Every declared latency series has one sample per operation.
    assert set(result.samples) == set(scenario.LATENCIES)
    for series, samples in result.samples.items():
        assert len(samples) == result.ops, series
        # Only a scenario that declares a tolerance may record early (negative) delays: timers.
        assert min(samples) >= -ScenarioSpec.of(scenario).early_tolerance_ns, series


class _CountingClock:
    def __init__(self) -> None:
        self.reads = 0

    def __call__(self) -> int:
        self.reads += 1
        return time.perf_counter_ns()


@pytest.mark.parametrize("scenario", scenarios.ALL, ids=lambda s: s.NAME)
def test_throughput_rounds_read_no_clock_per_operation(
    scenario: scenarios.ScenarioModule, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The instrument stays out of the region it times: at most the start and stop readings
    (and a handful of fixed ones) per pass, however large N, in a throughput round; one or
    more per operation in a latency round."""
    counting = _CountingClock()
    monkeypatch.setattr(Probe, "clock", staticmethod(counting))
    run_round(scenario, runtime, 200, freeze_heap=False)
    assert counting.reads <= 4, f"{counting.reads} clock reads in a throughput round"
    counting.reads = 0
    result = run_round(scenario, runtime, 200, latency=True, freeze_heap=False)
    if scenario.NAME != "timers":  # timers stamps on the loop clock (anyio.current_time)
        assert counting.reads >= result.ops


def test_a_round_of_several_passes_adds_them_up(runtime: Runtime) -> None:
    """The 1 ms rule's mechanism: independent passes in one round, ops and time summed."""
    result = run_round(scenarios.done_callback, runtime, 7, passes=5, latency=True)
    assert result.passes == 5
    assert result.ops == 35
    assert len(result.samples["callback"]) == 35


def test_every_scenario_module_is_registered() -> None:
    modules = {
        path.stem
        for path in Path(scenarios.__file__).parent.glob("*.py")
        if path.stem != "__init__"
    }
    assert modules == {s.__name__.rsplit(".", 1)[1] for s in scenarios.ALL}
    assert len(scenarios.BY_NAME) == len(scenarios.ALL)
    for scenario in scenarios.ALL:
        spec = ScenarioSpec.from_module(scenario)  # the contract, checked
        assert spec.doc, f"{spec.name} needs a docstring saying what it measures"
        assert spec.latencies
        assert spec.native_of is None or spec.native_of in scenarios.BY_NAME
    # A scenario's own constants are its parameters, recorded with its results.
    assert dict(ScenarioSpec.of(scenarios.mixed).parameters) == {"BACKGROUND_TASKS": 8}
    assert dict(ScenarioSpec.of(scenarios.mixed_native).parameters) == {"BACKGROUND_TASKS": 8}


def test_a_lost_callback_fails_the_scenario(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The outcome checks are real: a future that drops one callback in ten is caught."""
    real = Future._run_callback
    calls = 0

    def lossy(self: Future[int], callback: object) -> None:
        nonlocal calls
        calls += 1
        if calls % 10:
            real(self, callback)  # type: ignore[arg-type]

    monkeypatch.setattr(Future, "_run_callback", lossy)
    # done_callback would wait forever for the lost callback: its deadline turns that into a
    # named failure; mixed counts callbacks and fails its check.
    with pytest.raises(ScenarioTimeout, match=f"done_callback on {runtime.name} at N=30"):
        run_round(scenarios.done_callback, runtime, 30, deadline_s=0.2)
    with pytest.raises((ScenarioFailed, ScenarioTimeout), match=f"mixed on {runtime.name}"):
        run_round(scenarios.mixed, runtime, 30, deadline_s=0.2)


def test_wrong_order_fails_the_scenario(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    real_set_result = Future.set_result

    def swapped(self: Future[int], result: int) -> None:
        real_set_result(self, result ^ 1)  # 0<->1, 2<->3, ...

    monkeypatch.setattr(Future, "set_result", swapped)
    with pytest.raises(ScenarioFailed, match=r"await_future on .* the waiter did not receive"):
        run_round(scenarios.await_future, runtime, 4)


class _Hangs:
    NAME = "hangs"
    OPERATION = "nothing"
    LATENCIES: ClassVar[dict[str, str]] = {}

    @staticmethod
    async def run(n: int, probe: Probe) -> None:
        probe.start(ops=n)
        await anyio.Event().wait()  # not sleep_forever: rloop 0.5 returns from sleep(inf)


def test_a_hung_round_fails_with_scenario_runtime_and_n(runtime: Runtime) -> None:
    with pytest.raises(ScenarioTimeout, match=f"^hangs on {runtime.name} at N=3 did not finish"):
        run_round(_Hangs, runtime, 3, deadline_s=0.05)


class _NeverStops:
    NAME = "never_stops"
    OPERATION = "nothing"
    LATENCIES: ClassVar[dict[str, str]] = {}

    @staticmethod
    async def run(n: int, probe: Probe) -> None:
        probe.start(ops=n)


def test_a_round_without_a_measured_region_is_an_error(runtime: Runtime) -> None:
    with pytest.raises(
        ScenarioFailed,
        match=f"^never_stops on {runtime.name} at N=1: the scenario did not start and stop",
    ):
        run_round(_NeverStops, runtime, 1)


def _misusing(body: str) -> type:
    """A scenario whose pass is *body*, with ``probe`` and ``n`` in scope."""

    class Misuse:
        NAME = "misuse"
        OPERATION = "nothing"
        LATENCIES: ClassVar[dict[str, str]] = {"a": "anything"}

        @staticmethod
        async def run(n: int, probe: Probe) -> None:
            exec(body, {"probe": probe, "n": n, "nan": float("nan")})

    return Misuse


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("probe.start(ops=n); probe.start(ops=n)", "Probe.start() called twice"),
        ("probe.stop()", "Probe.stop() called before Probe.start()"),
        ("probe.start(ops=n); probe.stop(); probe.stop()", "Probe.stop() called twice"),
        ("probe.start(ops=0)", "Probe.start(ops=0): a measured region needs a whole number"),
        ("probe.start(ops=-n)", "Probe.start(ops=-3): a measured region needs a whole number"),
        ("probe.start(ops=1.5)", "Probe.start(ops=1.5): a measured region needs a whole number"),
        (
            "probe.start(ops=n); probe.stop(); probe.record('a', [1, -5, nan, 'x'])",
            "Probe.record('a'): sample 2 is nan (float), not whole nanoseconds (an int)",
        ),
        (
            "probe.start(ops=n); probe.stop(); probe.record('a', iter([True]))",
            "Probe.record('a'): sample 0 is True (bool), not whole nanoseconds (an int)",
        ),
    ],
)
def test_a_probe_used_wrongly_is_one_line_naming_the_scenario(
    runtime: Runtime, body: str, problem: str
) -> None:
    with pytest.raises(ScenarioFailed) as info:
        run_round(_misusing(body), runtime, 3, latency=True)
    assert str(info.value).startswith(f"misuse on {runtime.name} at N=3: {problem}")
    assert "\n" not in str(info.value)


def test_a_probe_takes_negative_samples(runtime: Runtime) -> None:
    """A timer's lateness can be negative (a deadline met early on a coarse clock)."""
    body = "probe.start(ops=n); probe.stop(); probe.record('a', [-5, 0, 7])"
    assert run_round(_misusing(body), runtime, 3, latency=True).samples == {"a": [-5, 0, 7]}


def test_memory_tracing_counts_what_the_set_up_made(runtime: Runtime) -> None:
    """done_callback makes its N futures before the region: they are counted all the same."""
    result = run_round(scenarios.done_callback, runtime, 2000, trace_memory=True)
    assert result.peak_bytes is not None
    assert result.peak_bytes > 2000 * 100  # a future with a callback holds well over 100 B
    untraced = run_round(scenarios.done_callback, runtime, 10)
    assert untraced.peak_bytes is None
