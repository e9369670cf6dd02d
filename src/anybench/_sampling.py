"""Explaining a gap from time alone: py-spy's samples of a benchmark's region, in several
processes per side.

Where counts do not exist, or are not deterministic (``timers``: its work depends on when the
timers fall due), a gap can still be explained from time. Per side, :data:`PROCESSES` fresh
processes each run the benchmark's region over and over for a few seconds (the counts worker in
``samples`` mode: the same rounds, the same harness), under ``py-spy record``. The region is
marked for the sampler: the worker spins briefly in ``region_begins`` just before each region
and in ``region_ends`` just after it (:class:`~anybench._counts_worker.SamplingProbe`), and the
samples between a begin and the next end are the region's. A region whose end marker the
sampler missed is dropped, not guessed.

Per process, a sample stands for the region's time per operation divided among its samples:
``(elapsed_ns / ops) / samples``, so that a function's time per operation is its share of the
samples times the process's time per operation (as sampled: py-spy pauses the process for each
sample, which slows both sides alike in proportion). Every figure is then a mean over the
side's processes with a Student t interval (Welch's, for a difference), and a contributor is
named only where its difference's interval excludes zero. The named frames' share of the gap
has a bootstrap interval over processes. With a few thousand samples per side, intervals are
far wider than counts' (which have none: counts are exact); the output says so.
"""

from __future__ import annotations

import json
import math
import random
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ._attribution import merged_tree, moved_functions, renamed, responsible
from ._counts import run_counts_process
from ._counts_worker import function_key
from ._explain import (
    ENOUGH,
    align_runtimes,
    library_of,
    match_key,
    responsible_lines,
)
from ._protocol import (
    CountsJob,
    Done,
    Failed,
    Hello,
    ProtocolError,
    Sampled,
    decode_event,
)
from ._stats import _t_quantile

#: Processes per side, seconds of rounds in each, samples per second.
PROCESSES = 5
SECONDS = 2.0
RATE_HZ = 500
#: The marker functions' names (in anybench/_counts_worker.py).
BEGIN, END = "region_begins", "region_ends"
#: The frame below which a sample is the round's own work.
HARNESS_ROUND = "run_round"
#: The command that installs the sampler.
INSTALL = "pip install py-spy"
#: Seconds one sampled process may take.
PROCESS_TIMEOUT_S = 240.0

Path_ = tuple[str, ...]


class SamplingError(ValueError):
    """A usage error of the time path: one line, what was wrong and what to do."""


def find_py_spy() -> str:
    """The py-spy command: on ``PATH`` or beside this Python; :class:`SamplingError` (one line
    saying how to install it) where it is missing."""
    found = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if not found:
        raise SamplingError(f"py-spy is not installed (it samples the processes): {INSTALL}")
    return found


@dataclass(frozen=True)
class ProcessSamples:
    """One process's samples of one benchmark's region: sample counts by folded stack
    (functions named as the counts name them, lines dropped), the operations and the time of
    the regions sampled."""

    runtime: str
    stacks: dict[Path_, int]
    ops: int
    elapsed_ns: int
    regions: int
    dropped: int = 0
    #: The anyio version the process ran (from its hello), or empty.
    anyio: str = ""

    @property
    def samples(self) -> int:
        return sum(self.stacks.values())

    @property
    def ns_per_op(self) -> float:
        return self.elapsed_ns / self.ops if self.ops else 0.0

    def per_op(self) -> dict[Path_, float]:
        """Each stack's time per operation, in ns: its share of the samples times the
        process's time per operation."""
        total = self.samples
        if not total:
            return {}
        each = self.ns_per_op / total
        return {path: count * each for path, count in self.stacks.items()}


