"""Explaining a gap: where the extra work per operation goes, between two sides of a comparison.

The sides are two counts files (an A/B of versions: each benchmark against itself), or two
runtimes of the same files (``--sides asyncio,trio``). A benchmark is explained only where
:mod:`anybench._counts_compare` sees a change beyond its floor; the others get one line (one
whose counts are not deterministic is pointed to the time path, :mod:`anybench._sampling`).

An explanation has five parts, all per operation:

- **The responsible call paths**, top down (:mod:`anybench._attribution`): the traced round's
  folded stacks of both sides merged into one tree, and the few frames whose *inclusive*
  bytecode change accounts for the gap, each with its share of it and its library; for two
  runtimes, the stacks re-rooted at the scenario's frames so that the sides part where the
  scenario or the adapter calls into the runtime. A function that moved to another file
  between the sides is one frame. Work in stacks the file does not keep is shown, never
  counted as explained.
- **Python functions** by the bytecode instructions they executed themselves (*self*), from the
  counts' traced round (:mod:`anybench._bytecodes`), with their calls on each side and the
  library each belongs to (from its file). Functions are matched by file and qualified name,
  not line, so that a function moved within its file between versions is still one function.
  By library, the same sums.
- **C functions** by self machine instructions (callgrind's top functions in each file).
- **Allocations, collector runs, loop waits, system calls**.
- **How much of the machine-instruction gap** the Python-level gap stands for: an estimate,
  since on CPython 3.11 callgrind cannot see Python functions. The bytecode gap is converted at
  the benchmark's own rate (machine instructions per bytecode instruction, both sides pooled:
  C work called from Python included). Below half of either gap, the explanation says that it
  misses most of it.

Counts are deterministic: there is no interval to give; what differs less than compare's floor
(2%) is not called a change.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ._attribution import (
    OUTSIDE,
    Responsible,
    align_at_scenario,
    by_library,
    merged_tree,
    moved_functions,
    one_sided,
    renamed,
    responsible,
)
from ._bytecodes import OTHER_STACKS, STACK_SEPARATOR
from ._counts_compare import CountsChange, library_differences
from ._counts_results import BenchmarkCounts, CountsError, CountsRun, read_counts

#: Rows per table unless asked otherwise.
TOP = 10
#: An explanation whose named contributors account for less than this share of a gap says that
#: it misses most of it.
ENOUGH = 0.5
#: The command that makes the figures an explanation needs.
COUNTS_COMMAND = "anybench counts --scenario {scenario}"
#: The command that explains a benchmark from time (:mod:`anybench._sampling`).
TIME_COMMAND = "anybench explain --time scenarios --scenario {scenario} --sides {runtimes}"

#: At most this many responsible call paths are named.
MOST_FRAMES = 6

#: The libraries a function is told apart by, from its file.
KNOWN_LIBRARIES = ("anyio", "trio", "asyncio", "uvloop", "rloop", "anybench")


class ExplainError(ValueError):
    """A usage error: one line, what was wrong and what to do."""


def match_key(key: str) -> str:
    """A function's name without its line: ``anyio/_core/_tasks.py:CancelScope.__exit__``
    (the line moves between versions; the function stays)."""
    if "/<" in key:  # <attrs generated ...> named below the counting process's directory
        key = key[key.index("/<") + 1 :]
    if key.startswith("<") and not key.startswith("<frozen") and "generated" not in key:
        return key
    parts = key.split(":")
    if len(parts) >= 3 and parts[-2].isdigit():
        return ":".join([*parts[:-2], parts[-1]])
    return key


def library_of(key: str, scenario: str) -> str:
    """The library a function belongs to, from its file: the scenario's own module
    (``scenario``), one of :data:`KNOWN_LIBRARIES`, the standard library (``stdlib``), a C
    built-in (``builtin``) or ``other``."""
    if key.startswith("<frozen"):
        return "stdlib"
    if key.startswith("<") and "generated" in key:  # attrs' methods: <attrs generated ... mod.X>
        module = key.rstrip(">").split()[-1]
        top = module.split(".")[0]
        return top if top in KNOWN_LIBRARIES else "other"
    if key.startswith("<"):
        return "builtin"
    path = key.split(":")[0]
    parts = Path(path).parts
    if parts and Path(path).stem == scenario:
        return "scenario"
    for part in parts[:-1]:
        if part in KNOWN_LIBRARIES:
            return part
    top = parts[0] if parts else ""
    name = top[:-3] if top.endswith(".py") else top
    if name in sys.stdlib_module_names:
        return "stdlib"
    return "other"


def short_name(key: str) -> str:
    """A function's label in a picture: its qualified name."""
    return match_key(key).split(":")[-1]


