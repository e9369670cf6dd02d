"""How busy the machine was: what a worker process got, measured by the run itself.

A worker reads, before and after the throughput rounds of a scale (outside every timed
region), its own CPU time (:func:`time.process_time_ns`) against the wall time
(:func:`time.perf_counter_ns`), and, where Linux provides them, the time it spent ready to run
but waiting on a run queue (``/proc/self/schedstat``), the hypervisor's steal time
(``/proc/stat``) and CPU pressure (``/proc/pressure/cpu``, the share of wall time in which some
task waited for a CPU). A file that is absent or unreadable gives None, never an error: the
figures are evidence beside a measurement, and a machine without them still measures.

pyperf checks whether a system is *tuned* (``pyperf system show``) and warns before the run;
this measures what each process actually *got*, so that a figure made while the machine was
busy is marked where it is shown (see :func:`busy_reasons`).

What the kernel cannot see, the rounds themselves show: :func:`round_spread`, how far a worker's
rounds of one benchmark differ from one another. A virtual machine whose host takes its CPU in
slices too short for steal time to count reads as busy nowhere, and its rounds spread tenfold.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ._protocol import Busy
from ._stats import percentile

__all__ = [
    "BUSY_CPU_SHARE",
    "BUSY_SHARE",
    "DEFAULT_SOURCES",
    "NOISY_SPREAD",
    "Busy",
    "Sample",
    "Sources",
    "between",
    "busy_processes",
    "busy_reasons",
    "cpu_share",
    "noisy",
    "round_spread",
    "runqueue_share",
    "sample",
    "summary_line",
]

#: A process is marked busy when it waited on a run queue, or some task waited for a CPU (CPU
#: pressure), or the hypervisor stole, for more than this share of the wall time of its rounds.
#: A round that waits for 10% of its wall time can read up to 10% slow: more than the +-1-5%
#: intervals the figures claim, so such a figure is not the machine's quiet truth.
BUSY_SHARE = 0.10
#: Why a figure is marked busy, as the table and the report say under it.
BUSY_REASON = (
    f"a process of it waited for a CPU, or saw CPU pressure or steal, over {BUSY_SHARE:.0%} of "
    "its rounds' wall time"
)
#: Where the run-queue wait is not known (no ``/proc/self/schedstat``), a process that got
#: less CPU time than this share of its wall time is marked busy. A scenario that sleeps on
#: purpose (timers) gets less too; the run-queue wait, where known, is not fooled by that.
BUSY_CPU_SHARE = 0.90
#: A run whose rounds within a process spread more than this (see :func:`round_spread`) was
#: made on a noisy machine: about twice what quiet runs here spread (0.02-0.03). On the morning
#: of 2026-12-03, with nothing busy by any kernel figure, two A/B runs spread 0.22-0.25 and
#: 0.07-0.085, and their floors were +-11% where they had been +-2-3%.
NOISY_SPREAD = 0.05


@dataclass(frozen=True)
class Sources:
    """The kernel's files read (injectable for tests)."""

    stat: Path = Path("/proc/stat")
    pressure: Path = Path("/proc/pressure/cpu")
    schedstat: Path = Path("/proc/self/schedstat")


DEFAULT_SOURCES = Sources()


@dataclass(frozen=True)
class Sample:
    """The counters at one moment; :func:`between` turns two into a :class:`Busy`."""

    wall_ns: int
    cpu_ns: int
    runqueue_ns: int | None
    #: (steal, total) jiffies of all CPUs together.
    steal_ticks: tuple[int, int] | None
    #: CPU pressure ``some`` total, in microseconds.
    pressure_us: int | None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii", errors="replace")
    except OSError:
        return None


def _steal(text: str | None) -> tuple[int, int] | None:
    """(steal, total) jiffies from ``/proc/stat``'s ``cpu`` line (steal is its 8th column;
    guest time is already inside user time, so it is left out of the total)."""
    for line in (text or "").splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            try:
                ticks = [int(value) for value in fields[1:9]]
            except ValueError:
                return None
            if len(ticks) < 8:
                return None
            return ticks[7], sum(ticks)
    return None


def _pressure(text: str | None) -> int | None:
    """The ``some`` line's ``total=`` (µs) from ``/proc/pressure/cpu``."""
    for line in (text or "").splitlines():
        fields = line.split()
        if fields and fields[0] == "some":
            for item in fields[1:]:
                key, _, value = item.partition("=")
                if key == "total" and value.isdigit():
                    return int(value)
    return None


def _runqueue(text: str | None) -> int | None:
    """Nanoseconds spent waiting on a run queue: ``/proc/self/schedstat``'s second column."""
    fields = (text or "").split()
    if len(fields) >= 2 and fields[1].isdigit():
        return int(fields[1])
    return None


def sample(sources: Sources = DEFAULT_SOURCES) -> Sample:
    """Read the counters now."""
    return Sample(
        wall_ns=time.perf_counter_ns(),
        cpu_ns=time.process_time_ns(),
        runqueue_ns=_runqueue(_read(sources.schedstat)),
        steal_ticks=_steal(_read(sources.stat)),
        pressure_us=_pressure(_read(sources.pressure)),
    )


