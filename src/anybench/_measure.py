"""Measuring in worker processes: several fresh processes per benchmark, runtimes interleaved.

One *group* is one scenario: every selected scale N, runtime and variant (an environment: a
Python with its own library versions) of it. A worker process measures one scenario in one
variant, on every runtime of the group, at each of its N (see :mod:`anybench._worker`): within
the worker the runtimes' rounds alternate, one each in turn, forward then backward, so that
whatever makes one process or one minute slower falls on every runtime alike and cancels out of
their ratios. The group runs in rotations: each rotation starts one worker per variant, in
forward order on even rotations and in reverse on odd ones, with the runtimes in forward or
reverse order too. After the minimum number of processes, another rotation runs only for the
benchmarks whose interval is still wider than the precision asked for, up to a maximum.

The parent watches every worker: a round that outruns its deadline (set-up included), or a
worker whose resident memory passes the limit, is killed from outside and fails that benchmark
by name, and the rest of the group goes on in a fresh worker.
"""

from __future__ import annotations

import math
import os
import selectors
import subprocess
import sys
import time
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._protocol import (
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
from ._stats import log_interval_halfwidth, process_medians
from ._sweep import N, scale_text

__all__ = ["Key", "Measurement", "Plan", "Variant", "WorkerFailed", "measure_group"]

#: Extra seconds a round may take, beyond its deadline, before its worker is killed: the
#: scenario's own cooperative deadline fires first where it can.
KILL_MARGIN_S = 2.0
#: Seconds a fresh worker may take to import and say hello.
START_TIMEOUT_S = 60.0


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


def rotation_order(workers: Sequence[Any], rotation: int) -> list[Any]:
    """The order of the workers in a rotation: forward on even rotations, reversed on odd."""
    return list(workers) if rotation % 2 == 0 else list(reversed(workers))


class WorkerFailed(Exception):
    """A worker ended without its result: stopped from outside (a deadline, the memory limit),
    exited on its own before its job was done, or spoke out of protocol."""


def _rss_bytes(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def run_worker(variant: Variant, job: Job) -> Iterator[Event]:
    """Start a worker for *job* and yield its events as they come, up to :class:`Done`.

    Raises :class:`WorkerFailed` (after killing it, if it still runs) when a round outruns its
    deadline plus KILL_MARGIN_S, the worker starts too slowly, its resident memory passes the
    plan's limit, it sends what is not an event, or it exits before :class:`Done`; the message
    says which, for the round in progress.
    """
    limit_bytes = job.plan.memory_limit_bytes
    proc = subprocess.Popen(
        [variant.python, "-m", "anybench._worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=None,  # the worker's errors and the scenario's prints reach the console
        text=True,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    try:
        proc.stdin.write(encode_job(job))
        proc.stdin.close()
        selector = selectors.DefaultSelector()
        selector.register(proc.stdout, selectors.EVENT_READ)
        limit_s = START_TIMEOUT_S
        since = time.monotonic()
        what = "starting"
        buffer = ""
        done = False
        fd = proc.stdout.fileno()
        while True:
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
                if code:
                    raise WorkerFailed(f"{what}: the worker exited with status {code}")
                if not done:
                    raise WorkerFailed(
                        f"{what}: the worker exited (status 0) before finishing it; does the "
                        "scenario call sys.exit() or os._exit()?"
                    )
                return
            buffer += chunk
            *lines, buffer = buffer.split("\n")
            for line in lines:
                try:
                    message = decode_event(line)
                except ProtocolError as exc:
                    raise WorkerFailed(f"{what}: {exc} (worker killed)") from None
                if isinstance(message, Begin):
                    limit_s = message.deadline_s
                    what = f"a {message.kind} round"
                since = time.monotonic()
                done = isinstance(message, Done)
                yield message
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def measure_group(
    scenario: str,
    keys: Sequence[Key],
    plan: Plan,
    variants: dict[str, Variant],
    *,
    sys_path: Sequence[str] = (),
    runtime_order: Sequence[str] = (),
    axis: str = N.name,
    log: Callable[[str], None] = lambda _: None,
) -> dict[Key, Measurement]:
    """Measure every benchmark of one scenario (module name *scenario*) named by *keys*.

    *runtime_order* orders the runtimes within a worker (by default the order of the keys).
    Returns a :class:`Measurement` per key; a failed one carries its reason.
    """
    results = {key: Measurement(*key) for key in keys}
    budget = plan.budget
    given = list(dict.fromkeys(rt for _, rt, _ in keys))
    ranked = [*runtime_order, *given]
    runtimes = sorted(given, key=ranked.index)
    labels = sorted({var for _, _, var in keys})
    largest = max(n for n, _, _ in keys)

    scales = sorted({n for n, _, _ in keys})

    def alive(n: int, runtime: str, label: str) -> bool:
        m = results.get((n, runtime, label))
        return m is not None and m.failure is None

    def wanted(n: int, label: str, rotation: int) -> bool:
        # A scale's runtimes get another process together, while any of them is still loose,
        # so that their ratios stay over the same processes.
        live = [results[(n, rt, label)] for rt in runtimes if alive(n, rt, label)]
        return bool(live) and (
            rotation < budget.processes or not all(m.tight(budget.precision) for m in live)
        )

    for rotation in range(max(budget.processes, budget.max_processes)):
        todo = {
            label: [
                (n, rt)
                for n in scales
                if wanted(n, label, rotation)
                for rt in rotation_order(runtimes, rotation)
                if alive(n, rt, label)
            ]
            for label in labels
        }
        for label in rotation_order([label for label in labels if todo[label]], rotation):
            remaining = todo[label]
            while remaining:
                remaining = _one_worker(
                    scenario,
                    variants[label],
                    remaining,
                    results,
                    plan,
                    sys_path,
                    first=rotation == 0,
                    largest=largest,
                    axis=axis,
                )
            log(f"{scenario}: rotation {rotation + 1}{', ' + label if label else ''}")
    return results


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
                    budget.latency_rounds if first or budget.latency_every_process else 0
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
) -> list[tuple[int, str]]:
    """Run one worker over *todo*, (N, runtime) pairs; return the pairs it did not get to
    (after a kill in the round of another), for a fresh worker.

    Every worker settles at least one pair, finished or failed, so that the work handed out
    again shrinks each time: a worker that dies outside any round of an unsettled pair (before
    its first round, or between two) would die the same way in a fresh one, and every pair it
    had left fails with the reason.
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
    busy: dict[tuple[int, str], Busy | None] = {}
    try:
        for message in run_worker(variant, job):
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
                busy[pair] = message.busy
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
                m.process_busy.append(busy.get((n, runtime)))
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