def region_stacks(
    frames: Sequence[Mapping[str, Any]],
    samples: Sequence[Sequence[int]],
    key_of: Any,
) -> tuple[dict[Path_, int], int, int]:
    """The samples between each begin marker and the next end marker, as folded stacks
    (frames below the harness's round cut, each named by *key_of(frame)*); with the regions
    seen and those dropped (a begin with no end before the next begin)."""
    names = [str(f.get("name", "")) for f in frames]
    stacks: dict[Path_, int] = {}
    pending: list[Path_] = []
    inside = False
    seen = dropped = 0
    for sample in samples:
        called = [names[i] for i in sample]
        if BEGIN in called:
            if inside and pending:
                dropped += 1
            if not inside or pending:
                seen += 1
            inside, pending = True, []
            continue
        if END in called:
            if inside:
                for path in pending:
                    stacks[path] = stacks.get(path, 0) + 1
            inside, pending = False, []
            continue
        if inside:
            cut = max((i for i, n in enumerate(called) if n == HARNESS_ROUND), default=-1)
            path = tuple(key_of(frames[i]) for i in sample[cut + 1 :])
            if path:
                pending.append(path)
    if inside and pending:
        dropped += 1
    return stacks, seen, dropped


#: Where a library's file is named from, in any environment (each side of an A/B of versions
#: has its own): below ``site-packages`` or the standard library's directory.
_LIBRARY_DIR = re.compile(r".*/(?:site-packages|dist-packages|lib/python3\.\d+)/")


def _key_maker(roots: Sequence[str]) -> Any:
    def key_of(frame: Mapping[str, Any]) -> str:
        filename = str(frame.get("file", ""))
        name = str(frame.get("name", ""))
        library = _LIBRARY_DIR.match(filename)
        if library:
            return f"{filename[library.end() :]}:{name}"
        code = SimpleNamespace(
            co_filename=filename,
            co_firstlineno=int(frame.get("line") or 0),
            co_qualname=name,
            co_name=name,
        )
        return match_key(function_key(code, list(roots)) or name)

    return key_of


def _roots(import_root: str | None) -> list[str]:
    paths = [str(Path(p).resolve()) for p in sysconfig.get_paths().values() if p]
    # The worker's Python is this one: its path (an editable install's source directory).
    paths += [str(Path(p).resolve()) for p in sys.path if p and Path(p).is_dir()]
    if import_root:
        paths.append(str(Path(import_root).resolve()))
    return sorted(set(paths), key=len, reverse=True)


