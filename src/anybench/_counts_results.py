"""The counts results file (``…_counts.json``): its schema, written and read side by side.

A counts file sits beside a time results file and holds the *work* each benchmark did per
operation, counted rather than timed: instructions (callgrind), Python calls by function (a
profiler, in another process), allocations, the collector's runs, loop waits and system calls.
Counts depend on the machine's architecture, the Python build, valgrind and every library, so
the file records them all (:class:`CountsRun`), and :mod:`anybench._counts_compare` refuses a
verdict between files whose builds differ.

Instructions are counted in separate processes (*repeats*); a benchmark whose repeats differ by
more than :data:`DETERMINISTIC_SPREAD` is marked not deterministic (its work depends on
something the harness does not fix, such as wall time) and is kept out of verdicts.

Reading never modifies a file, reads at most :data:`MAX_FILE_BYTES`, and checks every field:
a file that cannot be used raises :class:`CountsError` in one line naming it. Written compactly
with :func:`anybench._files.write_new`: whole or not at all, never over another file.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._bytecodes import OTHER_STACKS, STACK_SEPARATOR
from ._files import NotRegularFile, open_regular, safe_name, write_new

#: Version of the counts files anybench writes; readers refuse others.
COUNTS_FORMAT = 1
#: The key that marks a counts file, holding its format.
FORMAT_KEY = "anybench_counts"
#: The suffix of a counts file's name: ``<stem>_counts.json``.
SUFFIX = "_counts.json"
MAX_FILE_BYTES = 200 * 2**20
#: Repeats that differ by more than this (relative range) are not deterministic.
DETERMINISTIC_SPREAD = 0.001
#: Functions kept per benchmark, by self instructions (callgrind) and by calls (the profiler).
TOP_FUNCTIONS = 40
TOP_PYTHON_FUNCTIONS = 80


class CountsError(ValueError):
    """A counts file that cannot be used; the message names it and says what is wrong."""


@dataclass(frozen=True)
class FunctionCounts:
    """One function's instructions in a benchmark's region (the first repeat's), in total."""

    name: str
    object: str
    file: str
    self_ir: int
    inclusive_ir: int
    calls: int


@dataclass(frozen=True)
class BenchmarkCounts:
    """What one benchmark (scenario at a scale on a runtime) did, in total over its region of
    *ops* operations; the ``*_per_op`` properties divide."""

    scenario: str
    runtime: str
    axis: str
    scale: int
    ops: int
    #: Instructions of the region in each repeat (a process each), the instrument's own
    #: (an empty region's) subtracted.
    instructions: tuple[int, ...]
    #: Blocks asked of CPython's allocator (``_PyObject_Malloc``/``_PyObject_Calloc``), and of
    #: libc's ``malloc``/``calloc``.
    allocations: int
    raw_allocations: int
    #: Runs of the collector (``gc_collect_main``), and by generation (from the profiled
    #: process: ``gen0``, ``gen1``, ``gen2``).
    collections: int
    collections_by_generation: dict[str, int]
    #: Waits of the event loop (``epoll_wait`` calls), and calls of libc's system-call
    #: wrappers by name.
    loop_waits: int
    syscalls: dict[str, int]
    #: Calls the profiler saw in the region: of Python functions, and of built-ins.
    python_calls: int | None
    builtin_calls: int | None
    #: The top functions by self instructions, and Python functions (and built-ins) by calls.
    functions: tuple[FunctionCounts, ...] = ()
    python_functions: dict[str, int] = field(default_factory=dict)
    operation: str = ""
    native_of: str | None = None
    #: From a traced round (files made before it have none: empty): bytecode instructions
    #: executed by Python function, ``[calls, self, inclusive]`` (the heaviest, see
    #: :mod:`anybench._bytecodes`), and self instructions by folded stack (``"outer;inner"``,
    #: the heaviest, the rest under ``"(other stacks)"``: they sum to every instruction).
    python_work: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    stacks: dict[str, int] = field(default_factory=dict)

    @property
    def bytecodes(self) -> int | None:
        """Bytecode instructions executed in the traced region, or None where not traced."""
        return sum(self.stacks.values()) if self.python_work else None

    @property
    def instructions_per_op(self) -> float:
        """The median repeat's instructions per operation."""
        ordered = sorted(self.instructions)
        middle = len(ordered) // 2
        value = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
        return value / self.ops

    @property
    def spread(self) -> float:
        """How far the repeats differ: (largest - smallest) / smallest (0 for one repeat)."""
        low, high = min(self.instructions), max(self.instructions)
        return (high - low) / low if low > 0 else (0.0 if high == low else math.inf)

    @property
    def deterministic(self) -> bool:
        """Whether its repeats agree within :data:`DETERMINISTIC_SPREAD` (and there are two)."""
        return len(self.instructions) >= 2 and self.spread <= DETERMINISTIC_SPREAD

    def per_op(self, total: int | None) -> float | None:
        return None if total is None else total / self.ops

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.scenario, self.runtime, self.scale)


