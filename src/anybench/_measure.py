"""Measuring in worker processes: several fresh processes per benchmark, spread over the run.

A *group* is one scenario at one scale N: every selected runtime and variant (an environment:
a Python with its own library versions) of it. A worker process measures one group in one
variant, on every runtime of it (see :mod:`anybench._worker`): within the worker the runtimes'
rounds alternate, one each in turn, forward then backward, so that whatever makes one process
or one minute slower falls on every runtime alike and cancels out of their ratios.

The whole matrix runs in passes (randomised multiple interleaved trials, after Abedi & Brecht
and Laaber et al.): in each pass every group gets one worker per variant, the groups in an
order shuffled afresh for the pass from the run's seed, the variants and runtimes forward in
even passes and reversed in odd ones. A benchmark's processes therefore lie in different
passes, minutes apart, and the machine's drift over the run enters its interval instead of
shifting it. After the minimum number of passes, a group gets another process in each later
pass only while one of its benchmarks' intervals is wider than the precision asked for, up to
a maximum, in every variant at once. The first process of a benchmark calibrates its passes per
round for the later ones.

A group's variants meet in each pass as ``--pairing`` says (:data:`PAIRINGS`): alive at once on
one CPU, their rounds taking turns (``lockstep``, the default: :class:`Turns`), one after the
other (``alternate``), or at the same moment, each worker pinned to a CPU of its own (``duet``,
two variants only). Each way each variant's process of a pass has the other's beside it, and
a comparison of the two pairs them by pass (:meth:`anybench._verdicts.Ratio.between_variants`).
The workers of a lockstep or a duet are waited on by a thread each, through the same
:func:`_one_worker` as any worker; what they settle is handed on in the calling thread, as it
comes.

The parent watches every worker: a round that outruns its deadline (set-up included), or a
worker whose resident memory passes the limit, is killed from outside and fails that benchmark
by name, and the rest of the group goes on in a fresh worker.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import itertools
import math
import os
import queue
import random
import selectors
import signal
import subprocess
import sys
import threading
import time
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._protocol import (
    GO,
    INTERRUPTED,
    Begin,
    Busy,
    Calibration,
    Done,
    Event,
    Failed,
    Finished,
    Hello,
    Job,
    Plan,
    ProtocolError,
    Round,
    ScaleJob,
    decode_event,
    encode_job,
)
from ._stats import log_interval_halfwidth, once_by_pass, paired_log_ratio, process_medians
from ._sweep import N, scale_text

__all__ = [
    "DEFAULT_PAIRING",
    "PAIRINGS",
    "Group",
    "Key",
    "Measurement",
    "Plan",
    "Variant",
    "WorkerFailed",
    "measure_group",
    "measure_matrix",
    "pairing_problem",
    "resolved_pairing",
]

#: Extra seconds a round may take, beyond its deadline, before its worker is killed: the
#: scenario's own cooperative deadline fires first where it can.
KILL_MARGIN_S = 2.0
#: Seconds a fresh worker may take to import and say hello.
START_TIMEOUT_S = 60.0

#: How the workers of a group's variants are placed in a pass. ``alternate``: one after the
#: other, their order reversed from one pass to the next. ``duet``: the two variants' workers
#: at the same moment, each pinned to a core of its own, so that whatever the minute does to
#: the machine falls on both (after Bulej et al.'s duet benchmarking). ``lockstep``: the
#: variants' workers alive at once but taking turns, one round at a time (:class:`Turns`), all
#: pinned to one CPU (the other in the next pass), so that rounds of the two are milliseconds
#: apart on one CPU and never run together: what that CPU does over a second or two falls on
#: both, with no contention between them. (A VM's two CPUs move each on its own: unpinned, one
#: worker's round could land on a CPU in a slow spell and the other's on one that was not.
#: Pinned, a worker's exit must take a turn too: beside the other's last round, on its CPU, it
#: read 18-71% slow; see the README.)
PAIRINGS = ("alternate", "duet", "lockstep")
#: The pairing of a run of several variants that asks for none: ``lockstep``. Measured here on
#: two days: floors of ±2-3% on a quiet machine (as ``alternate``'s), ±3-6.5% in the host's slow
#: spells (``alternate``: ±11.5-12%), ±12% with the unit tests running beside it (README).
DEFAULT_PAIRING = "lockstep"


def resolved_pairing(asked: str | None, variants: int) -> str:
    """The pairing a run of *variants* variants uses: what it *asked* for, or by default
    :data:`DEFAULT_PAIRING` for several variants and ``alternate`` (one worker after another:
    nothing to pair) for one."""
    if asked is not None:
        return asked
    return DEFAULT_PAIRING if variants > 1 else "alternate"


def _usable_cpus() -> list[int]:
    """The CPUs this process may run on (all of them where the system cannot say)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def pairing_problem(pairing: str, variants: int, cpus: int | None = None) -> str | None:
    """Why *pairing* cannot run *variants* variants on *cpus* CPUs (by default this process's),
    in one line; None when it can."""
    if pairing not in PAIRINGS:
        return f"--pairing takes {', '.join(PAIRINGS[:-1])} or {PAIRINGS[-1]}, not {pairing!r}"
    if pairing == "alternate":
        return None
    if pairing == "lockstep":
        if variants < 2:
            return (
                "--pairing lockstep runs variants' rounds by turns, but only one was given; "
                "give two or more --variant options, or use --pairing alternate"
            )
        return None
    if variants != 2:
        return (
            f"--pairing duet runs two variants side by side, but {variants} "
            f"{'was' if variants == 1 else 'were'} given; give "
            "exactly two --variant options, or use --pairing alternate"
        )
    cpus = len(_usable_cpus()) if cpus is None else cpus
    if cpus < 2:
        return (
            f"--pairing duet needs two CPUs, one per variant, but this process may use {cpus}; "
            "use --pairing alternate"
        )
    return None


