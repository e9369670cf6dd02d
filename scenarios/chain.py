"""Chain: each future's done-callback resolves the next future, N links deep.

Set-up (outside the region): N futures, each with one callback that passes its result plus one on
to the next future (the last one ends the region). One operation is one link: ``set_result``
schedules the callback, the scheduler runs it, and it resolves the next future. The links are
strictly sequential, one scheduler pass each. The measured region runs from resolving the first
future until the last future's callback has run.

Checks: the callbacks ran exactly once each, in chain order 0..N-1, and each saw its
predecessor's value plus one.
"""

from functools import partial

import anyio

from anybench import TRIO_CALLBACKS_CAVEAT, Future, Probe, check

NAME = "chain"
OPERATION = "one link: a done-callback resolves the next future of the chain"
LATENCIES = {"link": "set_result() of link i -> its done-callback starts"}
#: What a reader of the report's figures should know of this scenario, by topic.
REMARKS = {
    "latency": "single wake-ups: each link is resolved alone",
}
#: What this figure does differently on a backend (marked † wherever it appears).
CAVEATS = {"trio": TRIO_CALLBACKS_CAVEAT}


async def run(n: int, probe: Probe) -> None:
    clock = probe.clock
    stamps = probe.latency
    futures: list[Future[int]] = [Future() for _ in range(n)]
    set_ns = [0] * n
    ran_ns = [0] * n
    order: list[int] = []
    values: list[int] = []
    done = anyio.Event()

    def link(i: int, fut: Future[int]) -> None:
        if stamps:
            ran_ns[i] = clock()
        order.append(i)
        value = fut.result()
        values.append(value)
        if i + 1 < n:
            if stamps:
                set_ns[i + 1] = clock()
            futures[i + 1].set_result(value + 1)
        else:
            probe.stop()
            done.set()

    for i, fut in enumerate(futures):
        fut.add_done_callback(partial(link, i))

    probe.start(ops=n)
    if stamps:
        set_ns[0] = clock()
    futures[0].set_result(0)
    await done.wait()

    check(order == list(range(n)), "the links did not run exactly once each, in chain order")
    check(values == list(range(n)), "a link did not receive its predecessor's value plus one")
    probe.record("link", [r - s for r, s in zip(ran_ns, set_ns, strict=True)])
