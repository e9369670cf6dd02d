"""The scenarios, written once against anyio. ``ALL`` is the one list every benchmark runs."""

from types import ModuleType

from . import await_future, done_callback, mixed, spawn

#: A scenario is a module providing NAME, OPERATION, LATENCIES and ``async def run(n, probe)``.
ScenarioModule = ModuleType

ALL = (spawn, done_callback, await_future, mixed)
BY_NAME = {scenario.NAME: scenario for scenario in ALL}