def sample_process(
    module: str,
    import_root: str | None,
    runtime: str,
    n: int,
    *,
    seconds: float = SECONDS,
    rate_hz: int = RATE_HZ,
    python: str | None = None,
    py_spy: str | None = None,
) -> ProcessSamples:
    """Run one fresh process of the benchmark (*module* on *runtime* at *n*) under py-spy for
    *seconds* of rounds; its region's samples. :class:`SamplingError` (one line) if it fails."""
    py_spy = py_spy or find_py_spy()
    job = CountsJob(
        scenario_module=module,
        sys_path=(import_root,) if import_root else (),
        runtimes=(runtime,),
        scales=(n,),
        mode="samples",
        warmup_n=min(100, n),
        sample_s=seconds,
        sample_spin_s=4.0 / rate_hz,
    )
    with tempfile.TemporaryDirectory(prefix="anybench-samples-") as tmp:
        out = Path(tmp) / "samples.json"
        command = [
            py_spy, "record", "--rate", str(rate_hz), "--function", "--full-filenames",
            "--format", "speedscope", "--output", str(out), "--",
            python or sys.executable, "-m", "anybench._counts_worker",
        ]  # fmt: skip
        try:
            proc = run_counts_process(command, job, tmp, PROCESS_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SamplingError(f"cannot sample {module} on {runtime}: {exc}") from None
        sampled: Sampled | None = None
        anyio = ""
        done = False
        for line in proc.stdout.splitlines():
            if not line.strip().startswith("{"):
                continue  # py-spy's own lines
            try:
                event = decode_event(line)
            except ProtocolError:
                continue
            if isinstance(event, Hello):
                anyio = str(event.libraries.get("anyio") or "")
            elif isinstance(event, Sampled):
                sampled = event
            elif isinstance(event, Failed):
                raise SamplingError(event.error.splitlines()[0])
            elif isinstance(event, Done):
                done = True
        if sampled is None or not done or not out.exists():
            tail = (proc.stderr.strip().splitlines() or ["(nothing on standard error)"])[-1]
            raise SamplingError(
                f"sampling {module} on {runtime} failed (exit {proc.returncode}): {tail}"
            )
        data = json.loads(out.read_text())
    frames = data.get("shared", {}).get("frames", [])
    key_of = _key_maker(_roots(import_root))
    stacks: dict[Path_, int] = {}
    seen = dropped = 0
    for profile in data.get("profiles", []):
        got, s, d = region_stacks(frames, profile.get("samples", []), key_of)
        for path, count in got.items():
            stacks[path] = stacks.get(path, 0) + count
        seen, dropped = seen + s, dropped + d
    if not stacks:
        raise SamplingError(
            f"no sample of {module} on {runtime} fell in its region ({seen} regions seen); "
            "give it more time with --seconds, or a larger --scale"
        )
    return ProcessSamples(
        runtime, stacks, sampled.ops, sampled.elapsed_ns, seen, dropped, anyio=anyio
    )


# -- statistics ------------------------------------------------------------------------------


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student t interval of *values* (nan-wide with one value)."""
    k = len(values)
    mean = sum(values) / k
    if k < 2:
        return mean, -math.inf, math.inf
    var = sum((v - mean) ** 2 for v in values) / (k - 1)
    half = _t_quantile(0.5 + confidence / 2, k - 1) * math.sqrt(var / k)
    return mean, mean - half, mean + half


def difference_interval(
    a: Sequence[float], b: Sequence[float], confidence: float = 0.95
) -> tuple[float, float, float]:
    """B's mean minus A's, with Welch's t interval."""
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    if len(a) < 2 or len(b) < 2:
        return mb - ma, -math.inf, math.inf
    va = sum((v - ma) ** 2 for v in a) / (len(a) - 1) / len(a)
    vb = sum((v - mb) ** 2 for v in b) / (len(b) - 1) / len(b)
    se = math.sqrt(va + vb)
    if not se:
        return mb - ma, mb - ma, mb - ma
    df = (va + vb) ** 2 / (
        (va**2 / (len(a) - 1) if va else 0.0) + (vb**2 / (len(b) - 1) if vb else 0.0)
    )
    half = _t_quantile(0.5 + confidence / 2, df) * se
    return mb - ma, mb - ma - half, mb - ma + half


def _inclusive(stacks: Mapping[Path_, float], prefix: Path_) -> float:
    k = len(prefix)
    return sum(w for path, w in stacks.items() if path[:k] == prefix)


def _function_totals(stacks: Mapping[Path_, float]) -> dict[str, tuple[float, float]]:
    """Per function: (self, inclusive) time; inclusive counts a stack once however often the
    function recurs in it."""
    out: dict[str, tuple[float, float]] = {}
    for path, w in stacks.items():
        for name in set(path):
            s, i = out.get(name, (0.0, 0.0))
            out[name] = (s, i + w)
        s, i = out[path[-1]]
        out[path[-1]] = (s + w, i)
    return out


@dataclass(frozen=True)
class TimeExplanation:
    """One benchmark's gap from time: each side's processes' stacks per operation (aligned
    for two runtimes), the gap with its interval, the responsible frames with theirs."""

    title: str
    labels: tuple[str, str]
    scenario: str
    a: list[dict[Path_, float]]
    b: list[dict[Path_, float]]
    samples: tuple[int, int]
    dropped: int
    regions: int = 0

    @property
    def gap(self) -> tuple[float, float, float]:
        return difference_interval(
            [sum(s.values()) for s in self.a], [sum(s.values()) for s in self.b]
        )

    def mean(self, side: Sequence[dict[Path_, float]]) -> dict[Path_, float]:
        out: dict[Path_, float] = {}
        for stacks in side:
            for path, w in stacks.items():
                out[path] = out.get(path, 0.0) + w / len(side)
        return out

    def frame_interval(self, prefix: Path_) -> tuple[float, float, float]:
        return difference_interval(
            [_inclusive(s, prefix) for s in self.a], [_inclusive(s, prefix) for s in self.b]
        )

    def named_share(self, paths: Sequence[Path_], rounds: int = 2000) -> tuple[float, float, float]:
        """The named frames' share of the gap, with a bootstrap interval over processes."""

        def share(a: Sequence[dict[Path_, float]], b: Sequence[dict[Path_, float]]) -> float:
            ma, mb = self.mean(a), self.mean(b)
            gap = sum(mb.values()) - sum(ma.values())
            named = sum(_inclusive(mb, p) - _inclusive(ma, p) for p in paths)
            return named / gap if gap else math.nan

        point = share(self.a, self.b)
        rng = random.Random(0)
        values = sorted(
            v
            for _ in range(rounds)
            if not math.isnan(
                v := share(
                    [rng.choice(self.a) for _ in self.a], [rng.choice(self.b) for _ in self.b]
                )
            )
        )
        if not values:
            return point, math.nan, math.nan
        return point, values[int(0.025 * len(values))], values[int(0.975 * len(values)) - 1]

    def functions(self) -> list[tuple[str, tuple[float, float, float], tuple[float, float, float]]]:
        """Per function, the self and inclusive time differences with their intervals,
        largest self difference first."""
        fa = [_function_totals(s) for s in self.a]
        fb = [_function_totals(s) for s in self.b]
        names = dict.fromkeys(k for side in (*fa, *fb) for k in side)
        rows = []
        for name in names:
            self_d = difference_interval(
                [f.get(name, (0, 0))[0] for f in fa], [f.get(name, (0, 0))[0] for f in fb]
            )
            incl_d = difference_interval(
                [f.get(name, (0, 0))[1] for f in fa], [f.get(name, (0, 0))[1] for f in fb]
            )
            rows.append((name, self_d, incl_d))
        rows.sort(key=lambda r: (-abs(r[1][0]), r[0]))
        return rows


def beyond_noise(interval: tuple[float, float, float]) -> bool:
    """Whether a difference's interval excludes zero."""
    return not interval[1] <= 0 <= interval[2]


def explain_time(
    a: Sequence[ProcessSamples],
    b: Sequence[ProcessSamples],
    *,
    title: str,
    labels: tuple[str, str],
    scenario: str,
) -> TimeExplanation:
    """The time explanation of two sides' processes (same runtime: as they are; two runtimes:
    aligned at the scenario's frames)."""
    per_a = [p.per_op() for p in a]
    per_b = [p.per_op() for p in b]
    # The frames every sample of both sides starts with (anyio.run, below the loops) say
    # nothing: drop them, so that the outermost frames are the loops', as in the traced round.
    shared = common_prefix([path for side in (*per_a, *per_b) for path in side])
    per_a = [{path[len(shared) :]: w for path, w in x.items()} for x in per_a]
    per_b = [{path[len(shared) :]: w for path, w in x.items()} for x in per_b]
    names_a = {name for x in per_a for path in x for name in path}
    names_b = {name for x in per_b for path in x for name in path}
    moved = moved_functions(names_a, names_b)
    per_a = [renamed(x, moved) for x in per_a]
    runtime_a, runtime_b = a[0].runtime, b[0].runtime
    if runtime_a != runtime_b:
        per_a = [align_runtimes(x, {}, scenario)[0] for x in per_a]
        per_b = [align_runtimes({}, y, scenario)[1] for y in per_b]
    return TimeExplanation(
        title=title,
        labels=labels,
        scenario=scenario,
        a=per_a,
        b=per_b,
        samples=(sum(p.samples for p in a), sum(p.samples for p in b)),
        dropped=sum(p.dropped for p in (*a, *b)),
        regions=sum(p.regions - p.dropped for p in (*a, *b)),
    )


def common_prefix(paths: Sequence[Path_]) -> Path_:
    """The frames every path starts with, short of the whole of any path."""
    if not paths:
        return ()
    first = paths[0]
    size = min(len(p) for p in paths) - 1
    for i in range(max(size, 0)):
        if any(p[i] != first[i] for p in paths):
            return first[:i]
    return first[: max(size, 0)]


def _ns(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value / 1000:+,.2f} µs"
    return f"{value:+,.0f} ns"


def time_lines(ex: TimeExplanation, *, processes: tuple[int, int], top: int = 10) -> list[str]:
    """The explanation from time, as text."""
    la, lb = ex.labels
    gap, low, high = ex.gap
    ma, mb = ex.mean(ex.a), ex.mean(ex.b)
    ta, tb = sum(ma.values()), sum(mb.values())
    head = (
        f"{ex.title}: {ta:,.0f} -> {tb:,.0f} ns/op as sampled ({gap / ta if ta else 0:+.1%}; "
        f"gap {_ns(gap)} [{_ns(low)}, {_ns(high)}])"
    )
    lines = [
        head,
        f"  from time, not counts: py-spy samples of the region, {processes[0]} + {processes[1]} "
        f"processes, {ex.samples[0]:,} + {ex.samples[1]:,} samples ({la} + {lb}); figures are "
        "means over processes with 95% intervals (Student t, Welch for differences), far wider "
        "than counts'; a contributor is named only where its interval excludes 0"
        + (
            f"; {ex.dropped} of {ex.dropped + ex.regions} regions dropped (their end marker "
            "was not sampled)"
            if ex.dropped
            else ""
        ),
    ]
    if low <= 0 <= high:
        lines.append("  the gap is within noise: not significant, not explained")
        return lines
    root = merged_tree(ma, mb)
    frames = responsible(root)
    intervals = {f.path: ex.frame_interval(f.path)[1:] for f in frames}
    lines += responsible_lines(
        ma, mb, labels=ex.labels, scenario=ex.scenario, unit="ns", frames=frames,
        intervals=intervals,
        two_runtimes=ex.labels[0] != ex.labels[1],
    )  # fmt: skip
    named = [f.path for f in frames if beyond_noise(ex.frame_interval(f.path))]
    share, s_low, s_high = ex.named_share(named)
    lines.append(
        f"  named call paths' share of the gap: {share:.0%}, bootstrap interval over processes "
        f"[{s_low:.0%}, {s_high:.0%}]"
        + (": this explanation misses most of the gap" if not share >= ENOUGH else "")
    )
    rows = [r for r in ex.functions() if beyond_noise(r[1]) or beyond_noise(r[2])][:top]
    lines += [
        "",
        f"  Python functions beyond noise, time per op (self: in the function itself, C calls "
        f"included; incl: with what it calls; {la} -> {lb}):",
    ]
    for name, self_d, incl_d in rows:
        lines.append(
            f"    {_fit(name, 60):<60} {library_of(name, ex.scenario):<9} self "
            f"{_ns(self_d[0]):>10} [{_ns(self_d[1])}, {_ns(self_d[2])}]  incl {_ns(incl_d[0]):>10}"
        )
    if not rows:
        lines.append("    none: no function's difference is beyond its interval")
    return lines


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1) :]


