"""Fan-out callbacks: one future with N done-callbacks (``add_done_callback`` N times).

Set-up (outside the region): one future, and N plain callbacks added to it. One operation is one
callback dispatch: the single ``set_result`` hands every callback to the scheduler, which runs them
in registration order. The measured region runs from ``set_result`` until the last callback has
run, so callback i's delay includes the i callbacks before it: it grows with N by design.

Checks: every callback ran exactly once, in registration order, and saw the future's result.
"""

from functools import partial

import anyio

from anybench import TRIO_CALLBACKS_CAVEAT, Future, Probe, check

NAME = "fan_out_callbacks"
OPERATION = "one of N done-callbacks of one future runs after its set_result"
LATENCIES = {"callback": "set_result() -> each callback starts"}
RESULT = "done"
#: What this figure does differently on a backend (marked † wherever it appears).
CAVEATS = {"trio": TRIO_CALLBACKS_CAVEAT}


async def run(n: int, probe: Probe) -> None:
    clock = probe.clock
    stamps = probe.latency
    fut: Future[str] = Future()
    ran_ns = [0] * n
    seen: list[int] = []
    results: list[str] = []
    all_ran = anyio.Event()

    def on_done(i: int, done: Future[str]) -> None:
        if stamps:
            ran_ns[i] = clock()
        seen.append(i)
        results.append(done.result())
        if len(seen) == n:
            probe.stop()
            all_ran.set()

    for i in range(n):
        fut.add_done_callback(partial(on_done, i))

    probe.start(ops=n)
    set_ns = clock()
    fut.set_result(RESULT)
    await all_ran.wait()

    check(seen == list(range(n)), "callbacks did not run exactly once each in registration order")
    check(results == [RESULT] * n, "a callback did not see the future's result")
    probe.record("callback", [r - set_ns for r in ran_ns])
