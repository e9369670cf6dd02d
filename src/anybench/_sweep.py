"""The scale axes, declared once: named profiles of values on a log scale, and rounds per value.

Most scenarios scale with N, the number of operations (tasks, callbacks, futures). Scenarios that
measure latency under load scale with B, the background load, at a fixed sample count; they
declare ``AXIS = "load"``. Each axis is declared once, as an :class:`Axis` in :data:`AXES`: the
scenario contract, the pytest plugin's options and their parsing, and every message that names
a scale (:func:`scale_text`) ask it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


class ScaleError(ValueError):
    """Values given for an axis (``--scales``, ``--loads``) that are not scales of it; the
    message is one line."""


@dataclass(frozen=True)
class Axis:
    """A sweep axis: what a scenario's scale counts, and how it is named wherever it shows.

    Adding an axis is one entry in :data:`AXES` (and a scenario that declares it): its option,
    its parsing, its messages and the contract's check of ``AXIS`` follow from the entry.
    """

    #: As scenarios declare it (``AXIS``), results record it and :class:`Profile` holds it.
    name: str
    #: The letter a value is written with: ``N=1,000``, ``B=10`` (see :func:`scale_text`).
    symbol: str
    #: The command-line option that sets the values, instead of the profile's.
    option: str
    #: The smallest value the axis takes.
    lowest: int
    #: What a plot's axis says.
    label: str
    #: What the option's values are, as its help says: "comma-separated <this>, instead of the
    #: profile's".
    meaning: str
    #: Whether a pass does value x OPS_PER_N operations (N), or its scenario's SAMPLES whatever
    #: the value (B: the value is the load the operations run under).
    counts_operations: bool = True
    #: The values of a profile that has no field of the axis's name.
    default_values: tuple[int, ...] = ()

    def parse(self, text: str) -> tuple[int, ...]:
        """The values in *text*, as the option takes them (``10,1_000``); :class:`ScaleError`
        in one line if it holds none, an empty item, a value twice (two benchmarks of one
        scale would share a key), or one that is not a whole number of at least
        :attr:`lowest`."""
        items = [part.strip() for part in text.split(",")] if text.strip() else []
        if "" in items:
            raise ScaleError(
                f"{self.option} {text!r} has an empty item; give values like 10,1000, "
                "with no empty one"
            )
        try:
            values = tuple(int(item.replace("_", "")) for item in items)
        except ValueError:
            values = ()
        if not values or min(values) < self.lowest:
            raise ScaleError(
                f"{self.option} takes integers of at least {self.lowest} like 10,1000; got {text!r}"
            )
        repeated = next((v for i, v in enumerate(values) if v in values[:i]), None)
        if repeated is not None:
            raise ScaleError(
                f"{self.option} {text!r} gives {repeated:,} twice; give each value once"
            )
        return values


#: N, the operations a round does (tasks, callbacks, futures): the axis of most scenarios.
N = Axis("n", "N", "--scales", 1, "N (operations per round)", "N for benchmarks")
#: B, the background load a latency is measured under, at a fixed number of samples; no load
#: is a load, where no operations is not a scale.
LOAD = Axis(
    "load",
    "B",
    "--loads",
    0,
    "B, background tasks always ready",
    "background loads B for load scenarios",
    counts_operations=False,
)
#: The axes by name, N first.
AXES: dict[str, Axis] = {axis.name: axis for axis in (N, LOAD)}


def axis_named(axis: str | Axis) -> Axis:
    """*axis* itself, or the axis of that name; a ValueError in one line lists the known ones."""
    if isinstance(axis, Axis):
        return axis
    try:
        return AXES[axis]
    except KeyError:
        raise ValueError(f"unknown sweep axis {axis!r}; choose from: {', '.join(AXES)}") from None


def scale_text(axis: str | Axis, value: int) -> str:
    """A value of *axis* (an :class:`Axis` or its name) as people read it: ``N=1,000``,
    ``B=10``."""
    return f"{axis_named(axis).symbol}={value:,}"


#: Throughput rounds per process.
MIN_ROUNDS = 2
MAX_ROUNDS = 20


@dataclass(frozen=True)
class Budget:
    """How much measuring each benchmark gets: its processes, and the rounds of each.

    Each benchmark is measured in at least *processes* fresh worker processes, and in up to
    *max_processes* while its 95% interval is wider than ±*precision*. Each measured round is
    one fresh ``anyio.run``. Over all its processes a benchmark runs enough throughput rounds
    for about *target_ops* operations, but no more than fit in *time_budget_s* of wall time
    (judged by each process's warm-up rounds), and each process between *min_rounds* and
    *max_rounds*; then *latency_rounds* rounds with the scenario's stamps on, in every process
    or in the first only; and one memory round, in the first process.

    The one value of "how much": a :class:`Profile` holds it, the measuring plan embeds it, and
    a worker receives it as it is (see :mod:`anybench._protocol`).
    """

    target_ops: int = 100_000
    time_budget_s: float = 2.0
    processes: int = 3
    max_processes: int = 5
    #: Stop adding processes once the 95% interval of a benchmark is within ±precision.
    precision: float = 0.02
    #: In a run of several variants (an A/B run), stop adding passes to a group once every
    #: runtime's ratio between every two variants, paired by pass, is within ±pair_precision.
    pair_precision: float = 0.05
    min_rounds: int = MIN_ROUNDS
    max_rounds: int = MAX_ROUNDS
    latency_rounds: int = 1
    #: Latency rounds in every process, or in the first process of each benchmark only.
    latency_every_process: bool = True
    #: Latency rounds at N up to this (all N if None).
    latency_max_n: int | None = None
    #: The memory round runs at the largest N, or at this N if smaller.
    memory_max_n: int | None = None

    def overridden(
        self,
        *,
        processes: int | None = None,
        max_processes: int | None = None,
        rounds: int | None = None,
    ) -> Budget:
        """This budget with the command line's choices: *processes* (at least), up to
        *max_processes* (never fewer than *processes*), *rounds* a process exactly."""
        least = processes or self.processes
        return replace(
            self,
            processes=least,
            max_processes=max(least, max_processes or self.max_processes),
            min_rounds=rounds or self.min_rounds,
            max_rounds=rounds or self.max_rounds,
        )


@dataclass(frozen=True)
class Profile:
    """A sweep: the values of each axis, and how much measuring each benchmark gets."""

    n: tuple[int, ...]
    load: tuple[int, ...]
    budget: Budget = field(default_factory=Budget)

    def values(self, axis: str | Axis) -> tuple[int, ...]:
        """The values of *axis* (an :class:`Axis` or its name): the field of that name, or the
        axis's own default values if the profile has none."""
        chosen = axis_named(axis)
        values: tuple[int, ...] = getattr(self, chosen.name, chosen.default_values)
        return values


#: ``quick`` is for CI and first looks (the whole matrix in a few minutes on two cores, with
#: fewer rounds); ``full`` is the at-scale sweep (1,000,000 callbacks; scenarios that keep every
#: task alive at once stop at their MAX_N, 100,000).
PROFILES: dict[str, Profile] = {
    "quick": Profile(
        n=(100, 10_000),
        load=(0, 100),
        budget=Budget(
            target_ops=20_000,
            time_budget_s=0.5,
            max_processes=3,
            min_rounds=1,
            latency_every_process=False,
            memory_max_n=1_000,
        ),
    ),
    # B = 1,000 costs seconds a round (500 round trips, each past 1,000 ready tasks): at scale,
    # in "full".
    "default": Profile(
        n=(10, 1_000, 10_000),
        load=(0, 10, 100),
        budget=Budget(time_budget_s=1.5, max_processes=4),
    ),
    # At scale, within about 30 minutes on two cores (benchmarks/estimate_profile.py costs it
    # from the reference run: about 33 min of measuring as its model stands; the untrimmed
    # sweep, about 100). A round at N = 1,000,000 takes seconds, so every process there is one
    # round a runtime, and what costs is processes and extra rounds. Trimmed, and why:
    # - 3 processes a benchmark, never more (was 3 to 5): at scale the ±2% precision is not
    #   met first (it was not on any benchmark of the reference run), so the extra processes
    #   would always run; three give an interval, and the run-level spread (combine) is the
    #   larger term anyway.
    # - latency rounds in the first process only: stamps double a rotation at scale, and the
    #   latency distribution is pooled over processes, so one process gives its shape.
    # - no latency rounds at N = 1,000,000: 100,000 gives the shape at scale (every scenario
    #   reaches it), and a stamped round at 1,000,000 costs as much as a throughput one.
    # - N = 10, 100 and 1,000 dropped: not at scale, and `default` measures 10 and 1,000 (N =
    #   10 and 100 took 3 minutes of the 43 the first run with the current method took; 1,000,
    #   1.1 of the 34 the second took). 10,000 stays as the small end of the scaling curves.
    # - the memory round at N = 10,000: under tracemalloc a round costs about 3 times its time,
    #   and at 100,000 the memory rounds took about 7 of a run's 35 minutes of measuring.
    #   Bytes per operation hardly change with N: at 100,000 they were within -10% to +8% of
    #   those at 10,000 on every scenario and runtime (the full run of 2026-12-02 09:07 against
    #   the default run of 15:00), so the peak at N is about N times the figure at 10,000.
    # - B = 10,000 dropped (500 round trips past 10,000 ready tasks: about 25 minutes alone);
    #   B = 1,000 shows the growth with load already.
    "full": Profile(
        n=(10_000, 100_000, 1_000_000),
        load=(0, 10, 100, 1_000),
        budget=Budget(
            processes=3,
            max_processes=3,
            latency_every_process=False,
            latency_max_n=100_000,
            memory_max_n=10_000,
        ),
    ),
}
DEFAULT_PROFILE = "default"


class UnknownProfileError(ValueError):
    """A profile name that is not in :data:`PROFILES`."""


def profile(name: str) -> Profile:
    """The profile called *name*; :class:`UnknownProfileError` lists the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise UnknownProfileError(
            f"unknown profile {name!r}; choose from: {', '.join(PROFILES)}"
        ) from None


def scales(name: str, max_n: int | None = None, axis: str | Axis = N) -> tuple[int, ...]:
    """The values of profile *name* on *axis*, without those above *max_n* (a scenario's limit)."""
    return tuple(v for v in profile(name).values(axis) if max_n is None or v <= max_n)