@dataclass(frozen=True)
class PythonRow:
    """One Python function on both sides, per operation: calls, self and inclusive bytecode
    instructions."""

    key: str
    library: str
    calls_a: float
    calls_b: float
    self_a: float
    self_b: float
    inclusive_a: float
    inclusive_b: float

    @property
    def self_delta(self) -> float:
        return self.self_b - self.self_a

    @property
    def calls_delta(self) -> float:
        return self.calls_b - self.calls_a

    @property
    def status(self) -> str:
        """``new`` (called on B only), ``gone`` (on A only), or empty."""
        return one_sided(self.calls_a, self.calls_b)


@dataclass(frozen=True)
class CRow:
    """One C function's self machine instructions per operation on both sides; None where it
    is not among that file's top functions."""

    name: str
    object: str
    self_a: float | None
    self_b: float | None

    @property
    def delta(self) -> float:
        return (self.self_b or 0.0) - (self.self_a or 0.0)


@dataclass(frozen=True)
class Attribution:
    """How much of each gap the named contributors account for."""

    #: Bytecode instructions per operation on each side, and the named functions' part of the
    #: gap (sums of their self differences).
    bytecodes_a: float
    bytecodes_b: float
    named_bytecodes: float
    #: Machine instructions per operation on each side.
    instructions_a: float
    instructions_b: float
    #: By library: the sum of the self differences of all its listed functions.
    by_library: dict[str, float]

    @property
    def bytecode_gap(self) -> float:
        return self.bytecodes_b - self.bytecodes_a

    @property
    def instruction_gap(self) -> float:
        return self.instructions_b - self.instructions_a

    @property
    def named_share(self) -> float | None:
        """The named functions' share of the bytecode gap (None without a gap)."""
        return self.named_bytecodes / self.bytecode_gap if self.bytecode_gap else None

    @property
    def rate(self) -> float:
        """Machine instructions per bytecode instruction, both sides pooled."""
        total = self.bytecodes_a + self.bytecodes_b
        return (self.instructions_a + self.instructions_b) / total if total else 0.0

    def instruction_share(self, bytecodes: float) -> float | None:
        """The share of the machine-instruction gap that *bytecodes* per operation stand for,
        at :attr:`rate` (an estimate)."""
        if not self.instruction_gap:
            return None
        return bytecodes * self.rate / self.instruction_gap


def _per_op(values: Mapping[str, int], ops: int) -> dict[str, float]:
    return {k: v / ops for k, v in values.items()}


def _merged_work(b: BenchmarkCounts) -> dict[str, tuple[float, float, float, str]]:
    merged: dict[str, tuple[float, float, float, str]] = {}
    for key, (calls, own, inclusive) in b.python_work.items():
        m = match_key(key)
        c, s, i, _ = merged.get(m, (0.0, 0.0, 0.0, key))
        merged[m] = (c + calls / b.ops, s + own / b.ops, i + inclusive / b.ops, key)
    return merged


def python_rows(a: BenchmarkCounts, b: BenchmarkCounts) -> list[PythonRow]:
    """Every listed Python function of either side, per operation, largest self difference
    first. Without the traced round's figures on both sides, calls only (from the profiler)."""
    rows = []
    if a.python_work and b.python_work:
        wa, wb = _merged_work(a), _merged_work(b)
        for m in dict.fromkeys([*wa, *wb]):
            ca, sa, ia, ka = wa.get(m, (0.0, 0.0, 0.0, ""))
            cb, sb, ib, kb = wb.get(m, (0.0, 0.0, 0.0, ""))
            rows.append(PythonRow(m, library_of(kb or ka, b.scenario), ca, cb, sa, sb, ia, ib))
    else:
        fa: dict[str, float] = {}
        fb: dict[str, float] = {}
        for source, into in ((a, fa), (b, fb)):
            for key, calls in source.python_functions.items():
                m = match_key(key)
                into[m] = into.get(m, 0.0) + calls / source.ops
        for m in dict.fromkeys([*fa, *fb]):
            lib = library_of(m, b.scenario)
            rows.append(PythonRow(m, lib, fa.get(m, 0.0), fb.get(m, 0.0), 0, 0, 0, 0))
    rows.sort(key=lambda r: (-abs(r.self_delta), -abs(r.calls_delta), r.key))
    return rows