@dataclass(frozen=True)
class Variant:
    """An environment to measure in: a label ("" for this interpreter) and its Python."""

    label: str = ""
    python: str = sys.executable


Key = tuple[int, str, str]  # (N, runtime, variant label)


@dataclass
class Measurement:
    """Everything measured for one benchmark (scenario, N, runtime, variant), over processes."""

    n: int
    runtime: str
    variant: str
    #: Per process, the elapsed ns of each throughput round.
    processes: list[list[int]] = field(default_factory=list)
    #: Per process, the worker's pid: the runtimes of a scale share their workers, so their
    #: figures pair up process by process.
    process_ids: list[int] = field(default_factory=list)
    #: Per process, how busy the machine was over its throughput rounds (None: not measured).
    process_busy: list[Busy | None] = field(default_factory=list)
    #: Per process, the pass over the matrix it ran in (from 1) and its worker's position in
    #: that pass (from 1): the processes of a benchmark are spread over the run. Two variants'
    #: workers that ran at the same moment (``--pairing duet``) share their position.
    process_passes: list[int] = field(default_factory=list)
    process_positions: list[int] = field(default_factory=list)
    #: The compiled modules its processes loaded from fresh copies of their files (see
    #: :mod:`anybench._fresh`; None once a process said nothing of copies); those some loaded
    #: from their own file instead, with why, and in how many processes.
    copied: set[str] | None = field(default_factory=set)
    own_file: dict[str, str] = field(default_factory=dict)
    own_file_processes: int = 0
    #: Per process, the bytes it held to shift its heap (None: not shifted).
    process_heap_shift: list[int | None] = field(default_factory=list)
    ops_per_round: int = 0
    passes: int = 0
    #: Per latency round: series -> samples (ns).
    latency_rounds: list[dict[str, array[int]]] = field(default_factory=list)
    #: Elapsed ns of the latency rounds (stamps on), for the instrument's cost.
    stamped_elapsed_ns: list[int] = field(default_factory=list)
    peak_bytes: int | None = None
    memory_ops: int = 0
    memory_n: int = 0
    #: Wall time its workers spent on it (start-up shared out), in seconds: the cost of the figure.
    worker_s: float = 0.0
    failure: str | None = None
    python: str = ""
    libraries: dict[str, Any] = field(default_factory=dict)

    def process_medians_ns_per_op(self) -> list[float]:
        """The median ns/op of each process."""
        return process_medians(self.processes, self.ops_per_round)

    def tight(self, precision: float) -> bool:
        medians = self.process_medians_ns_per_op()
        if len(medians) < 2:
            return False
        return math.expm1(log_interval_halfwidth(medians)) <= precision

    def paired_floor(self, other: Measurement) -> float:
        """The floor (half-width, relative) of the 95% interval of *other*'s ratio to this
        measurement, their processes paired by pass as compare pairs two variants of a run
        (:meth:`anybench._verdicts.Ratio.between_variants`); inf with fewer than two pairs."""
        mine, theirs = (
            once_by_pass(
                (number, median)
                for number, rounds in zip(m.process_passes, m.processes, strict=True)
                for median in process_medians([rounds], m.ops_per_round)  # none if no rounds
            )[0]
            if len(m.process_passes) == len(m.processes)
            else {}
            for m in (self, other)
        )
        pairs = [(mine[k], theirs[k]) for k in sorted(mine) if k in theirs]
        return paired_log_ratio(pairs).floor() if len(pairs) >= 2 else math.inf


