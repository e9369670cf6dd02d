"""Fan-out event: N tasks parked on one ``anyio.Event``, woken by one ``set()``.

Set-up (outside the region): N waiter tasks are spawned and all parked in ``event.wait()``; the last
to arrive sets a second event and parks in the same step, so when the main task resumes every
waiter is parked. One operation is one waiter woken and resumed. The measured region runs from
``event.set()`` until the last waiter has resumed; a waiter's delay includes the waiters resumed
before it (anyio promises no wake order, so none is checked).

Checks: every waiter resumed exactly once, after ``set()``.
"""

import anyio

from anybench import Probe, check

NAME = "fan_out_event"
OPERATION = "one of N tasks parked on one Event resumes after set()"
LATENCIES = {"wake": "event.set() -> each waiter resumes"}
#: What a reader of the report's figures should know of this scenario, by topic.
REMARKS = {
    "memory": "per parked task",
}
#: Every waiter is alive at once; the sweep stops at this many.
MAX_N = 100_000


async def run(n: int, probe: Probe) -> None:
    clock = probe.clock
    stamps = probe.latency
    event = anyio.Event()
    all_parked = anyio.Event()
    woke_ns = [0] * n
    runs = [0] * n
    was_set = [False] * n
    parked = 0
    resumed = 0

    async def waiter(i: int) -> None:
        nonlocal parked, resumed
        parked += 1
        if parked == n:
            all_parked.set()  # this waiter parks below in the same step
        await event.wait()
        if stamps:
            woke_ns[i] = clock()
        runs[i] += 1
        was_set[i] = event.is_set()
        resumed += 1
        if resumed == n:
            probe.stop()

    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(waiter, i)
        await all_parked.wait()
        probe.start(ops=n)
        set_ns = clock()
        event.set()

    check(all(count == 1 for count in runs), "a waiter did not resume exactly once")
    check(all(was_set), "a waiter resumed before the event was set")
    probe.record("wake", [w - set_ns for w in woke_ns])