@dataclass(frozen=True)
class CountsRun:
    """A counts file: what it was counted on and with, and its benchmarks."""

    created: str
    profile: str
    #: ``machine``: architecture, system, host name; ``python``: version, implementation,
    #: compiler, build (``platform.python_build()``), configure flags.
    machine: dict[str, Any]
    python: dict[str, Any]
    libraries: dict[str, str | None]
    valgrind: str
    anybench: str
    repeats: int
    #: Scales above this N are not counted (valgrind is ~50x slower than the machine).
    max_n: int | None
    benchmarks: tuple[BenchmarkCounts, ...]
    #: Benchmarks that failed, each one line.
    failed: tuple[str, ...] = ()
    #: Why the run is partial (stopped midway) and how much of it there is; None if whole.
    partial: str | None = None
    source: str = ""

    def build_identity(self) -> dict[str, Any]:
        """What must match for instructions to compare: the architecture, the Python build and
        valgrind (library versions are what an A/B compares, so they are not in it)."""
        return {
            "architecture": self.machine.get("architecture"),
            "python": {
                k: self.python.get(k)
                for k in ("version", "implementation", "compiler", "build", "config")
            },
            "valgrind": self.valgrind,
        }

    def python_differences(self, other: CountsRun) -> list[tuple[str, Any, Any]]:
        """The keys of the Python build (version, implementation, compiler, build, configure
        flags) whose values differ from *other*'s: ``(key, mine, its)``."""
        mine, its = self.build_identity()["python"], other.build_identity()["python"]
        return [(key, mine[key], its[key]) for key in mine if mine[key] != its[key]]

    def by_key(self) -> dict[tuple[str, str, int], BenchmarkCounts]:
        return {b.key: b for b in self.benchmarks}


# -- writing -------------------------------------------------------------------------------


def _benchmark_to_json(b: BenchmarkCounts) -> dict[str, Any]:
    return {
        "scenario": b.scenario,
        "runtime": b.runtime,
        "axis": b.axis,
        "scale": b.scale,
        "ops": b.ops,
        "operation": b.operation,
        "native_of": b.native_of,
        "instructions": list(b.instructions),
        "instructions_per_op": b.instructions_per_op,
        "spread": b.spread if math.isfinite(b.spread) else None,
        "deterministic": b.deterministic,
        "allocations": b.allocations,
        "raw_allocations": b.raw_allocations,
        "collections": b.collections,
        "collections_by_generation": b.collections_by_generation,
        "loop_waits": b.loop_waits,
        "syscalls": b.syscalls,
        "python_calls": b.python_calls,
        "builtin_calls": b.builtin_calls,
        "functions": [
            [f.name, f.object, f.file, f.self_ir, f.inclusive_ir, f.calls] for f in b.functions
        ],
        "python_functions": b.python_functions,
        **({"python_work": _work_to_json(b)} if b.python_work else {}),
    }


