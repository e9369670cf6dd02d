"""Spawn without anyio: the ``spawn`` scenario in plain asyncio and in plain trio.

The same work and the same checks as ``spawn``: asyncio spawns with ``ensure_future`` (as the
tutorial does) and waits with ``gather``; trio spawns into a nursery. Read beside ``spawn.py``:
the pair gives the anyio tax, anyio's ns/op divided by these.
"""

import asyncio

import trio

from anybench import Probe

from .spawn import LATENCIES, MAX_N, OPERATION, check_and_record

NAME = "spawn_native"
NATIVE_OF = "spawn"
__all__ = ["LATENCIES", "MAX_N", "NAME", "NATIVE_OF", "OPERATION", "run_asyncio", "run_trio"]


async def run_asyncio(n: int, probe: Probe) -> None:
    clock = probe.clock
    stamps = probe.latency
    spawned_ns = [0] * n
    started_ns = [0] * n
    runs = [0] * n

    async def task(i: int) -> None:
        if stamps:
            started_ns[i] = clock()
        runs[i] += 1

    tasks = []
    probe.start(ops=n)
    for i in range(n):
        if stamps:
            spawned_ns[i] = clock()
        tasks.append(asyncio.ensure_future(task(i)))
    await asyncio.gather(*tasks)
    probe.stop()

    check_and_record(probe, runs, spawned_ns, started_ns)


async def run_trio(n: int, probe: Probe) -> None:
    clock = probe.clock
    stamps = probe.latency
    spawned_ns = [0] * n
    started_ns = [0] * n
    runs = [0] * n

    async def task(i: int) -> None:
        if stamps:
            started_ns[i] = clock()
        runs[i] += 1

    async with trio.open_nursery() as nursery:
        probe.start(ops=n)
        for i in range(n):
            if stamps:
                spawned_ns[i] = clock()
            nursery.start_soon(task, i)
    probe.stop()

    check_and_record(probe, runs, spawned_ns, started_ns)
