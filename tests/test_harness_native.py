"""A native baseline runs on its backend's own runner and deadline, never through anyio, so that
it is a clean control for anyio's changes; its deadline and failures read as before."""

from __future__ import annotations

import asyncio
import types
from typing import Any, NoReturn

import anyio
import anyio._core._eventloop
import pytest

import scenarios
from anybench import Probe, Runtime, ScenarioFailed, ScenarioTimeout, run_round

# Rounds in this process, as a worker runs them (see tests/conftest.py).
pytestmark = pytest.mark.usefixtures("frozen_heap")

NATIVES = [s for s in scenarios.ALL if getattr(s, "NATIVE_OF", None)]


@pytest.fixture
def no_anyio(monkeypatch: pytest.MonkeyPatch) -> None:
    """anyio's runner, its deadline and its backends all raise when entered."""

    def entered(*args: Any, **kwargs: Any) -> NoReturn:
        raise AssertionError("a native baseline entered anyio")

    monkeypatch.setattr(anyio, "run", entered)
    monkeypatch.setattr(anyio, "fail_after", entered)
    monkeypatch.setattr(anyio, "move_on_after", entered)
    monkeypatch.setattr(anyio._core._eventloop, "get_async_backend", entered)
    monkeypatch.setattr(anyio._core._eventloop, "get_backend_class", entered, raising=False)


def test_there_are_natives_to_check() -> None:
    assert {s.NAME for s in NATIVES} >= {"spawn_native", "done_callback_native"}


@pytest.mark.parametrize("scenario", NATIVES, ids=lambda s: s.NAME)
@pytest.mark.parametrize("latency", [False, True], ids=["throughput", "latency"])
def test_a_native_round_never_enters_anyio(
    scenario: Any, latency: bool, runtime: Runtime, no_anyio: None
) -> None:
    result = run_round(scenario, runtime, 20, 60.0, latency=latency, passes=2)
    assert result.passes == 2
    assert result.ops > 0
    assert result.elapsed_ns > 0
    assert bool(result.samples) == (latency and bool(scenario.LATENCIES))


def test_an_anyio_scenario_still_runs_through_anyio(runtime: Runtime, no_anyio: None) -> None:
    with pytest.raises(AssertionError, match="entered anyio"):
        run_round(scenarios.spawn, runtime, 5)


def _runs_on_the_loop_of(runtime: Runtime) -> Any:
    """A native scenario that records which event loop class ran it."""
    seen: list[str] = []

    async def run_asyncio(n: int, probe: Probe) -> None:
        seen.append(type(asyncio.get_running_loop()).__module__)
        probe.start(ops=n)
        probe.stop()

    async def run_trio(n: int, probe: Probe) -> None:
        seen.append("trio")
        probe.start(ops=n)
        probe.stop()

    return seen, types.SimpleNamespace(
        NAME="which_loop",
        OPERATION="nothing",
        LATENCIES={},
        NATIVE_OF="spawn",
        run_asyncio=run_asyncio,
        run_trio=run_trio,
    )


def test_a_native_runs_on_its_runtimes_own_loop(runtime: Runtime, no_anyio: None) -> None:
    seen, scenario = _runs_on_the_loop_of(runtime)
    run_round(scenario, runtime, 3)
    factory = runtime.backend_options().get("loop_factory")
    if runtime.backend == "trio":
        assert seen == ["trio"]
    elif factory is None:
        assert seen == ["asyncio.unix_events"]
    else:
        loop = factory()
        try:
            assert seen == [type(loop).__module__]
        finally:
            loop.close()


def _hung(message: str = "") -> Any:
    async def run_asyncio(n: int, probe: Probe) -> None:
        if message:
            raise ScenarioFailed(message)
        await asyncio.sleep(3600)

    async def run_trio(n: int, probe: Probe) -> None:
        import trio

        if message:
            raise ScenarioFailed(message)
        await trio.sleep_forever()

    return types.SimpleNamespace(
        NAME="hung_native",
        OPERATION="waiting forever",
        LATENCIES={},
        NATIVE_OF="spawn",
        run_asyncio=run_asyncio,
        run_trio=run_trio,
    )


def test_the_deadline_fails_a_hung_native_by_name(runtime: Runtime, no_anyio: None) -> None:
    with pytest.raises(ScenarioTimeout) as caught:
        run_round(_hung(), runtime, 7, deadline_s=0.2)
    assert str(caught.value) == f"hung_native on {runtime.name} at N=7 did not finish within 0.2 s"


def test_a_natives_failed_check_is_named_as_before(runtime: Runtime, no_anyio: None) -> None:
    with pytest.raises(ScenarioFailed) as caught:
        run_round(_hung("3 callbacks lost"), runtime, 7)
    assert str(caught.value) == f"hung_native on {runtime.name} at N=7: 3 callbacks lost"
