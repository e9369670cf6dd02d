"""Counting the work per operation: the parent of the counts workers.

Per scenario and runtime, :func:`count_scenarios` runs *repeats* processes of ``python -m
anybench._counts_worker`` under ``valgrind --tool=callgrind --instr-atstart=no`` (each counts
every scale, a callgrind dump per region), and per scenario one more process without valgrind
that counts Python calls with a profiler, every runtime in it. They run on every core at once:
counts need no quiet machine. Every process gets ``PYTHONHASHSEED=0`` and runs with address
randomisation off (``setarch -R``), so that two processes do the same work.

Instructions are counted with client requests around exactly the region the scenario's
``probe.start()`` … ``probe.stop()`` brackets, not as a difference between two N: the
interpreter's start-up and the scenario's set-up are never counted, a region is counted once,
and the instrument's own instructions inside the region (the tail of one client request and
the head of the next, about 11,000) are measured by an empty region in the same process and
subtracted.

valgrind runs the interpreter about 50 to 100 times slower than the machine: scales above
:data:`COUNTS_MAX_N` are left out unless asked for (instructions per operation at N=1,000
differ from N=10,000 by what grows with N: a heap's depth, a collector's passes over more live
objects; see README).
"""

from __future__ import annotations

import contextlib
import datetime
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from ._callgrind import (
    ALLOCATORS,
    COLLECTORS,
    LOOP_WAIT,
    RAW_ALLOCATORS,
    CallgrindError,
    Dump,
    read_dumps,
)
from ._counts_results import (
    TOP_FUNCTIONS,
    TOP_PYTHON_FUNCTIONS,
    BenchmarkCounts,
    CountsRun,
    FunctionCounts,
    python_functions_top,
)
from ._protocol import (
    INTERRUPTED,
    Calls,
    CountsJob,
    CountsMode,
    Done,
    Failed,
    Hello,
    ProtocolError,
    Region,
    decode_event,
    encode_counts_job,
)
from ._runtimes import Runtime
from ._scenario import ScenarioSpec
from ._signals import stopping
from ._sweep import axis_named, scale_text, scales
from ._valgrind import find_valgrind, valgrind_version

#: The largest N counted by default (valgrind's slowness; see the module docstring).
COUNTS_MAX_N = 1_000
#: Processes under valgrind per scenario: their agreement is each benchmark's spread.
REPEATS = 2
#: The uncounted warm-up round per runtime runs at this N (or the largest counted, if smaller).
WARMUP_N = 100
#: Seconds one counts process may take, besides its operations' allowance (below).
PROCESS_TIMEOUT_S = 3600.0
#: About how long valgrind takes an operation here: a region of ``spawn`` on asyncio at
#: N = 10,000 (1.4 billion instructions) took 16 s on 2026-12-03, 1.6 ms an operation; the
#: heaviest operations on the N axis (``mixed`` on trio) do four times its instructions. For
#: the estimate said before a count of large N.
VALGRIND_S_PER_OP = 0.002
#: What a region's deadline, and a process's time, allow per operation on top of their fixed
#: time: ten times the above, so that a large N is never cut short by its size, only a hang.
DEADLINE_S_PER_OP = 10 * VALGRIND_S_PER_OP


@dataclass
class _Piece:
    """What one process counted of one benchmark."""

    ops: int
    instructions: int | None = None
    dump: Dump | None = None
    calls: Calls | None = None


@dataclass
class _Outcome:
    """What one counts process returned."""

    scenario: str
    mode: CountsMode
    repeat: int
    runtimes: tuple[str, ...]
    pieces: dict[tuple[str, int], _Piece] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    hello: Hello | None = None
    #: The process said it was done and exited cleanly (a failed benchmark in it or not).
    finished: bool = False
    #: The run's stop cut it short (see :func:`_cut_short`): no failure of its benchmarks.
    stopped: bool = False


def _anybench_version() -> str:
    try:
        return importlib.metadata.version("anybench")
    except importlib.metadata.PackageNotFoundError:
        return ""


def installed_distributions() -> dict[str, str | None]:
    """Every distribution installed in this environment, by name, sorted."""
    found: dict[str, str | None] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found.setdefault(str(name), dist.version)
    return dict(sorted(found.items(), key=lambda item: item[0].lower()))