def c_rows(a: BenchmarkCounts, b: BenchmarkCounts) -> list[CRow]:
    """The C functions in either file's top list, self instructions per operation, largest
    difference first."""
    fa = {(f.name, f.object): f.self_ir / a.ops for f in a.functions}
    fb = {(f.name, f.object): f.self_ir / b.ops for f in b.functions}
    rows = [CRow(n, o, fa.get((n, o)), fb.get((n, o))) for n, o in dict.fromkeys([*fa, *fb])]
    rows.sort(key=lambda r: (-abs(r.delta), r.name))
    return rows


def attribute(a: BenchmarkCounts, b: BenchmarkCounts, named: Sequence[PythonRow]) -> Attribution:
    """The gap in each unit and the part *named* accounts for; by library over every listed
    function, and the functions neither file lists under ``(not listed)``."""
    rows = python_rows(a, b)
    bytecodes_a = (a.bytecodes or 0) / a.ops
    bytecodes_b = (b.bytecodes or 0) / b.ops
    by_library: dict[str, float] = {}
    for row in rows:
        by_library[row.library] = by_library.get(row.library, 0.0) + row.self_delta
    listed = sum(row.self_delta for row in rows)
    rest = (bytecodes_b - bytecodes_a) - listed
    if abs(rest) > 1e-9:
        by_library["(not listed)"] = rest
    return Attribution(
        bytecodes_a=bytecodes_a,
        bytecodes_b=bytecodes_b,
        named_bytecodes=sum(row.self_delta for row in named),
        instructions_a=a.instructions_per_op,
        instructions_b=b.instructions_per_op,
        by_library=dict(
            sorted(((k, v) for k, v in by_library.items() if v), key=lambda item: -abs(item[1]))
        ),
    )


# -- pairing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    """One benchmark's two sides."""

    a: BenchmarkCounts
    b: BenchmarkCounts

    @property
    def title(self) -> str:
        scale = f"{'B' if self.a.axis == 'load' else 'N'}={self.a.scale:,}"
        runtimes = (
            self.a.runtime
            if self.a.runtime == self.b.runtime
            else f"{self.a.runtime} vs {self.b.runtime}"
        )
        return f"{self.a.scenario} on {runtimes} at {scale}"


def pair_benchmarks(
    run_a: CountsRun,
    run_b: CountsRun,
    *,
    sides: tuple[str, str] | None = None,
    scenarios: Sequence[str] = (),
    runtimes: Sequence[str] = (),
    scale: int | None = None,
) -> list[Pair]:
    """The benchmarks of *run_a* and *run_b* to explain: the same benchmark in both, or with
    *sides*, the first runtime's in *run_a* against the second's in *run_b*; filtered.
    :class:`ExplainError` where nothing is left."""

    def chosen(bench: BenchmarkCounts) -> bool:
        return (not scenarios or bench.scenario in scenarios) and (
            scale is None or bench.scale == scale
        )

    if sides is not None:
        for side, run in zip(sides, (run_a, run_b), strict=True):
            if not any(bench.runtime == side for bench in run.benchmarks):
                raise ExplainError(f"{side} is not measured there: {_inventory(run)}")
    b_by = run_b.by_key()
    pairs = []
    for bench in run_a.benchmarks:
        if not chosen(bench):
            continue
        if sides is not None:
            if bench.runtime != sides[0]:
                continue
            other = b_by.get((bench.scenario, sides[1], bench.scale))
        else:
            if runtimes and bench.runtime not in runtimes:
                continue
            other = b_by.get(bench.key)
        if other is not None:
            pairs.append(Pair(bench, other))
    if pairs:
        return pairs
    what = (
        f"runtimes {sides[0]} and {sides[1]}" if sides else "benchmarks (scenario, runtime, scale)"
    )
    filters = [
        f"--scenario {','.join(scenarios)}" if scenarios else "",
        f"--runtime {','.join(runtimes)}" if runtimes else "",
        f"--scale {scale}" if scale is not None else "",
    ]
    chosen_by = " ".join(f for f in filters if f)
    inventory = _inventory(run_a) + ("" if run_a is run_b else f" against {_inventory(run_b)}")
    raise ExplainError(
        f"the two sides have no {what} in common"
        + (f" with {chosen_by}" if chosen_by else "")
        + f"; {inventory}"
    )


def _inventory(run: CountsRun) -> str:
    scenarios = sorted({b.scenario for b in run.benchmarks})
    runtimes = sorted({b.runtime for b in run.benchmarks})
    scales = sorted({b.scale for b in run.benchmarks if b.axis == "n"})
    name = Path(run.source).name or "a file"
    at = f" at N {', '.join(f'{n:,}' for n in scales)}" if scales else ""
    return (
        f"{name} has {', '.join(scenarios) or 'nothing'} on {', '.join(runtimes) or 'nothing'}{at}"
    )


