"""Work counts: the client requests, the callgrind reader, the counts file, compare on counts.

Only two tests run valgrind (at tiny N, a few seconds each); they are skipped, with the reason,
where valgrind cannot run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from anybench._callgrind import CallgrindError, parse_dump, read_dump, read_dumps
from anybench._cli import main
from anybench._counts_compare import MIN_FLOOR, compare_counts
from anybench._counts_report import work_section
from anybench._counts_results import (
    BenchmarkCounts,
    CountsError,
    CountsRun,
    FunctionCounts,
    is_counts_file,
    read_counts,
    write_counts,
)
from anybench._protocol import CountsJob, decode_counts_job, encode_counts_job
from anybench._runtimes import time_dependent_work
from anybench._valgrind import (
    CALLGRIND_DUMP_STATS_AT,
    CALLGRIND_START_INSTRUMENTATION,
    CALLGRIND_STOP_INSTRUMENTATION,
    ClientRequests,
    ValgrindMissing,
    client_request_support,
    find_valgrind,
    missing_valgrind_message,
)

from .conftest import ROOT
from .test_agree import run_data
from .test_results import RESULTS

DATA = Path(__file__).parent / "data"


def _valgrind_reason() -> str | None:
    try:
        find_valgrind()
    except ValgrindMissing as exc:
        return str(exc)
    return None


needs_valgrind = pytest.mark.skipif(_valgrind_reason() is not None, reason=_valgrind_reason() or "")
needs_client_requests = pytest.mark.skipif(
    client_request_support() is not None, reason=client_request_support() or ""
)


# -- client requests ---------------------------------------------------------------------------


def test_the_request_codes_are_callgrinds() -> None:
    # callgrind.h: VG_USERREQ_TOOL_BASE('C','T') + 3, + 4, + 5.
    assert CALLGRIND_DUMP_STATS_AT == 0x43540003
    assert CALLGRIND_START_INSTRUMENTATION == 0x43540004
    assert CALLGRIND_STOP_INSTRUMENTATION == 0x43540005


@needs_client_requests
def test_a_client_request_natively_returns_its_default() -> None:
    requests = ClientRequests()
    assert requests.request(0x1001, default=42) == 42
    assert not requests.running_on_valgrind()
    requests.start_instrumentation()  # no-ops natively
    requests.stop_instrumentation()
    requests.dump_stats_at("nothing")


#: A loop of known length: mov rcx,rdi; 1: dec rcx; jnz 1b; ret. k iterations execute
#: 2k + 2 instructions.
_SYNTHETIC = textwrap.dedent(
    """
    import ctypes, mmap, sys
    from anybench._valgrind import ClientRequests

    code = bytes.fromhex("4889f9" "48ffc9" "75fb" "c3")
    page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    page.write(code)
    loop = ctypes.CFUNCTYPE(None, ctypes.c_uint64)(
        ctypes.addressof(ctypes.c_char.from_buffer(page))
    )
    requests = ClientRequests()
    assert requests.running_on_valgrind()
    # Each region 30 times: the interpreter specialises the calls' bytecode over the first few
    # (as a scenario's warm-up round does for its code), and retries what it cannot specialise
    # (a ctypes call) now and then, each retry about a hundred instructions.
    for k in (1_000, 2_000, 5_000):
        for _ in range(30):
            requests.start_instrumentation()
            loop(k)
            requests.stop_instrumentation()
            requests.dump_stats_at(f"loop{k}")
    """
)


@needs_valgrind
def test_client_requests_count_a_loop_of_known_length_exactly() -> None:
    # As the counts workers run: a fixed environment, and a directory and script path of a
    # fixed length (pytest's tmp_path grows a digit now and then), so that the interpreter's
    # heap, and with it the few instructions around the loop, is the same in every run.
    with tempfile.TemporaryDirectory(prefix="anybench-test-") as where:
        tmp_path = Path(where)
        _count_loops(tmp_path)


def _count_loops(tmp_path: Path) -> None:
    from anybench._counts import _environment

    script = tmp_path / "synthetic.py"
    script.write_text(_SYNTHETIC)
    proc = subprocess.run(
        [
            find_valgrind(),
            "-q",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={tmp_path}/cg.out",
            sys.executable,
            str(script),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=_environment(),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    files = sorted(tmp_path.glob("cg.out.*"), key=lambda p: int(p.suffix[1:]))
    dumps = list(read_dumps(files))
    by_name: dict[str, list[int]] = {}
    for dump in dumps:
        by_name.setdefault(dump.name, []).append(dump.total_ir)
    # Warm, the same region counts the same nearly every time.
    steady = {}
    for name, counts in by_name.items():
        [(usual, times)] = Counter(counts[10:]).most_common(1)
        assert times >= 15, str(by_name)
        steady[name] = usual
    one, two, five = (steady[f"loop{k}"] for k in ("1000", "2000", "5000"))
    # k more iterations count exactly 2k more instructions (dec and jnz each); what the region
    # holds beside the loop (the requests' and ctypes' own instructions) is the same each time.
    assert two - one == 2 * 1_000
    assert five - two == 2 * 3_000
    assert 0 < one - 2 * 1_000 < 20_000


@needs_valgrind
def test_counts_of_a_deterministic_scenario_are_equal_in_two_processes(tmp_path: Path) -> None:
    from anybench._counts import count_scenarios
    from anybench._runtimes import runtime_named
    from anybench._scenario import load_scenarios

    [(_, spawn)] = load_scenarios([str(ROOT / "scenarios" / "spawn.py")])
    run = count_scenarios([spawn], [runtime_named("asyncio")], "quick", max_n=100, repeats=2)
    assert run.failed == ()
    [bench] = run.benchmarks
    assert (bench.scenario, bench.runtime, bench.scale, bench.ops) == ("spawn", "asyncio", 100, 100)
    first, second = bench.instructions
    assert first == second > 0
    assert bench.deterministic
    assert bench.allocations > bench.ops  # every task allocates
    assert bench.python_calls
    assert bench.python_calls > bench.ops
    assert bench.functions
    assert bench.functions[0].self_ir > 0
    # What was counted survives the file.
    path = write_counts(run, tmp_path)
    assert read_counts(path).benchmarks == run.benchmarks


def test_a_counts_process_inherits_nothing_that_differs_between_shells(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from anybench._counts import _environment

    monkeypatch.setenv("OLDPWD", "/somewhere/" + "x" * 500)
    monkeypatch.setenv("PATH", "/opt/a:/opt/b:" + os.environ.get("PATH", ""))
    monkeypatch.setenv("PYTHONMALLOC", "debug")
    monkeypatch.setenv("PYTHONPATH", "/my/scenarios")
    monkeypatch.setenv("ANYBENCH_RUNTIME_MODULES", "my_runtimes")
    for name in [
        n for n in os.environ if n.startswith("ANYBENCH_") and n != "ANYBENCH_RUNTIME_MODULES"
    ]:
        monkeypatch.delenv(name)
    env = _environment()
    assert env == {
        "PATH": os.defpath,
        "PYTHONHASHSEED": "0",
        "LC_ALL": "C.UTF-8",
        "PYTHONPATH": "/my/scenarios",
        "ANYBENCH_RUNTIME_MODULES": "my_runtimes",  # a runtime registered from a module
    }


@needs_valgrind
def test_counts_are_equal_from_another_shell_directory_and_stale_bytecode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Runs, not processes of one run: the first compiles the scenario, the second loads its
    # cached bytecode, from another directory, with a larger environment; the third after the
    # source changed (the cache stale).
    from anybench._counts import count_scenarios
    from anybench._runtimes import runtime_named
    from anybench._scenario import load_scenarios

    source = tmp_path / "scenarios" / "await_copy.py"
    source.parent.mkdir()
    source.write_text((ROOT / "scenarios" / "await_future.py").read_text())
    [(_, scenario)] = load_scenarios([str(source)])

    def count() -> list[float]:
        run = count_scenarios([scenario], [runtime_named("asyncio")], "quick", max_n=100, repeats=1)
        assert run.failed == ()
        assert run.benchmarks
        return [b.instructions_per_op for b in run.benchmarks]

    first = count()  # the scenario never compiled before
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OLDPWD", "/elsewhere/" + "y" * 700)
    assert count() == first  # its bytecode cached by then
    os.utime(source, (source.stat().st_atime, source.stat().st_mtime + 10))
    assert count() == first  # its cache stale


@needs_valgrind
def test_counts_do_not_depend_on_where_the_scenarios_lie(tmp_path: Path) -> None:
    # The same scenario under two roots whose paths differ in length: a path is a string on
    # the counted process's heap, and a longer one moved counts by up to 1.3% before the
    # roots were seen through links of one length.
    from anybench._counts import count_scenarios
    from anybench._runtimes import runtime_named
    from anybench._scenario import load_scenarios

    counted = []
    for root in (tmp_path / "a", tmp_path / ("a-much-longer-directory-name" * 3)):
        source = root / "scenarios" / "spawn_copy.py"
        source.parent.mkdir(parents=True)
        source.write_text((ROOT / "scenarios" / "spawn.py").read_text())
        path = list(sys.path)
        [(_, scenario)] = load_scenarios([str(source)])
        run = count_scenarios([scenario], [runtime_named("asyncio")], "quick", max_n=100, repeats=1)
        assert run.failed == ()
        counted.append([b.instructions for b in run.benchmarks])
        sys.modules.pop(scenario.module)  # the next copy, of the same name, is imported anew
        sys.path[:] = path
    assert counted[0] == counted[1]


def test_a_counts_run_sees_its_python_and_roots_through_one_fixed_directory(
    tmp_path: Path,
) -> None:
    from anybench._counts import seen_paths

    roots = [str(tmp_path / "x"), str(tmp_path / ("y" * 50))]
    for root in roots:
        os.mkdir(root)
    with seen_paths(sys.executable, roots) as seen:
        run_dir = os.path.dirname(seen.roots[roots[0]])
        assert len(run_dir) == len("/tmp/anybench-counts-12345678")
        assert [os.path.realpath(seen.roots[r]) for r in roots] == roots
        assert len({len(link) for link in seen.roots.values()}) == 1
        if sys.prefix != sys.base_prefix:  # these tests run in a virtual environment
            assert seen.python == os.path.join(run_dir, "p", "bin", "python")
            config = Path(run_dir, "p", "pyvenv.cfg").read_text()
            assert str(tmp_path) not in config
            assert "command" not in config
            probe = "import sys, anyio; print(sys.prefix); print(anyio.__file__)"
            out = subprocess.run([seen.python, "-c", probe], capture_output=True, text=True)
            prefix, anyio_file = out.stdout.split()
            assert prefix == os.path.join(run_dir, "p")
            assert anyio_file.startswith(os.path.join(run_dir, "p", "lib"))
    assert not os.path.exists(run_dir)
    # An interpreter that is no virtual environment is run as it is.
    base = getattr(sys, "_base_executable", sys.executable)
    with seen_paths(base, []) as seen:
        assert seen.python == base


# -- the callgrind reader ----------------------------------------------------------------------


def test_the_reader_reads_a_dump_with_compressed_names_calls_and_recursion() -> None:
    dump = read_dump(DATA / "callgrind.sample")
    assert dump.name == "trio@10"
    assert dump.total_ir == 950
    assert sum(f.self_ir for f in dump.functions.values()) == dump.total_ir
    frame = dump.functions["/lib/libpython3.11.so.1.0", "_PyEval_EvalFrameDefault"]
    # Its recursion level ('2) folded in: 190 + 150 of its own, called once (by itself).
    assert (frame.self_ir, frame.calls, frame.file) == (340, 1, "ceval.c")
    assert frame.inclusive_ir == 190 + 60 + 500 + 200 + 150 + 50
    malloc = dump.functions["/lib/libpython3.11.so.1.0", "_PyObject_Malloc"]
    assert (malloc.self_ir, malloc.inclusive_ir, malloc.calls) == (110, 110, 4)
    wait = dump.functions["/usr/lib/x86_64-linux-gnu/libc.so.6", "epoll_wait"]
    assert (wait.object, wait.calls, wait.self_ir) == ("libc.so.6", 2, 500)
    assert dump.syscalls() == {"epoll_wait": 2}
    assert dump.calls_to(["_PyObject_Malloc"]) == 4
    assert [f.name for f in dump.top(2)] == ["epoll_wait", "_PyEval_EvalFrameDefault"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("hello", "not a callgrind output file"),
        ("# callgrind format\nevents: Ir\nfn=(1) f\n1 2\n", "no summary or totals"),
        ("# callgrind format\nevents: Ir\nfn=(1)\n1 2\ntotals: 2\n", "used before it is defined"),
        ("# callgrind format\nevents: Ir\n1 2\ntotals: 2\n", "outside any function"),
        ("# callgrind format\nevents: Dr\nsummary: 1\n", "counts no instructions"),
    ],
)
def test_the_reader_refuses_what_is_not_a_dump_in_one_line(text: str, problem: str) -> None:
    with pytest.raises(CallgrindError, match=problem) as caught:
        parse_dump(text, "x.out")
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith("x.out")


# -- valgrind missing --------------------------------------------------------------------------


def test_a_missing_valgrind_is_one_line_saying_how_to_install_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "anybench", "counts", str(ROOT / "scenarios" / "spawn.py")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    if client_request_support() is None:
        assert "valgrind" in lines[0]
        assert "install valgrind" in lines[0]
    assert "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []  # nothing saved


def test_the_install_hint_names_the_package_manager_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    apt = tmp_path / "apt-get"
    apt.write_text("#!/bin/sh\n")
    apt.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert "sudo apt-get install valgrind" in missing_valgrind_message()


# -- the counts file and compare on counts -------------------------------------------------------


def _bench(scenario: str = "spawn", runtime: str = "asyncio", **changes: Any) -> BenchmarkCounts:
    base = BenchmarkCounts(
        scenario=scenario,
        runtime=runtime,
        axis="n",
        scale=1_000,
        ops=1_000,
        instructions=(100_000_000, 100_000_000),
        allocations=70_000,
        raw_allocations=200,
        collections=30,
        collections_by_generation={"gen0": 30},
        loop_waits=3,
        syscalls={"epoll_wait": 3},
        python_calls=63_000,
        builtin_calls=45_000,
        functions=(FunctionCounts("f", "libpython3.11.so.1.0", "ceval.c", 10, 20, 3),),
        python_functions={"anyio/_core/_tasks.py:1:f": 1000},
        operation="spawn a task",
    )
    return dataclasses.replace(base, **changes)


def _run(*benchmarks: BenchmarkCounts, **changes: Any) -> CountsRun:
    base = CountsRun(
        created="2026-12-02T00:00:00+00:00",
        profile="default",
        machine={"architecture": "x86_64", "system": "Linux", "node": "vm"},
        python={
            "version": "3.11.7",
            "implementation": "CPython",
            "compiler": "GCC 12.2.0",
            "build": ["main", "May  9 2026 07:35:25"],
            "config": "--enable-shared",
        },
        libraries={"anyio": "4.16.0", "trio": "0.35.0"},
        valgrind="3.19.0",
        anybench="0.1.0",
        repeats=2,
        max_n=1_000,
        benchmarks=benchmarks or (_bench(), _bench(runtime="trio")),
    )
    return dataclasses.replace(base, **changes)


def _compare(tmp_path: Path, old: CountsRun, new: CountsRun) -> tuple[str, int]:
    a = write_counts(old, tmp_path / "a")
    b = write_counts(new, tmp_path / "b")
    return compare_counts(read_counts(a), read_counts(b))


def test_three_percent_more_instructions_is_a_regression(tmp_path: Path) -> None:
    more = _bench(instructions=(103_000_000, 103_000_000))
    text, status = _compare(tmp_path, _run(), _run(more, _bench(runtime="trio")))
    assert status == 1
    [line] = [line for line in text.splitlines() if line.startswith("spawn asyncio")]
    assert "+3.00%" in line
    assert "REGRESSION" in line
    [trio] = [line for line in text.splitlines() if line.startswith("spawn trio")]
    assert trio.endswith("same")


def test_a_benchmark_missing_from_the_new_file_fails_and_the_summary_says_why(
    tmp_path: Path,
) -> None:
    """It once exited 1 under a summary of "0 regression(s)"."""
    text, status = _compare(tmp_path, _run(), _run(_bench(), _bench(runtime="uvloop")))
    assert status == 1
    lines = text.splitlines()
    assert "missing from the new file: spawn on trio at 1,000" in lines
    assert "new in the new file: spawn on uvloop at 1,000" in lines
    assert lines[-2].startswith("0 regression(s), 0 improvement(s), 1 the same")
    assert lines[-2].endswith(", 1 new in the new file")
    assert lines[-1] == (
        "FAILED: 1 benchmark(s) counted in the old file are missing from the new one (listed "
        "above); count the same scenarios, runtimes and N in both"
    )


def test_equal_counts_are_not_flagged_nor_is_a_change_below_the_floor(tmp_path: Path) -> None:
    text, status = _compare(tmp_path, _run(), _run())
    assert status == 0
    assert "REGRESSION" not in text
    # +0.5%: as far as two runs of the same code have been seen apart, below MIN_FLOOR
    below = _bench(instructions=(100_500_000, 100_500_000))
    assert MIN_FLOOR == 0.01
    _, status = _compare(tmp_path, _run(), _run(below, _bench(runtime="trio")))
    assert status == 0
    # +1.2% (one list append per operation in `done_callback` did 1.1-2.0% more at N=1,000)
    above = _bench(instructions=(101_200_000, 101_200_000))
    text, status = _compare(tmp_path, _run(), _run(above, _bench(runtime="trio")))
    assert status == 1
    assert "REGRESSION" in text


def test_a_region_of_ten_operations_has_a_floor_of_two_percent(tmp_path: Path) -> None:
    """At N = 10 a fresh clone's first counts were 1.4% off the next runs' (a region of ten
    operations is so short that the interpreter's own caches make a percent): not flagged;
    beyond 2% it is."""
    small = {"scale": 10, "ops": 10, "instructions": (1_000_000, 1_000_000)}
    base = _run(_bench(**small))
    _, status = _compare(
        tmp_path, base, _run(_bench(**{**small, "instructions": (1_014_000,) * 2}))
    )
    assert status == 0
    text, status = _compare(
        tmp_path, base, _run(_bench(**{**small, "instructions": (1_025_000,) * 2}))
    )
    assert status == 1
    assert "2.00%" in next(line for line in text.splitlines() if line.startswith("spawn asyncio"))


def test_less_work_is_an_improvement_not_a_failure(tmp_path: Path) -> None:
    less = _bench(instructions=(90_000_000, 90_000_000))
    text, status = _compare(tmp_path, _run(), _run(less, _bench(runtime="trio")))
    assert status == 0
    assert "improved" in text


def test_a_benchmark_that_is_not_deterministic_gets_no_verdict(tmp_path: Path) -> None:
    noisy = _bench(scenario="timers", instructions=(100_000_000, 101_000_000))
    assert not noisy.deterministic
    much_more = _bench(scenario="timers", instructions=(120_000_000, 121_000_000))
    text, status = _compare(tmp_path, _run(noisy), _run(much_more))
    assert status == 0
    assert "no verdict (not deterministic: spread 1.00%)" in text


def test_a_runtime_whose_work_depends_on_time_is_marked_and_judged_at_the_floor(
    tmp_path: Path,
) -> None:
    """rloop's loop polls at most every 250 µs while work is ready: its two repeats can agree
    and the next run differ. Its rows say so, with the reason, and keep the floor's verdict."""
    assert "250 µs" in time_dependent_work("rloop")
    assert time_dependent_work("asyncio") == time_dependent_work("no-such-runtime") == ""
    old = _run(_bench(), _bench(runtime="rloop"))
    moved = _bench(runtime="rloop", instructions=(100_600_000, 100_600_000))  # +0.6%
    text, status = _compare(tmp_path, old, _run(_bench(), moved))
    assert status == 0
    [rloop] = [line for line in text.splitlines() if line.startswith("spawn rloop")]
    assert rloop.endswith("same \N{DOUBLE DAGGER}")
    [asyncio] = [line for line in text.splitlines() if line.startswith("spawn asyncio")]
    assert asyncio.endswith("same")
    assert "\N{DOUBLE DAGGER} rloop: its work depends on wall time (rloop's loop" in text
    more = _bench(runtime="rloop", instructions=(103_000_000, 103_000_000))
    text, status = _compare(tmp_path, old, _run(_bench(), more))
    assert status == 1
    assert "REGRESSION \N{DOUBLE DAGGER}" in text
    # Without rloop in the files, no note.
    text, _ = _compare(tmp_path, _run(), _run())
    assert "\N{DOUBLE DAGGER}" not in text


def test_builds_that_differ_are_refused_a_verdict(tmp_path: Path) -> None:
    other = _run()
    rebuilt = dataclasses.replace(
        other, python={**other.python, "build": ["main", "Jan  1 2027 00:00:00"]}
    )
    more = _run(_bench(instructions=(110_000_000, 110_000_000)))
    text, status = _compare(tmp_path, more, rebuilt)
    assert status == 2
    assert "no verdict" in text
    assert "Python build" in text
    assert "REGRESSION" not in text
    _, status = _compare(tmp_path, _run(), _run(valgrind="3.22.0"))
    assert status == 2


def test_library_versions_that_differ_are_named_and_compared(tmp_path: Path) -> None:
    newer = _run(libraries={"anyio": "4.13.0", "trio": "0.35.0"})
    text, status = _compare(tmp_path, newer, _run())
    assert status == 0
    assert "library versions differ (what is compared): anyio 4.13.0 -> 4.16.0" in text


def test_compare_on_the_command_line_takes_counts_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write_counts(_run(), tmp_path)
    b = write_counts(
        _run(_bench(instructions=(102_000_000,) * 2), _bench(runtime="trio")), tmp_path
    )
    assert a != b
    assert is_counts_file(a)
    assert is_counts_file(b)
    assert b.name.endswith("_counts-2.json")
    assert main(["compare", str(a), str(b)]) == 1
    assert "REGRESSION" in capsys.readouterr().out
    assert main(["compare", str(a), str(a)]) == 2  # one run twice, as for timed runs
    assert (
        capsys.readouterr().err
        == f"anybench: {a} is the same counts twice; compare two runs' counts\n"
    )
    # a counts file against a results file of times: said so, whichever comes first
    timed = tmp_path / "timed.json"
    timed.write_text(json.dumps(RESULTS))
    for pair in ([a, timed], [timed, a]):
        assert main(["compare", *map(str, pair)]) == 2
        assert capsys.readouterr().err == (
            f"anybench: {a} is a counts file and {timed} a results file of times; compare two "
            "of one kind\n"
        )


# -- reading a counts file ---------------------------------------------------------------------


def _written(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    path = write_counts(_run(), tmp_path)
    return path, json.loads(path.read_text())


def test_a_counts_file_is_compact_and_reads_back_whole(tmp_path: Path) -> None:
    path, data = _written(tmp_path)
    assert "\n" not in path.read_text()
    assert ", " not in path.read_text()
    assert data["anybench_counts"] == 1
    assert read_counts(path).benchmarks == _run().benchmarks


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda d: d.update(anybench_counts=9), "counts format 9"),
        (lambda d: d.pop("anybench_counts"), "not an anybench counts file"),
        (lambda d: d["benchmarks"][0].pop("ops"), r"benchmarks\[0\] lacks 'ops'"),
        (lambda d: d["benchmarks"][0].update(ops=0), "ops should be at least 1"),
        (lambda d: d["benchmarks"][0].update(instructions=[]), "one or more whole numbers"),
        (lambda d: d["benchmarks"][0].update(instructions=[1, -2]), "one or more whole numbers"),
        (lambda d: d["benchmarks"][0].update(deterministic=False), "disagrees with its repeats"),
        (lambda d: d["benchmarks"][0].update(instructions_per_op=1.0), "disagrees with its"),
        (lambda d: d["benchmarks"][0]["syscalls"].update(read="x"), "syscalls.read"),
        (lambda d: d["benchmarks"][0].update(functions=[["f", 1]]), r"functions\[0\]"),
        (lambda d: d["benchmarks"].append(d["benchmarks"][0]), "holds a benchmark twice"),
        (lambda d: d.update(valgrind=3), "valgrind should be str"),
    ],
)
def test_a_counts_file_is_checked_on_reading_in_one_line(
    tmp_path: Path, mutate: Any, problem: str
) -> None:
    path, data = _written(tmp_path)
    mutate(data)
    path.write_text(json.dumps(data))
    before = path.read_bytes()
    with pytest.raises(CountsError, match=problem) as caught:
        read_counts(path)
    assert str(caught.value).startswith(str(path))
    assert "\n" not in str(caught.value)
    assert path.read_bytes() == before  # never modified