def python_build() -> dict[str, object]:
    """The running Python's build: what instruction counts depend on beside the libraries."""
    return {
        "version": platform.python_version(),
        "implementation": platform.python_implementation(),
        "compiler": platform.python_compiler(),
        "build": list(platform.python_build()),
        "config": sysconfig.get_config_var("CONFIG_ARGS") or "",
        "cflags": sysconfig.get_config_var("PY_CFLAGS") or "",
        "executable": sys.executable,
    }


def machine_identity() -> dict[str, object]:
    return {
        "architecture": platform.machine(),
        "system": platform.system(),
        "release": platform.release(),
        "node": platform.node(),
        "cpus": os.cpu_count(),
    }


def _no_aslr() -> list[str]:
    """The command prefix that turns address randomisation off (``setarch ARCH -R``), or
    nothing where setarch is missing (counts then may differ in a few instructions)."""
    setarch = shutil.which("setarch")
    return [setarch, platform.machine(), "-R"] if setarch else []


#: The only variables a counts process inherits (with anybench's own, ``ANYBENCH_*``, such as
#: the runtime modules to register); the rest of its environment is fixed.
KEPT_VARIABLES = ("PYTHONPATH", "VALGRIND_LIB")


def _environment(pycache: str | None = None) -> dict[str, str]:
    """A counts process's environment: the same in every run. What a shell or a session adds
    (a longer ``PATH``, ``OLDPWD``, nox's variables) moves the interpreter's heap by its bytes,
    and with it the addresses that objects hashed by identity land on: sets and dicts then
    probe differently, and two runs of the same code differed by up to 0.4% at N=10 (the
    processes of one run, sharing one environment, agreed to the instruction). Nor does it
    inherit ``PYTHONDEVMODE`` or ``PYTHONMALLOC`` (a debug allocator would be counted as the
    scenario's work)."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name in KEPT_VARIABLES or name.startswith("ANYBENCH_")
    }
    env.update(PATH=os.defpath, PYTHONHASHSEED="0", LC_ALL="C.UTF-8")
    if pycache:
        env["PYTHONPYCACHEPREFIX"] = pycache
    return env


#: Where a run's own directory is made: one fixed place, whatever TMPDIR says.
FIXED_TMP = "/tmp" if os.path.isdir("/tmp") else None

#: What a counts run asks the interpreter it counts with about its installation.
_ABOUT = (
    "import json, sys, sysconfig\n"
    "print(json.dumps([sys.prefix, sys.base_prefix, sysconfig.get_path('purelib'),"
    " sysconfig.get_path('platlib')]))\n"
)
#: The lines of a virtual environment's pyvenv.cfg that say how to run it (the others name
#: paths: where it was made from and by what command).
_VENV_KEYS = ("home", "include-system-site-packages", "version")


@dataclass(frozen=True)
class Seen:
    """How the processes of one counts run see the interpreter and the scenarios: through a
    directory of the same length in every run (``/tmp/anybench-counts-XXXXXXXX``), never
    where the checkout and the virtual environment lie. A path is a string on a counted
    process's heap (``sys.prefix``, ``sys.path``, every module's ``__file__`` and its code's
    file name, the lines of ``pyvenv.cfg``), and its length moves every later allocation: the
    same commit cloned to ``/work/cfresh`` and ``/work/cfresh-with-a-longer-path`` counted up
    to 0.9% apart at N = 10."""

    python: str
    #: Each import root, as the processes see it.
    roots: dict[str, str]
    #: Bytecode is cached here (PYTHONPYCACHEPREFIX), compiled from the paths seen.
    pycache: str | None = None


def _venv_seen(run_dir: str, python: str) -> str:
    """*python*, if it runs in a virtual environment, as a like one in *run_dir*/p sees it:
    its base interpreter, its site-packages linked in, and a pyvenv.cfg of the lines that say
    how to run it. Anything else, or anything that fails here, is run as it is."""
    try:
        about = subprocess.run(
            [python, "-c", _ABOUT],
            capture_output=True,
            text=True,
            env=_environment(),
            timeout=PROCESS_TIMEOUT_S,
            check=True,
        )
        prefix, base_prefix, *libs = json.loads(about.stdout)
        if prefix == base_prefix:  # not a virtual environment: its paths are the build's
            return python
        config = (Path(prefix) / "pyvenv.cfg").read_text(encoding="utf-8")
        kept = [
            line
            for line in config.splitlines()
            if line.partition("=")[0].strip().lower() in _VENV_KEYS
        ]
        home = Path(run_dir) / "p"
        (home / "bin").mkdir(parents=True)
        (home / "pyvenv.cfg").write_text("\n".join(kept) + "\n", encoding="utf-8")
        for lib in dict.fromkeys(libs):
            link = home / os.path.relpath(lib, prefix)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(lib, target_is_directory=True)
        seen = home / "bin" / "python"
        seen.symlink_to(os.path.realpath(python))
    except (OSError, subprocess.SubprocessError, ValueError):
        return python
    return str(seen)


@contextlib.contextmanager
def seen_paths(python: str, roots: Iterable[str]) -> Iterator[Seen]:
    """The :class:`Seen` paths of one counts run, for as long as the run lasts."""
    with tempfile.TemporaryDirectory(prefix="anybench-counts-", dir=FIXED_TMP) as run_dir:
        links = {}
        try:
            for i, root in enumerate(sorted(set(roots))):
                links[root] = os.path.join(run_dir, f"r{i}")
                os.symlink(root, links[root], target_is_directory=True)
        except OSError:
            links = {root: root for root in roots}
        yield Seen(_venv_seen(run_dir, python), links, os.path.join(run_dir, "c"))


class Children:
    """The counts processes a run has running, so that a run stopped midway stops them: a
    Ctrl-C at the terminal reaches them too, but ``kill`` of this process alone does not, and
    each may have an hour to go."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[str]] = set()
        self.stopped = False

    def add(self, proc: subprocess.Popen[str]) -> None:
        with self._lock:
            self._running.add(proc)
            if self.stopped:  # started as the run stopped
                proc.kill()

    def discard(self, proc: subprocess.Popen[str]) -> None:
        with self._lock:
            self._running.discard(proc)

    def stop(self) -> None:
        """Stop every process running now and any started from now on."""
        with self._lock:
            self.stopped = True
            for proc in self._running:
                proc.kill()


