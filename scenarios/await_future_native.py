"""Await future without anyio: the ``await_future`` ping-pong in plain asyncio and plain trio.

asyncio awaits ``loop.create_future()`` futures; trio, which has no futures, parks on a
``trio.Event`` per future with the value beside it. Same round trips and checks as
``await_future``.
"""

import asyncio

import trio

from anybench import Probe

from .await_future import LATENCIES, OPERATION, check_and_record

NAME = "await_future_native"
NATIVE_OF = "await_future"
__all__ = ["LATENCIES", "NAME", "NATIVE_OF", "OPERATION", "run_asyncio", "run_trio"]


async def run_asyncio(n: int, probe: Probe) -> None:
    clock = probe.clock
    stamps = probe.latency
    loop = asyncio.get_running_loop()
    ping = [loop.create_future() for _ in range(n)]
    pong = [loop.create_future() for _ in range(n)]
    set_ns = [0] * n
    woke_ns = [0] * n
    received: list[int] = []
    echoed: list[int] = []
    waiter_parked = asyncio.Event()  # set by the waiter in the same step as it parks on ping[0]

    async def waiter() -> None:
        waiter_parked.set()
        for i in range(n):
            value = await ping[i]
            if stamps:
                woke_ns[i] = clock()
            received.append(value)
            pong[i].set_result(value)

    waiting = asyncio.ensure_future(waiter())
    await waiter_parked.wait()
    probe.start(ops=n)
    for i in range(n):
        if stamps:
            set_ns[i] = clock()
        ping[i].set_result(i)
        echoed.append(await pong[i])
    probe.stop()
    await waiting

    check_and_record(probe, n, received, echoed, set_ns, woke_ns)


async def run_trio(n: int, probe: Probe) -> None:
    clock = probe.clock
    stamps = probe.latency
    ping = [trio.Event() for _ in range(n)]
    pong = [trio.Event() for _ in range(n)]
    ping_values = [-1] * n
    pong_values = [-1] * n
    set_ns = [0] * n
    woke_ns = [0] * n
    received: list[int] = []
    echoed: list[int] = []
    waiter_parked = trio.Event()

    async def waiter() -> None:
        waiter_parked.set()
        for i in range(n):
            await ping[i].wait()
            if stamps:
                woke_ns[i] = clock()
            received.append(ping_values[i])
            pong_values[i] = ping_values[i]
            pong[i].set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await waiter_parked.wait()
        probe.start(ops=n)
        for i in range(n):
            if stamps:
                set_ns[i] = clock()
            ping_values[i] = i
            ping[i].set()
            await pong[i].wait()
            echoed.append(pong_values[i])
        probe.stop()

    check_and_record(probe, n, received, echoed, set_ns, woke_ns)
