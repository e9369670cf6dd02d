"""Done callback: N futures, each with a callback, resolved later (``add_done_callback``).

Set-up (outside the region): N futures, one plain callback added to each. One operation is one
dispatch: ``set_result`` schedules the callback and the scheduler runs it. The measured region runs
from the first ``set_result`` until the last callback has run; the resolving task sets all N
results without yielding, so the callbacks run afterwards, in the order their futures completed.

Checks: every callback ran exactly once, in completion order, and saw its future's result.
"""

import anyio

from anybench import TRIO_CALLBACKS_CAVEAT, Future, Probe, check

NAME = "done_callback"
OPERATION = "set_result -> done-callback runs"
LATENCIES = {"callback": "set_result() -> the callback starts"}
#: What a reader of the report's figures should know of this scenario, by topic.
REMARKS = {
    "memory": "per pending future with its callback",
    "anyio_tax": (
        "its anyio side includes anybench's portable Future (anyio has none): the tax of "
        "anyio and that Future together"
    ),
}
#: What this figure does differently on a backend (marked † wherever it appears).
CAVEATS = {"trio": TRIO_CALLBACKS_CAVEAT}


async def run(n: int, probe: Probe) -> None:
    clock = probe.clock
    stamps = probe.latency
    futures: list[Future[int]] = [Future() for _ in range(n)]
    set_ns = [0] * n
    ran_ns = [0] * n
    seen: list[int] = []
    all_ran = anyio.Event()

    def on_done(fut: Future[int]) -> None:
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


def check_and_record(
    probe: Probe, n: int, seen: list[int], set_ns: list[int], ran_ns: list[int]
) -> None:
    """The untimed tail, shared with ``done_callback_native``: every callback ran exactly once,
    in completion order; the delays from each ``set_result`` to its callback."""
    check(seen == list(range(n)), "callbacks did not run exactly once each in completion order")
    probe.record("callback", [r - s for r, s in zip(ran_ns, set_ns, strict=True)])