# -- the command -----------------------------------------------------------------------------

#: The scale sampled unless one is given (or the scenario's largest, if smaller).
DEFAULT_N = 1000


def sample_main(
    paths: Sequence[str],
    *,
    sides: str | None,
    scenarios: str | None,
    scale: int | None,
    processes: int,
    seconds: float,
    top: int,
    pythons: str | None = None,
    log: Any = None,
) -> int:
    """``anybench explain --time``: sample each chosen scenario on the two runtimes of *sides*
    (or, with *pythons*, in two environments on the one runtime of *sides*: an A/B of versions)
    in *processes* fresh processes per side (interleaved), and print the explanation from
    time. 0 on success, 2 on a usage error (one line on standard error)."""
    from ._runtimes import UnknownRuntimeError, runtime_named
    from ._scenario import ScenarioError, load_scenarios

    if log is None:

        def log(message: str) -> None:
            print(f"anybench explain: {message}", file=sys.stderr)

    def usage(message: str) -> int:
        print(f"anybench explain: {message}", file=sys.stderr)
        return 2

    named = [t.strip() for t in (sides or "").split(",") if t.strip()]
    envs = [t.strip() for t in (pythons or "").split(",") if t.strip()]
    if pythons is not None:
        if len(envs) != 2 or len(named) != 1:
            return usage(
                "--pythons takes two Pythons (A,B), each with anybench installed, and --sides "
                "one runtime to sample both on"
            )
        missing = [e for e in envs if not Path(e).is_file()]
        if missing:
            return usage(f"no Python at {missing[0]}: give the path of each environment's python")
        sides_of = [(f"A ({envs[0]})", envs[0], named[0]), (f"B ({envs[1]})", envs[1], named[0])]
    elif len(named) != 2 or named[0] == named[1]:
        return usage(
            "--time needs --sides RUNTIME,RUNTIME (two runtimes to sample, as asyncio,trio), "
            "or --sides RUNTIME with --pythons A,B"
        )
    else:
        sides_of = [(name, sys.executable, name) for name in named]
    if not 2 <= processes <= 50:
        return usage(f"--processes takes 2 (an interval needs two) to 50, not {processes}")
    if not 0.1 <= seconds <= 30:
        return usage(f"--seconds takes 0.1 to 30 seconds of rounds per process, not {seconds:g}")
    wanted = [t.strip() for t in (scenarios or "").split(",") if t.strip()]
    try:
        py_spy = find_py_spy()
        for name in dict.fromkeys(named):
            reason = runtime_named(name).unavailable_reason()
            if reason:
                return usage(f"cannot sample {name}: {reason}")
        specs = [spec for _, spec in load_scenarios(paths or ["scenarios"])]
    except (SamplingError, UnknownRuntimeError, ScenarioError) as exc:
        return usage(str(exc))
    known = [spec.name for spec in specs]
    unknown = [w for w in wanted if w not in known]
    if unknown:
        return usage(
            f"no benchmark {', '.join(map(repr, unknown))} in {' '.join(paths) or 'scenarios'}; "
            f"choose from: {', '.join(known) or 'nothing'}"
        )
    chosen = [spec for spec in specs if not wanted or spec.name in wanted]
    if len(chosen) > 4:
        return usage(
            f"{len(chosen)} scenarios would take minutes each: choose a few with --scenario"
        )
    out = [f"explain from time: {sides_of[0][0]} -> {sides_of[1][0]}"]
    for spec in chosen:
        n = scale if scale is not None else min(DEFAULT_N, spec.max_n or DEFAULT_N)
        if spec.max_n is not None and n > spec.max_n:
            return usage(f"{spec.name} stops at {spec.max_n:,}; --scale {n:,} is beyond it")
        done: list[list[ProcessSamples]] = [[], []]
        try:
            for i in range(processes):
                for side, (label, python, runtime) in enumerate(sides_of):
                    log(f"{spec.name}: sampling {label}, process {i + 1} of {processes}")
                    done[side].append(
                        sample_process(
                            spec.module,
                            spec.import_root,
                            runtime,
                            n,
                            seconds=seconds,
                            python=python,
                            py_spy=py_spy,
                        )
                    )
        except SamplingError as exc:
            return usage(str(exc))
        scale_label = f"{'B' if spec.axis == 'load' else 'N'}={n:,}"
        labels = (sides_of[0][0], sides_of[1][0])
        if pythons is not None:
            versions = (done[0][0].anyio, done[1][0].anyio)
            if versions[0] and versions[1] and versions[0] != versions[1]:
                labels = (versions[0], versions[1])
            else:
                labels = ("A", "B")
            title = f"{spec.name} on {named[0]} at {scale_label}"
        else:
            title = f"{spec.name} on {named[0]} vs {named[1]} at {scale_label}"
        ex = explain_time(done[0], done[1], title=title, labels=labels, scenario=spec.name)
        out += ["", *time_lines(ex, processes=(processes, processes), top=top)]
    print("\n".join(out))
    return 0