# -- text ------------------------------------------------------------------------------------


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.0f}"


def _signed(value: float) -> str:
    if abs(value) < 0.005:
        return "0"
    return f"{value:+,.2f}" if abs(value) < 10 else f"{value:+,.0f}"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def explain_pair(pair: Pair, *, labels: tuple[str, str], top: int = TOP) -> list[str]:
    """The explanation of one benchmark's gap, or one line where it is not significant."""
    a, b = pair.a, pair.b
    change = CountsChange(a, b)
    head = (
        f"{pair.title}: {a.instructions_per_op:,.0f} -> {b.instructions_per_op:,.0f} "
        f"instructions/op ({change.change:+.1%}; floor {change.floor:.0%})"
    )
    if abs(change.change) <= change.floor:
        if not change.deterministic:
            spread = max(a.spread, b.spread)
            line = f"{head}: not deterministic (spread {spread:.0%}): no verdict from counts"
            if a.runtime != b.runtime:
                command = TIME_COMMAND.format(
                    scenario=a.scenario, runtimes=f"{a.runtime},{b.runtime}"
                )
                line += f"; `{command}` explains it from time"
            return [line]
        return [f"{head}: not significant, not explained"]
    lines = [head]
    if not change.deterministic:
        lines.append(
            f"  not deterministic (spread {max(a.spread, b.spread):.2%}): one run's figures"
        )
    traced = bool(a.python_work and b.python_work)
    rows = python_rows(a, b)
    named = [r for r in rows if r.self_delta or (not traced and r.calls_delta)][:top]
    la, lb = labels
    if traced:
        attribution = attribute(a, b, named)
        stacks_a, stacks_b = aligned_stacks(pair)
        frames = responsible(merged_tree(stacks_a, stacks_b), most=min(MOST_FRAMES, top))
        covered = sum(f.delta for f in frames if f.path != (OTHER_STACKS,))
        lines += _attribution_lines(attribution, len(named), covered)
        lines += responsible_lines(
            stacks_a,
            stacks_b,
            labels=labels,
            scenario=b.scenario,
            unit="bytecode",
            frames=frames,
            two_runtimes=a.runtime != b.runtime,
        )
        lines += [
            "",
            f"  Python functions, per op (bytecode instructions; {la} -> {lb}; share: of the "
            "bytecode gap; Δincl: with what they call)",
        ]
        header = (
            f"  {'function':<58} {'library':<9} {'calls ' + la:>12} {lb:>9} {'Δ':>7}"
            f" {'self ' + la:>11} {lb:>8} {'Δself':>8} {'share':>6} {'Δincl':>8}"
        )
        lines += [header, "  " + "-" * (len(header) - 2)]
        for r in named:
            share = attribution.named_share and r.self_delta / attribution.bytecode_gap
            lines.append(
                f"  {_fit(r.key, 58):<58} {r.library:<9} {_num(r.calls_a):>12} "
                f"{_num(r.calls_b):>9} {_signed(r.calls_delta):>7} {_num(r.self_a):>11} "
                f"{_num(r.self_b):>8} {_signed(r.self_delta):>8} {_share(share):>6} "
                f"{_signed(r.inclusive_b - r.inclusive_a):>8}"
                + (f"  {r.status}" if r.status else "")
            )
    else:
        lacking = [f"{labels[i]}" for i, x in enumerate((a, b)) if not x.python_work]
        lines.append(
            f"  no bytecode figures in {' and '.join(lacking)} (counted before the traced "
            f"round): calls only; `{COUNTS_COMMAND.format(scenario=a.scenario)}` makes them"
        )
        lines += ["", f"  Python functions, calls per op ({la} -> {lb})"]
        for r in named:
            lines.append(
                f"  {_fit(r.key, 58):<58} {r.library:<9} {_num(r.calls_a):>9} "
                f"{_num(r.calls_b):>9} {_signed(r.calls_delta):>8}"
                + (f"  {r.status}" if r.status else "")
            )
    lines += _c_lines(a, b, labels, top)
    lines += _counts_lines(a, b, labels)
    return lines


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def _attribution_lines(at: Attribution, named: int, covered: float) -> list[str]:
    gap = at.bytecode_gap
    lines = [
        f"  bytecode instructions/op: {at.bytecodes_a:,.0f} -> {at.bytecodes_b:,.0f} "
        f"({_signed(gap)}); the responsible call paths below account for "
        f"{_share(covered / gap if gap else None)} of that gap with what they call, the "
        f"{named} functions of the table for {_share(at.named_share)} by their own work"
    ]
    libraries = ", ".join(
        f"{name} {_signed(delta)} ({_share(delta / at.bytecode_gap if at.bytecode_gap else None)})"
        for name, delta in at.by_library.items()
        if abs(delta) >= 0.5
    )
    if libraries:
        lines.append(f"  by library (self bytecode instructions/op): {libraries}")
    whole = at.instruction_share(at.bytecode_gap)
    part = at.instruction_share(covered)
    lines.append(
        f"  machine instructions: at {at.rate:,.0f} per bytecode instruction (this benchmark's, "
        f"C work included), the bytecode gap stands for about {_share(whole)} of the "
        f"instruction gap ({_signed(at.instruction_gap)}/op), the responsible call paths for "
        f"{_share(part)} (an estimate: callgrind cannot see Python functions)"
    )
    if part is None or part < ENOUGH:
        lines.append(
            "  this explanation misses most of the instruction gap: the rest is in C work the "
            "bytecodes do not show, or in call paths not named"
        )
    return lines


