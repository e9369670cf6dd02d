"""Spawn: fire and forget, then keep going (the tutorial's ``ensure_future``).

One operation is one task's whole life: ``start_soon`` from a running task, the task's first line,
its (empty) body and its exit. The measured region runs from the first spawn until every task
has finished and the task group has exited (the same end point on every runtime). The
spawner does not yield while spawning, so every task starts after all N spawns: the
spawn-to-first-line delay of task i includes the spawning of the tasks after it.

Checks: every task ran exactly once (anyio promises no start order, so none is checked).
"""

import anyio

from anybench import Probe, check

NAME = "spawn"
OPERATION = "spawn a task and run it to completion"
LATENCIES = {"spawn": "start_soon() -> the task's first line runs"}
#: What a reader of the report's figures should know of this scenario, by topic.
REMARKS = {
    "memory": "per live task: every task is alive at once",
}
#: Every task is alive at once; the sweep stops at this many.
MAX_N = 100_000


async def run(n: int, probe: Probe) -> None:
    clock = probe.clock
    stamps = probe.latency
    spawned_ns = [0] * n
    started_ns = [0] * n
    runs = [0] * n

    async def task(i: int) -> None:
        if stamps:
            started_ns[i] = clock()
        runs[i] += 1

    async with anyio.create_task_group() as tg:
        probe.start(ops=n)
        for i in range(n):
            if stamps:
                spawned_ns[i] = clock()
            tg.start_soon(task, i)
    probe.stop()

    check_and_record(probe, runs, spawned_ns, started_ns)


def check_and_record(
    probe: Probe, runs: list[int], spawned_ns: list[int], started_ns: list[int]
) -> None:
    """The untimed tail, shared with ``spawn_native``: every task ran exactly once; the delays
    from each spawn to its task's first line."""
    check(all(count == 1 for count in runs), f"tasks ran {sorted(set(runs))} times, expected once")
    probe.record("spawn", [s - t for s, t in zip(started_ns, spawned_ns, strict=True)])