def test_a_file_that_is_not_json_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "x_counts.json"
    path.write_text("{not json")
    with pytest.raises(CountsError, match="not JSON"):
        read_counts(path)


def test_a_counts_job_crosses_whole() -> None:
    job = CountsJob(
        scenario_module="scenarios.spawn",
        sys_path=("/x",),
        runtimes=("asyncio", "trio"),
        scales=(10, 1_000),
        mode="calls",
        warmup_n=100,
        deadline_s=60.0,
    )
    assert decode_counts_job(encode_counts_job(job)) == job


# -- the report ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("unplotted")
def test_the_report_shows_work_per_operation_beside_time(tmp_path: Path) -> None:
    results = ROOT / "results" / "20261129T112446_vm_cpython3.11_anyio-4.16.0.json"
    at_100 = {"scale": 100, "ops": 100}
    # trio does 3x asyncio's instructions where its time is 1.14x asyncio's: they part.
    counts = _run(
        _bench(**at_100, instructions=(10_000_000, 10_000_000)),
        _bench(runtime="trio", **at_100, instructions=(30_000_000, 30_000_000)),
        _bench(runtime="uvloop", **at_100, instructions=(9_000_000, 9_100_000)),
    )
    counts_path = write_counts(counts, tmp_path)
    out = tmp_path / "report"
    assert main(["report", str(results), str(counts_path), "--out", str(out)]) == 0
    page = (out / "index.md").read_text()
    assert "## Work per operation (counts)" in page
    [trio] = [line for line in page.splitlines() if line.startswith("| spawn | 100 | trio |")]
    assert "| 300,000 | 3.00x | 1.14x [0.73–1.78] ~ | 1,080 | 700 | 0.3 | 0.03 | yes |" in trio
    [uvloop] = [line for line in page.splitlines() if line.startswith("| spawn | 100 | uvloop |")]
    assert uvloop.endswith("| no (spread 1.11%) |")
    assert "- spawn at 100 on trio: 3.00x asyncio's instructions, 1.14x its time" in page
    assert "spawn at 100 on uvloop" not in page  # 0.91x lies inside the time's interval
    assert "\N{DOUBLE DAGGER}" not in page  # no runtime here whose work depends on time
    # The table command takes the same files and leaves the counts file to the report.
    assert main(["table", str(results), str(counts_path)]) == 0


