"""The checks of the scenario families are real: break what a family relies on, and it fails.

Each test breaks one primitive with monkeypatch (a lost or reordered callback, a corrupted result,
a task that never yields, a timer that does not wait, a swallowed cancellation) and expects the
round to fail by the scenario's own check (ScenarioFailed) or, when the work can never finish,
by its deadline (ScenarioTimeout), naming the scenario, runtime and N. Nothing here asserts timings.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
import anyio.lowlevel
import pytest

import scenarios
from anybench import Future, Probe, Runtime, ScenarioFailed, ScenarioTimeout, run_round

# Rounds in this process, as a worker runs them (see tests/conftest.py).
pytestmark = pytest.mark.usefixtures("frozen_heap")

N = 30
#: A round at N=30 takes well under a millisecond; a lost wake-up waits the deadline out.
DEADLINE_S = 0.2


def where(scenario: scenarios.ScenarioModule, runtime: Runtime) -> str:
    return f"^{scenario.NAME} on {runtime.name} at N={N}"


def lose_every_tenth_callback(monkeypatch: pytest.MonkeyPatch) -> None:
    real = Future._run_callback
    calls = 0

    def lossy(self: Future[object], callback: Callable[[Future[object]], object]) -> None:
        nonlocal calls
        calls += 1
        if calls % 10:
            real(self, callback)

    monkeypatch.setattr(Future, "_run_callback", lossy)


def corrupt_results(monkeypatch: pytest.MonkeyPatch, change: Callable[[int], int]) -> None:
    real = Future.set_result

    def corrupting(self: Future[int], result: int) -> None:
        real(self, change(result))

    monkeypatch.setattr(Future, "set_result", corrupting)


def event_with_a_faulty_third_wait(monkeypatch: pytest.MonkeyPatch, *, lost: bool) -> None:
    """Replace anyio.Event: its third wait() never returns (lost) or returns at once (spurious).

    In fan_out_event the main task's wait comes first, so the third is one waiter's. The spurious
    one returns without yielding, so it is in the past before anything else runs, on every runtime
    (trio may run a batch of woken tasks in either order).
    """
    real_event = anyio.Event
    waits = 0

    class FaultyEvent:
        def __init__(self) -> None:
            self._event = real_event()

        def set(self) -> None:
            self._event.set()

        def is_set(self) -> bool:
            return self._event.is_set()

        async def wait(self) -> None:
            nonlocal waits
            waits += 1
            if waits != 3:
                await self._event.wait()
            elif lost:
                await anyio.sleep(3600)  # not sleep_forever: rloop 0.5 returns from sleep(inf)

    monkeypatch.setattr(anyio, "Event", FaultyEvent)


# -- fan_out_callbacks -----------------------------------------------------------------------


def test_fan_out_callbacks_catches_a_lost_callback(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    lose_every_tenth_callback(monkeypatch)
    with pytest.raises(ScenarioTimeout, match=where(scenarios.fan_out_callbacks, runtime)):
        run_round(scenarios.fan_out_callbacks, runtime, N, deadline_s=DEADLINE_S)


def test_fan_out_callbacks_catches_callbacks_out_of_registration_order(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_complete = Future._complete

    def reversing(self: Future[object], state: str) -> None:
        self._callbacks.reverse()
        real_complete(self, state)

    monkeypatch.setattr(Future, "_complete", reversing)
    with pytest.raises(ScenarioFailed, match="in registration order"):
        run_round(scenarios.fan_out_callbacks, runtime, N, deadline_s=DEADLINE_S)


# -- fan_out_event ---------------------------------------------------------------------------


def test_fan_out_event_catches_a_lost_wake_up(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    event_with_a_faulty_third_wait(monkeypatch, lost=True)
    with pytest.raises(ScenarioTimeout, match=where(scenarios.fan_out_event, runtime)):
        run_round(scenarios.fan_out_event, runtime, N, deadline_s=DEADLINE_S)


def test_fan_out_event_catches_a_spurious_wake_up(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    event_with_a_faulty_third_wait(monkeypatch, lost=False)
    with pytest.raises(ScenarioFailed, match="a waiter resumed before the event was set"):
        run_round(scenarios.fan_out_event, runtime, N, deadline_s=DEADLINE_S)


# -- fan_in ----------------------------------------------------------------------------------


def test_fan_in_catches_wrong_results(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    corrupt_results(monkeypatch, lambda result: result ^ 1)
    with pytest.raises(ScenarioFailed, match="the gathered results are wrong"):
        run_round(scenarios.fan_in, runtime, N, deadline_s=DEADLINE_S)


def test_fan_in_catches_a_result_that_never_arrives(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = Future.set_result
    calls = 0

    def dropping(self: Future[int], result: int) -> None:
        nonlocal calls
        calls += 1
        if calls != 7:
            real(self, result)

    monkeypatch.setattr(Future, "set_result", dropping)
    with pytest.raises(ScenarioTimeout, match=where(scenarios.fan_in, runtime)):
        run_round(scenarios.fan_in, runtime, N, deadline_s=DEADLINE_S)


# -- chain -----------------------------------------------------------------------------------


def test_chain_catches_a_wrong_value_passed_on(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    corrupt_results(monkeypatch, lambda result: result + 1)
    with pytest.raises(ScenarioFailed, match="predecessor's value plus one"):
        run_round(scenarios.chain, runtime, N, deadline_s=DEADLINE_S)


def test_chain_catches_a_broken_link(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    lose_every_tenth_callback(monkeypatch)
    with pytest.raises(ScenarioTimeout, match=where(scenarios.chain, runtime)):
        run_round(scenarios.chain, runtime, N, deadline_s=DEADLINE_S)


# -- checkpoint_round_robin ------------------------------------------------------------------


def test_checkpoint_round_robin_catches_tasks_that_do_not_take_turns(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """checkpoint() yields in set-up but not in the region: each task runs its loop at once."""
    real_checkpoint = anyio.lowlevel.checkpoint
    real_start = Probe.start
    in_region = False

    def start(self: Probe, ops: int) -> None:
        nonlocal in_region
        in_region = True
        real_start(self, ops)

    async def checkpoint() -> None:
        if not in_region:
            await real_checkpoint()

    monkeypatch.setattr(Probe, "start", start)
    monkeypatch.setattr(anyio.lowlevel, "checkpoint", checkpoint)
    with pytest.raises(ScenarioFailed, match="the tasks did not take turns"):
        run_round(scenarios.checkpoint_round_robin, runtime, N, deadline_s=DEADLINE_S)


# -- timers ----------------------------------------------------------------------------------


def test_timers_catches_a_timer_that_does_not_wait(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_wait(deadline: float) -> None:
        await anyio.lowlevel.checkpoint()

    monkeypatch.setattr(anyio, "sleep_until", no_wait)
    # Latency rounds read the loop clock at every wake-up, and check it against the deadline.
    with pytest.raises(ScenarioFailed, match="woke more than 1 ms before their deadline"):
        run_round(scenarios.timers, runtime, N, deadline_s=DEADLINE_S, latency=True)


def test_timers_sets_up_again_when_its_timers_were_armed_after_their_deadlines(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deadlines that pass while tasks are still arming would start the region during the
    arming (the figure too fast, as anyio 4.13 on trio read with a fixed factor): that try is
    dropped before any region, and the set-up done again with the ratio it saw."""
    monkeypatch.setattr(scenarios.timers, "_arm_ratios", {})
    monkeypatch.setattr(scenarios.timers, "LEAD_S", 0.0)
    # The first try's deadlines are its arming's start: it cannot be in time.
    monkeypatch.setattr(scenarios.timers, "FIRST_ARM_FACTOR", 0.0)
    monkeypatch.setattr(scenarios.timers, "MIN_ARM_FACTOR", 8.0)
    result = run_round(scenarios.timers, runtime, 1_000, deadline_s=30, latency=True)
    assert result.ops == 1_000
    assert len(result.samples["lateness"]) == 1_000  # the measured try's timers only


