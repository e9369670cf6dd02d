"""Done callback without anyio: the ``done_callback`` scenario in plain asyncio and plain trio.

asyncio: ``loop.create_future()``, ``add_done_callback``, ``set_result``, as in the tutorial.
trio has no futures and no done-callbacks, by design. Its ``TrioToken.run_sync_soon`` is
thread-safe and writes to the wake-up socket on every call, so this baseline instead schedules
each callback with the same kind of queue as anybench's trio adapter, in plain public trio: a
FIFO run once per scheduler batch, with no system call; here one task drains it, where the
adapter runs it from an instrument hook between batches. "Resolving the future" is appending
its callback to that queue. The † on trio's callback figures marks the remaining difference.

Checks, as in ``done_callback``: every callback ran exactly once, in completion order.
"""

import asyncio
from collections import deque
from typing import Any

import trio

from anybench import Probe

from .done_callback import LATENCIES, OPERATION, check_and_record

NAME = "done_callback_native"
NATIVE_OF = "done_callback"
__all__ = ["LATENCIES", "NAME", "NATIVE_OF", "OPERATION", "run_asyncio", "run_trio"]


async def run_asyncio(n: int, probe: Probe) -> None:
    clock = probe.clock
    stamps = probe.latency
    loop = asyncio.get_running_loop()
    futures = [loop.create_future() for _ in range(n)]
    set_ns = [0] * n
    ran_ns = [0] * n
    seen: list[int] = []
    all_ran = asyncio.Event()

    def on_done(fut: asyncio.Future[int]) -> None:
        i = fut.result()
        if stamps:
            ran_ns[i] = clock()
        seen.append(i)
        if len(seen) == n:
            probe.stop()
            all_ran.set()

    for fut in futures:
        fut.add_done_callback(on_done)

    probe.start(ops=n)
    for i, fut in enumerate(futures):
        if stamps:
            set_ns[i] = clock()
        fut.set_result(i)
    await all_ran.wait()

    check_and_record(probe, n, seen, set_ns, ran_ns)


async def run_trio(n: int, probe: Probe) -> None:
    clock = probe.clock
    stamps = probe.latency
    lowlevel = trio.lowlevel
    set_ns = [0] * n
    ran_ns = [0] * n
    seen: list[int] = []
    all_ran = trio.Event()
    # trio's plain way to have the scheduler run a function soon, without its thread-safe
    # run_sync_soon: a queue drained by one task, woken by the first call of a batch.
    queue: deque[int] = deque()
    parked: list[Any] = []  # the drain task while it waits for work

    def call_soon(i: int) -> None:
        queue.append(i)
        if parked:
            lowlevel.reschedule(parked.pop())

    def on_done(i: int) -> None:
        if stamps:
            ran_ns[i] = clock()
        seen.append(i)
        if len(seen) == n:
            probe.stop()
            all_ran.set()

    def abort(_: object) -> Any:
        parked.clear()
        return lowlevel.Abort.SUCCEEDED

    async def drain() -> None:
        while len(seen) < n:
            if not queue:
                parked.append(lowlevel.current_task())
                await lowlevel.wait_task_rescheduled(abort)
            for _ in range(len(queue)):
                on_done(queue.popleft())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(drain)
        await trio.sleep(0)  # the drain task parks
        probe.start(ops=n)
        for i in range(n):
            if stamps:
                set_ns[i] = clock()
            call_soon(i)
        await all_ran.wait()

    check_and_record(probe, n, seen, set_ns, ran_ns)