def test_the_report_marks_a_runtime_whose_work_depends_on_time() -> None:
    section = "\n".join(work_section([_run(_bench(), _bench(runtime="rloop"))], []))
    [rloop] = [line for line in section.splitlines() if line.startswith("| spawn | 1,000 | rloop")]
    assert rloop.endswith("| yes \N{DOUBLE DAGGER} |")
    assert "\N{DOUBLE DAGGER} rloop: its work depends on wall time by its design" in section


@needs_valgrind  # without it, the missing-valgrind line comes first
@pytest.mark.parametrize(
    ("option", "problem"),
    [
        (["--repeats", "1"], "--repeats takes 2"),
        (["--repeats", "1000000"], "--repeats takes 2"),
        (["--jobs", "0"], "--jobs takes 1 to"),
        (["--max-n", "-1"], "--max-n takes 0"),
        (
            ["--profile", "full"],
            "every N of profile full is above --max-n 1,000 (the default); pass a larger",
        ),
        (["--into", "{a file}"], "{a file} is a file, not a directory; pass --into a directory"),
    ],
)
def test_counts_options_out_of_bounds_are_one_line(
    option: list[str], problem: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before anything is counted (an --into that is a file once failed after the whole count,
    losing it; a profile whose every N is above --max-n said only "nothing saved")."""
    spawn = str(ROOT / "scenarios" / "spawn.py")
    a_file = tmp_path / "a file"
    a_file.write_text("mine")
    option = [str(a_file) if o == "{a file}" else o for o in option]
    problem = problem.replace("{a file}", str(a_file))
    assert main(["counts", spawn, "--into", str(tmp_path / "out"), *option]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"anybench: {problem}")
    assert not (tmp_path / "out").exists()  # nothing counted, nothing saved
    assert a_file.read_text() == "mine"


@needs_valgrind  # without it, the missing-valgrind line comes first
def test_a_count_that_cannot_be_saved_where_asked_is_saved_elsewhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Minutes under valgrind are never lost to a directory that cannot be written."""
    import anybench._counts
    import anybench._counts_results

    monkeypatch.setattr(anybench._counts, "count_scenarios", lambda *args, **kwargs: _run(_bench()))
    real_write = anybench._counts_results.write_counts
    refused = tmp_path / "refused"

    def write(run: CountsRun, into: Path) -> Path:
        if into == refused:
            raise PermissionError(13, "Permission denied")
        return real_write(run, into)

    monkeypatch.setattr(anybench._counts_results, "write_counts", write)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    spawn = str(ROOT / "scenarios" / "spawn.py")
    assert main(["counts", spawn, "--into", str(refused)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    [saved] = (tmp_path / "tmp").iterdir()
    assert err == (
        f"anybench: cannot save into {refused} (Permission denied); saved to {saved} instead\n"
    )
    assert read_counts(saved).benchmarks == _run(_bench()).benchmarks


@pytest.mark.usefixtures("unplotted")
def test_no_time_ratio_stands_beside_counts_of_other_software(tmp_path: Path) -> None:
    """A report of anyio 4.16's times beside anyio 4.13's counts once read "0.89x asyncio's
    instructions, 1.20x its time" as a difference in memory and cache, where the cause was the
    version; with two counts files, their lines now name the file they come from."""
    times = run_data(1)  # eight processes a benchmark: time ratios with intervals
    times["machine_info"]["anybench"]["libraries"] = {"anyio": "4.16.0", "trio": "0.35.0"}
    timed = tmp_path / "times.json"
    timed.write_text(json.dumps(times))
    # instructions far from the time ratio, so that the line would be drawn if paired
    trio = _bench(runtime="trio", instructions=(300_000_000, 300_000_000))
    older = write_counts(_run(_bench(), trio, libraries={"anyio": "4.13.0"}), tmp_path / "a")
    same = write_counts(_run(_bench(), trio), tmp_path / "b")
    assert main(["report", str(timed), str(older), str(same), "--out", str(tmp_path / "r")]) == 0
    page = (tmp_path / "r" / "index.md").read_text()
    section = page[page.index("## Work per operation") :]
    assert (
        f"- `{older}` against times: anyio 4.16.0 in the time results, 4.13.0 in the counts"
        in section
    )
    parted = [line for line in section.splitlines() if "asyncio's instructions" in line]
    assert parted, section
    assert all(f"(counts of `{same}`)" in line for line in parted)


def test_a_report_of_counts_files_alone_says_what_it_needs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    counts = write_counts(_run(), tmp_path / "c")
    assert main(["report", str(counts), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("anybench: only counts files given: a report shows counts beside a ")
    assert not (tmp_path / "r").exists()


# -- a count stopped midway ----------------------------------------------------------------------


def _stop_this_process(signum: int, children: Any) -> None:
    """Send *signum* to this process, as Ctrl-C or `kill` of the parent, from a count's worker
    thread, and wait until the run has stopped its *children*. The signal goes to this worker
    thread itself, as the kernel may hand a process's signal to any of its threads: the main
    thread, which runs the handler, must hear of it all the same (it once did only when a
    count ended, and these tests hung for 30 s now and then)."""
    signal.pthread_kill(threading.get_ident(), signum)
    deadline = time.monotonic() + 30
    while not children.stopped and time.monotonic() < deadline:
        time.sleep(0.01)
    assert children.stopped


@needs_valgrind
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_count_stopped_midway_keeps_the_benchmarks_whose_processes_all_finished(
    signum: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 16-minute count stopped at minute 15 once lost everything: now the benchmarks whose
    every process finished are kept, and the run says it is partial. One process at a time, in
    the planned order: the calls process, then asyncio and trio of repeat 1, then of repeat 2;
    the stop comes as trio's second repeat starts, so asyncio is whole and trio is not."""
    import anybench._counts
    from anybench._counts import count_scenarios
    from anybench._runtimes import runtime_named
    from anybench._scenario import load_scenarios

    real = anybench._counts._run_process
    started: list[tuple[str, int, tuple[str, ...]]] = []

    def run_process(spec: Any, chosen: Any, values: Any, mode: Any, repeat: int, *rest: Any) -> Any:
        started.append((mode, repeat, tuple(chosen)))
        children = rest[-1]
        if (mode, repeat, tuple(chosen)) == ("instructions", 1, ("trio",)):
            _stop_this_process(signum, children)
            # A second press, and a kill, while what finished is gathered: both ignored.
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGTERM)
        return real(spec, chosen, values, mode, repeat, *rest)

    monkeypatch.setattr(anybench._counts, "_run_process", run_process)
    [(_, spawn)] = load_scenarios([str(ROOT / "scenarios" / "spawn.py")])
    logged: list[str] = []
    run = count_scenarios(
        [spawn],
        [runtime_named("asyncio"), runtime_named("trio")],
        "quick",
        max_n=100,
        repeats=2,
        jobs=1,
        log=logged.append,
    )
    assert run.partial == (
        "interrupted after 4 of 5 processes; the benchmarks of the processes that did not "
        "finish were not counted"
    )
    assert [(b.runtime, b.scale) for b in run.benchmarks] == [("asyncio", 100)]
    assert len(run.benchmarks[0].instructions) == 2  # both repeats, never one
    assert run.failed == ()  # what the stop cut short is not a failure
    assert "spawn: trio, repeat 2 done" not in " ".join(logged)
    assert started[-1] == ("instructions", 1, ("trio",))  # nothing started after the stop
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_stopped_count_stops_its_running_processes() -> None:
    """`kill` of the parent alone does not reach the processes under valgrind, which can have
    an hour to go: the stop kills them, and any started after it."""
    from anybench._counts import Children, run_counts_process

    children = Children()
    job = CountsJob(
        scenario_module="m",
        sys_path=(),
        runtimes=("asyncio",),
        scales=(1,),
        mode="calls",
        warmup_n=1,
    )
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    with tempfile.TemporaryDirectory() as cwd:
        threading.Timer(0.5, children.stop).start()
        began = time.monotonic()
        proc = run_counts_process(sleeper, job, cwd, children=children)
        assert proc.returncode == -signal.SIGKILL
        assert time.monotonic() - began < 30
        began = time.monotonic()
        assert run_counts_process(sleeper, job, cwd, children=children).returncode != 0
        assert time.monotonic() - began < 30


@pytest.mark.usefixtures("unplotted")
def test_a_partial_count_is_saved_and_said_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import anybench._counts

    note = "interrupted after 4 of 5 processes; the benchmarks ... were not counted"
    monkeypatch.setattr(
        anybench._counts, "find_valgrind", lambda: "/usr/bin/valgrind", raising=True
    )
    monkeypatch.setattr(
        anybench._counts, "count_scenarios", lambda *a, **k: _run(_bench(), partial=note)
    )
    spawn = str(ROOT / "scenarios" / "spawn.py")
    assert main(["counts", spawn, "--into", str(tmp_path)]) == 130
    out, err = capsys.readouterr()
    [saved] = tmp_path.iterdir()
    assert err == f"anybench: {note}; the 1 benchmark(s) counted are saved\n"
    # the path where scripts read it
    assert out.splitlines()[-1] == f"counts saved to {saved} (partial)"
    assert read_counts(saved).partial == note
    # ... and a comparison with it says so before its table.
    text, code = compare_counts(_run(), read_counts(saved))
    assert text.splitlines()[1] == f"PARTIAL new counts: {note}."
    assert code == 1  # trio is not in it
    assert text.splitlines()[-1].endswith("the new file is partial: count again, to the end")
    # ... and a report of it says so where it shows the counts.
    times = tmp_path / "times.json"
    times.write_text(json.dumps(run_data(1)))
    report = tmp_path / "report"
    assert main(["report", str(times), str(saved), "--out", str(report)]) == 0
    assert f"PARTIAL: {note}." in (report / "index.md").read_text()
    # Stopped before any benchmark was counted: nothing to save, and the line says so.
    monkeypatch.setattr(
        anybench._counts,
        "count_scenarios",
        lambda *a, **k: _run(_bench(), benchmarks=(), partial=note),
    )
    assert main(["counts", spawn, "--into", str(tmp_path / "none")]) == 130
    assert capsys.readouterr().err == (
        "anybench: interrupted before any benchmark was counted; nothing saved\n"
    )
    assert not (tmp_path / "none").exists()


def test_a_whole_count_has_no_partial_key() -> None:
    from anybench._counts_results import counts_to_json

    assert "partial" not in counts_to_json(_run())
    assert counts_to_json(_run(partial="stopped"))["partial"] == "stopped"


def test_a_count_of_large_n_says_first_how_long_it_takes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--max-n 0 --profile full` once started hours of valgrind without a word."""
    import anybench._counts

    monkeypatch.setattr(anybench._counts, "find_valgrind", lambda: "/usr/bin/valgrind")
    monkeypatch.setattr(anybench._counts, "count_scenarios", lambda *a, **k: _run(_bench()))
    spawn = str(ROOT / "scenarios" / "spawn.py")
    options = ["--runtime", "asyncio,trio", "--jobs", "2", "--into", str(tmp_path)]
    assert main(["counts", spawn, "--profile", "full", "--max-n", "0", *options]) == 0
    # N = 10,000 and 100,000 (spawn's largest), two runtimes, two repeats, two at a time
    # = (10,000 + 100,000) * 2 * 2 * 2 ms / 2 at a time: 440 s
    [warning] = capsys.readouterr().err.splitlines()
    assert warning == (
        "anybench: counting N up to 100,000 (the default stops at 1,000): at about 2 ms an "
        "operation under valgrind, this count takes about 7 minute(s), 2 process(es) at a "
        "time; Ctrl-C keeps what finished"
    )
    assert main(["counts", spawn, "--profile", "full", "--max-n", "10000", *options]) == 0
    assert "counting N up to 10,000 " in capsys.readouterr().err
    assert main(["counts", spawn, "--profile", "quick", *options]) == 0  # N at most 1,000
    assert capsys.readouterr().err == ""


def test_a_region_of_large_n_is_given_time_for_its_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """A region of N = 1,000,000 takes valgrind half an hour: a fixed 600 s deadline would
    fail every one of them after ten minutes each."""
    import anybench._counts
    from anybench._counts import PROCESS_TIMEOUT_S, Seen, _run_process
    from anybench._scenario import load_scenarios

    seen_jobs: list[tuple[CountsJob, float]] = []

    def run(command: Any, job: CountsJob, cwd: str, timeout: float, **kw: Any) -> Any:
        seen_jobs.append((job, timeout))
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(anybench._counts, "run_counts_process", run)
    [(_, spawn)] = load_scenarios([str(ROOT / "scenarios" / "spawn.py")])
    seen = Seen(python=sys.executable, roots={spawn.import_root: spawn.import_root})
    for scales in ((10, 1_000), (10_000, 100_000, 1_000_000)):
        _run_process(spawn, ("asyncio", "trio"), scales, "calls", 0, None, seen)
    (small, small_timeout), (large, large_timeout) = seen_jobs
    assert small.deadline_s == pytest.approx(600 + 1_000 * 0.02)
    assert large.deadline_s == pytest.approx(600 + 1_000_000 * 0.02)  # 5.7 hours: a hang only
    assert small_timeout == pytest.approx(PROCESS_TIMEOUT_S + 1_010 * 2 * 0.02)
    assert large_timeout == pytest.approx(PROCESS_TIMEOUT_S + 1_110_000 * 2 * 0.02)


def test_a_bug_in_reading_one_process_sinks_no_other(monkeypatch: pytest.MonkeyPatch) -> None:
    """An exception of ours in one process's thread once discarded every count, after waiting
    for the others deaf to Ctrl-C."""
    import anybench._counts
    from anybench._counts import _Outcome, count_scenarios
    from anybench._runtimes import runtime_named
    from anybench._scenario import load_scenarios

    def run_process(spec: Any, chosen: Any, values: Any, mode: Any, repeat: int, *rest: Any) -> Any:
        if mode == "calls":
            raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
        failed = [f"spawn: a line of repeat {repeat + 1}"]  # to see it was kept
        return _Outcome(spec.name, mode, repeat, tuple(chosen), failed=failed, finished=True)

    monkeypatch.setattr(anybench._counts, "find_valgrind", lambda: "/usr/bin/valgrind")
    monkeypatch.setattr(anybench._counts, "valgrind_version", lambda _: "valgrind-3.19.0")
    monkeypatch.setattr(anybench._counts, "_run_process", run_process)
    [(_, spawn)] = load_scenarios([str(ROOT / "scenarios" / "spawn.py")])
    run = count_scenarios([spawn], [runtime_named("asyncio")], "quick", max_n=100, repeats=2)
    assert run.partial is None
    assert run.failed[:3] == (
        "spawn: anybench failed reading its calls process (UnicodeDecodeError: 'utf-8' codec "
        "can't decode byte 0xff in position 0: invalid start byte)",
        "spawn: a line of repeat 1",
        "spawn: a line of repeat 2",
    )


def _stop_at_first_count(
    monkeypatch: pytest.MonkeyPatch, before: Any = None, signum: int = signal.SIGINT
) -> None:
    """Count with no valgrind: the calls process gives *before* (a finished outcome if None)
    and the stop comes, as *signum* to this process, as the first count starts."""
    import anybench._counts
    from anybench._counts import _Outcome

    def run_process(spec: Any, chosen: Any, values: Any, mode: Any, repeat: int, *rest: Any) -> Any:
        outcome = _Outcome(spec.name, mode, repeat, tuple(chosen))
        if mode == "calls":
            if before is not None:
                return before(outcome)
            outcome.finished = True
            return outcome
        children = rest[-1]
        _stop_this_process(signum, children)
        outcome.stopped = True  # as _run_process finds a process killed by the stop
        return outcome

    monkeypatch.setattr(anybench._counts, "find_valgrind", lambda: "/usr/bin/valgrind")
    monkeypatch.setattr(anybench._counts, "valgrind_version", lambda _: "valgrind-3.19.0")
    monkeypatch.setattr(anybench._counts, "_run_process", run_process)


def test_a_stopped_count_keeps_the_failures_from_before_the_stop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only what the stop cut short goes unreported: a process that timed out before it is
    still a failure of its benchmark."""
    from anybench._counts import count_scenarios
    from anybench._runtimes import runtime_named
    from anybench._scenario import load_scenarios

    def timed_out(outcome: Any) -> Any:
        outcome.failed.append("spawn: its calls process ran past 3600 s; stopped")
        return outcome

    _stop_at_first_count(monkeypatch, timed_out)
    [(_, spawn)] = load_scenarios([str(ROOT / "scenarios" / "spawn.py")])
    run = count_scenarios([spawn], [runtime_named("asyncio")], "quick", max_n=100, jobs=1)
    assert run.partial == (
        "interrupted after 0 of 3 processes; the benchmarks of the processes that did not "
        "finish were not counted"
    )
    assert run.failed == ("spawn: its calls process ran past 3600 s; stopped",)


@pytest.mark.parametrize("second", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.usefixtures("unplotted")
def test_a_second_stop_while_a_stopped_count_saves_is_ignored(
    second: int,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A second Ctrl-C, or a `kill`, while what finished is being written once cut the save
    short: the count was lost after all."""
    import anybench._counts

    _stop_at_first_count(monkeypatch)
    monkeypatch.setattr(anybench._counts, "_counts_run", lambda *a: _run(_bench(), partial=a[-1]))
    real_save = anybench._counts._save_counts

    def save(*args: Any) -> Any:
        os.kill(os.getpid(), second)
        time.sleep(0.2)  # the handler runs between bytecodes: give it the chance
        return real_save(*args)

    monkeypatch.setattr(anybench._counts, "_save_counts", save)
    spawn = str(ROOT / "scenarios" / "spawn.py")
    assert main(["counts", spawn, "--max-n", "100", "--into", str(tmp_path)]) == 130
    [saved] = tmp_path.iterdir()
    assert read_counts(saved).partial is not None
    assert capsys.readouterr().out.splitlines()[-1] == f"counts saved to {saved} (partial)"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize(
    ("returncode", "stopped", "cut_short"),
    [
        (130, False, True),  # the worker's own exit on Ctrl-C (the terminal's reaches it)
        (-signal.SIGINT, False, True),  # ... before it could catch it
        (-signal.SIGTERM, False, True),  # `kill` of the process group
        (-signal.SIGKILL, True, True),  # killed by the run's stop
        (-signal.SIGKILL, False, False),  # killed by something else: the kernel's OOM killer
        (1, True, False),  # failed by itself
    ],
)
def test_a_process_is_cut_short_by_a_stop_only_as_a_stop_ends_it(
    returncode: int, stopped: bool, cut_short: bool
) -> None:
    from anybench._counts import Children, _cut_short

    children = Children()
    if stopped:
        children.stop()
    assert _cut_short(returncode, children) is cut_short


@pytest.mark.parametrize(
    ("returncode", "stopped"),
    [
        (130, True),  # Ctrl-C at the terminal reached it
        (-signal.SIGKILL, True),  # killed by the run's stop
        (1, False),  # failed by itself
    ],
)
def test_a_process_knows_whether_the_stop_cut_it_short(
    returncode: int, stopped: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    import anybench._counts
    from anybench._counts import Children, Seen, _run_process
    from anybench._scenario import load_scenarios

    def run(command: Any, job: CountsJob, cwd: str, timeout: float, **kw: Any) -> Any:
        return subprocess.CompletedProcess(command, returncode, "", "")

    monkeypatch.setattr(anybench._counts, "run_counts_process", run)
    [(_, spawn)] = load_scenarios([str(ROOT / "scenarios" / "spawn.py")])
    seen = Seen(python=sys.executable, roots={spawn.import_root: spawn.import_root})
    children = Children()
    children.stop()
    outcome = _run_process(spawn, ("asyncio",), (10,), "calls", 0, None, seen, children)
    assert (outcome.finished, outcome.stopped) == (False, stopped)


def test_a_stop_block_leaves_an_ignored_signal_ignored() -> None:
    """A shell's background job inherits Ctrl-C ignored: a block must not hand its workers a
    Ctrl-C they were meant never to see."""
    from anybench._signals import stopping

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with stopping() as stop:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL  # handled
            stop.deaf()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_stop_block_off_the_main_thread_leaves_signals_alone() -> None:
    """Python runs handlers in the main thread only, and lets no other thread set one."""
    from anybench._signals import stopping

    problems: list[BaseException] = []

    def other() -> None:
        try:
            with stopping() as stop:
                stop.deaf()
        except BaseException as exc:  # a ValueError from signal.signal, once
            problems.append(exc)

    with stopping():  # the main thread's block: the other thread's is not it
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        assert signal.getsignal(signal.SIGINT) not in (signal.SIG_IGN, signal.default_int_handler)
    assert problems == []


def test_only_the_first_stop_interrupts_and_the_handlers_come_back() -> None:
    from anybench._signals import stopping

    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    interrupted = 0
    with stopping() as stop:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)  # the handler runs between bytecodes: the kill does not wait for it
        except KeyboardInterrupt:
            interrupted += 1
        with stopping() as inner:  # a step of the command: the outer block holds the signals
            assert inner is stop
        os.kill(os.getpid(), signal.SIGINT)  # ignored: what finished is being saved
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
    assert interrupted == 1
    assert {sig: signal.getsignal(sig) for sig in before} == before


def test_a_ctrl_c_while_waiting_for_a_counts_process_stops_it(tmp_path: Path) -> None:
    """As subprocess.run does (explain's sampling waits in the main thread): the process does
    not outlive the interrupt, here sent to this process alone."""
    from anybench._counts import run_counts_process

    job = CountsJob(
        scenario_module="m",
        sys_path=(),
        runtimes=("asyncio",),
        scales=(1,),
        mode="calls",
        warmup_n=1,
    )
    pid_file = tmp_path / "pid"
    sleeper = [
        sys.executable,
        "-c",
        f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)",
    ]

    def interrupt_once_started() -> None:
        deadline = time.monotonic() + 30
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_once_started).start()
    with pytest.raises(KeyboardInterrupt):
        run_counts_process(sleeper, job, str(tmp_path))
    assert not Path(f"/proc/{pid_file.read_text()}").exists()
