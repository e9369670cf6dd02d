"""Cancellation: N parked tasks cancelled at once (``task_group.cancel_scope.cancel()``).

Set-up (outside the region): N tasks are spawned in one task group and all parked in
``anyio.sleep_forever()``; the last to arrive sets an event and parks in the same step, so when the
main task resumes every task is parked. One operation is one task cancelled: woken with the
runtime's cancellation exception, unwound and gone. The measured region runs from ``cancel()``
until the task group has exited with all N tasks finished; a task's delay includes the tasks
cancelled before it.

Checks: every task saw the cancellation exactly once, and none finished normally.
"""

import anyio

from anybench import Probe, check

NAME = "cancellation"
OPERATION = "one of N parked tasks cancelled and unwound"
LATENCIES = {"cancel": "cancel_scope.cancel() -> the task sees the cancellation exception"}
#: Every task is alive at once; the sweep stops at this many.
MAX_N = 100_000


async def run(n: int, probe: Probe) -> None:
    clock = probe.clock
    stamps = probe.latency
    cancelled_exc = anyio.get_cancelled_exc_class()
    seen_ns = [0] * n
    cancellations = [0] * n
    finished = [0] * n
    parked = 0
    all_parked = anyio.Event()

    async def sleeper(i: int) -> None:
        nonlocal parked
        parked += 1
        if parked == n:
            all_parked.set()  # this task parks below in the same step
        try:
            await anyio.sleep_forever()
        except cancelled_exc:
            if stamps:
                seen_ns[i] = clock()
            cancellations[i] += 1
            raise
        finished[i] += 1

    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(sleeper, i)
        await all_parked.wait()
        probe.start(ops=n)
        cancel_ns = clock()
        tg.cancel_scope.cancel()
    probe.stop()

    check(all(count == 1 for count in cancellations), "a task did not see cancellation once")
    check(not any(finished), "a task finished normally instead of being cancelled")
    probe.record("cancel", [s - cancel_ns for s in seen_ns])
