"""Await future: a task awaits a future that another task resolves (``await fut``).

Two tasks play ping-pong over pre-made futures: the resolver sets ``ping[i]`` and awaits
``pong[i]``; the waiter, parked on ``ping[i]``, resumes and sets ``pong[i]``. One operation is one
round trip: two wake-ups of a parked task, each through the scheduler. The measured region runs
from the first ``set_result`` until the last round trip is back.

Checks: the waiter received 0..N-1 in order and the resolver received every echo.
"""

import anyio

from anybench import Future, Probe, check

NAME = "await_future"
OPERATION = "round trip: set_result -> awaiter resumes -> set_result -> resolver resumes"
LATENCIES = {"wake": "set_result() -> the awaiting task resumes"}
#: What a reader of the report's figures should know of this scenario, by topic.
REMARKS = {
    "anyio_tax": (
        "its anyio side includes anybench's portable Future (anyio has none): the tax of "
        "anyio and that Future together"
    ),
    "latency": "single wake-ups: one future is resolved at a time",
}


async def run(n: int, probe: Probe) -> None:
    clock = probe.clock
    stamps = probe.latency
    ping: list[Future[int]] = [Future() for _ in range(n)]
    pong: list[Future[int]] = [Future() for _ in range(n)]
    set_ns = [0] * n
    woke_ns = [0] * n
    received: list[int] = []
    echoed: list[int] = []
    # The waiter sets this and parks on ping[0] in the same step, so once the resolver sees it
    # set, every set_result below finds its awaiter parked.
    waiter_parked = anyio.Event()

    async def waiter() -> None:
        waiter_parked.set()
        for i in range(n):
            value = await ping[i]
            if stamps:
                woke_ns[i] = clock()
            received.append(value)
            pong[i].set_result(value)

    async def resolver() -> None:
        await waiter_parked.wait()
        probe.start(ops=n)
        for i in range(n):
            if stamps:
                set_ns[i] = clock()
            ping[i].set_result(i)
            echoed.append(await pong[i])
        probe.stop()

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        tg.start_soon(resolver)

    check_and_record(probe, n, received, echoed, set_ns, woke_ns)


def check_and_record(
    probe: Probe,
    n: int,
    received: list[int],
    echoed: list[int],
    set_ns: list[int],
    woke_ns: list[int],
) -> None:
    """The untimed tail, shared with ``await_future_native``: the waiter received 0..N-1 in
    order and the resolver every echo; the delays from each ``set_result`` to the wake-up."""
    check(received == list(range(n)), "the waiter did not receive 0..N-1 in order")
    check(echoed == list(range(n)), "the resolver did not receive every echo in order")
    probe.record("wake", [w - s for w, s in zip(woke_ns, set_ns, strict=True)])
