"""Done callback without anyio: the ``done_callback`` scenario in plain asyncio and plain trio.

asyncio: ``loop.create_future()``, ``add_done_callback``, ``set_result``, as in the tutorial.
trio has no futures and no done-callbacks, by design; its plain way to have the scheduler run a
function soon is ``TrioToken.run_sync_soon``, so "resolving the future" is scheduling the
callback with it. That call is thread-safe and writes to trio's wake-up socket each time: this
baseline includes that cost, which anybench's own trio adapter avoids (see anybench._adapter).

Checks, as in ``done_callback``: every callback ran exactly once, in completion order.
"""

import asyncio

import trio

from anybench import Probe, check

from .done_callback import LATENCIES, OPERATION

NAME = "done_callback_native"
NATIVE_OF = "done_callback"
#: What differs from the anyio twin on a backend, shown beside the anyio tax in the report.
CAVEATS = {
    "trio": "trio has no done-callbacks: the native side schedules them with the thread-safe "
    "run_sync_soon (a socket write each), which anybench's own trio adapter avoids",
}
__all__ = ["CAVEATS", "LATENCIES", "NAME", "NATIVE_OF", "OPERATION", "run_asyncio", "run_trio"]


async def run_asyncio(n: int, probe: Probe) -> None:
    clock = probe.clock
    loop = asyncio.get_running_loop()
    futures = [loop.create_future() for _ in range(n)]
    set_ns = [0] * n
    ran_ns = [0] * n
    seen: list[int] = []
    all_ran = asyncio.Event()

    def on_done(fut: asyncio.Future[int]) -> None:
        i = fut.result()
        ran_ns[i] = clock()
        seen.append(i)
        if len(seen) == n:
            probe.stop()
            all_ran.set()

    for fut in futures:
        fut.add_done_callback(on_done)

    probe.start(ops=n)
    for i, fut in enumerate(futures):
        set_ns[i] = clock()
        fut.set_result(i)
    await all_ran.wait()

    check(seen == list(range(n)), "callbacks did not run exactly once each in completion order")
    probe.record("callback", [r - s for r, s in zip(ran_ns, set_ns, strict=True)])


async def run_trio(n: int, probe: Probe) -> None:
    clock = probe.clock
    token = trio.lowlevel.current_trio_token()
    set_ns = [0] * n
    ran_ns = [0] * n
    seen: list[int] = []
    all_ran = trio.Event()

    def on_done(i: int) -> None:
        ran_ns[i] = clock()
        seen.append(i)
        if len(seen) == n:
            probe.stop()
            all_ran.set()

    probe.start(ops=n)
    for i in range(n):
        set_ns[i] = clock()
        token.run_sync_soon(on_done, i)
    await all_ran.wait()

    check(seen == list(range(n)), "callbacks did not run exactly once each in completion order")
    probe.record("callback", [r - s for r, s in zip(ran_ns, set_ns, strict=True)])
