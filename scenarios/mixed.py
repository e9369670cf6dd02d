"""Mixed: spawn, callbacks and awaits together with other concurrent work (the tutorial's
"putting it all together").

One operation is one job: a spawned task creates a future, adds a done-callback to it, spawns a
resolver task and awaits the future; the resolver first yields once (a checkpoint, standing for
other work) and then sets the result. Meanwhile BACKGROUND_TASKS tasks loop on zero-length sleeps
until all jobs are done, so every scheduling pass also carries them. The measured region runs from
the first job's spawn until every job has its result, every callback has run and the task group
has exited (the same end point on every runtime);
throughput is 1e9 / ns per op.

Checks: every job got its own result, every callback ran exactly once, and the background tasks
really ran during the region.
"""

import anyio

from anybench import TRIO_CALLBACKS_CAVEAT, Future, Probe, check

NAME = "mixed"
OPERATION = "job: spawn + future + done-callback + resolver task + await"
LATENCIES = {
    "wake": "set_result() -> the awaiting job resumes, under load",
    "callback": "set_result() -> the done-callback starts, under load",
}
#: What a reader of the report's figures should know of this scenario, by topic.
REMARKS = {
    "memory": "per live job: its two tasks, its future and its callback",
    "anyio_tax": (
        "its anyio side includes anybench's portable Future (anyio has none): the tax of "
        "anyio and that Future together"
    ),
}
#: What this figure does differently on a backend (marked † wherever it appears).
CAVEATS = {"trio": TRIO_CALLBACKS_CAVEAT}
#: Two tasks per job are alive at once; the sweep stops at this many jobs.
MAX_N = 100_000
#: Tasks that only yield (anyio.sleep(0)) while the jobs run: the "other concurrent work".
BACKGROUND_TASKS = 8


async def run(n: int, probe: Probe) -> None:
    clock = probe.clock
    stamps = probe.latency
    set_ns = [0] * n
    woke_ns = [0] * n
    callback_ns = [0] * n
    results = [-1] * n
    callback_runs = [0] * n
    background_passes = [0] * BACKGROUND_TASKS
    remaining = 2 * n  # a wake-up and a callback per job
    all_done = anyio.Event()

    def finish_one() -> None:
        nonlocal remaining
        remaining -= 1
        if remaining == 0:
            all_done.set()

    def on_done(fut: Future[int]) -> None:
        i = fut.result() // 2
        if stamps:
            callback_ns[i] = clock()
        callback_runs[i] += 1
        finish_one()

    async def resolve(fut: Future[int], i: int) -> None:
        await anyio.sleep(0)
        if stamps:
            set_ns[i] = clock()
        fut.set_result(2 * i)

    async def job(i: int) -> None:
        fut: Future[int] = Future()
        fut.add_done_callback(on_done)
        tg.start_soon(resolve, fut, i)
        results[i] = await fut
        if stamps:
            woke_ns[i] = clock()
        finish_one()

    async def background(k: int) -> None:
        while not all_done.is_set():
            background_passes[k] += 1
            await anyio.sleep(0)

    async with anyio.create_task_group() as tg:
        for k in range(BACKGROUND_TASKS):
            tg.start_soon(background, k)
        await anyio.sleep(0)  # let the background load start before the region
        probe.start(ops=n)
        for i in range(n):
            tg.start_soon(job, i)
    probe.stop()

    check_and_record(probe, results, callback_runs, background_passes, set_ns, woke_ns, callback_ns)


def check_and_record(
    probe: Probe,
    results: list[int],
    callback_runs: list[int],
    background_passes: list[int],
    set_ns: list[int],
    woke_ns: list[int],
    callback_ns: list[int],
) -> None:
    """The untimed tail, shared with ``mixed_native``: every job got its own result, every
    callback ran exactly once, the background tasks ran; the delays from each ``set_result``
    to the job's wake-up and to its callback."""
    n = len(results)
    check(results == [2 * i for i in range(n)], "a job did not get its own result")
    check(all(runs == 1 for runs in callback_runs), "a done-callback did not run exactly once")
    check(all(passes > 1 for passes in background_passes), "background tasks did not run")
    probe.record("wake", [w - s for w, s in zip(woke_ns, set_ns, strict=True)])
    probe.record("callback", [c - s for c, s in zip(callback_ns, set_ns, strict=True)])
