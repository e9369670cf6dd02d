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

import json
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

from ._stats import log_interval_halfwidth
from ._worker import decode_samples

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


@dataclass(frozen=True)
class Plan:
    """How much to measure: processes per benchmark, and rounds per process."""

    processes: int = 3
    max_processes: int = 3
    #: Stop adding processes once the 95% interval of a benchmark is within ±precision.
    precision: float = 0.02
    #: Rounds per process: about target_ops operations over all processes, within
    #: time_budget_s of measured time, and between min_rounds and max_rounds.
    target_ops: int = 100_000
    time_budget_s: float = 2.0
    min_rounds: int = 2
    max_rounds: int = 20
    latency_rounds: int = 1
    #: Latency rounds in every process (else in the first process of each benchmark only).
    latency_every_process: bool = True
    #: The memory round (tracemalloc) runs at the largest N, or at this N if it is smaller.
    memory_max_n: int | None = None
    deadline_s: float = 120.0
    memory_limit_bytes: int | None = None


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
        out = []
        for rounds in self.processes:
            values = sorted(rounds)
            mid = len(values) // 2
            median = values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2
            out.append(median / self.ops_per_round)
        return out

    def tight(self, precision: float) -> bool:
        medians = self.process_medians_ns_per_op()
        if len(medians) < 2:
            return False
        return math.expm1(log_interval_halfwidth(medians)) <= precision


def rotation_order(workers: Sequence[Any], rotation: int) -> list[Any]:
    """The order of the workers in a rotation: forward on even rotations, reversed on odd."""
    return list(workers) if rotation % 2 == 0 else list(reversed(workers))


class WorkerKilled(Exception):
    """A worker was stopped from outside: a deadline or the memory limit."""


