"""Comparing two counts files: the change in instructions per operation, benchmark by benchmark.

Instruction counts do not drift with the machine's load, so two files made days apart (or on
two machines) compare finely, as long as what they count on is the same: the architecture, the
Python build and valgrind (:meth:`~anybench._counts_results.CountsRun.build_identity`). Where
those differ, no verdict is given: the difference would be the build's, not the code's. Library
versions are what an A/B comparison compares: a difference there is named, not refused.

**The floor.** A change counts only beyond ``max(FLOOR_SPREADS x spread, MIN_FLOOR)``, the spread
being the larger of the two benchmarks' repeat spreads. A deterministic benchmark's spread is 0
or nearly; its floor is then :data:`MIN_FLOOR` (1%; 2% for a region of fewer than 100
operations: :data:`SMALL_REGION_FLOOR`), which covers what repeats in one run
cannot show but two runs can: a heap laid out otherwise (a counts process's environment and
working directory are fixed, but an installation, or the scenario's module name and path, still
moves it) changes how the region's sets and dicts of objects probe, a few instructions an
operation.
With two repeats the spread is a range of two draws, which understates the spread of many
(about 1.1 standard deviations, where three times it is about 3.4): hence :data:`FLOOR_SPREADS`.
A benchmark not deterministic in either file (its spread above 0.1%: its work depends on wall
time) gets its change shown, and no verdict.

A runtime whose work depends on wall time by its design (``Runtime.time_dependent_work``: rloop,
whose loop polls at most every 250 µs while callbacks are ready) can count the same twice in
one run and otherwise in another, on a machine loaded otherwise: its rows are marked, with the
reason below the table, and judged at the same floor, which is above the spread measured
between its runs here (0.61% at N = 10 under load, within 0.1% at larger N).
"""

from __future__ import annotations

from dataclasses import dataclass

from ._counts_results import BenchmarkCounts, CountsRun
from ._runtimes import time_dependent_work

#: The smallest change in instructions per operation that counts as one (1%): twice the
#: largest difference seen between counts of the same code. Once a counts process got a fixed
#: environment, an empty working directory and cached bytecode, two `default` counts made here
#: 11 minutes apart, each in a fresh environment, agreed to the instruction on asyncio, trio
#: and uvloop (every scenario but `timers`), rloop within 0.12%; a third, the first made in a
#: fresh clone, differed from both by up to 0.49% (asyncio 0.21%, trio 0.06%), with the same
#: calls, allocations and system calls: a heap laid out otherwise, its cause not found. (Before
#: those fixes, runs 12 minutes apart differed by up to 1.81%.)
MIN_FLOOR = 0.01
#: ... and for a region of fewer than SMALL_REGION_OPS operations (N = 10), 2%: ten operations
#: are one or two hundred thousand instructions, where a few hundred more of the interpreter's
#: own (its type attribute cache missing otherwise after another start-up: the same calls, more
#: dictionary lookups) make a percent. The first counts made in a fresh clone differed from the
#: next two runs of the same code by up to 1.40% at N = 10 (`done_callback_native` on rloop)
#: and by 0.34% at most at any larger N; those two agreed to the instruction on asyncio, trio
#: and uvloop, and within 0.15% on rloop.
SMALL_REGION_OPS, SMALL_REGION_FLOOR = 100, 0.02
#: A change counts beyond this many times the repeats' spread.
FLOOR_SPREADS = 3.0


@dataclass(frozen=True)
class CountsChange:
    """One benchmark's change from the old file to the new."""

    old: BenchmarkCounts
    new: BenchmarkCounts

    @property
    def change(self) -> float:
        """Relative change in instructions per operation (0.01: 1% more work)."""
        return self.new.instructions_per_op / self.old.instructions_per_op - 1

    @property
    def floor(self) -> float:
        least = (
            SMALL_REGION_FLOOR if min(self.old.ops, self.new.ops) < SMALL_REGION_OPS else MIN_FLOOR
        )
        return max(FLOOR_SPREADS * max(self.old.spread, self.new.spread), least)

    @property
    def deterministic(self) -> bool:
        return self.old.deterministic and self.new.deterministic

    @property
    def depends_on_time(self) -> str:
        """Why this runtime's work depends on wall time by its design, or ""."""
        return time_dependent_work(self.new.runtime)

    @property
    def verdict(self) -> str:
        """``REGRESSION`` (more work beyond the floor), ``improved``, ``same``, or ``no
        verdict`` for a benchmark not deterministic."""
        if not self.deterministic:
            return "no verdict"
        if self.change > self.floor:
            return "REGRESSION"
        if self.change < -self.floor:
            return "improved"
        return "same"


