"""Mixed without anyio: the ``mixed`` jobs in plain asyncio and plain trio.

asyncio: each job is an ``ensure_future`` task that makes a ``loop.create_future()``, adds a
done-callback, spawns its resolver and awaits the future; the background tasks loop on
``asyncio.sleep(0)``. trio has no futures or done-callbacks: a job's future is a ``trio.Event``
with the value beside it, and its callback is scheduled with ``TrioToken.run_sync_soon`` when the
resolver sets it (see ``done_callback_native``). Same work and checks as ``mixed``.
"""

import asyncio

import trio

from anybench import Probe

from .mixed import BACKGROUND_TASKS, LATENCIES, MAX_N, OPERATION, check_and_record

NAME = "mixed_native"
NATIVE_OF = "mixed"
#: What differs from the anyio twin on a backend, shown beside the anyio tax in the report.
CAVEATS = {
    "trio": "trio has no done-callbacks: the native side schedules them with the thread-safe "
    "run_sync_soon (a socket write each), which anybench's own trio adapter avoids",
}
__all__ = [
    "CAVEATS",
    "LATENCIES",
    "MAX_N",
    "NAME",
    "NATIVE_OF",
    "OPERATION",
    "run_asyncio",
    "run_trio",
]


async def run_asyncio(n: int, probe: Probe) -> None:
    clock = probe.clock
    stamps = probe.latency
    loop = asyncio.get_running_loop()
    set_ns = [0] * n
    woke_ns = [0] * n
    callback_ns = [0] * n
    results = [-1] * n
    callback_runs = [0] * n
    background_passes = [0] * BACKGROUND_TASKS
    remaining = 2 * n  # a wake-up and a callback per job
    all_done = asyncio.Event()
    tasks = []

    def finish_one() -> None:
        nonlocal remaining
        remaining -= 1
        if remaining == 0:
            all_done.set()

    def on_done(fut: asyncio.Future[int]) -> None:
        i = fut.result() // 2
        if stamps:
            callback_ns[i] = clock()
        callback_runs[i] += 1
        finish_one()

    async def resolve(fut: asyncio.Future[int], i: int) -> None:
        await asyncio.sleep(0)
        if stamps:
            set_ns[i] = clock()
        fut.set_result(2 * i)

    async def job(i: int) -> None:
        fut = loop.create_future()
        fut.add_done_callback(on_done)
        tasks.append(asyncio.ensure_future(resolve(fut, i)))
        results[i] = await fut
        if stamps:
            woke_ns[i] = clock()
        finish_one()

    async def background(k: int) -> None:
        while not all_done.is_set():
            background_passes[k] += 1
            await asyncio.sleep(0)

    tasks += [asyncio.ensure_future(background(k)) for k in range(BACKGROUND_TASKS)]
    await asyncio.sleep(0)  # let the background load start before the region
    probe.start(ops=n)
    for i in range(n):
        tasks.append(asyncio.ensure_future(job(i)))
    await all_done.wait()
    await asyncio.gather(*tasks)
    probe.stop()

    check_and_record(probe, results, callback_runs, background_passes, set_ns, woke_ns, callback_ns)


async def run_trio(n: int, probe: Probe) -> None:
    clock = probe.clock
    stamps = probe.latency
    token = trio.lowlevel.current_trio_token()
    set_ns = [0] * n
    woke_ns = [0] * n
    callback_ns = [0] * n
    results = [-1] * n
    callback_runs = [0] * n
    background_passes = [0] * BACKGROUND_TASKS
    remaining = 2 * n  # a wake-up and a callback per job
    all_done = trio.Event()

    def finish_one() -> None:
        nonlocal remaining
        remaining -= 1
        if remaining == 0:
            all_done.set()

    def on_done(value: int) -> None:
        i = value // 2
        if stamps:
            callback_ns[i] = clock()
        callback_runs[i] += 1
        finish_one()

    async def resolve(event: trio.Event, slot: list[int], i: int) -> None:
        await trio.sleep(0)
        if stamps:
            set_ns[i] = clock()
        slot.append(2 * i)
        event.set()
        token.run_sync_soon(on_done, 2 * i)

    async def job(i: int) -> None:
        event, slot = trio.Event(), list[int]()
        nursery.start_soon(resolve, event, slot, i)
        await event.wait()
        results[i] = slot[0]
        if stamps:
            woke_ns[i] = clock()
        finish_one()

    async def background(k: int) -> None:
        while not all_done.is_set():
            background_passes[k] += 1
            await trio.sleep(0)

    async with trio.open_nursery() as nursery:
        for k in range(BACKGROUND_TASKS):
            nursery.start_soon(background, k)
        await trio.sleep(0)  # let the background load start before the region
        probe.start(ops=n)
        for i in range(n):
            nursery.start_soon(job, i)
    probe.stop()

    check_and_record(probe, results, callback_runs, background_passes, set_ns, woke_ns, callback_ns)
