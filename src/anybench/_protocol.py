"""The parent-worker protocol, declared once: the job a worker receives and the events it sends.

:mod:`anybench._measure` (the parent) starts ``python -m anybench._worker`` and writes one
:class:`Job` to its standard input; the worker (:mod:`anybench._worker`) answers with one
:class:`Event` per line on its standard output, flushing each, so that the parent sees every
finished round at once and can stop the worker from outside when a round outruns its deadline.
Both sides, and the tests, speak through this module only.

Events, in order: :class:`Hello` (pid, Python, library versions); then per scale, naming the
scale and the runtime, :class:`Begin` before each round (with the deadline the parent should
enforce) and :class:`Round` after it (kind ``warmup``, ``throughput``, ``latency`` or
``memory``), then :class:`Finished` for each runtime that finished the scale, or
:class:`Failed` for one that did not; finally :class:`Done`. A worker that ends without
:class:`Done` did not finish its job. A worker that takes turns (:attr:`Job.turns`) waits for
a :data:`GO` line after each :class:`Begin`, and after its :class:`Done`, before it exits.

The codec is generic over the dataclasses' fields: a field added to a class here crosses the
boundary with no other change (a field whose wire form differs from its value, such as the
latency samples, names its encoder and decoder in its metadata). Anything that does not decode
to exactly these classes is one :class:`ProtocolError`.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import os
import platform
import sys
import types
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias, TypeVar, Union, get_args, get_origin, get_type_hints

from ._runtimes import library_versions
from ._sweep import Budget

#: What a round is for: planning (``warmup``, not a figure), the throughput figure, the latency
#: samples (stamps on), or the memory peak (tracemalloc on).
RoundKind = Literal["warmup", "throughput", "latency", "memory"]

#: The wire's key for an event's kind; no event has a field of this name.
EVENT_KEY = "event"


class ProtocolError(ValueError):
    """A job or event that is not what this module declares (malformed, or of an unknown kind)."""


# -- the job -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """How one group is measured: its :class:`~anybench._sweep.Budget`, and what is not budget
    but a bound on a round: the hard deadline of a round and the memory limit of a worker."""

    budget: Budget = field(default_factory=Budget)
    #: Seconds one round may take (set-up included) before it is failed as hung.
    deadline_s: float = 120.0
    #: A worker whose resident memory passes this is killed; a scale projected past it is
    #: refused before it is built.
    memory_limit_bytes: int | None = None


@dataclass(frozen=True)
class Calibration:
    """What a later process of a benchmark learns from the first: the passes per round of each
    runtime at this scale. A runtime not named calibrates itself from its warm-ups."""

    passes: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ScaleJob:
    """The rounds of one scale N in a worker: on which runtimes, and which rounds beside the
    throughput rounds (those the worker plans itself, from its warm-ups and the budget)."""

    n: int
    runtimes: tuple[str, ...]
    calibration: Calibration = field(default_factory=Calibration)
    #: Latency rounds per runtime in this process (0 in a later process, if only the first
    #: process of a benchmark has them).
    latency_rounds: int = 0
    #: The N of the memory round, or None for no memory round in this process.
    memory_n: int | None = None


@dataclass(frozen=True)
class Job:
    """What one worker measures: one scenario module, on some runtimes, at some scales."""

    #: The scenario's module name, importable with *sys_path* in front.
    scenario_module: str
    sys_path: tuple[str, ...]
    #: Every runtime the job's scales use, in the order a worker should import them.
    runtimes: tuple[str, ...]
    plan: Plan
    scales: tuple[ScaleJob, ...]
    #: Rounds by turns (``--pairing lockstep``): after each :class:`Begin` the worker waits for
    #: a line on its standard input (:data:`GO`) before it starts the round, and after its
    #: :class:`Done` for one more before it exits, so that the parent can let two workers run
    #: their rounds, and their exits, one at a time, taking turns.
    turns: bool = False


#: The line a worker that takes turns (:attr:`Job.turns`) waits for before each round, and
#: before its exit.
GO = "go"
#: How this anybench's workers take turns, for a parent that checks another tree's (``nox -s
#: bench_ab``): 2, a turn for each round and one for the exit. (1, until 2026-12-04, took none
#: for the exit, which then ran beside the other worker's last round.)
TURNS_VERSION = 2
#: The status a worker exits with when Ctrl-C stops it (:func:`serve`).
INTERRUPTED = 130


# -- the events ----------------------------------------------------------------------------

#: Event kind (as on the wire) -> its class.
EVENTS: dict[str, type[Any]] = {}
_KIND_OF: dict[type[Any], str] = {}

_C = TypeVar("_C")


def event(kind: str) -> Callable[[type[_C]], type[_C]]:
    """Register a frozen dataclass as the event called *kind* on the wire."""

    def register(cls: type[_C]) -> type[_C]:
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        if EVENT_KEY in names or kind in EVENTS:
            raise TypeError(f"event {kind!r} is declared twice, or has a field {EVENT_KEY!r}")
        EVENTS[kind] = cls
        _KIND_OF[cls] = kind
        return cls

    return register


def encode_samples(values: Sequence[int]) -> str:
    """Latency samples as base64 of signed 64-bit integers: compact, exact, fast to decode."""
    return base64.b64encode(array("q", values).tobytes()).decode("ascii")


def decode_samples(text: str) -> array[int]:
    """The samples :func:`encode_samples` wrote."""
    values = array("q")
    try:
        raw = base64.b64decode(text, validate=True)
        values.frombytes(raw)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ProtocolError(f"latency samples are not base64 of 64-bit integers ({exc})") from None
    return values


def _encode_series(series: Mapping[str, Sequence[int]]) -> dict[str, str]:
    return {name: encode_samples(values) for name, values in series.items()}


def _decode_series(value: Any) -> dict[str, array[int]]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ProtocolError("samples should map series names to encoded samples")
    return {name: decode_samples(text) for name, text in value.items()}


#: The metadata of a field whose wire form is encoded samples per series.
_SAMPLES = {"encode": _encode_series, "decode": _decode_series}


@event("hello")
@dataclass(frozen=True)
class Hello:
    """The worker has imported the scenario and its runtimes, and is about to measure."""

    #: The scenario's NAME.
    name: str
    pid: int
    python: str
    implementation: str
    #: Distribution -> version, of the libraries that make a figure (see ``library_versions``).
    libraries: dict[str, Any]

    @classmethod
    def here(cls, name: str) -> Hello:
        """The hello of this process, measuring the scenario *name*."""
        return cls(
            name=name,
            pid=os.getpid(),
            python=platform.python_version(),
            implementation=platform.python_implementation(),
            libraries=library_versions(),
        )


@event("begin")
@dataclass(frozen=True)
class Begin:
    """A round is starting: the parent kills the worker if it outruns *deadline_s* (plus a
    margin)."""

    n: int
    runtime: str
    kind: RoundKind
    deadline_s: float


@event("round")
@dataclass(frozen=True)
class Round:
    """A round finished: what it measured. *n* names the benchmark's scale; the round itself
    ran at *n_round* (smaller for a warm-up or a capped memory round)."""

    n: int
    runtime: str
    kind: RoundKind
    n_round: int
    #: Operations over all its passes, and their regions' elapsed ns.
    ops: int
    elapsed_ns: int
    passes: int
    #: In a latency round: series -> samples (ns).
    samples: Mapping[str, Sequence[int]] = field(default_factory=dict, metadata=_SAMPLES)
    #: In a memory round: the peak bytes the scenario allocated.
    peak_bytes: int | None = None


@dataclass(frozen=True)
class Busy:
    """How busy the machine was while a worker ran the throughput rounds of one scale (all its
    runtimes' rounds together), as the worker measured it (see :mod:`anybench._busy`)."""

    #: Wall time over the rounds, and the CPU time the worker process got in it. Under
    #: ``--pairing lockstep`` (from 2026-12-05) the wall time leaves out the time the worker
    #: waited, blocked, for its turns: it is its own turns' time.
    wall_ns: int
    cpu_ns: int
    #: Time the worker waited on a run queue, ready to run (``/proc/self/schedstat``).
    runqueue_ns: int | None = None
    #: Share of all CPU time stolen by the hypervisor (``/proc/stat``), over the rounds.
    steal_share: float | None = None
    #: Share of the time over the rounds (turns waited for included) in which some task waited
    #: for a CPU (``/proc/pressure/cpu``): the machine's, not the worker's.
    pressure_share: float | None = None


@event("finished")
@dataclass(frozen=True)
class Finished:
    """*runtime* has finished every round of scale *n* in this worker; *busy*, how busy the
    machine was over its throughput rounds (None from a worker that did not measure it)."""

    n: int
    runtime: str
    busy: Busy | None = None
    #: The compiled modules this worker had loaded from a fresh copy of their file by then
    #: (see :mod:`anybench._fresh`; None from a worker that makes none, on Windows, or says
    #: nothing of them, before 2026-12-05), and those it loaded from their own file, with why.
    copied: tuple[str, ...] | None = None
    own_file: dict[str, str] = field(default_factory=dict)
    #: The bytes it held to shift its heap (:func:`anybench._fresh.shift_heap`); None from a
    #: worker that did not shift it (before 2026-12-05).
    heap_shift_bytes: int | None = None


@event("failed")
@dataclass(frozen=True)
class Failed:
    """*runtime* failed at scale *n*: *error* says why (its first line names the benchmark)."""

    n: int
    runtime: str
    error: str


@event("done")
@dataclass(frozen=True)
class Done:
    """The worker has finished its job."""


# -- the counts worker's job and events (anybench._counts_worker) ----------------------------

#: What a counts worker counts: instructions under callgrind, or Python calls with a profiler
#: (never both in one process: a profiler's hook would be counted as the scenario's work); or,
#: ``samples``, nothing: it runs each benchmark's region over and over for *sample_s* seconds,
#: for a sampling profiler outside it (:mod:`anybench._sampling`).
CountsMode = Literal["instructions", "calls", "samples"]


@dataclass(frozen=True)
class CountsJob:
    """What one counts worker counts: one scenario, on some runtimes, at some scales, each
    benchmark once (a repeat is another process), after one uncounted warm-up round per
    runtime at *warmup_n*."""

    scenario_module: str
    sys_path: tuple[str, ...]
    runtimes: tuple[str, ...]
    scales: tuple[int, ...]
    mode: CountsMode
    warmup_n: int
    deadline_s: float = 600.0
    #: In ``samples`` mode: seconds of rounds per benchmark, and how long each region's
    #: markers spin (a few of the sampler's periods).
    sample_s: float = 0.0
    sample_spin_s: float = 0.01


@event("region")
@dataclass(frozen=True)
class Region:
    """A counted region finished under callgrind: its dump is the one named *dump*. A region
    with no runtime ("") is the instrument's own, empty region."""

    n: int
    runtime: str
    ops: int
    dump: str


@event("calls")
@dataclass(frozen=True)
class Calls:
    """What a profiled region called: by function, the calls (Python and built-in), and the
    collector's runs by generation."""

    n: int
    runtime: str
    ops: int
    functions: dict[str, int]
    collections: dict[str, int]
    #: From a second, traced round: bytecode instructions by function ``[calls, self,
    #: inclusive]`` and self instructions by folded stack (:mod:`anybench._bytecodes`).
    work: dict[str, tuple[int, ...]] = field(default_factory=dict)
    stacks: dict[str, int] = field(default_factory=dict)


@event("sampled")
@dataclass(frozen=True)
class Sampled:
    """A benchmark's rounds for a sampling profiler are done: *regions* regions, *ops*
    operations in them, *elapsed_ns* their time (as sampled, so slowed by the sampler)."""

    n: int
    runtime: str
    ops: int
    regions: int
    elapsed_ns: int


#: Any event a worker sends.
Event: TypeAlias = Hello | Begin | Round | Finished | Failed | Done | Region | Calls | Sampled
#: How a worker sends an event (see :func:`serve`).
Emit: TypeAlias = Callable[[Event], None]


# -- the codec -----------------------------------------------------------------------------


def encode_job(job: Job) -> str:
    """*job* as one line of JSON. ``turns`` goes on the wire only when set: a worker of an
    anybench from before it (the base of ``nox -s bench_ab``) refuses a field it does not know,
    and takes every other job as it did."""
    wire = _to_wire(job)
    if not job.turns:
        del wire["turns"]
    return json.dumps(wire)


def decode_job(text: str) -> Job:
    """The :class:`Job` in *text*; :class:`ProtocolError` if it is not one."""
    return _decode_dataclass(Job, _parse(text, "job"), "job")


def encode_counts_job(job: CountsJob) -> str:
    """*job* as one line of JSON."""
    return json.dumps(_to_wire(job))


def decode_counts_job(text: str) -> CountsJob:
    """The :class:`CountsJob` in *text*; :class:`ProtocolError` if it is not one."""
    return _decode_dataclass(CountsJob, _parse(text, "job"), "job")


def encode_event(message: Event) -> str:
    """*message* as one line of JSON (no newline), its kind under :data:`EVENT_KEY`."""
    try:
        kind = _KIND_OF[type(message)]
    except KeyError:
        raise TypeError(f"{type(message).__name__} is not a declared event") from None
    return json.dumps({EVENT_KEY: kind, **_to_wire(message)})


def decode_event(line: str) -> Event:
    """The event in one line from a worker; :class:`ProtocolError` (one line, quoting the start
    of what was read) if it is malformed or of an unknown kind."""
    data = _parse(line, "event")
    if not isinstance(data, dict) or not isinstance(data.get(EVENT_KEY), str):
        raise ProtocolError(f"malformed worker event (no {EVENT_KEY!r} kind): {line[:200]!r}")
    fields = dict(data)
    kind = fields.pop(EVENT_KEY)
    cls = EVENTS.get(kind)
    if cls is None:
        raise ProtocolError(
            f"unknown worker event {kind!r}; known: {', '.join(EVENTS)}: {line[:200]!r}"
        )
    try:
        decoded: Event = _decode(cls, fields, kind)
    except ProtocolError as exc:
        raise ProtocolError(f"malformed worker event: {exc}: {line[:200]!r}") from None
    return decoded


def _parse(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ProtocolError(f"malformed worker {what}: not JSON ({exc}): {text[:200]!r}") from None


def _to_wire(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            out[f.name] = f.metadata["encode"](item) if "encode" in f.metadata else _to_wire(item)
        return out
    if isinstance(value, (list, tuple)):
        return [_to_wire(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _to_wire(item) for key, item in value.items()}
    return value


#: Each class's resolved annotations, by class.
_HINTS: dict[type[Any], dict[str, Any]] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = get_type_hints(cls)
    return _HINTS[cls]


def _decode(tp: Any, value: Any, where: str) -> Any:
    """*value* from the wire as type *tp* (the annotations used in this module)."""
    if dataclasses.is_dataclass(tp):
        return _decode_dataclass(tp, value, where)  # type: ignore[arg-type]
    origin = get_origin(tp)
    args = get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        [kind] = [arg for arg in args if arg is not type(None)]
        return _decode(kind, value, where)
    if origin is Literal:
        if value not in args:
            raise ProtocolError(f"{where} is {value!r}, not one of {', '.join(map(repr, args))}")
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise ProtocolError(f"{where} should be a list, not {type(value).__name__}")
        return tuple(_decode(args[0], item, f"{where}[{i}]") for i, item in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
            raise ProtocolError(f"{where} should be an object, not {type(value).__name__}")
        return {key: _decode(args[1], item, f"{where}.{key}") for key, item in value.items()}
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    # bool is an int to isinstance, never to the protocol.
    if tp in (int, str, bool) and type(value) is tp:
        return value
    raise ProtocolError(f"{where} should be {getattr(tp, '__name__', tp)}, not {value!r}")


def _decode_dataclass(cls: type[_C], value: Any, where: str) -> _C:
    if not isinstance(value, dict):
        raise ProtocolError(f"{where} should be an object, not {type(value).__name__}")
    hints = _hints(cls)
    declared = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(value) - set(declared)
    if unknown:
        raise ProtocolError(f"{where} has unknown fields {sorted(unknown)}")
    kwargs = {}
    for name, f in declared.items():
        if name not in value:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ProtocolError(f"{where} lacks its field {name!r}")
            continue
        if "decode" in f.metadata:
            kwargs[name] = f.metadata["decode"](value[name])
        else:
            kwargs[name] = _decode(hints[name], value[name], f"{where}.{name}")
    return cls(**kwargs)


_Job = TypeVar("_Job")


def serve(decode: Callable[[str], _Job], work: Callable[[_Job, Emit], None]) -> None:
    """A worker's side of the boundary: its job from standard input, decoded by *decode*, and
    *work* sending each event as one line on the original standard output, flushed at once.
    That output is the protocol's alone: whatever the scenario prints goes to standard error.
    Ctrl-C ends the worker with status 130, which the parent takes for an interrupted run."""
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def emit(message: Event) -> None:
        channel.write(encode_event(message) + "\n")
        channel.flush()

    # One line: the job. A worker that takes turns reads its GO lines after it.
    job = decode(sys.stdin.readline())
    try:
        work(job, emit)
    except KeyboardInterrupt:
        sys.exit(INTERRUPTED)
