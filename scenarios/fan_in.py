"""Fan-in: one task gathers N futures that another task resolves in a random order.

Set-up (outside the region): N futures and a fixed shuffle of their indices (``random.Random``
with SEED). The gatherer awaits the futures one after the other in index order, the shape of
``gather``; the resolver sets them in the shuffled order, one per scheduler pass (it yields after
each, as results arriving from elsewhere would). One operation is one future resolved and
collected. The measured region runs from the first ``set_result`` until the gatherer holds all N
results. The gatherer only wakes when the future it waits on completes, then collects the done
ones after it without yielding, so a result's delay includes waiting for the lower-numbered ones.

Checks: the gatherer collected all N results, each its own future's, in index order.
"""

import random

import anyio

from anybench import Future, Probe, check

NAME = "fan_in"
OPERATION = "one of N futures resolved in random order and collected by one gathering task"
LATENCIES = {"collect": "set_result() -> the gatherer holds that result"}
SEED = 20240601


async def run(n: int, probe: Probe) -> None:
    clock = probe.clock
    stamps = probe.latency
    futures: list[Future[int]] = [Future() for _ in range(n)]
    order = list(range(n))
    random.Random(SEED).shuffle(order)
    set_ns = [0] * n
    collected_ns = [0] * n
    gathered: list[int] = []
    # The gatherer sets this and parks on futures[0] in the same step.
    gatherer_parked = anyio.Event()

    async def gatherer() -> None:
        gatherer_parked.set()
        for i, fut in enumerate(futures):
            gathered.append(await fut)
            if stamps:
                collected_ns[i] = clock()
        probe.stop()

    async def resolver() -> None:
        await gatherer_parked.wait()
        probe.start(ops=n)
        for i in order:
            if stamps:
                set_ns[i] = clock()
            futures[i].set_result(3 * i + 1)
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        tg.start_soon(gatherer)
        tg.start_soon(resolver)

    check(gathered == [3 * i + 1 for i in range(n)], "the gathered results are wrong or incomplete")
    probe.record("collect", [c - s for c, s in zip(collected_ns, set_ns, strict=True)])