def _c_lines(
    a: BenchmarkCounts, b: BenchmarkCounts, labels: tuple[str, str], top: int
) -> list[str]:
    rows = [r for r in c_rows(a, b) if r.delta][:top]
    if not rows:
        return []
    gap = b.instructions_per_op - a.instructions_per_op
    named = sum(r.delta for r in rows)
    la, lb = labels
    lines = [
        "",
        f"  C functions, self machine instructions per op ({la} -> {lb}; '-': not in that "
        f"file's top {max(len(a.functions), len(b.functions))}); these {len(rows)} account for "
        f"{_share(named / gap if gap else None)} of the instruction gap",
    ]
    for r in rows:
        lines.append(
            f"  {_fit(r.name, 40):<40} {_fit(r.object, 22):<22} {_num(r.self_a):>10} "
            f"{_num(r.self_b):>10} {_signed(r.delta):>9}"
        )
    return lines


def _counts_lines(a: BenchmarkCounts, b: BenchmarkCounts, labels: tuple[str, str]) -> list[str]:
    figures: list[tuple[str, float, float]] = [
        ("allocations (CPython)", a.allocations / a.ops, b.allocations / b.ops),
        ("allocations (malloc)", a.raw_allocations / a.ops, b.raw_allocations / b.ops),
        ("collector runs", a.collections / a.ops, b.collections / b.ops),
        ("loop waits", a.loop_waits / a.ops, b.loop_waits / b.ops),
    ]
    for name in sorted(set(a.syscalls) | set(b.syscalls)):
        figures.append(
            (f"syscall {name}", a.syscalls.get(name, 0) / a.ops, b.syscalls.get(name, 0) / b.ops)
        )
    la, lb = labels
    lines = ["", f"  other counts per op ({la} -> {lb})"]
    for name, va, vb in figures:
        if va or vb:
            lines.append(f"  {name:<40} {_num(va):>10} {_num(vb):>10} {_signed(vb - va):>9}")
    return lines


def side_labels(
    run_a: CountsRun, run_b: CountsRun, sides: tuple[str, str] | None
) -> tuple[str, str]:
    """Short names for the two sides: the runtimes, the anyio versions, or A and B; two
    runtimes of two files, each with its file's (``asyncio (4.13.0)``, ``trio (4.16.0)``): the
    gap is then of runtime and file at once, and the names say so."""
    va, vb = run_a.libraries.get("anyio"), run_b.libraries.get("anyio")
    files = (va, vb) if va and vb and va != vb else ("A", "B")
    if sides is not None:
        if run_a is run_b:
            return sides
        return (f"{sides[0]} ({files[0]})", f"{sides[1]} ({files[1]})")
    return files


def explain(
    run_a: CountsRun,
    run_b: CountsRun,
    *,
    sides: tuple[str, str] | None = None,
    scenarios: Sequence[str] = (),
    runtimes: Sequence[str] = (),
    scale: int | None = None,
    top: int = TOP,
) -> tuple[list[str], list[Pair]]:
    """The explanation's text, and the pairs it explained (beyond the floor)."""
    pairs = pair_benchmarks(
        run_a, run_b, sides=sides, scenarios=scenarios, runtimes=runtimes, scale=scale
    )
    labels = side_labels(run_a, run_b, sides)
    lines = [f"explain: {labels[0]} = {run_a.source or 'A'}, {labels[1]} = {run_b.source or 'B'}"]
    files = (
        [("", run_a)] if run_a is run_b else [(f" {labels[0]}", run_a), (f" {labels[1]}", run_b)]
    )
    lines += [f"PARTIAL{label}: {run.partial}." for label, run in files if run.partial]
    differences = library_differences(run_a, run_b)
    if differences and run_a is not run_b:
        lines.append(f"library versions differ: {', '.join(differences[:6])}")
    pythons = [
        "configure flags" if key == "config" else f"{key} {a} in {labels[0]}, {b} in {labels[1]}"
        for key, a, b in run_a.python_differences(run_b)
    ]
    if pythons and run_a is not run_b:
        lines.append(
            f"Python differs ({'; '.join(pythons)}): the gap includes the interpreter's own"
        )
    explained = []
    for pair in pairs:
        text = explain_pair(pair, labels=labels, top=top)
        lines += ["", *text]
        if len(text) > 1:
            explained.append(pair)
    return lines, explained


