"""Checkpoint round robin: N runnable tasks take turns at the scheduler (``checkpoint()``).

Set-up (outside the region): N tasks are spawned and kept runnable, each yielding in a loop until
the start. Then each yields YIELDS_PER_TASK more times and finishes. One operation is one yield
and the task's resumption; with N tasks runnable, each scheduler pass resumes every one of them
once. N is the number of tasks: a round does N * YIELDS_PER_TASK operations (OPS_PER_N per N).
The measured region runs from the start until the last task has finished its yields. The
latency of a yield is one pass over all N runnable tasks: it grows with N by design.

Checks: every task did all its yields, and they took turns: every task had begun its yields
before any task finished them.
"""

import anyio

from anybench import Probe, check

NAME = "checkpoint_round_robin"
OPERATION = "one yield of a runnable task (checkpoint) and its resumption"
LATENCIES = {"yield": "checkpoint() -> the same task resumes (one pass over the runnable tasks)"}
#: Every task is alive at once; the sweep stops at this many.
MAX_N = 100_000
YIELDS_PER_TASK = 10
#: Operations per unit of N: the round does N tasks x YIELDS_PER_TASK yields.
OPS_PER_N = YIELDS_PER_TASK


async def run(n: int, probe: Probe) -> None:
    clock = probe.clock
    stamps = probe.latency
    checkpoint = anyio.lowlevel.checkpoint
    gaps_ns = [0] * (n * YIELDS_PER_TASK)
    yields = [0] * n
    first = [0] * n  # the global yield count when each task began its yields ...
    last = [0] * n  # ... and when it finished them
    total = started = finished = 0
    go = False

    async def task(i: int) -> None:
        nonlocal total, started, finished
        started += 1
        while not go:
            await checkpoint()
        first[i] = total
        for k in range(i * YIELDS_PER_TASK, (i + 1) * YIELDS_PER_TASK):
            total += 1
            if stamps:
                t = clock()
                await checkpoint()
                gaps_ns[k] = clock() - t
            else:
                await checkpoint()
            yields[i] += 1
        last[i] = total
        finished += 1
        if finished == n:
            probe.stop()

    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(task, i)
        while started < n:
            await checkpoint()
        go = True
        probe.start(ops=n * YIELDS_PER_TASK)

    check(all(y == YIELDS_PER_TASK for y in yields), "a task did not do all its yields")
    check(max(first) < min(last), "the tasks did not take turns: one finished before another began")
    probe.record("yield", gaps_ns)
