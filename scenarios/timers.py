"""Timers: N tasks each sleep until their own deadline (``anyio.sleep_until``).

Set-up (outside the region): N tasks are spawned and each arms its timer for ``base + i * STEP_S``
on the loop clock (``anyio.current_time()``), ``base`` leaving time for all to arm first; the main
task then collects the set-up's garbage, blocks its thread (``time.sleep``) until SPIN_S before
its region starts and spins from there, never yielding to the loop in between, so that no timer
can expire and no task resume before the region that measures them. (It used to sleep on the
loop until just before ``base`` and spin from there. Where the collection, 80-90 ms on trio at
N = 10,000, left less time than that, the sleep ended after ``base``: trio expired every timer
in the step that woke the main task, before its region began, and the region measured the
resuming alone, 13.7 µs a timer where the others measured 35, in none to six of a variant's 24
processes in a run.)

How long arming takes is predicted from the spawning: arming costs a task 0.4-0.9 times what
spawning it did on asyncio, uvloop and rloop, but 1.5-2.0 times on trio under anyio 4.16 and
3.2-4.2 times under anyio 4.13 (measured at N = 10,000 and 100,000), so ``base`` is ARM_MARGIN
times the largest ratio this process has seen on this loop after the spawning, and at least
MIN_ARM_FACTOR times (FIRST_ARM_FACTOR times before a ratio is known). The collection counts as
arming. Timers not all armed (and collected) SPIN_S before ``base`` would start the region during
the arming and miss part of it (a fixed factor of 3 had let that happen on trio under anyio 4.13:
8-9 µs a timer, where its timers take 21): such a try is cancelled before any region begins and
the set-up done again, its deadlines leaving ARM_MARGIN times the ratio just seen (a busy machine
had stretched one arming to 7.5 times the spawning where 3.1 was allowed); after ARM_ATTEMPTS
tries the round fails, naming the ratio.

One operation is one timer: it expires and its task resumes. The timers fall due as one burst
(STEP_S is shorter than any runtime takes per timer), so a timer's lateness includes the timers
due before it: it grows with N by design. In latency rounds the measured region runs from
``base`` until the last task has resumed. In throughput rounds the main task spins on until every
deadline is DUE_MARGIN_S behind it before the region starts: the region is then the expiring and
resuming alone, on every runtime, with no wait for a clock to reach a deadline in it (on uvloop,
whose clock counts whole milliseconds, that wait was up to a millisecond a round, most of a
region at N = 100, and made its figure vary by ±10-26%).

Lateness is read on the loop's own clock. uvloop's clock counts whole milliseconds (``uv_now``),
and the deadlines here fall in the millisecond of ``base`` (itself a whole millisecond there):
a timer that wakes within that millisecond reads ``-i * STEP_S`` late, one that wakes in the
next about +1 ms. On uvloop a lateness is therefore known only to a millisecond, and a negative
one is not early. (uvloop does fire early in real time where a delay is not a whole number of
milliseconds: ``call_later`` rounds it to the nearest one, uvloop/loop.pyx.)

Checks: every task woke exactly once, and (in latency rounds, which read the loop clock at each
wake-up) none before its deadline (within EARLY_TOLERANCE_NS).
"""

import time

import anyio
import anyio.lowlevel

from anybench import Probe, check

NAME = "timers"
OPERATION = "one timer: a sleep_until deadline passes and its task resumes"
LATENCIES = {"lateness": "deadline -> the sleeping task resumes, on the loop clock (may be < 0)"}
#: What a reader of the report's figures should know of this scenario, by topic.
REMARKS = {
    "latency": (
        "lateness is read on each runtime's own loop clock; uvloop's counts whole "
        "milliseconds, so on uvloop a lateness is known only to 1 ms, and one below 0 means "
        "the timer woke within its deadline's millisecond, not before it"
    ),
}
#: Every sleeping task is alive at once; the sweep stops at this many.
MAX_N = 100_000
STEP_S = 1e-7  # between consecutive deadlines
#: ``base`` is LEAD_S plus a factor times the spawning time after spawning ends: ARM_MARGIN
#: times the largest arming-over-spawning ratio seen in this process on this kind of loop, but
#: never less than MIN_ARM_FACTOR, and FIRST_ARM_FACTOR before any ratio is known. (The ratio
#: moves from round to round: on uvloop at N = 10,000 a round took 1.5 where 0.5 had been seen,
#: and failed with a factor of 1.0.)
LEAD_S, ARM_MARGIN, MIN_ARM_FACTOR, FIRST_ARM_FACTOR = 0.01, 2.0, 3.0, 8.0
#: How many times a round sets its timers up before it fails for arming them too late.
ARM_ATTEMPTS = 3
#: The largest arming-over-spawning ratio seen, by kind of loop (see _loop_kind).
_arm_ratios: dict[str, float] = {}
#: The arming (and the collection after it) must end at least this long before ``base``; the
#: main task spins (rather than sleeps) for as long before its region starts.
SPIN_S = 0.003
#: Throughput rounds: how long after the last deadline the region starts (every timer is due on
#: every clock: uvloop's counts whole milliseconds and rounds a delay to the nearest one).
DUE_MARGIN_S = 0.002
#: How early a timer may fire by the loop clock (uvloop rounds delays to the millisecond).
EARLY_TOLERANCE_NS = 1_000_000