def _work_to_json(b: BenchmarkCounts) -> dict[str, Any]:
    """The traced round's figures, compactly: each function's name once, in ``names``; the
    functions as ``[name index, calls, self, inclusive]``; the stacks as ``[[name index, ...],
    self]``; the stacks left out as ``other_stacks``."""
    names: dict[str, int] = {}

    def index(name: str) -> int:
        return names.setdefault(name, len(names))

    functions = [[index(k), *v] for k, v in b.python_work.items()]
    stacks = [
        [[index(f) for f in path.split(STACK_SEPARATOR)], ops]
        for path, ops in b.stacks.items()
        if path != OTHER_STACKS
    ]
    return {
        "unit": "bytecode instructions",
        "names": list(names),
        "functions": functions,
        "stacks": stacks,
        "other_stacks": b.stacks.get(OTHER_STACKS, 0),
    }


def counts_to_json(run: CountsRun) -> dict[str, Any]:
    """*run* as the file's JSON object."""
    return {
        FORMAT_KEY: COUNTS_FORMAT,
        "created": run.created,
        "profile": run.profile,
        "machine": run.machine,
        "python": run.python,
        "libraries": run.libraries,
        "valgrind": run.valgrind,
        "anybench": run.anybench,
        "repeats": run.repeats,
        "max_n": run.max_n,
        "failed": list(run.failed),
        **({"partial": run.partial} if run.partial else {}),
        "benchmarks": [_benchmark_to_json(b) for b in run.benchmarks],
    }


def counts_file_name(run: CountsRun) -> str:
    """``<created>_<host>_<python>_anyio-<version>_counts.json``."""
    stamp = run.created.replace("-", "").replace(":", "").split("+")[0].split(".")[0]
    anyio = run.libraries.get("anyio") or "none"
    host = run.machine.get("node") or "host"
    python = f"{run.python.get('implementation', 'py').lower()}{run.python.get('version', '')}"
    return safe_name(f"{stamp}_{host}_{python}_anyio-{anyio}") + SUFFIX


def write_counts(run: CountsRun, into: Path) -> Path:
    """Save *run* under *into* with a fresh name (never over another file); return its path."""
    into.mkdir(parents=True, exist_ok=True)
    data = json.dumps(counts_to_json(run), separators=(",", ":")).encode("utf-8")
    return write_new(into, counts_file_name(run), data)


# -- reading -------------------------------------------------------------------------------


def is_counts_file(path: str | Path) -> bool:
    """Whether *path* is a counts file: named ``…_counts.json`` (or ``…_counts-2.json``), or
    starting as anybench writes one (``{"anybench_counts":``)."""
    name = Path(path).name
    if name.endswith(SUFFIX) or (name.endswith(".json") and "_counts-" in name):
        return True
    try:  # never Path.open: a FIFO would wait for a writer
        with open_regular(path) as handle:
            return handle.read(len(FORMAT_KEY) + 4).startswith(b'{"' + FORMAT_KEY.encode())
    except (OSError, NotRegularFile):
        return False


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str) -> CountsError:
        return CountsError(f"{self.source}: {where} {problem}")

    def get(self, data: Mapping[str, Any], key: str, kind: Any, where: str) -> Any:
        if key not in data:
            raise self.fail(where, f"lacks {key!r}")
        value = data[key]
        if not self.is_a(value, kind):
            raise self.fail(f"{where}.{key}", f"should be {self.name(kind)}, not {value!r:.80}")
        return value

    @staticmethod
    def is_a(value: Any, kind: Any) -> bool:
        if isinstance(kind, tuple):
            return any(_Reader.is_a(value, k) for k in kind)
        if kind is None:
            return value is None
        if kind is int:
            return isinstance(value, int) and not isinstance(value, bool) and value >= 0
        if kind is float:
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        return isinstance(value, kind)

    @staticmethod
    def name(kind: Any) -> str:
        if isinstance(kind, tuple):
            return " or ".join(_Reader.name(k) for k in kind)
        if kind is int:
            return "a whole number"
        return "null" if kind is None else kind.__name__

    def counts_map(self, data: Mapping[str, Any], key: str, where: str) -> dict[str, int]:
        value = self.get(data, key, dict, where)
        for name, count in value.items():
            if not self.is_a(count, int):
                raise self.fail(f"{where}.{key}.{name}", f"should be a whole number, not {count!r}")
        return dict(value)


