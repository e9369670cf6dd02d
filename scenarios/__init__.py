"""The scenarios, written once against anyio. ``ALL`` is the one list every benchmark runs."""

from types import ModuleType

from . import (
    await_future,
    cancellation,
    chain,
    checkpoint_round_robin,
    done_callback,
    fan_in,
    fan_out_callbacks,
    fan_out_event,
    latency_under_load,
    mixed,
    spawn,
    timers,
)

#: A scenario is a module providing NAME, OPERATION, LATENCIES and ``async def run(n, probe)``.
ScenarioModule = ModuleType

ALL = (
    spawn,
    done_callback,
    await_future,
    mixed,
    fan_out_callbacks,
    fan_out_event,
    fan_in,
    chain,
    checkpoint_round_robin,
    timers,
    cancellation,
    latency_under_load,
)
BY_NAME = {scenario.NAME: scenario for scenario in ALL}