def test_timers_fails_a_round_whose_timers_are_armed_late_every_time(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scenarios.timers, "_arm_ratios", {})
    monkeypatch.setattr(scenarios.timers, "LEAD_S", 0.0)
    for name in ("FIRST_ARM_FACTOR", "MIN_ARM_FACTOR", "ARM_MARGIN"):
        monkeypatch.setattr(scenarios.timers, name, 0.0)
    with pytest.raises(
        ScenarioFailed, match=r"armed after their deadlines 3 times: arming took .* allowed 0\.0"
    ):
        run_round(scenarios.timers, runtime, 1_000, deadline_s=30)
    # Once a ratio is known, the deadlines leave at least MIN_ARM_FACTOR times the spawning.
    monkeypatch.setattr(scenarios.timers, "MIN_ARM_FACTOR", 8.0)
    run_round(scenarios.timers, runtime, 1_000, deadline_s=30)


def test_timers_no_timer_expires_before_the_region_however_long_the_collection_takes(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The garbage collection before the region once took longer than the deadlines left
    (80-90 ms on trio at N = 10,000): the main task's sleep ended after the first deadline, the
    loop expired the timers in that same step, and the region measured the resuming alone. Now
    the collection counts as arming, and nothing yields between it and the region: every task
    resumes after the region has started, and in time (a timer expired before the main task
    woke would read the whole collection late)."""
    monkeypatch.setattr(scenarios.timers, "_arm_ratios", {})
    started = False
    before: list[float] = []
    slow = [0.6]  # the first try's collection: far past the 10 ms lead and 8x the spawning

    class SlowlyCollecting(Probe):
        def collect_garbage(self) -> None:
            super().collect_garbage()
            if slow:
                time.sleep(slow.pop())

        def start(self, ops: int) -> None:
            nonlocal started
            started = True
            super().start(ops)

    real_sleep_until = anyio.sleep_until

    async def noting(deadline: float) -> None:
        await real_sleep_until(deadline)  # raises in a try abandoned for its late arming
        if not started:
            before.append(deadline)

    monkeypatch.setattr(anyio, "sleep_until", noting)
    result = run_round(
        scenarios.timers, runtime, 1_000, deadline_s=30, latency=True, probe_type=SlowlyCollecting
    )
    assert not slow  # the slow collection happened
    assert result.ops == 1_000
    assert before == []
    assert min(result.samples["lateness"]) < 0.3e9


def test_timers_learns_how_long_arming_takes_on_each_loop(runtime: Runtime) -> None:
    ratios: dict[str, float] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scenarios.timers, "_arm_ratios", ratios)
        # The first round's deadlines leave 8 times the spawning: more than DEADLINE_S allows
        # a round of 1,000 under load.
        run_round(scenarios.timers, runtime, 1_000, deadline_s=30)
    kinds = {"asyncio": "asyncio.unix_events", "asyncio-eager": "asyncio.unix_events"}
    kinds |= {"uvloop": "uvloop", "trio": "trio.lowlevel", "rloop": "rloop.loop"}
    [(kind, ratio)] = ratios.items()
    assert kind == kinds[runtime.name]
    assert ratio > 0  # 1,000 tasks arm in milliseconds, above uvloop's clock's grain


# -- cancellation ----------------------------------------------------------------------------


def test_cancellation_catches_a_swallowed_cancellation(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_sleep_forever = anyio.sleep_forever

    async def swallowing() -> None:
        try:
            await real_sleep_forever()
        except anyio.get_cancelled_exc_class():
            pass  # the bug under test: the task returns normally instead of unwinding

    monkeypatch.setattr(anyio, "sleep_forever", swallowing)
    with pytest.raises(ScenarioFailed, match="a task did not see cancellation once"):
        run_round(scenarios.cancellation, runtime, N, deadline_s=DEADLINE_S)