def rotation_order(workers: Sequence[Any], rotation: int) -> list[Any]:
    """The order of the workers in a rotation: forward on even rotations, reversed on odd."""
    return list(workers) if rotation % 2 == 0 else list(reversed(workers))


class Turns:
    """The rounds of several workers (``--pairing lockstep``), one at a time and by turns: no
    round starts before all *expected* workers have started (said hello, or ended), so that
    none runs its rounds while another imports; a worker's round waits until no other worker's
    round runs; a worker that has had more turns than another still running waits for it; and
    where they have had as many, the one of lower rank (its variant's place in the pass) goes
    first. Two workers' rounds then come a's, b's, a's, b's, ... until one has ended: each
    round is next to the other's, so that a drift over seconds falls on both alike. The ranks
    come from :func:`_leaders`, so that each of two variants leads in half the passes, with
    the runtimes going forward as often as backward. (Who led was once left to whichever
    worker asked first, in pairs a's, b's, b's, a's, so one variant could hold the same place
    in most passes: an A/A of one round a process read one side 5-16% slower.) A worker's exit
    takes a turn of its own after its last round, held until it has exited, so that the last
    round of the other runs alone too (it once ran beside that exit: an A/A read one side
    18-71% off there). A worker that joins late (a fresh one, after a kill) starts level with
    the others still running, not at none, so that it does not take a run of turns in a row;
    until it has said hello, though, the other's rounds run beside its start (kills are rare:
    a deadline, the memory limit). A worker slow to ask (busy between its rounds) is waited
    for: the wait is not measured."""

    def __init__(self, expected: int = 1) -> None:
        self._changed = threading.Condition()
        self._expected = expected
        self._started: set[object] = set()
        self._ended: set[object] = set()
        self._rank: dict[object, int] = {}
        self._holder: object | None = None
        self._had: collections.Counter[object] = collections.Counter()

    def arrive(self, side: object, rank: int = 0) -> None:
        """*side*'s worker has started; of two with as many turns, the lower *rank* leads."""
        with self._changed:
            running = [self._had[other] for other in self._started - self._ended]
            self._had[side] = min(running, default=0)
            self._started.add(side)
            self._rank[side] = rank
            self._changed.notify_all()

    def leave(self, side: object) -> None:
        """*side*'s worker has ended (whether or not it said hello): nobody waits for it."""
        with self._changed:
            self._started.add(side)
            self._ended.add(side)
            if self._holder is side:
                self._holder = None
            self._changed.notify_all()

    def _must_wait(self, side: object) -> bool:
        """Whether another worker still running is owed a turn before *side*."""
        mine, rank = self._had[side], self._rank.get(side, 0)
        return any(
            self._had[other] < mine
            or (self._had[other] == mine and self._rank.get(other, 0) < rank)
            for other in self._started - self._ended - {side}
        )

    def acquire(self, side: object, stop: threading.Event | None = None) -> None:
        """Wait for *side*'s turn; KeyboardInterrupt if *stop* is set meanwhile."""
        with self._changed:
            while (
                len(self._started) < self._expected
                or self._holder is not None
                or self._must_wait(side)
            ):
                self._changed.wait(0.1)
                if stop is not None and stop.is_set():
                    raise KeyboardInterrupt
            self._holder = side
            self._had[side] += 1

    def release(self, side: object) -> None:
        """End *side*'s turn (nothing if it holds none)."""
        with self._changed:
            if self._holder is side:
                self._holder = None
                self._changed.notify_all()


class WorkerFailed(Exception):
    """A worker ended without its result: stopped from outside (a deadline, the memory limit),
    exited on its own before its job was done, or spoke out of protocol."""