def between(start: Sample, end: Sample, waited_ns: int = 0) -> Busy:
    """How busy the machine was from *start* to *end* (a figure whose counters are missing at
    either end, or went backwards, is None).

    *waited_ns* of that time the process spent blocked, waiting for its turn (``--pairing
    lockstep``, where another worker's round runs meanwhile): its wall time, against which its
    CPU time and its wait for a CPU are measured, leaves that out (a quiet lockstep worker read
    a CPU share of 0.50 without it). CPU pressure is the machine's, over the whole time."""
    whole = max(end.wall_ns - start.wall_ns, 1)
    wall = max(whole - max(waited_ns, 0), 1)
    runqueue = None
    if start.runqueue_ns is not None and end.runqueue_ns is not None:
        runqueue = end.runqueue_ns - start.runqueue_ns
        runqueue = runqueue if runqueue >= 0 else None
    steal = None
    if start.steal_ticks is not None and end.steal_ticks is not None:
        stolen = end.steal_ticks[0] - start.steal_ticks[0]
        total = end.steal_ticks[1] - start.steal_ticks[1]
        steal = stolen / total if total > 0 and stolen >= 0 else None
    pressure = None
    if start.pressure_us is not None and end.pressure_us is not None:
        waited_us = end.pressure_us - start.pressure_us
        pressure = min(waited_us * 1000 / whole, 1.0) if waited_us >= 0 else None
    return Busy(
        wall_ns=wall,
        cpu_ns=max(end.cpu_ns - start.cpu_ns, 0),
        runqueue_ns=runqueue,
        steal_share=steal,
        pressure_share=pressure,
    )


def cpu_share(busy: Busy) -> float:
    """The CPU time the process got, as a share of the wall time."""
    return busy.cpu_ns / busy.wall_ns


def runqueue_share(busy: Busy) -> float | None:
    """The time the process waited, ready to run, as a share of the wall time (None unknown)."""
    return None if busy.runqueue_ns is None else busy.runqueue_ns / busy.wall_ns


def busy_reasons(busy: Busy) -> list[str]:
    """Why the machine counts as busy for this process (empty when it was quiet enough): see
    :data:`BUSY_SHARE` and :data:`BUSY_CPU_SHARE`."""
    reasons = []
    waited = runqueue_share(busy)
    if waited is not None and waited > BUSY_SHARE:
        reasons.append(f"waited for a CPU {waited:.0%} of the time")
    elif waited is None and cpu_share(busy) < BUSY_CPU_SHARE:
        reasons.append(f"got {cpu_share(busy):.2f} of its wall time in CPU time")
    if busy.pressure_share is not None and busy.pressure_share > BUSY_SHARE:
        reasons.append(f"CPU pressure {busy.pressure_share:.0%}")
    if busy.steal_share is not None and busy.steal_share > BUSY_SHARE:
        reasons.append(f"steal {busy.steal_share:.1%}")
    return reasons


def busy_processes(processes: Iterable[Busy | None]) -> int:
    """How many of *processes* count as busy (see :func:`busy_reasons`)."""
    return sum(1 for busy in processes if busy is not None and busy_reasons(busy))


def _median_worst(values: Sequence[float], worst_is_low: bool) -> tuple[float, float]:
    ordered = sorted(values)
    return percentile(ordered, 50.0), ordered[0] if worst_is_low else ordered[-1]


def summary_line(processes: Sequence[Busy]) -> str | None:
    """One line on how busy the machine was over *processes* (each measured once): the median
    and worst process of each figure; None when nothing was measured."""
    if not processes:
        return None
    median, worst = _median_worst([cpu_share(b) for b in processes], worst_is_low=True)
    parts = [f"CPU share of wall median {median:.2f} (worst {worst:.2f})"]
    for label, values in (
        ("run-queue wait", [v for b in processes if (v := runqueue_share(b)) is not None]),
        ("steal", [b.steal_share for b in processes if b.steal_share is not None]),
        ("CPU pressure", [b.pressure_share for b in processes if b.pressure_share is not None]),
    ):
        if values:
            median, worst = _median_worst(values, worst_is_low=False)
            digits = 1 if label == "steal" else 0
            parts.append(f"{label} {median:.{digits}%} (worst {worst:.{digits}%})")
    busy = busy_processes(processes)
    parts.append(f"{busy} of {len(processes)} processes busy")
    return "how busy: " + ", ".join(parts)


def round_spread(benchmarks: Iterable[Sequence[Sequence[float]]]) -> float | None:
    """How far rounds differ within a worker process, over a run: per benchmark (given as its
    processes' rounds, ns/op), the median over its processes of the standard deviation of the
    logs of their rounds, then the median over benchmarks (about the rounds' relative spread:
    0.1 is +-10%). Processes of fewer than three rounds are left out; None if none is left."""
    typical = []
    for processes in benchmarks:
        spreads = [
            statistics.stdev(math.log(v) for v in rounds)
            for rounds in processes
            if len(rounds) >= 3 and all(v > 0 for v in rounds)
        ]
        if spreads:
            typical.append(statistics.median(spreads))
    return statistics.median(typical) if typical else None


def noisy(spread: float | None) -> bool:
    """Whether rounds that spread this much within a process (:func:`round_spread`; None: not
    known) were made on a noisy machine: above NOISY_SPREAD."""
    return spread is not None and spread > NOISY_SPREAD
