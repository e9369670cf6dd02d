"""Latency under load: wake-up and callback delays while B other tasks keep the loop busy.

B background tasks loop on zero-length sleeps, so every scheduling pass also runs all of them.
Meanwhile SAMPLES round trips are made as in ``await_future``: the resolver sets ``ping[i]``,
which has a done-callback, and awaits ``pong[i]``; the waiter, parked on ``ping[i]``, resumes and
sets ``pong[i]``. One operation is one round trip; the scale is the load B (``AXIS = "load"``),
and the delays show how p50/p99/max grow with it.

Checks: every round trip completed in order, every callback ran once, and the background tasks
ran while the samples were taken (at least one pass each per round trip).
"""

import anyio

from anybench import TRIO_CALLBACKS_CAVEAT, Future, Probe, check

NAME = "latency_under_load"
OPERATION = "round trip (as in await_future) among B always-ready tasks"
LATENCIES = {
    "wake": "set_result() -> the awaiting task resumes",
    "callback": "set_result() -> the done-callback starts",
}
#: What a reader of the report's figures should know of this scenario, by topic.
REMARKS = {
    "latency": "single wake-ups, one round trip at a time, behind B always-ready tasks",
}
#: What this figure does differently on a backend (marked † wherever it appears).
CAVEATS = {"trio": TRIO_CALLBACKS_CAVEAT}
AXIS = "load"
#: Round trips per round: with at least five rounds, p99 rests on 25 or more samples above it.
SAMPLES = 500


async def run(n: int, probe: Probe) -> None:
    clock = probe.clock
    stamps = probe.latency
    load = n
    ping: list[Future[int]] = [Future() for _ in range(SAMPLES)]
    pong: list[Future[int]] = [Future() for _ in range(SAMPLES)]
    set_ns = [0] * SAMPLES
    woke_ns = [0] * SAMPLES
    callback_ns = [0] * SAMPLES
    callback_runs = [0] * SAMPLES
    received: list[int] = []
    passes = [0] * load
    done = anyio.Event()
    waiter_parked = anyio.Event()  # set by the waiter in the same step as it parks on ping[0]

    def on_done(fut: Future[int]) -> None:
        i = fut.result()
        if stamps:
            callback_ns[i] = clock()
        callback_runs[i] += 1

    for fut in ping:
        fut.add_done_callback(on_done)

    async def background(k: int) -> None:
        while not done.is_set():
            passes[k] += 1
            await anyio.sleep(0)

    async def waiter() -> None:
        waiter_parked.set()
        for i in range(SAMPLES):
            received.append(await ping[i])
            if stamps:
                woke_ns[i] = clock()
            pong[i].set_result(i)

    async with anyio.create_task_group() as tg:
        for k in range(load):
            tg.start_soon(background, k)
        tg.start_soon(waiter)
        await waiter_parked.wait()
        probe.start(ops=SAMPLES)
        for i in range(SAMPLES):
            if stamps:
                set_ns[i] = clock()
            ping[i].set_result(i)
            await pong[i]
        probe.stop()
        done.set()

    check(received == list(range(SAMPLES)), "the waiter did not receive every value in order")
    check(all(runs == 1 for runs in callback_runs), "a done-callback did not run exactly once")
    check(all(p >= SAMPLES for p in passes), "the background load did not run alongside")
    probe.record("wake", [w - s for w, s in zip(woke_ns, set_ns, strict=True)])
    probe.record("callback", [c - s for c, s in zip(callback_ns, set_ns, strict=True)])