# -- the command -----------------------------------------------------------------------------


def _names(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def explain_main(
    paths: Sequence[str],
    *,
    sides: str | None,
    scenarios: str | None,
    runtimes: str | None,
    scale: int | None,
    top: int,
    flame: str | None,
) -> int:
    """``anybench explain``: print the explanation; with *flame*, draw a differential flame
    graph per explained benchmark into that directory. 0 on success, 2 on a usage error (one
    line on standard error)."""
    from ._flame import write_flame

    def usage(message: str) -> int:
        print(f"anybench explain: {message}", file=sys.stderr)
        return 2

    if not 1 <= len(paths) <= 2:
        return usage("give two counts files (A B), or one with --sides RUNTIME,RUNTIME")
    chosen_sides: tuple[str, str] | None = None
    if sides is not None:
        named = _names(sides)
        if len(named) != 2 or (named[0] == named[1] and len(paths) == 1):
            return usage(f"--sides takes two runtimes, as asyncio,trio; not {sides!r}")
        chosen_sides = (named[0], named[1])
        if runtimes:
            return usage("--runtime and --sides cannot be combined: --sides names the runtimes")
    elif len(paths) == 1:
        return usage("one counts file needs --sides RUNTIME,RUNTIME (two runtimes to compare)")
    if not 1 <= top <= 1000:
        return usage(f"--top takes 1 to 1000 rows, not {top}")
    try:
        run_a = read_counts(paths[0])
        run_b = run_a if len(paths) == 1 else read_counts(paths[1])
        lines, explained = explain(
            run_a,
            run_b,
            sides=chosen_sides,
            scenarios=_names(scenarios),
            runtimes=_names(runtimes),
            scale=scale,
            top=top,
        )
    except (CountsError, ExplainError) as exc:
        return usage(str(exc))
    print("\n".join(lines))
    if flame is not None:
        labels = side_labels(run_a, run_b, chosen_sides)
        drawn = 0
        for pair in explained:
            if not (pair.a.stacks and pair.b.stacks):
                continue
            try:
                path = write_flame(pair, labels, Path(flame))
            except OSError as exc:
                return usage(f"cannot write the flame graph into {flame} ({exc.strerror or exc})")
            print(f"flame graph: {path}")
            drawn += 1
        if explained and not drawn:
            print(
                "anybench explain: no flame graph: the files have no stacks (counted before the "
                f"traced round); `{COUNTS_COMMAND.format(scenario=explained[0].a.scenario)}` "
                "makes them",
                file=sys.stderr,
            )
    return 0


def aligned_stacks(pair: Pair) -> tuple[dict[tuple[str, ...], float], ...]:
    """Both sides' folded stacks per operation, ready to merge: as they are for one runtime;
    for two, re-rooted at the scenario's frames (see :mod:`anybench._attribution`)."""
    a = folded_per_op(pair.a.stacks, pair.a.ops)
    b = folded_per_op(pair.b.stacks, pair.b.ops)
    a = renamed(a, moved_functions(_names_in(a), _names_in(b)))
    if pair.a.runtime == pair.b.runtime:
        return a, b
    return align_runtimes(a, b, pair.b.scenario)


def _names_in(stacks: Mapping[tuple[str, ...], float]) -> set[str]:
    return {name for path in stacks for name in path}


def align_runtimes(
    a: Mapping[tuple[str, ...], float],
    b: Mapping[tuple[str, ...], float],
    scenario: str,
) -> tuple[dict[tuple[str, ...], float], ...]:
    """Two runtimes' stacks re-rooted at the scenario's own frames, the rest under
    one frame both sides share (:data:`~anybench._attribution.OUTSIDE`)."""

    def in_scenario(key: str) -> bool:
        return library_of(key, scenario) == "scenario"

    return align_at_scenario(a, in_scenario), align_at_scenario(b, in_scenario)


def path_text(path: Sequence[str], width: int = 4) -> str:
    """A call path for a line of text: short names, outermost first, the middle elided
    beyond *width* frames."""
    names = [n if n.startswith("(") else short_name(n) for n in path]
    if len(names) > width and width < 3:
        return " -> ".join(names[-width:])
    if len(names) > width:
        names = [names[0], "…", *names[-(width - 2) :]]
    return " -> ".join(names)


def frame_library(path: Sequence[str], scenario: str) -> str:
    """The library of a frame: its innermost function's, or the runtime of an outside frame."""
    last = path[-1]
    if last == OUTSIDE:
        return "runtime"
    if last == OTHER_STACKS:
        return "not kept"
    return library_of(last, scenario)


def responsible_lines(
    stacks_a: Mapping[tuple[str, ...], float],
    stacks_b: Mapping[tuple[str, ...], float],
    *,
    labels: tuple[str, str],
    scenario: str,
    unit: str,
    frames: Sequence[Responsible] | None = None,
    intervals: Mapping[tuple[str, ...], tuple[float, float]] | None = None,
    two_runtimes: bool = False,
) -> list[str]:
    """The responsible frames (top down, inclusive) as text: each with both sides' work, its
    change and its share of the gap; the named frames' share of the whole gap; for two
    runtimes, each side's work by library. With *intervals* (from time), each change's
    interval, and a frame whose interval holds 0 is said to be within noise."""
    root = merged_tree(stacks_a, stacks_b)
    gap = root.delta
    if not gap:
        return []
    chosen = list(frames) if frames is not None else responsible(root)
    la, lb = labels
    lines = [
        "",
        f"  responsible call paths, top down ({unit}/op with what they call; {la} -> {lb}; "
        "share: of the gap):",
    ]
    named = 0.0
    for r in chosen:
        interval = intervals.get(r.path) if intervals else None
        noise = interval is not None and interval[0] <= 0 <= interval[1]
        change = _signed(r.delta) + (
            f" [{_signed(interval[0])}, {_signed(interval[1])}]" if interval else ""
        )
        if not noise and r.path != (OTHER_STACKS,):
            named += r.delta
        lines.append(
            f"    {change:>22} {_share(r.delta / gap):>5}  {frame_library(r.path, scenario):<9}"
            f" {_num(r.a):>8} -> {_num(r.b):<8} {path_text(r.path)}"
            + (f"  ({r.kind})" if r.kind else "")
            + (
                "  (work in stacks the file does not keep: not attributed)"
                if r.path == (OTHER_STACKS,)
                else ""
            )
            + ("  within noise: not named" if noise else "")
        )
        if r.parts:
            sides = [
                f"{label}: "
                + ", ".join(f"{path_text(names, 3)} {_num(value)}" for names, value in entries)
                for label, entries in (
                    (la, [(n, x) for n, x, _ in r.parts if x]),
                    (lb, [(n, y) for n, _, y in r.parts if y]),
                )
                if entries
            ]
            lines.append(f"{'':>40}the sides part here: {'; '.join(sides)}")
    share = named / gap
    gap_name = "time" if unit == "ns" else unit
    count = sum(1 for r in chosen if not _noise(r, intervals) and r.path != (OTHER_STACKS,))
    lines.append(
        f"  these {count} call paths account for "
        f"{_share(share)} of the {gap_name} gap ({_signed(gap)} {unit}/op); the rest, "
        f"{_signed(gap - named)}"
        "/op, is spread elsewhere"
        + "".join(
            f" ({_signed(r.delta)}/op of it in stacks the file does not keep)"
            for r in chosen
            if r.path == (OTHER_STACKS,)
        )
        + ("" if share >= ENOUGH else f": this explanation misses most of the {gap_name} gap")
    )
    if two_runtimes:
        side_a = by_library(stacks_a, lambda k: frame_library((k,), scenario))
        side_b = by_library(stacks_b, lambda k: frame_library((k,), scenario))
        for label, side in ((la, side_a), (lb, side_b)):
            whole = sum(side.values())
            parts = ", ".join(
                f"{name} {_num(v)} ({_share(v / whole if whole else None)})"
                for name, v in side.items()
                if abs(v) >= 0.005 * whole
            )
            lines.append(f"  {label}: {_num(whole)} {unit}/op, by library (own work): {parts}")
    return lines


def _noise(r: Responsible, intervals: Mapping[tuple[str, ...], tuple[float, float]] | None) -> bool:
    interval = intervals.get(r.path) if intervals else None
    return interval is not None and interval[0] <= 0 <= interval[1]


def folded_per_op(stacks: Mapping[str, int], ops: int) -> dict[tuple[str, ...], float]:
    """Folded stacks as paths of matched function names (lines dropped), per operation."""
    folded: dict[tuple[str, ...], float] = {}
    for stack, weight in stacks.items():
        path = (
            (OTHER_STACKS,)
            if stack == OTHER_STACKS
            else tuple(match_key(k) for k in stack.split(STACK_SEPARATOR))
        )
        folded[path] = folded.get(path, 0.0) + weight / ops
    return folded


# -- the report's section --------------------------------------------------------------------

#: Differences the report explains, at most.
REPORT_TOP = 3
#: Responsible call paths shown per difference in the report.
REPORT_FRAMES = 3


def report_pairs(counts: Sequence[CountsRun]) -> list[tuple[Pair, tuple[str, str]]]:
    """The differences the report explains: in each counts file with the traced round, every
    runtime against asyncio per scenario and scale; between two files whose anyio differs, each
    benchmark against itself; the largest significant deterministic changes first, at most
    :data:`REPORT_TOP`."""
    from ._runtimes import BASELINE

    found: list[tuple[Pair, tuple[str, str]]] = []
    for run in counts:
        by_key = run.by_key()
        for bench in run.benchmarks:
            base = by_key.get((bench.scenario, BASELINE, bench.scale))
            if base is not None and base is not bench:
                found.append((Pair(base, bench), (BASELINE, bench.runtime)))
    if len(counts) == 2:
        labels = side_labels(counts[0], counts[1], None)
        if labels != ("A", "B"):
            b_by = counts[1].by_key()
            for bench in counts[0].benchmarks:
                other = b_by.get(bench.key)
                if other is not None:
                    found.append((Pair(bench, other), labels))

    def explainable(pair: Pair) -> bool:
        change = CountsChange(pair.a, pair.b)
        return (
            bool(pair.a.stacks and pair.b.stacks)
            and change.deterministic
            and abs(change.change) > change.floor
        )

    # One scale per benchmark (the largest), and no native twin (its two sides are two
    # different programs, not one program on two runtimes).
    largest: dict[tuple[str, str, str], tuple[Pair, tuple[str, str]]] = {}
    for pair, labels in found:
        if pair.b.native_of or not explainable(pair):
            continue
        key = (pair.b.scenario, pair.a.runtime, pair.b.runtime)
        if key not in largest or pair.b.scale > largest[key][0].b.scale:
            largest[key] = (pair, labels)
    chosen = sorted(
        largest.values(), key=lambda item: -abs(CountsChange(item[0].a, item[0].b).change)
    )
    return chosen[:REPORT_TOP]


def explained_section(counts: Sequence[CountsRun], into: Path) -> list[str]:
    """The report's "Explained differences": the largest few differences, each with its
    responsible call paths and their share of the bytecode gap, and a differential flame graph
    written into *into* (linked relatively); none without counts that have the traced round."""
    from ._escape import markdown, markdown_code
    from ._flame import write_flame

    pairs = report_pairs(counts)
    if not pairs:
        return []
    out = [
        "## Explained differences (counts)",
        "",
        "The largest differences in work, explained from the counts' traced round: the call "
        "paths whose inclusive bytecode instructions per operation changed most, read top down "
        "(`anybench explain` gives the whole explanation), each with its share of the bytecode "
        "gap; the flame graph draws both sides (red grew, blue shrank, purple new, grey gone).",
        "",
    ]
    for pair, labels in pairs:
        change = CountsChange(pair.a, pair.b)
        stacks_a, stacks_b = aligned_stacks(pair)
        root = merged_tree(stacks_a, stacks_b)
        frames = responsible(root, most=REPORT_FRAMES)
        gap = root.delta
        flame = write_flame(pair, labels, into)
        covered = sum(f.delta for f in frames if f.path != (OTHER_STACKS,)) / gap if gap else 0.0
        scenario = pair.b.scenario
        paths = "; ".join(
            f"{markdown_code(path_text(f.path))} ({markdown(frame_library(f.path, scenario))}"
            f"{', ' + f.kind if f.kind else ''}) {_signed(f.delta)}/op, {_share(f.delta / gap)}"
            for f in frames
        )
        note = "" if covered >= ENOUGH else "; this misses most of the gap"
        out.append(
            f"- **{markdown(pair.title)}**, {markdown(labels[0])} → {markdown(labels[1])}: "
            f"{pair.a.instructions_per_op:,.0f} → {pair.b.instructions_per_op:,.0f} "
            f"instructions/op ({change.change:+.0%}), bytecodes {_signed(gap)}/op. "
            f"Responsible: {paths or 'none named'} (together {_share(covered)} of the bytecode "
            f"gap{note}). [Flame graph]({flame.name})"
        )
    return out