def _read_benchmark(r: _Reader, data: Any, where: str) -> BenchmarkCounts:
    if not isinstance(data, dict):
        raise r.fail(where, "should be an object")
    instructions = r.get(data, "instructions", list, where)
    if not instructions or not all(r.is_a(v, int) for v in instructions):
        raise r.fail(f"{where}.instructions", "should be one or more whole numbers")
    ops = r.get(data, "ops", int, where)
    if ops < 1:
        raise r.fail(f"{where}.ops", f"should be at least 1, not {ops}")
    functions = []
    for i, row in enumerate(r.get(data, "functions", list, where)):
        ok = (
            isinstance(row, list)
            and len(row) == 6
            and all(isinstance(v, str) for v in row[:3])
            and all(r.is_a(v, int) for v in row[3:])
        )
        if not ok:
            raise r.fail(
                f"{where}.functions[{i}]", "should be [name, object, file, self, inclusive, calls]"
            )
        functions.append(FunctionCounts(*row))
    bench = BenchmarkCounts(
        scenario=r.get(data, "scenario", str, where),
        runtime=r.get(data, "runtime", str, where),
        axis=r.get(data, "axis", str, where),
        scale=r.get(data, "scale", int, where),
        ops=ops,
        instructions=tuple(instructions),
        allocations=r.get(data, "allocations", int, where),
        raw_allocations=r.get(data, "raw_allocations", int, where),
        collections=r.get(data, "collections", int, where),
        collections_by_generation=r.counts_map(data, "collections_by_generation", where),
        loop_waits=r.get(data, "loop_waits", int, where),
        syscalls=r.counts_map(data, "syscalls", where),
        python_calls=r.get(data, "python_calls", (int, None), where),
        builtin_calls=r.get(data, "builtin_calls", (int, None), where),
        functions=tuple(functions),
        python_functions=r.counts_map(data, "python_functions", where),
        operation=r.get(data, "operation", str, where),
        native_of=r.get(data, "native_of", (str, None), where),
    )
    if "python_work" in data:  # files made before the traced round have none
        raw = r.get(data, "python_work", dict, where)
        work, stacks = _read_work(r, raw, f"{where}.python_work")
        bench = dataclasses.replace(bench, python_work=work, stacks=stacks)
    # Derived figures are written for people and other tools; they must agree with the counts.
    if r.get(data, "deterministic", bool, where) != bench.deterministic:
        raise r.fail(f"{where}.deterministic", "disagrees with its repeats' spread")
    per_op = r.get(data, "instructions_per_op", float, where)
    if not math.isclose(per_op, bench.instructions_per_op, rel_tol=1e-9):
        raise r.fail(f"{where}.instructions_per_op", "disagrees with its instructions and ops")
    return bench