def run_counts_process(
    command: Sequence[str],
    job: CountsJob,
    cwd: str,
    timeout: float = PROCESS_TIMEOUT_S,
    pycache: str | None = None,
    children: Children | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a counts worker's *command* with *job* on its standard input, in the fixed
    environment (:func:`_environment`) and in *cwd*, an empty directory: what the caller's
    working directory holds is no part of the count. *children* holds it while it runs."""
    with subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_environment(pycache),
        cwd=cwd,
    ) as proc:
        if children is not None:
            children.add(proc)
        try:
            stdout, stderr = proc.communicate(encode_counts_job(job), timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        except BaseException:  # Ctrl-C in this thread (explain's sampling): as subprocess.run
            proc.kill()
            proc.wait()  # killed: at once
            raise
        finally:
            if children is not None:
                children.discard(proc)
    return subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)


def _run_process(
    spec: ScenarioSpec,
    runtimes: Sequence[str],
    scale_values: Sequence[int],
    mode: CountsMode,
    repeat: int,
    valgrind: str | None,
    seen: Seen,
    children: Children | None = None,
) -> _Outcome:
    outcome = _Outcome(spec.name, mode, repeat, tuple(runtimes))
    job = CountsJob(
        scenario_module=spec.module,
        sys_path=(seen.roots[spec.import_root],) if spec.import_root else (),
        runtimes=tuple(runtimes),
        scales=tuple(scale_values),
        mode=mode,
        warmup_n=min(WARMUP_N, max(scale_values)),
        deadline_s=CountsJob.deadline_s + max(scale_values) * DEADLINE_S_PER_OP,
    )
    timeout = PROCESS_TIMEOUT_S + sum(scale_values) * len(runtimes) * DEADLINE_S_PER_OP
    with tempfile.TemporaryDirectory(prefix="anybench-counts-", dir=FIXED_TMP) as tmp:
        command = [seen.python, "-m", "anybench._counts_worker"]
        if mode == "instructions":
            assert valgrind is not None
            command = [
                *_no_aslr(),
                valgrind,
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={tmp}/callgrind.out",
                f"--log-file={tmp}/valgrind.log",
                *command,
            ]
        try:
            proc = run_counts_process(
                command, job, tmp, timeout, pycache=seen.pycache, children=children
            )
        except subprocess.TimeoutExpired:
            outcome.failed.append(
                f"{spec.name}: its {mode} process ran past {timeout:g} s; stopped"
            )
            return outcome
        except OSError as exc:
            outcome.failed.append(f"{spec.name}: cannot start its {mode} process ({exc})")
            return outcome
        regions: list[Region] = []
        done = False
        for line in proc.stdout.splitlines():
            if not line.strip():
                continue
            try:
                event = decode_event(line)
            except ProtocolError as exc:
                outcome.failed.append(f"{spec.name}: {exc}")
                continue
            if isinstance(event, Hello):
                outcome.hello = event
            elif isinstance(event, Region):
                regions.append(event)
            elif isinstance(event, Calls):
                outcome.pieces[event.runtime, event.n] = _Piece(ops=event.ops, calls=event)
            elif isinstance(event, Failed):
                outcome.failed.append(event.error.splitlines()[0])
            elif isinstance(event, Done):
                done = True
        outcome.finished = done and proc.returncode == 0
        outcome.stopped = not outcome.finished and _cut_short(proc.returncode, children)
        if not done:
            tail = (proc.stderr.strip().splitlines() or ["(nothing on standard error)"])[-1]
            outcome.failed.append(
                f"{spec.name}: its {mode} process exited with code {proc.returncode} before "
                f"it finished: {tail}"
            )
        if mode == "instructions" and regions:
            _read_regions(spec, regions, Path(tmp), outcome)
    return outcome


def _cut_short(returncode: int, children: Children | None) -> bool:
    """Whether a process that did not finish ended as a stop ends it: a Ctrl-C at the terminal
    (which reaches it too), SIGTERM to the process group, or killed by *children* stopping."""
    if returncode in (INTERRUPTED, -signal.SIGINT, -signal.SIGTERM):
        return True
    return returncode == -signal.SIGKILL and children is not None and children.stopped


def _read_regions(spec: ScenarioSpec, regions: list[Region], tmp: Path, outcome: _Outcome) -> None:
    try:
        dumps = {d.name: d for d in read_dumps(sorted(tmp.glob("callgrind.out.*")))}
    except CallgrindError as exc:
        outcome.failed.append(f"{spec.name}: {exc}")
        return
    empty = [dumps[r.dump].total_ir for r in regions if not r.runtime and r.dump in dumps]
    # The second empty region: the first can include a first call's one-off work.
    overhead = empty[-1] if empty else 0
    for region in regions:
        dump = dumps.get(region.dump)
        if not region.runtime:
            continue
        if dump is None:
            outcome.failed.append(f"{spec.name}: callgrind wrote no dump for {region.dump}")
            continue
        outcome.pieces[region.runtime, region.n] = _Piece(
            ops=region.ops, instructions=max(dump.total_ir - overhead, 0), dump=dump
        )


def _benchmark(
    spec: ScenarioSpec,
    runtime: str,
    n: int,
    repeats: list[_Piece],
    calls: _Piece | None,
) -> BenchmarkCounts:
    first = repeats[0]
    dump = first.dump
    assert dump is not None
    profiled = calls.calls if calls is not None else None
    python_calls = builtin_calls = None
    python_functions: dict[str, int] = {}
    by_generation: dict[str, int] = {}
    python_work: dict[str, tuple[int, int, int]] = {}
    if profiled is not None:
        python_calls = sum(c for k, c in profiled.functions.items() if not k.startswith("<"))
        builtin_calls = sum(c for k, c in profiled.functions.items() if k.startswith("<"))
        python_functions = python_functions_top(profiled.functions, TOP_PYTHON_FUNCTIONS)
        by_generation = dict(sorted(profiled.collections.items()))
        python_work = {k: (v[0], v[1], v[2]) for k, v in profiled.work.items() if len(v) == 3}
    syscalls = dump.syscalls()
    return BenchmarkCounts(
        scenario=spec.name,
        runtime=runtime,
        axis=spec.axis,
        scale=n,
        ops=first.ops,
        instructions=tuple(p.instructions or 0 for p in repeats),
        allocations=dump.calls_to(ALLOCATORS),
        raw_allocations=sum(
            f.calls
            for f in dump.functions.values()
            if f.name in RAW_ALLOCATORS and f.object.startswith("libc")
        ),
        collections=dump.calls_to(COLLECTORS),
        collections_by_generation=by_generation,
        loop_waits=syscalls.get(LOOP_WAIT, 0),
        syscalls=syscalls,
        python_calls=python_calls,
        builtin_calls=builtin_calls,
        functions=tuple(
            FunctionCounts(f.name, f.object, f.file, f.self_ir, f.inclusive_ir, f.calls)
            for f in dump.top(TOP_FUNCTIONS)
        ),
        python_functions=python_functions,
        python_work=python_work,
        stacks=dict(profiled.stacks) if profiled is not None and python_work else {},
        operation=spec.operation,
        native_of=spec.native_of,
    )


def counted_scales(spec: ScenarioSpec, profile: str, max_n: int | None) -> tuple[int, ...]:
    """The scales of *spec* a counts run of *profile* counts: the profile's, below the
    scenario's MAX_N, and on the N axis below *max_n*."""
    values = scales(profile, spec.max_n, spec.axis)
    if max_n is not None and axis_named(spec.axis).counts_operations:
        values = tuple(v for v in values if v <= max_n)
    return values


#: Imports what a counts worker imports, so that every module's bytecode is cached before the
#: first count (argv: the import roots, then the scenarios' modules).
_IMPORT_AHEAD = (
    "import importlib, sys\n"
    "roots, modules = sys.argv[1:sys.argv.index('--')], sys.argv[sys.argv.index('--') + 1:]\n"
    "sys.path[:0] = roots\n"
    "import anybench._counts_worker\n"
    "for name in modules:\n"
    "    try:\n"
    "        importlib.import_module(name)\n"
    "    except Exception:\n"
    "        pass\n"
)


def _cache_bytecode(seen: Seen, specs: Sequence[ScenarioSpec], runtimes: Sequence[Runtime]) -> None:
    """Import the workers' modules once beforehand, as the workers see them: a process that
    compiles a module (its source newer than its cached bytecode, or never compiled) allocates
    otherwise than one that loads the cache, and its counts differed from the next process's by
    up to 0.2% here. The runtimes' own modules too; what a scenario's run imports besides, the
    run's calls processes (every runtime in each) import before any count. A failure is left to
    the workers, which report it by benchmark."""
    roots = sorted({seen.roots[spec.import_root] for spec in specs if spec.import_root})
    modules = [
        *(module for rt in runtimes for module in rt.requires),
        *dict.fromkeys(f"anyio._backends._{rt.backend}" for rt in runtimes),
        *(spec.module for spec in specs if spec.module),
    ]
    with (
        tempfile.TemporaryDirectory(prefix="anybench-counts-", dir=FIXED_TMP) as tmp,
        contextlib.suppress(OSError, subprocess.SubprocessError),
    ):
        subprocess.run(
            [seen.python, "-c", _IMPORT_AHEAD, *roots, "--", *modules],
            capture_output=True,
            env=_environment(seen.pycache),
            cwd=tmp,
            timeout=PROCESS_TIMEOUT_S,
        )


#: One counts process to run: a scenario, its scales, the mode, the repeat, the runtimes.
_Task = tuple[ScenarioSpec, tuple[int, ...], CountsMode, int, tuple[str, ...]]


def count_scenarios(
    specs: Sequence[ScenarioSpec],
    runtimes: Sequence[Runtime],
    profile: str,
    *,
    max_n: int | None = COUNTS_MAX_N,
    repeats: int = REPEATS,
    jobs: int | None = None,
    python: str | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> CountsRun:
    """Count every benchmark of *specs* on *runtimes* at *profile*'s scales (N capped at
    *max_n*), *repeats* processes under valgrind and one profiled process per scenario, *jobs*
    processes at a time (every core by default). Raises
    :class:`~anybench._valgrind.ValgrindMissing` (one line) where valgrind is missing."""
    valgrind = find_valgrind()
    python = python or sys.executable
    created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    names = [rt.name for rt in runtimes]
    # Instructions: a process per runtime (and repeat), so that a runtime's counts do not depend
    # on which others were chosen: runtimes sharing a process share its allocator's pools and
    # the interpreter's type caches, and one runtime's history moved another's counts by up to
    # 0.4% here. Python calls: one process per scenario, every runtime in it.
    # The calls processes first: each imports all a scenario's run imports, on every runtime,
    # so that no counted process is the first to compile a module.
    planned = [(spec, counted_scales(spec, profile, max_n)) for spec in specs]
    planned = [(spec, values) for spec, values in planned if values]
    call_jobs: list[_Task] = [(spec, values, "calls", 0, tuple(names)) for spec, values in planned]
    count_jobs: list[_Task] = [
        (spec, values, "instructions", repeat, (name,))
        for spec, values in planned
        for repeat in range(repeats)
        for name in names
    ]

    children = Children()

    def one(task: _Task) -> _Outcome:
        spec, values, mode, repeat, chosen = task
        try:
            outcome = _run_process(spec, chosen, values, mode, repeat, valgrind, seen, children)
        except Exception as exc:  # a bug of ours in one process's reading sinks no other
            outcome = _Outcome(spec.name, mode, repeat, tuple(chosen))
            outcome.failed.append(
                f"{spec.name}: anybench failed reading its {mode} process "
                f"({type(exc).__name__}: {exc})"
            )
            # What the stop killed midway may read as garbage: not a bug of ours to report.
            outcome.stopped = children.stopped
        if not (outcome.stopped and children.stopped):
            where = f"{chosen[0]}, repeat {repeat + 1}" if mode == "instructions" else "calls"
            log(
                f"{spec.name}: {where} done"
                + (f" ({len(outcome.failed)} failed)" if outcome.failed else "")
            )
        return outcome

    # By task, in the order planned, whatever order they finish in. A run stopped midway
    # (Ctrl-C, SIGTERM) keeps the processes that finished, and no second signal cuts short
    # what follows: in `counts_main`, until the counts are saved.
    done: dict[int, _Outcome] = {}
    roots = [spec.import_root for spec in specs if spec.import_root]
    with stopping() as stop, seen_paths(python, roots) as seen:
        pool = ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1)
        futures: dict[Future[_Outcome], int] = {}
        try:
            _cache_bytecode(seen, specs, runtimes)
            start = 0
            for batch in (call_jobs, count_jobs):  # every calls process before any count
                futures = {pool.submit(one, task): start + i for i, task in enumerate(batch)}
                pending = set(futures)
                while pending:
                    # Not one long wait: Python runs a signal's handler in the main thread,
                    # between bytecodes, and a signal the kernel hands to a worker thread
                    # does not wake a wait here (a Ctrl-C went unheard until a count ended).
                    ended, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                    for future in ended:
                        done[futures[future]] = future.result()
                start += len(batch)
        except KeyboardInterrupt:
            children.stop()
        except BaseException:
            children.stop()  # no process under valgrind outlives this one
            raise
        finally:
            stop.deaf()
            pool.shutdown(cancel_futures=True)
        # Those that ended as the stop came, before they were taken in.
        for future, i in futures.items():
            if future.done() and not future.cancelled():
                done.setdefault(i, future.result())
        outcomes = [done[i] for i in sorted(done)]
        partial = None
        if children.stopped:
            # A process the stop cut short is not a failure of its benchmarks; one that
            # failed before it (a timeout, a crash) still is.
            outcomes = [o for o in outcomes if not o.stopped]
            finished = sum(o.finished for o in outcomes)
            partial = (
                f"interrupted after {finished} of {len(call_jobs) + len(count_jobs)} "
                "processes; the benchmarks of the processes that did not finish were not counted"
            )
        return _counts_run(
            specs, names, profile, max_n, repeats, created, valgrind, outcomes, partial
        )


def _counts_run(
    specs: Sequence[ScenarioSpec],
    names: Sequence[str],
    profile: str,
    max_n: int | None,
    repeats: int,
    created: str,
    valgrind: str,
    outcomes: Sequence[_Outcome],
    partial: str | None,
) -> CountsRun:
    """The counts file's run, from what the processes returned."""
    benchmarks = []
    failed: list[str] = []
    libraries: dict[str, str | None] = {}
    for spec in specs:
        mine = [o for o in outcomes if o.scenario == spec.name]
        for o in mine:
            failed.extend(o.failed)
            if o.hello is not None and not libraries:
                # The runtimes' libraries first (as the time results record them), then every
                # other distribution installed: counts move with any of them (trio's outcome
                # and sniffio, anyio's idna, ...).
                libraries = {
                    k: (v if isinstance(v, str) else None) for k, v in o.hello.libraries.items()
                }
                for name, version in installed_distributions().items():
                    libraries.setdefault(name, version)
        counted = [o for o in mine if o.mode == "instructions"]
        profiled = next((o for o in mine if o.mode == "calls"), None)
        for n in counted_scales(spec, profile, max_n):
            for runtime in names:
                counted_here = [o for o in counted if runtime in o.runtimes]
                if partial and len(counted_here) < repeats:
                    continue  # not every repeat ran: the partial note says so
                pieces = [o.pieces.get((runtime, n)) for o in counted_here]
                have = [p for p in pieces if p is not None and p.dump is not None]
                if len(have) != len(counted_here) or not have:
                    if not any(f"on {runtime} at" in f for f in failed):
                        failed.append(
                            f"{spec.name} on {runtime} at {scale_text(spec.axis, n)}: not "
                            f"counted in every repeat"
                        )
                    continue
                calls = profiled.pieces.get((runtime, n)) if profiled else None
                benchmarks.append(_benchmark(spec, runtime, n, have, calls))
    return CountsRun(
        created=created,
        profile=profile,
        machine=machine_identity(),
        python=python_build(),
        libraries=libraries,
        valgrind=valgrind_version(valgrind),
        anybench=_anybench_version(),
        repeats=repeats,
        max_n=max_n,
        benchmarks=tuple(benchmarks),
        failed=tuple(dict.fromkeys(failed)),
        partial=partial,
    )


#: The most processes under valgrind per scenario and the most at once: more informs nothing
#: (the counts are exact) and could only keep the machine busy for hours.
MAX_REPEATS = 20
MAX_JOBS = 64


def counts_main(
    paths: Sequence[str],
    *,
    into: Path,
    profile: str,
    runtime_names: Sequence[str],
    scenario_names: Sequence[str],
    max_n: int | None,
    repeats: int,
    jobs: int | None,
    log: Callable[[str], None] = print,
) -> int:
    """``anybench counts``: count the scenarios of *paths*, save the counts file under *into*,
    print its path. 0 when every benchmark was counted, 1 if some failed, 2 on a usage error
    (one line on standard error), 130 when interrupted (what was counted is saved, partial)."""
    from ._runtimes import UnknownRuntimeError, select_runtimes
    from ._scenario import ScenarioError, load_scenarios
    from ._sweep import UnknownProfileError
    from ._sweep import profile as profile_named
    from ._valgrind import ValgrindMissing

    def usage(message: str) -> int:
        print(f"anybench: {message}", file=sys.stderr)
        return 2

    try:
        find_valgrind()
        profile_named(profile)
        chosen = select_runtimes(runtime_names)
        specs = [spec for _, spec in load_scenarios(paths or ["scenarios"])]
    except (ValgrindMissing, UnknownProfileError, UnknownRuntimeError, ScenarioError) as exc:
        return usage(str(exc))
    known = [spec.name for spec in specs]
    unknown = [name for name in scenario_names if name not in known]
    if unknown:
        return usage(
            f"unknown scenario {', '.join(map(repr, unknown))}; choose from: {', '.join(known)}"
        )
    specs = [spec for spec in specs if not scenario_names or spec.name in scenario_names]
    runtimes = []
    for runtime in chosen:
        reason = runtime.unavailable_reason()
        if reason:
            log(f"skipping {runtime.name}: {reason}")
        else:
            runtimes.append(runtime)
    if not runtimes or not specs:
        return usage("nothing to count: no runtime or no scenario is left")
    if not 2 <= repeats <= MAX_REPEATS:
        return usage(f"--repeats takes 2 (the spread needs two) to {MAX_REPEATS}, not {repeats}")
    if jobs is not None and not 1 <= jobs <= MAX_JOBS:
        return usage(f"--jobs takes 1 to {MAX_JOBS} processes at once, not {jobs}")
    if max_n is not None and max_n < 0:
        return usage(f"--max-n takes 0 (no limit) or more, not {max_n}")
    if into.exists() and not into.is_dir():
        return usage(
            f"{into} is a file, not a directory; pass --into a directory (it is created if missing)"
        )
    if max_n is not None and not any(counted_scales(spec, profile, max_n) for spec in specs):
        return usage(
            f"every N of profile {profile} is above --max-n {max_n:,}"
            f"{' (the default)' if max_n == COUNTS_MAX_N else ''}; pass a larger --max-n "
            "(0: no limit), or another --profile"
        )
    if line := _large_n_warning(specs, len(runtimes), profile, max_n, repeats, jobs):
        print(f"anybench: {line}", file=sys.stderr)
    # One block from the count to its save: after a first Ctrl-C or SIGTERM, no other cuts
    # either short.
    with stopping():
        run = count_scenarios(
            specs, runtimes, profile, max_n=max_n, repeats=repeats, jobs=jobs, log=log
        )
        if not run.benchmarks:
            for line in run.failed:
                print(f"anybench: {line}", file=sys.stderr)
            if run.partial:
                print(
                    "anybench: interrupted before any benchmark was counted; nothing saved",
                    file=sys.stderr,
                )
                return 130
            return usage("no benchmark was counted; nothing saved")
        path, saved_where_asked = _save_counts(run, into)
    for line in run.failed:
        print(f"anybench: failed: {line}", file=sys.stderr)
    if run.partial:
        print(
            f"anybench: {run.partial}; the {len(run.benchmarks)} benchmark(s) counted are saved",
            file=sys.stderr,
        )
        log(f"counts saved to {path} (partial)")
        return 130
    if not saved_where_asked:
        return 1
    log(f"counts saved to {path}")
    return 1 if run.failed else 0


def _large_n_warning(
    specs: Sequence[ScenarioSpec],
    runtimes: int,
    profile: str,
    max_n: int | None,
    repeats: int,
    jobs: int | None,
) -> str | None:
    """Before a count of N above the default: how long valgrind will take, roughly."""
    sizes = [
        n
        for spec in specs
        if axis_named(spec.axis).counts_operations
        for n in counted_scales(spec, profile, max_n)
    ]
    if not sizes or max(sizes) <= COUNTS_MAX_N:
        return None
    at_once = min(jobs or os.cpu_count() or 1, runtimes * repeats * len(specs))
    seconds = sum(sizes) * runtimes * repeats * VALGRIND_S_PER_OP / at_once
    if seconds >= 2 * 3600:
        took = f"{seconds / 3600:,.0f} hours"
    else:
        took = f"{max(seconds / 60, 1):,.0f} minute(s)"
    return (
        f"counting N up to {max(sizes):,} (the default stops at {COUNTS_MAX_N:,}): at about "
        f"{VALGRIND_S_PER_OP * 1000:g} ms an operation under valgrind, this count takes about "
        f"{took}, {at_once} process(es) at a time; Ctrl-C keeps what finished"
    )


def _save_counts(run: CountsRun, into: Path) -> tuple[Path, bool]:
    """Save *run* under *into*, or, where it cannot be, in the temporary directory: never lose a
    finished count (the line says where it went). The path, and whether it is under *into*."""
    from ._counts_results import write_counts

    try:
        return write_counts(run, into), True
    except OSError as exc:
        path = write_counts(run, Path(tempfile.gettempdir()))
        print(
            f"anybench: cannot save into {into} ({exc.strerror or exc}); saved to {path} instead",
            file=sys.stderr,
        )
        return path, False