def _rss_bytes(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def run_worker(variant: Variant, job: dict[str, Any], plan: Plan) -> Iterator[dict[str, Any]]:
    """Start a worker for *job* and yield its events as they come.

    Raises :class:`WorkerKilled` (after killing it) when a round outruns its deadline plus
    KILL_MARGIN_S, the worker starts too slowly, or its resident memory passes the plan's limit;
    the message says which, for the scale in progress.
    """
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
        proc.stdin.write(json.dumps(job))
        proc.stdin.close()
        selector = selectors.DefaultSelector()
        selector.register(proc.stdout, selectors.EVENT_READ)
        limit_s = START_TIMEOUT_S
        since = time.monotonic()
        what = "starting"
        buffer = ""
        fd = proc.stdout.fileno()
        while True:
            left = limit_s + KILL_MARGIN_S - (time.monotonic() - since)
            if left <= 0:
                raise WorkerKilled(f"{what} did not finish within {limit_s:g} s (worker killed)")
            if plan.memory_limit_bytes is not None:
                rss = _rss_bytes(proc.pid)
                if rss is not None and rss > plan.memory_limit_bytes:
                    raise WorkerKilled(
                        f"{what} passed the memory limit of {plan.memory_limit_bytes / 2**20:,.0f}"
                        " MiB (worker killed); raise --memory-limit or choose a smaller N"
                    )
            if not selector.select(timeout=min(left, 0.1)):
                continue
            chunk = os.read(fd, 1 << 20).decode("utf-8")
            if not chunk:  # the worker exited
                proc.wait()
                if buffer.strip():
                    yield json.loads(buffer)
                if proc.returncode:
                    raise WorkerKilled(f"{what}: the worker exited with status {proc.returncode}")
                return
            buffer += chunk
            *lines, buffer = buffer.split("\n")
            for line in lines:
                event = json.loads(line)
                if event["event"] == "begin":
                    limit_s = float(event["deadline_s"])
                    what = f"a {event['kind']} round"
                since = time.monotonic()
                yield event
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
    log: Callable[[str], None] = lambda _: None,
) -> dict[Key, Measurement]:
    """Measure every benchmark of one scenario (module name *scenario*) named by *keys*.

    *runtime_order* orders the runtimes within a worker (by default the order of the keys).
    Returns a :class:`Measurement` per key; a failed one carries its reason.
    """
    results = {key: Measurement(*key) for key in keys}
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
            rotation < plan.processes or not all(m.tight(plan.precision) for m in live)
        )

    for rotation in range(max(plan.processes, plan.max_processes)):
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
                )
            log(f"{scenario}: rotation {rotation + 1}{', ' + label if label else ''}")
    return results


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
) -> list[tuple[int, str]]:
    """Run one worker over *todo*, (N, runtime) pairs; return the pairs it did not get to
    (after a kill), for a fresh worker."""
    job_scales = []
    for n in sorted({n for n, _ in todo}):
        runtimes = [rt for m, rt in todo if m == n]
        passes = {rt: results[(n, rt, variant.label)].passes for rt in runtimes}
        job_scales.append(
            {
                "n": n,
                "runtimes": runtimes,
                # Calibrated in the first worker; each worker plans its own rounds from its
                # warm-ups (_worker.rounds_for).
                "passes": {rt: p for rt, p in passes.items() if p},
                "plan": {
                    "target_ops": plan.target_ops,
                    "time_budget_s": plan.time_budget_s,
                    "processes": plan.processes,
                    "min_rounds": plan.min_rounds,
                    "max_rounds": plan.max_rounds,
                },
                "latency_rounds": plan.latency_rounds if first or plan.latency_every_process else 0,
                "memory": first and n == largest,
                "memory_n": min(n, plan.memory_max_n or n),
            }
        )
    job = {
        "scenario": scenario,
        "sys_path": list(sys_path),
        "runtimes": list(dict.fromkeys(rt for _, rt in todo)),
        "deadline_s": plan.deadline_s,
        "memory_limit_bytes": plan.memory_limit_bytes,
        "scales": job_scales,
    }
    done: set[tuple[int, str]] = set()
    started = time.monotonic()
    current: tuple[int, str] | None = None
    hello: dict[str, Any] = {}
    throughput: dict[tuple[int, str], list[int]] = {}
    try:
        for event in run_worker(variant, job, plan):
            kind = event["event"]
            if kind == "hello":
                hello = event
            if "runtime" not in event:
                continue
            pair = (int(event["n"]), str(event["runtime"]))
            m = results[(pair[0], pair[1], variant.label)]
            if kind == "begin":
                current = pair
            elif kind == "failed":
                m.failure = event["error"]
                done.add(pair)
            elif kind == "round":
                m.python = hello.get("python", "")
                m.libraries = hello.get("libraries", {})
                _add_round(m, event, throughput.setdefault(pair, []))
            elif kind == "finished":
                done.add(pair)
    except WorkerKilled as exc:
        name = hello.get("name") or scenario.rsplit(".", 1)[-1]
        # Killed in a round: that benchmark fails, the rest go to a fresh worker. Dead before
        # its first round (it cannot import the scenario or find a runtime): so would a fresh
        # one be, and every benchmark it had fails with the reason.
        for n, runtime in [current] if current is not None else todo:
            results[(n, runtime, variant.label)].failure = f"{name} on {runtime} at N={n}: {exc}"
            done.add((n, runtime))
    finally:
        # Only a benchmark this worker finished gets a process: one it did not get to the end
        # of is measured again, whole, in a fresh worker.
        for (n, runtime), rounds in throughput.items():
            m = results[(n, runtime, variant.label)]
            if rounds and (n, runtime) in done and m.failure is None:
                m.processes.append(rounds)
                m.process_ids.append(int(hello.get("pid", 0)))
        share = (time.monotonic() - started) / len(todo)
        for n, runtime in todo:
            results[(n, runtime, variant.label)].worker_s += share
    return [pair for pair in todo if pair not in done]


def _add_round(m: Measurement, event: dict[str, Any], throughput: list[int]) -> None:
    kind = event["kind"]
    if kind == "throughput":
        m.ops_per_round = event["ops"]
        m.passes = event["passes"]
        throughput.append(event["elapsed_ns"])
    elif kind == "latency":
        m.latency_rounds.append(
            {name: decode_samples(text) for name, text in event.get("samples", {}).items()}
        )
        m.stamped_elapsed_ns.append(event["elapsed_ns"])
    elif kind == "memory":
        m.peak_bytes = event.get("peak_bytes")
        m.memory_ops = event["ops"]
        m.memory_n = event.get("n_round", m.n)