def _read_work(
    r: _Reader, data: Mapping[str, Any], where: str
) -> tuple[dict[str, tuple[int, int, int]], dict[str, int]]:
    names = r.get(data, "names", list, where)
    if not all(isinstance(n, str) and n and STACK_SEPARATOR not in n for n in names):
        raise r.fail(f"{where}.names", "should be function names")

    def name(i: Any, at: str) -> str:
        if not r.is_a(i, int) or i >= len(names):
            raise r.fail(at, f"should index names, not {i!r:.40}")
        return str(names[i])

    work: dict[str, tuple[int, int, int]] = {}
    for i, row in enumerate(r.get(data, "functions", list, where)):
        at = f"{where}.functions[{i}]"
        if not (isinstance(row, list) and len(row) == 4 and all(r.is_a(v, int) for v in row)):
            raise r.fail(at, "should be [name index, calls, self, inclusive]")
        work[name(row[0], at)] = (row[1], row[2], row[3])
    stacks: dict[str, int] = {}
    for i, row in enumerate(r.get(data, "stacks", list, where)):
        at = f"{where}.stacks[{i}]"
        ok = isinstance(row, list) and len(row) == 2 and isinstance(row[0], list) and row[0]
        if not ok or not r.is_a(row[1], int):
            raise r.fail(at, "should be [[name index, ...], self]")
        path = STACK_SEPARATOR.join(name(f, at) for f in row[0])
        stacks[path] = stacks.get(path, 0) + row[1]
    other = r.get(data, "other_stacks", int, where)
    if other:
        stacks[OTHER_STACKS] = other
    return work, stacks


def read_counts(path: str | Path) -> CountsRun:
    """The counts file at *path*, every field checked; :class:`CountsError` in one line."""
    path = Path(path)
    source = str(path)
    try:
        with open_regular(path) as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except NotRegularFile:
        raise CountsError(f"{source}: not a regular file; not a counts file") from None
    except OSError as exc:
        raise CountsError(f"{source}: cannot read it ({exc.strerror or exc})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise CountsError(f"{source}: larger than {MAX_FILE_BYTES // 2**20} MiB; not a counts file")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CountsError(f"{source}: not JSON ({exc})") from None
    if not isinstance(data, dict) or FORMAT_KEY not in data:
        raise CountsError(f"{source}: not an anybench counts file (no {FORMAT_KEY!r} key)")
    if data[FORMAT_KEY] != COUNTS_FORMAT:
        raise CountsError(
            f"{source}: counts format {data[FORMAT_KEY]!r}; this anybench reads format "
            f"{COUNTS_FORMAT}"
        )
    r = _Reader(source)
    libraries = r.get(data, "libraries", dict, "file")
    if not all(isinstance(v, (str, type(None))) for v in libraries.values()):
        raise r.fail("file.libraries", "should map distributions to versions")
    benchmarks = tuple(
        _read_benchmark(r, b, f"benchmarks[{i}]")
        for i, b in enumerate(r.get(data, "benchmarks", list, "file"))
    )
    failed = r.get(data, "failed", list, "file")
    if not all(isinstance(f, str) for f in failed):
        raise r.fail("file.failed", "should be a list of text")
    keys = [b.key for b in benchmarks]
    if len(set(keys)) != len(keys):
        raise r.fail("file", "holds a benchmark twice")
    partial = data.get("partial")  # files of a whole run have none
    if partial is not None and not isinstance(partial, str):
        raise r.fail("file.partial", "should be text")
    return CountsRun(
        created=r.get(data, "created", str, "file"),
        profile=r.get(data, "profile", str, "file"),
        machine=r.get(data, "machine", dict, "file"),
        python=r.get(data, "python", dict, "file"),
        libraries=dict(libraries),
        valgrind=r.get(data, "valgrind", str, "file"),
        anybench=r.get(data, "anybench", str, "file"),
        repeats=r.get(data, "repeats", int, "file"),
        max_n=r.get(data, "max_n", (int, None), "file"),
        benchmarks=benchmarks,
        failed=tuple(failed),
        partial=partial,
        source=source,
    )


def python_functions_top(functions: Mapping[str, int], count: int) -> dict[str, int]:
    """The *count* most called of *functions*, most first."""
    ranked = sorted(functions.items(), key=lambda item: (-item[1], item[0]))
    return dict(ranked[:count])