def identity_differences(old: CountsRun, new: CountsRun) -> list[str]:
    """What differs between the two files' builds, one line each (empty: comparable)."""
    a, b = old.build_identity(), new.build_identity()
    lines = []
    if a["architecture"] != b["architecture"]:
        lines.append(f"architecture: {a['architecture']} -> {b['architecture']}")
    lines += [f"Python {key}: {x} -> {y}" for key, x, y in old.python_differences(new)]
    if a["valgrind"] != b["valgrind"]:
        lines.append(f"valgrind: {a['valgrind']} -> {b['valgrind']}")
    return lines


def library_differences(old: CountsRun, new: CountsRun) -> list[str]:
    """The libraries whose versions differ, ``anyio 4.13.0 -> 4.16.0``."""
    names = dict.fromkeys([*old.libraries, *new.libraries])
    return [
        f"{name} {old.libraries.get(name)} -> {new.libraries.get(name)}"
        for name in names
        if old.libraries.get(name) != new.libraries.get(name)
    ]


def partial_lines(old: CountsRun, new: CountsRun) -> list[str]:
    """A line for each of the two counts files that was stopped midway (``PARTIAL old counts:
    ...``)."""
    return [
        f"PARTIAL {side} counts: {run.partial}."
        for side, run in (("old", old), ("new", new))
        if run.partial
    ]


def compare_counts(old: CountsRun, new: CountsRun) -> tuple[str, int]:
    """The comparison as text, and the exit status: 0, 1 if any deterministic benchmark does
    more work beyond its floor (or one counted in the old file is missing from the new), 2 if
    the builds differ (no verdict)."""
    lines = [f"counts: {old.source or 'old'} -> {new.source or 'new'}"]
    lines += partial_lines(old, new)
    refused = identity_differences(old, new)
    if refused:
        lines.append(
            "no verdict: instruction counts compare only on the same architecture, Python "
            "build and valgrind; these differ:"
        )
        lines += [f"  {line}" for line in refused]
        return "\n".join(lines), 2
    libraries = library_differences(old, new)
    if libraries:
        lines.append(f"library versions differ (what is compared): {', '.join(libraries)}")
    old_by, new_by = old.by_key(), new.by_key()
    changes = [CountsChange(old_by[k], new_by[k]) for k in old_by if k in new_by]
    header = (
        f"{'benchmark':<44} {'instr/op old':>13} {'new':>13} {'change':>8} {'floor':>7}  verdict"
    )
    lines += ["", header, "-" * len(header)]
    for c in changes:
        b = c.new
        name = f"{b.scenario} {b.runtime} {'B' if b.axis == 'load' else 'N'}={b.scale:,}"
        verdict = c.verdict
        if verdict == "no verdict":
            verdict += f" (not deterministic: spread {max(c.old.spread, c.new.spread):.2%})"
        elif c.depends_on_time:
            verdict += " \N{DOUBLE DAGGER}"
        lines.append(
            f"{name:<44} {c.old.instructions_per_op:>13,.0f} {b.instructions_per_op:>13,.0f} "
            f"{c.change:>+8.2%} {c.floor:>7.2%}  {verdict}"
        )
    missing = [k for k in old_by if k not in new_by]
    added = [k for k in new_by if k not in old_by]
    for key in missing:
        lines.append(f"missing from the new file: {key[0]} on {key[1]} at {key[2]:,}")
    for key in added:
        lines.append(f"new in the new file: {key[0]} on {key[1]} at {key[2]:,}")
    timed = {c.new.runtime: c.depends_on_time for c in changes if c.depends_on_time}
    if timed:
        lines.append("")
        lines += [
            f"\N{DOUBLE DAGGER} {runtime}: its work depends on wall time ({why}); its counts move "
            "with the machine's load, judged at the same floor"
            for runtime, why in timed.items()
        ]
    regressions = [c for c in changes if c.verdict == "REGRESSION"]
    skipped = [c for c in changes if not c.deterministic]
    lines.append("")
    lines.append(
        f"{len(regressions)} regression(s), "
        f"{sum(c.verdict == 'improved' for c in changes)} improvement(s), "
        f"{sum(c.verdict == 'same' for c in changes)} the same within the floor (at least "
        f"{MIN_FLOOR:.1%}, {SMALL_REGION_FLOOR:.1%} for a region of fewer than "
        f"{SMALL_REGION_OPS} operations), {len(skipped)} without a verdict (not deterministic)"
        + (f", {len(added)} new in the new file" if added else "")
    )
    if missing:
        lines.append(
            f"FAILED: {len(missing)} benchmark(s) counted in the old file are missing from the "
            "new one (listed above); "
            + (
                "the new file is partial: count again, to the end"
                if new.partial
                else "count the same scenarios, runtimes and N in both"
            )
        )
    return "\n".join(lines), 1 if regressions or missing else 0