def _loop_kind() -> str:
    """The running loop's kind: the module of its native token's type (asyncio's loop, uvloop's
    and rloop's differ; trio's token), or "" before anyio 4.11, which has no token (one ratio
    for every loop then: the largest seen)."""
    current_token = getattr(anyio.lowlevel, "current_token", None)
    return type(current_token().native_token).__module__ if current_token else ""


async def run(n: int, probe: Probe) -> None:
    kind = _loop_kind()
    late = ""
    for _ in range(ARM_ATTEMPTS):
        ratio, factor = await _attempt(n, probe, kind)
        if ratio is None:
            return
        late = f"arming took {ratio:.1f} times the spawning, the deadlines allowed {factor:.1f}"
    check(False, f"the timers were armed after their deadlines {ARM_ATTEMPTS} times: {late}")


async def _attempt(n: int, probe: Probe, kind: str) -> tuple[float | None, float]:
    """One try at the round: (None, factor) once its region is measured and checked, or
    (ratio, factor) if its timers were armed after their deadlines, before any region began
    (its tasks are cancelled; the next try's deadlines leave more time)."""
    stamps = probe.latency
    deadlines = [0.0] * n
    woke = [0.0] * n
    runs = [0] * n
    armed = resumed = woke_undecided = 0
    armed_in_time = decided = False
    all_armed = anyio.Event()

    async def sleeper(i: int) -> None:
        nonlocal armed, resumed, woke_undecided
        armed += 1
        if armed == n:
            all_armed.set()  # this task arms its timer below in the same step
        await anyio.sleep_until(deadlines[i])
        if not armed_in_time:  # a failed try (being cancelled), or a timer that did not wait
            woke_undecided += not decided
            return
        if stamps:  # anyio.current_time() costs a microsecond or two: latency rounds only
            woke[i] = anyio.current_time()
        runs[i] += 1
        resumed += 1
        if resumed == n:
            probe.stop()

    async with anyio.create_task_group() as tg:
        spawn_start = anyio.current_time()
        for i in range(n):
            tg.start_soon(sleeper, i)
        now = anyio.current_time()
        spawning = now - spawn_start
        seen = _arm_ratios.get(kind)
        factor = FIRST_ARM_FACTOR if seen is None else max(MIN_ARM_FACTOR, ARM_MARGIN * seen)
        base = now + LEAD_S + factor * spawning
        deadlines[:] = [base + i * STEP_S for i in range(n)]
        await all_armed.wait()
        # Now, not at the deadline, where it would make all late; and before the time is read,
        # so that the deadlines leave room for it as they do for the arming.
        probe.collect_garbage()
        armed_at = anyio.current_time()
        ratio = (armed_at - now) / spawning if spawning > 0 else 0.0
        _arm_ratios[kind] = max(ratio, _arm_ratios.get(kind, 0.0))
        armed_in_time = armed_at < base - SPIN_S
        decided = True
        if not armed_in_time:
            tg.cancel_scope.cancel()
        else:
            # Latency rounds start at the first deadline; throughput rounds once all are due.
            # No await until then: nothing the region measures can happen before it starts.
            # The loop's thread sleeps (yielding to nothing) until just before, then spins.
            start_at = base if stamps else deadlines[-1] + DUE_MARGIN_S
            time.sleep(max(0.0, start_at - SPIN_S - anyio.current_time()))
            while anyio.current_time() < start_at:
                pass
            probe.start(ops=n)
    if not armed_in_time:
        return ratio, factor
    # A task that woke before the main task found every timer armed in time woke SPIN_S early.
    check(
        not woke_undecided,
        f"{woke_undecided} tasks woke more than 1 ms before their deadline, while the timers "
        "were being armed",
    )
    check(all(count == 1 for count in runs), "a sleeping task did not wake exactly once")
    if stamps:
        lateness_ns = [round((w - d) * 1e9) for w, d in zip(woke, deadlines, strict=True)]
        early = sum(late < -EARLY_TOLERANCE_NS for late in lateness_ns)
        check(not early, f"{early} tasks woke more than 1 ms before their deadline")
        probe.record("lateness", lateness_ns)
    return None, factor
