"""What a scenario uses to mark its measured region and hand over its latency samples."""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Iterable


class ScenarioFailed(AssertionError):
    """A scenario's own check of its outcome failed."""


class ProbeError(ScenarioFailed):
    """A scenario used its :class:`Probe` against its contract (a region started twice, a
    sample that is not whole nanoseconds); the harness names the scenario, runtime and scale."""


def check(condition: object, message: str) -> None:
    """Fail the scenario with *message* unless *condition* holds (survives ``python -O``)."""
    if not condition:
        raise ScenarioFailed(message)


class Probe:
    """Timing hooks for one run of a scenario, used inside the running event loop.

    A scenario sets up its work, calls :meth:`start` with the number of operations it is about to
    do, does them, and calls :meth:`stop` once the last one has finished. Only the time between
    the two counts.

    Throughput and latency are measured in separate rounds. In a *throughput* round
    (``latency`` false) the scenario reads no clock per operation, so its ns/op is the work
    alone. In a *latency* round (``latency`` true) it stamps each trigger and reaction with
    :attr:`clock` and hands the delays to :meth:`record` after the region; that round's time is
    not a throughput figure. A scenario reads the flag once into a local and guards each stamp
    with it (``if stamps: set_ns[i] = clock()``): the throughput path then pays one branch on a
    local per stamp site, not a clock reading.

    :attr:`clock` is the one timer: :func:`time.perf_counter_ns`, in integer nanoseconds.
    """

    clock = staticmethod(time.perf_counter_ns)

    def __init__(self, *, latency: bool = False) -> None:
        #: True in a latency round: the scenario stamps its operations and records the delays.
        self.latency = latency
        self.ops = 0
        self.start_ns: int | None = None
        self.stop_ns: int | None = None
        self.samples: dict[str, list[int]] = {}
        self._collected = False
        #: Traced memory when the scenario began (set by the harness when tracing memory).
        self.memory_base_bytes: int | None = None
        #: Peak traced memory above that base, from the scenario's start (set-up included) to
        #: the end of its measured region: what its live tasks, futures and callbacks hold.
        self.peak_bytes: int | None = None

    def start(self, ops: int) -> None:
        """Begin the measured region, which will perform *ops* operations."""
        if self.start_ns is not None:
            raise ProbeError("Probe.start() called twice; a pass has one measured region")
        if isinstance(ops, bool) or not isinstance(ops, int) or ops < 1:
            raise ProbeError(
                f"Probe.start(ops={ops!r}): a measured region needs a whole number of "
                "operations, at least one"
            )
        self.ops = ops
        if not self._collected:
            self.collect_garbage()
        self.start_ns = self.clock()

    def collect_garbage(self) -> None:
        """Collect garbage now, so that :meth:`start` does not (for a region that must begin at
        an exact moment, such as a timer deadline).

        Garbage from the set-up (and from earlier rounds) is collected before the region, not by
        a collection it would trigger inside it; the region's own garbage is still collected
        inside it, as it would be in a real program.
        """
        gc.collect()
        self._collected = True

    def stop(self) -> None:
        """End the measured region."""
        now = self.clock()
        if self.start_ns is None:
            raise ProbeError("Probe.stop() called before Probe.start()")
        if self.stop_ns is not None:
            raise ProbeError("Probe.stop() called twice")
        self.stop_ns = now
        if self.memory_base_bytes is not None:
            self.peak_bytes = tracemalloc.get_traced_memory()[1] - self.memory_base_bytes

    @property
    def elapsed_ns(self) -> int:
        """Nanoseconds between :meth:`start` and :meth:`stop`."""
        start, stop = self.start_ns, self.stop_ns
        if start is None or stop is None:
            raise ProbeError(
                "the scenario did not start and stop its measured region (Probe.start(ops=...) "
                "before its operations, Probe.stop() after them)"
            )
        return stop - start

    def check_region(self) -> None:
        """:class:`ProbeError` unless the pass started and stopped its measured region."""
        self.elapsed_ns  # noqa: B018 (its check is the point)

    def record(self, series: str, samples_ns: Iterable[int]) -> None:
        """Add latency samples (whole nanoseconds, ints; negative where a delay is measured
        against a deadline met early) to the named series (ignored in a throughput round, where
        the scenario took no stamps). :class:`ProbeError` names the first that is not an int."""
        if not self.latency:
            return
        values = list(samples_ns)
        if not all(type(v) is int for v in values):  # the common case, checked fast
            for i, value in enumerate(values):
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ProbeError(
                        f"Probe.record({series!r}): sample {i} is {value!r} "
                        f"({type(value).__name__}), not whole nanoseconds (an int)"
                    )
        self.samples.setdefault(series, []).extend(values)


def timer_cost_ns(repeat: int = 200_000) -> float:
    """The cost of one :attr:`Probe.clock` reading on this machine, in nanoseconds (median of 5)."""
    clock = Probe.clock
    costs = []
    for _ in range(5):
        t0 = clock()
        for _ in range(repeat):
            clock()
        costs.append((clock() - t0) / repeat)
    costs.sort()
    return costs[2]
