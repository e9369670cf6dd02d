"""The scenarios, written once against anyio. ``ALL`` is the one list every benchmark runs."""

from types import ModuleType

from . import (
    await_future,
    await_future_native,
    cancellation,
    chain,
    checkpoint_round_robin,
    done_callback,
    done_callback_native,
    fan_in,
    fan_out_callbacks,
    fan_out_event,
    latency_under_load,
    mixed,
    mixed_native,
    spawn,
    spawn_native,
    timers,
)

#: A scenario is a module providing NAME, OPERATION, LATENCIES and ``async def run(n, probe)``
#: (a native baseline: ``run_asyncio`` and ``run_trio`` instead, and NATIVE_OF).
ScenarioModule = ModuleType

ALL = (
    # The four tutorial patterns, each beside its native baseline (plain asyncio and plain
    # trio): the pair gives the anyio tax, and the native one, measured right after its twin,
    # is the control for the machine's drift when two runs are compared.
    spawn,
    spawn_native,
    done_callback,
    done_callback_native,
    await_future,
    await_future_native,
    mixed,
    mixed_native,
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