def _rss_bytes(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def run_worker(
    variant: Variant,
    job: Job,
    *,
    cpu: int | None = None,
    stop: threading.Event | None = None,
    turns: Turns | None = None,
    rank: int = 0,
) -> Iterator[Event]:
    """Start a worker for *job* and yield its events as they come, up to :class:`Done`.

    Raises :class:`WorkerFailed` (after killing it, if it still runs) when a round outruns its
    deadline plus KILL_MARGIN_S, the worker starts too slowly, its resident memory passes the
    plan's limit, it sends what is not an event, or it exits before :class:`Done`; the message
    says which, for the round in progress. *cpu*: the one CPU the worker may run on (where the
    system lets a process be pinned). *stop*: once set, the worker is killed and
    KeyboardInterrupt raised, as if Ctrl-C had stopped it (the run is stopping). *turns*: the
    worker runs each round in a turn of its own (the job says so to it), from the GO this
    sends it after its :class:`Begin` until its :class:`Round`, and its exit in one more, from
    the GO after its :class:`Done` until it has exited (see :class:`Turns`), where *rank* is
    its place among them. Once it has sent :class:`Done` its work stands, however it ends: a
    stop or a Ctrl-C while it waits for that last turn, or exits, kills it and ends this
    without an exception, so that what it finished is handed on.
    """
    limit_bytes = job.plan.memory_limit_bytes
    side = object()
    if turns is not None:
        job = dataclasses.replace(job, turns=True)
    if stop is not None and stop.is_set():
        raise KeyboardInterrupt
    proc = subprocess.Popen(
        [variant.python, "-m", "anybench._worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=None,  # the worker's errors and the scenario's prints reach the console
        text=True,
    )
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        # Before its imports: the worker measures nothing on another CPU. It may have exited.
        with contextlib.suppress(OSError):
            os.sched_setaffinity(proc.pid, {cpu})
    assert proc.stdin is not None
    assert proc.stdout is not None
    try:
        try:
            proc.stdin.write(encode_job(job) + "\n")
            if turns is None:
                proc.stdin.close()
            else:
                proc.stdin.flush()
        except BrokenPipeError:  # it exited before reading its job: say how
            with contextlib.suppress(OSError):
                proc.stdin.close()
            code = proc.wait()
            raise WorkerFailed(f"starting: the worker exited with status {code}") from None
        selector = selectors.DefaultSelector()
        selector.register(proc.stdout, selectors.EVENT_READ)
        limit_s = START_TIMEOUT_S
        since = time.monotonic()
        what = "starting"
        buffer = ""
        done = False
        fd = proc.stdout.fileno()
        while True:
            if stop is not None and stop.is_set():
                if done:  # killed below, its work stands
                    return
                raise KeyboardInterrupt
            left = limit_s + KILL_MARGIN_S - (time.monotonic() - since)
            if left <= 0:
                raise WorkerFailed(f"{what} did not finish within {limit_s:g} s (worker killed)")
            if limit_bytes is not None:
                rss = _rss_bytes(proc.pid)
                if rss is not None and rss > limit_bytes:
                    raise WorkerFailed(
                        f"{what} passed the memory limit of {limit_bytes / 2**20:,.0f}"
                        " MiB (worker killed); raise --memory-limit or choose a smaller N"
                    )
            if not selector.select(timeout=min(left, 0.1)):
                continue
            chunk = os.read(fd, 1 << 20).decode("utf-8")
            if not chunk:  # the worker exited
                code = proc.wait()
                if done:  # its work is done and handed on, however it ended
                    return
                if code in (INTERRUPTED, -signal.SIGINT):
                    # Ctrl-C reaches the whole process group: the run stops, as the worker did,
                    # and no benchmark fails for it.
                    raise KeyboardInterrupt
                if code:
                    raise WorkerFailed(f"{what}: the worker exited with status {code}")
                raise WorkerFailed(
                    f"{what}: the worker exited (status 0) before finishing it; does the "
                    "scenario call sys.exit() or os._exit()?"
                )
            buffer += chunk
            *lines, buffer = buffer.split("\n")
            for line in lines:
                try:
                    message = decode_event(line)
                except ProtocolError as exc:
                    raise WorkerFailed(f"{what}: {exc} (worker killed)") from None
                if done:
                    raise WorkerFailed(
                        f"the worker sent {type(message).__name__} after Done (worker killed)"
                    )
                if isinstance(message, Hello) and turns is not None:
                    turns.arrive(side, rank)
                if isinstance(message, Begin):
                    limit_s = message.deadline_s
                    what = f"a {message.kind} round"
                    if turns is not None:
                        turns.acquire(side, stop)
                        _send_go(proc)
                elif isinstance(message, Done):
                    what = "exiting"
                    if turns is not None:
                        # Its exit takes a turn too, held until it has exited (see leave).
                        # Stopped while it waits: the stop check above ends it, work kept.
                        with contextlib.suppress(KeyboardInterrupt):
                            turns.acquire(side, stop)
                            _send_go(proc)
                elif turns is not None:
                    turns.release(side)  # its round ended (or it failed)
                since = time.monotonic()
                done = isinstance(message, Done)
                yield message
    finally:
        try:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        finally:
            if turns is not None:
                # Only once it is gone: a killed worker's end is freed outside any other turn.
                turns.leave(side)
        proc.stdout.close()
        if not proc.stdin.closed:
            with contextlib.suppress(OSError):
                proc.stdin.close()


def _send_go(proc: subprocess.Popen[str]) -> None:
    """Tell a worker that takes turns to start its round, or its exit (one that has exited
    meanwhile says so itself, by its exit)."""
    assert proc.stdin is not None
    with contextlib.suppress(BrokenPipeError):
        proc.stdin.write(GO + "\n")
        proc.stdin.flush()


@dataclass(frozen=True)
class Group:
    """One (scenario, scale N) of the matrix, with all its runtimes and variants: a worker
    process measures the group in one variant, every runtime of it, their rounds alternating."""

    #: The module a worker imports.
    scenario: str
    #: The benchmarks, (N, runtime, variant label): one N for all.
    keys: tuple[Key, ...]
    sys_path: tuple[str, ...] = ()
    #: The order of the runtimes within a worker (by default the order of the keys).
    runtime_order: tuple[str, ...] = ()
    axis: str = N.name
    #: The scenario's largest selected N: the memory round runs in the group of that N.
    largest: int = 0

    @property
    def n(self) -> int:
        return self.keys[0][0]

    def runtimes(self) -> list[str]:
        given = list(dict.fromkeys(rt for _, rt, _ in self.keys))
        ranked = [*self.runtime_order, *given]
        return sorted(given, key=ranked.index)


def scenario_groups(
    scenario: str,
    keys: Sequence[Key],
    *,
    sys_path: Sequence[str] = (),
    runtime_order: Sequence[str] = (),
    axis: str = N.name,
) -> list[Group]:
    """The groups of one scenario's benchmarks *keys*: one per N, smallest first."""
    largest = max(n for n, _, _ in keys)
    return [
        Group(
            scenario,
            tuple(key for key in keys if key[0] == n),
            tuple(sys_path),
            tuple(runtime_order),
            axis,
            largest,
        )
        for n in sorted({n for n, _, _ in keys})
    ]


#: ``on_process(group, key, measurement)``: a worker of *group* settled the benchmark *key*:
#: its measurement has one more process (the last of its lists), or it failed.
OnProcess = Callable[[Group, Key, "Measurement"], None]


def pass_order(groups: int, passes: int, seed: str | int) -> list[list[int]]:
    """The order of the groups (by index) in each of *passes* passes: freshly shuffled in each,
    from a random generator seeded with *seed*, so that one seed always gives one order."""
    rng = random.Random(seed)
    order = []
    for _ in range(passes):
        indices = list(range(groups))
        rng.shuffle(indices)
        order.append(indices)
    return order


def _leaders(labels: Sequence[str], number: int) -> list[str]:
    """The order in which a ``lockstep`` pass's variants lead their turns, in pass *number*
    (from 0): reversed every second pass, where the runtimes' order is reversed every pass, so
    that each variant leads as often with the runtimes going forward as backward. (Reversed
    with the runtimes, the same variant always had the last round of the same runtime, beside
    the other worker's exit.)"""
    return rotation_order(labels, number // 2)


def _pinned(pairing: str, side: int, number: int, cpus: Sequence[int]) -> int | None:
    """The CPU the worker of the *side*-th variant (from 0) in pass *number* (from 0) is pinned
    to, of *cpus* (none where the system cannot pin): in a duet, one CPU each, the two changing
    sides from one pass to the next, so that a faster CPU favours neither variant; in lockstep,
    every variant's on one CPU, the other in the next pass, so that adjacent turns share what
    that CPU does; alternating, none."""
    if pairing == "duet" and len(cpus) == 2:
        return cpus[(side + number) % 2]
    if pairing == "lockstep" and cpus:
        return cpus[number % len(cpus)]
    return None


def measure_matrix(
    groups: Sequence[Group],
    plan: Plan,
    variants: dict[str, Variant],
    *,
    seed: str | int = 0,
    pairing: str | None = None,
    on_process: OnProcess | None = None,
    on_pass: Callable[[int], None] | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> list[dict[Key, Measurement]]:
    """Measure every group in passes over the whole matrix; a :class:`Measurement` per key,
    per group (in the order of *groups*); a failed one carries its reason.

    In each pass every group that still wants a process gets one worker per variant, the
    groups in an order shuffled afresh for each pass (see :func:`pass_order`), so that a
    benchmark's processes are spread over the whole run and the machine's drift over its
    minutes enters the benchmark's interval rather than shifting it. A group wants a process
    until it has ``budget.processes`` of them, and then, up to ``budget.max_processes``, while
    any of its benchmarks' interval is wider than ``budget.precision``; in a run of several
    variants, while any runtime's ratio between two variants, paired by pass, is wider than
    ``budget.pair_precision`` (what an A/B run is for is that ratio, and a pass's pair cancels
    what the minute does to both, where a benchmark's own interval keeps it). It gets them in
    every variant at once, so that a variant's process of a pass has the other variants' of
    that pass to pair with (see :meth:`anybench._verdicts.Ratio.between_variants`).

    *pairing* places a group's variants in a pass (see :data:`PAIRINGS`; none: see
    :func:`resolved_pairing`): ``alternate`` one after the other, ``lockstep`` alive at once
    and taking turns, ``duet`` the two at the same moment, one per CPU (two variants only: see
    :func:`pairing_problem`; the workers of a group then share their position in the pass).
    *on_process* is called as each worker settles a benchmark, in the calling thread whichever
    the pairing; *on_pass* (with the pass's number, from 1) as each pass ends.
    """
    labels_of = [sorted({label for _, _, label in group.keys}) for group in groups]
    variant_count = len({label for labels in labels_of for label in labels})
    pairing = resolved_pairing(pairing, variant_count)
    problem = pairing_problem(pairing, variant_count)
    if problem is not None:
        raise ValueError(problem)
    budget = plan.budget
    results = [{key: Measurement(*key) for key in group.keys} for group in groups]
    most = max(budget.processes, budget.max_processes)
    cpus = _usable_cpus()[:2] if hasattr(os, "sched_setaffinity") else []

    def settled(n: int, found: dict[Key, Measurement], live: dict[str, list[str]]) -> bool:
        # One variant: each benchmark's own interval. Several: what the run is for is their
        # ratios, so each runtime's ratio between every two variants, paired by pass.
        if len(live) == 1:
            return all(
                found[(n, rt, label)].tight(budget.precision)
                for label, runtimes in live.items()
                for rt in runtimes
            )
        return all(
            found[(n, rt, a)].paired_floor(found[(n, rt, b)]) <= budget.pair_precision
            for a, b in itertools.combinations(sorted(live), 2)
            for rt in sorted(set(live[a]) & set(live[b]))
        )

    def wanted(index: int, number: int) -> dict[str, list[str]]:
        # A group's runtimes get another process together while any of them is still loose,
        # so that their ratios stay over the same processes; and so do its variants, so that
        # a pass's process of one has the other's to pair with.
        group, found = groups[index], results[index]
        live = {
            label: [
                rt
                for rt in group.runtimes()
                if (group.n, rt, label) in found and found[(group.n, rt, label)].failure is None
            ]
            for label in labels_of[index]
        }
        live = {label: runtimes for label, runtimes in live.items() if runtimes}
        if not live or (number >= budget.processes and settled(group.n, found, live)):
            return {}
        return {
            label: rotation_order(live[label], number)
            for label in rotation_order(list(live), number)
        }

    for number, order in enumerate(pass_order(len(groups), most, seed)):
        position = 0

        def next_position() -> int:
            nonlocal position
            position += 1
            return position

        for index in order:
            group, found = groups[index], results[index]
            todo = wanted(index, number)

            def report(keys: Sequence[Key], group: Group = group, index: int = index) -> None:
                if on_process is not None:
                    for key in keys:
                        on_process(group, key, results[index][key])

            if pairing in ("duet", "lockstep") and len(todo) >= 2:
                slot = next_position()

                def at_slot(slot: int = slot) -> int:
                    return slot

                # lockstep: their rounds take turns, the leader changing every second pass.
                turns = Turns(expected=len(todo)) if pairing == "lockstep" else None
                sides = [
                    functools.partial(
                        _measure_side,
                        group,
                        found,
                        label,
                        runtimes,
                        variants[label],
                        plan,
                        number,
                        at_slot,
                        cpu=_pinned(pairing, i, number, cpus),
                        turns=turns,
                        rank=_leaders(sorted(todo), number).index(label),
                    )
                    for i, (label, runtimes) in enumerate(sorted(todo.items()))
                ]
                _at_once(sides, report)
                continue
            for label, runtimes in todo.items():
                _measure_side(
                    group, found, label, runtimes, variants[label], plan, number, next_position,
                    report=report,
                )  # fmt: skip
        if position == 0:
            break
        log(f"pass {number + 1}: {position} worker(s)")
        if on_pass is not None:
            on_pass(number + 1)
    return results


def _measure_side(
    group: Group,
    found: dict[Key, Measurement],
    label: str,
    runtimes: Sequence[str],
    variant: Variant,
    plan: Plan,
    number: int,
    place: Callable[[], int],
    *,
    report: Callable[[list[Key]], None],
    cpu: int | None = None,
    stop: threading.Event | None = None,
    turns: Turns | None = None,
    rank: int = 0,
) -> None:
    """One variant's share of *group* in pass *number* (from 0): a worker over *runtimes*, and
    a fresh one for those a kill left, each placed in the pass by *place*; each worker's
    processes are noted with their pass and place, then the benchmarks it settled handed to
    *report*."""
    mine = {key: m for key, m in found.items() if key[2] == label}
    remaining = [(group.n, rt) for rt in runtimes]
    while remaining:
        position = place()
        before = {key: (len(m.processes), m.failure) for key, m in mine.items()}
        try:
            remaining = _one_worker(
                group.scenario,
                variant,
                remaining,
                found,
                plan,
                group.sys_path,
                first=number == 0,
                largest=group.largest,
                axis=group.axis,
                cpu=cpu,
                stop=stop,
                turns=turns,
                rank=rank,
            )
        finally:
            for key, m in mine.items():
                if len(m.processes) > before[key][0]:
                    m.process_passes.append(number + 1)
                    m.process_positions.append(position)
        report(
            [
                key
                for key, m in mine.items()
                if len(m.processes) > before[key][0] or m.failure != before[key][1]
            ]
        )


#: One side of a duet: :func:`_measure_side` with all but how it reports and stops bound.
Side = Callable[..., None]


def _at_once(sides: Sequence[Side], report: Callable[[list[Key]], None]) -> None:
    """Run *sides* at the same moment, a thread each (each thread waits on its worker; the
    workers do the measuring), and hand what each settles to *report* in this thread, one
    worker at a time, as it comes: the journal is written by one thread, and a side waits for
    its report before it goes on.

    The first side to raise (Ctrl-C stopped its worker, say) stops the others: their workers
    are killed, and their processes finished by then are reported all the same. The first
    exception is raised again here, as is a KeyboardInterrupt of this thread's own, once every
    side has ended.
    """
    reports: queue.Queue[tuple[list[Key], threading.Event] | None] = queue.Queue()
    stop = threading.Event()
    errors: list[BaseException] = []

    def hand_over(keys: list[Key]) -> None:
        seen = threading.Event()
        reports.put((keys, seen))
        seen.wait()

    def body(side: Side) -> None:
        try:
            side(report=hand_over, stop=stop)
        except BaseException as exc:  # re-raised in the calling thread
            errors.append(exc)
            stop.set()
        finally:
            reports.put(None)

    threads = [threading.Thread(target=body, args=(side,), daemon=True) for side in sides]
    for thread in threads:
        thread.start()
    running = len(threads)
    while running:
        try:
            item = reports.get(timeout=0.1)
        except queue.Empty:
            continue
        except KeyboardInterrupt as exc:
            errors.insert(0, exc)
            stop.set()
            continue
        if item is None:
            running -= 1
            continue
        keys, seen = item
        try:
            report(keys)
        except BaseException as exc:
            errors.insert(0, exc)
            stop.set()
        finally:
            seen.set()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def measure_group(
    scenario: str,
    keys: Sequence[Key],
    plan: Plan,
    variants: dict[str, Variant],
    *,
    sys_path: Sequence[str] = (),
    runtime_order: Sequence[str] = (),
    axis: str = N.name,
    seed: str | int = 0,
    pairing: str | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> dict[Key, Measurement]:
    """Measure every benchmark of one scenario (module name *scenario*) named by *keys*: its
    groups (one per N) in passes, as :func:`measure_matrix` measures a whole matrix (the
    variants placed as *pairing* says).

    *runtime_order* orders the runtimes within a worker (by default the order of the keys).
    Returns a :class:`Measurement` per key; a failed one carries its reason.
    """
    groups = scenario_groups(
        scenario, keys, sys_path=sys_path, runtime_order=runtime_order, axis=axis
    )
    results: dict[Key, Measurement] = {}
    for found in measure_matrix(groups, plan, variants, seed=seed, pairing=pairing, log=log):
        results.update(found)
    return {key: results[key] for key in keys}


def _scale_jobs(
    todo: list[tuple[int, str]],
    results: dict[Key, Measurement],
    label: str,
    plan: Plan,
    *,
    first: bool,
    largest: int,
) -> tuple[ScaleJob, ...]:
    """What a worker does at each scale of *todo*, (N, runtime) pairs; *first*: in the first
    rotation (which has the memory round, and the only latency rounds if not every process
    has them); *largest*: the group's largest N."""
    budget = plan.budget
    jobs = []
    for n in sorted({n for n, _ in todo}):
        runtimes = tuple(rt for m, rt in todo if m == n)
        passes = {rt: results[(n, rt, label)].passes for rt in runtimes}
        jobs.append(
            ScaleJob(
                n=n,
                runtimes=runtimes,
                # Calibrated in the first worker; each worker plans its own rounds from its
                # warm-ups (_worker.rounds_for).
                calibration=Calibration({rt: p for rt, p in passes.items() if p}),
                latency_rounds=(
                    budget.latency_rounds
                    if (first or budget.latency_every_process) and n <= (budget.latency_max_n or n)
                    else 0
                ),
                memory_n=min(n, budget.memory_max_n or n) if first and n == largest else None,
            )
        )
    return tuple(jobs)


def _one_worker(
    scenario: str,
    variant: Variant,
    todo: list[tuple[int, str]],
    results: dict[Key, Measurement],
    plan: Plan,
    sys_path: Sequence[str],
    *,
    first: bool,
    largest: int,
    axis: str,
    cpu: int | None = None,
    stop: threading.Event | None = None,
    turns: Turns | None = None,
    rank: int = 0,
) -> list[tuple[int, str]]:
    """Run one worker over *todo*, (N, runtime) pairs; return the pairs it did not get to
    (after a kill in the round of another), for a fresh worker.

    Every worker settles at least one pair, finished or failed, so that the work handed out
    again shrinks each time: a worker that dies outside any round of an unsettled pair (before
    its first round, or between two) would die the same way in a fresh one, and every pair it
    had left fails with the reason. *cpu*, *stop*, *turns* and *rank*: as :func:`run_worker`
    takes them.
    """
    job = Job(
        scenario_module=scenario,
        sys_path=tuple(sys_path),
        runtimes=tuple(dict.fromkeys(rt for _, rt in todo)),
        plan=plan,
        scales=_scale_jobs(todo, results, variant.label, plan, first=first, largest=largest),
    )
    done: set[tuple[int, str]] = set()
    started = time.monotonic()
    current: tuple[int, str] | None = None
    hello: Hello | None = None
    throughput: dict[tuple[int, str], list[int]] = {}
    finished: dict[tuple[int, str], Finished] = {}
    try:
        alone = cpu is None and stop is None and turns is None
        events = (
            run_worker(variant, job)
            if alone
            else run_worker(variant, job, cpu=cpu, stop=stop, turns=turns, rank=rank)
        )
        for message in events:
            if isinstance(message, Hello):
                hello = message
                continue
            if isinstance(message, Done):
                continue
            pair = (message.n, message.runtime)
            if pair not in todo:
                raise WorkerFailed(f"the worker sent an event for {pair}, which it was not given")
            m = results[(pair[0], pair[1], variant.label)]
            if isinstance(message, Begin):
                current = pair
            elif isinstance(message, Failed):
                m.failure = message.error
                done.add(pair)
            elif isinstance(message, Round):
                if hello is not None:
                    m.python = hello.python
                    m.libraries = hello.libraries
                _add_round(m, message, throughput.setdefault(pair, []))
            elif isinstance(message, Finished):
                done.add(pair)
                finished[pair] = message
        unsettled = [pair for pair in todo if pair not in done]
        if unsettled:
            raise WorkerFailed(f"the worker said it was done without finishing {unsettled}")
    except WorkerFailed as exc:
        name = hello.name if hello is not None else scenario.rsplit(".", 1)[-1]
        # Killed in a round: that benchmark fails, the rest go to a fresh worker. Dead outside
        # a round (before its first, it cannot import the scenario or find a runtime): so would
        # a fresh one be, and every benchmark it had left fails with the reason.
        in_round = [current] if current is not None and current not in done else []
        for n, runtime in in_round or [pair for pair in todo if pair not in done]:
            where = f"{name} on {runtime} at {scale_text(axis, n)}"
            results[(n, runtime, variant.label)].failure = f"{where}: {exc}"
            done.add((n, runtime))
    finally:
        # Only a benchmark this worker finished gets a process: one it did not get to the end
        # of is measured again, whole, in a fresh worker.
        for (n, runtime), rounds in throughput.items():
            m = results[(n, runtime, variant.label)]
            if rounds and (n, runtime) in done and m.failure is None:
                m.processes.append(rounds)
                m.process_ids.append(hello.pid if hello is not None else 0)
                end = finished.get((n, runtime), Finished(n, runtime))
                m.process_busy.append(end.busy)
                if end.copied is None or m.copied is None:
                    m.copied = None
                else:
                    m.copied.update(end.copied)
                m.own_file.update(end.own_file)
                m.process_heap_shift.append(end.heap_shift_bytes)
                m.own_file_processes += bool(end.own_file)
        share = (time.monotonic() - started) / len(todo)
        for n, runtime in todo:
            results[(n, runtime, variant.label)].worker_s += share
    return [pair for pair in todo if pair not in done]


def _add_round(m: Measurement, message: Round, throughput: list[int]) -> None:
    if message.kind == "throughput":
        m.ops_per_round = message.ops
        m.passes = message.passes
        throughput.append(message.elapsed_ns)
    elif message.kind == "latency":
        m.latency_rounds.append(
            {
                name: v if isinstance(v, array) else array("q", v)
                for name, v in message.samples.items()
            }
        )
        m.stamped_elapsed_ns.append(message.elapsed_ns)
    elif message.kind == "memory":
        m.peak_bytes = message.peak_bytes
        m.memory_ops = message.ops
        m.memory_n = message.n_round
