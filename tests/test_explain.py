"""anybench explain: attribution arithmetic on synthetic profiles with known answers, the traced
round's counter, the counts file's new fields, the flame graph's data, and the one-line errors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from anybench._bytecodes import OTHER_STACKS, BytecodeCounter, top_stacks, top_work
from anybench._cli import main
from anybench._counts_results import (
    BenchmarkCounts,
    CountsRun,
    FunctionCounts,
    read_counts,
    write_counts,
)
from anybench._explain import (
    attribute,
    explain,
    library_of,
    match_key,
    pair_benchmarks,
    python_rows,
)
from anybench._flame import flame_frames, flame_svg

RESULTS = Path(__file__).resolve().parent.parent / "results"
OLD_FILE = RESULTS / "20261202T014712_vm_cpython3.11.7_anyio-4.13.0_counts.json"

OPS = 1000
#: Self bytecode instructions of one call of the synthetic function that B calls more.
COST = 7


def bench(
    runtime: str = "asyncio",
    *,
    extra_calls_per_op: int = 0,
    base_per_op: int = 100,
    scenario: str = "spawn",
) -> BenchmarkCounts:
    """A synthetic benchmark: each operation runs the scenario's body (*base_per_op* bytecode
    instructions, 200 machine instructions each) and calls ``lib/extra.py:work``
    ``1 + extra_calls_per_op`` times, :data:`COST` instructions a call."""
    calls = (1 + extra_calls_per_op) * OPS
    work = {
        f"{scenario}.py:5:body": (OPS, base_per_op * OPS, (base_per_op + COST) * OPS),
        "anyio/extra.py:10:work": (calls, COST * calls, COST * calls),
    }
    stacks = {
        f"{scenario}.py:5:body": base_per_op * OPS,
        f"{scenario}.py:5:body;anyio/extra.py:10:work": COST * calls,
    }
    bytecodes = base_per_op * OPS + COST * calls
    return BenchmarkCounts(
        scenario=scenario,
        runtime=runtime,
        axis="n",
        scale=OPS,
        ops=OPS,
        instructions=(200 * bytecodes, 200 * bytecodes),
        allocations=OPS,
        raw_allocations=0,
        collections=0,
        collections_by_generation={},
        loop_waits=2,
        syscalls={"epoll_wait": 2},
        python_calls=OPS + calls,
        builtin_calls=0,
        functions=(
            FunctionCounts(
                "_PyEval_EvalFrameDefault", "libpython", "ceval.c", 150 * bytecodes, 0, 1
            ),
        ),
        python_functions={k: v[0] for k, v in work.items()},
        python_work=work,
        stacks=stacks,
    )


def run(*benchmarks: BenchmarkCounts, anyio: str = "4.16.0", source: str = "") -> CountsRun:
    return CountsRun(
        created="2026-12-02T00:00:00+00:00",
        profile="default",
        machine={"architecture": "x86_64"},
        python={"version": "3.11.7"},
        libraries={"anyio": anyio},
        valgrind="valgrind-3.19.0",
        anybench="0",
        repeats=2,
        max_n=1000,
        benchmarks=benchmarks,
        source=source,
    )


# -- attribution ---------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 3])
def test_k_more_calls_are_named_with_k_and_their_whole_cost(k: int) -> None:
    a, b = bench(), bench(extra_calls_per_op=k)
    rows = python_rows(a, b)
    top = rows[0]
    assert top.key == "anyio/extra.py:work"
    assert top.library == "anyio"
    assert top.calls_delta == pytest.approx(k)
    assert top.self_delta == pytest.approx(COST * k)
    attribution = attribute(a, b, [top])
    assert attribution.bytecode_gap == pytest.approx(COST * k)
    assert attribution.named_share == pytest.approx(1.0)
    assert attribution.by_library == {"anyio": pytest.approx(COST * k)}
    # Machine instructions are 200 a bytecode instruction on both sides: the estimate is whole.
    assert attribution.instruction_share(attribution.named_bytecodes) == pytest.approx(1.0)
    lines, explained = explain(run(a, anyio="4.13.0"), run(b))
    text = "\n".join(lines)
    assert explained
    assert "account for 100% of that gap" in text
    assert f"+{k}.00" in text
    assert "anyio/extra.py:work" in text
    assert "misses most" not in text


def test_an_explanation_that_names_too_little_says_it_misses_most_of_the_gap() -> None:
    a = bench()
    b = bench(extra_calls_per_op=1)
    # B's gap is mostly in a function that the explanation does not name (top 1 names `work`).
    spread = {f"anyio/f{i}.py:1:f{i}": (OPS, 5 * OPS, 5 * OPS) for i in range(10)}
    b = dataclasses.replace(
        b,
        python_work={**b.python_work, **spread},
        stacks={**b.stacks, **{k: v[1] for k, v in spread.items()}},
    )
    rows = python_rows(a, b)
    attribution = attribute(a, b, rows[:1])
    assert attribution.named_share == pytest.approx(COST / (COST + 50))
    lines, _ = explain(run(a, anyio="4.13.0"), run(b), top=1)
    assert any("misses most of the bytecode" in line for line in lines)


def test_functions_match_across_versions_by_file_and_name_not_line() -> None:
    a = bench()
    b = bench(extra_calls_per_op=2)
    moved = {k.replace(":10:", ":99:"): v for k, v in b.python_work.items()}
    b = dataclasses.replace(b, python_work=moved)
    assert python_rows(a, b)[0].key == "anyio/extra.py:work"
    assert not python_rows(a, b)[0].status
    assert match_key("trio/_core/_run.py:1933:Runner.spawn_impl") == (
        "trio/_core/_run.py:Runner.spawn_impl"
    )


def test_appearing_and_vanishing_functions_are_marked() -> None:
    a, b = bench(), bench()
    b = dataclasses.replace(
        b, python_work={**b.python_work, "anyio/new.py:1:fresh": (OPS, OPS, OPS)}
    )
    a = dataclasses.replace(a, python_work={**a.python_work, "anyio/old.py:1:stale": (OPS, 1, 1)})
    status = {r.key: r.status for r in python_rows(a, b)}
    assert status["anyio/new.py:fresh"] == "new"
    assert status["anyio/old.py:stale"] == "gone"


@pytest.mark.parametrize(
    ("key", "library"),
    [
        ("anyio/_backends/_asyncio.py:886:TaskGroup._spawn", "anyio"),
        ("trio/_core/_run.py:1933:Runner.spawn_impl", "trio"),
        ("asyncio/base_events.py:751:BaseEventLoop.call_soon", "asyncio"),
        ("selectors.py:451:EpollSelector.select", "stdlib"),
        ("<frozen abc>:121:ABCMeta.__subclasscheck__", "stdlib"),
        ("<attrs generated methods trio._core._run.CancelScope>:1:__init__", "trio"),
        ("<method 'append' of 'list' objects>", "builtin"),
        ("spawn.py:20:run", "scenario"),
        ("src/anybench/_future.py:212:Future._complete", "anybench"),
        ("outcome/_impl.py:1:capture", "other"),
    ],
)
def test_a_function_library_comes_from_its_file(key: str, library: str) -> None:
    assert library_of(key, "spawn") == library


def test_a_difference_within_the_floor_is_one_line_not_significant() -> None:
    a, b = bench(), bench()
    lines, explained = explain(run(a, anyio="4.13.0"), run(b))
    assert not explained
    [line] = [line for line in lines if line.startswith("spawn")]
    assert line.endswith("not significant, not explained")


def test_two_runtimes_of_one_file_are_paired_by_sides() -> None:
    one = run(bench("asyncio"), bench("trio", extra_calls_per_op=4))
    pairs = pair_benchmarks(one, one, sides=("asyncio", "trio"))
    assert [(p.a.runtime, p.b.runtime) for p in pairs] == [("asyncio", "trio")]
    lines, explained = explain(one, one, sides=("asyncio", "trio"))
    assert explained
    assert "spawn on asyncio vs trio at N=1,000" in lines[2]


def test_two_runtimes_of_two_files_are_named_with_their_file_and_python_is_said() -> None:
    """``explain A B --sides asyncio,trio`` takes asyncio from A and trio from B: the names say
    so (they once said only "asyncio vs trio"), and another Python is said as the versions
    are."""
    a = run(bench("asyncio"), bench("trio"), anyio="4.13.0")
    b = dataclasses.replace(
        run(bench("asyncio"), bench("trio", extra_calls_per_op=4)), python={"version": "3.12.4"}
    )
    lines, explained = explain(a, b, sides=("asyncio", "trio"))
    assert explained
    assert lines[0].startswith("explain: asyncio (4.13.0) = A, trio (4.16.0) = B")
    assert "library versions differ: anyio 4.13.0 -> 4.16.0" in lines
    said = "Python differs (version 3.11.7 in asyncio (4.13.0), 3.12.4 in trio (4.16.0)): the gap"
    assert said in "\n".join(lines)
    # Another compiler is another interpreter too, as compare on counts refuses it.
    c = dataclasses.replace(a, python={**a.python, "compiler": "Clang 17.0.0"})
    lines, _ = explain(a, c, sides=("asyncio", "trio"))
    compiler = [line for line in lines if line.startswith("Python differs (compiler ")]
    assert compiler, lines
    # Configure flags are named, not printed (hundreds of characters each).
    d = dataclasses.replace(a, python={**a.python, "config": "--enable-shared " * 30})
    lines, _ = explain(a, d, sides=("asyncio", "trio"))
    assert "Python differs (configure flags): the gap includes the interpreter's own" in lines
    # the same file on both sides: runtimes alone, nothing said of Python
    lines, _ = explain(b, b, sides=("asyncio", "trio"))
    assert lines[0].startswith("explain: asyncio = A, trio = B")  # (unnamed: A and B)
    assert not any(line.startswith("Python differs") for line in lines)


# -- the traced round ----------------------------------------------------------------------


def _callee(x: int) -> int:
    return x + 1


def _caller(k: int) -> int:
    total = 0
    for i in range(k):
        total += _callee(i)
    return total


def _count(k: int) -> BytecodeCounter:
    counter = BytecodeCounter(lambda code: code.co_name)
    counter.start()
    _caller(k)
    counter.stop()
    return counter


def test_the_counter_counts_k_more_calls_and_their_instructions_exactly() -> None:
    few, more = _count(3), _count(5)
    assert more.functions["_callee"].calls - few.functions["_callee"].calls == 2
    per_call = few.functions["_callee"].self_ops / 3
    assert per_call > 0
    assert more.functions["_callee"].self_ops == 5 * per_call
    caller = more.functions["_caller"]
    assert caller.inclusive_ops == caller.self_ops + more.functions["_callee"].self_ops
    # Self instructions, stack by stack, add up to the whole; deterministic across runs.
    assert sum(more.stacks.values()) == more.total_ops
    assert _count(5).functions["_callee"].as_list() == more.functions["_callee"].as_list()
    assert ("_caller", "_callee") in more.stacks


def test_top_stacks_keep_the_total_and_top_work_the_heaviest() -> None:
    counter = _count(4)
    kept = top_stacks(counter.stacks, 1)
    assert sum(kept.values()) == counter.total_ops
    assert OTHER_STACKS in kept
    assert list(top_work(counter.functions, 1)) == ["_caller"]


# -- the counts file -----------------------------------------------------------------------


def test_the_traced_figures_survive_a_write_and_a_read(tmp_path: Path) -> None:
    b = dataclasses.replace(bench(), stacks={**bench().stacks, OTHER_STACKS: 5})
    path = write_counts(run(b), tmp_path)
    back = read_counts(path).benchmarks[0]
    assert back.python_work == b.python_work
    assert back.stacks == b.stacks
    assert back.bytecodes == sum(b.stacks.values())
    data = json.loads(path.read_text())
    assert data["benchmarks"][0]["python_work"]["unit"] == "bytecode instructions"


def test_a_counts_file_made_before_the_traced_round_still_loads() -> None:
    old = read_counts(OLD_FILE)
    assert old.benchmarks
    assert all(not b.python_work and b.bytecodes is None for b in old.benchmarks)


def test_a_broken_traced_section_is_one_line_naming_it(tmp_path: Path) -> None:
    path = write_counts(run(bench()), tmp_path)
    data: dict[str, Any] = json.loads(path.read_text())
    data["benchmarks"][0]["python_work"]["functions"][0][0] = 99
    broken = tmp_path / "broken_counts.json"
    broken.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"python_work\.functions\[0\] should index names"):
        read_counts(broken)


# -- the flame graph -----------------------------------------------------------------------


def test_the_flame_graph_frames_mark_growth_and_fit_inside_their_callers() -> None:
    a = {("main",): 10.0, ("main", "same"): 5.0, ("main", "old"): 4.0, ("main", "grow"): 2.0}
    b = {("main",): 10.0, ("main", "same"): 5.0, ("main", "new"): 3.0, ("main", "grow"): 6.0}
    frames = {f.path[-1]: f for f in flame_frames(a, b)}
    assert frames["all"].a == 21.0
    assert frames["all"].b == 24.0
    # The width takes the larger side piece by piece: 10 + 5 + 4 + 6 + 3.
    assert frames["all"].width == 28.0
    kinds = {name: f.kind for name, f in frames.items()}
    assert kinds == {
        "all": "grew",
        "main": "grew",
        "same": "same",
        "old": "gone",
        "new": "new",
        "grow": "grew",
    }
    children = [frames[n] for n in ("grow", "new", "old", "same")]
    assert [c.x for c in children] == sorted(c.x for c in children)  # by name
    assert children[-1].x + children[-1].width <= frames["main"].x + frames["main"].width
    svg = flame_svg(list(flame_frames(a, b)), "t <&>", ("A", "B"))
    assert "t &lt;&amp;&gt;" in svg
    assert "new in B" in svg


# -- the command ---------------------------------------------------------------------------


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    return err


def test_one_file_without_sides_is_a_one_line_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["explain", str(OLD_FILE)]) == 2
    assert "--sides" in _one_line(capsys)


def test_a_side_the_file_does_not_have_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", str(OLD_FILE), "--sides", "asyncio,tokio"]) == 2
    line = _one_line(capsys)
    assert f"tokio is not measured there: {OLD_FILE.name} has " in line
    assert line.rstrip().endswith("on asyncio, rloop, trio, uvloop at N 10, 1,000")


def test_table_of_a_counts_file_says_which_commands_read_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["table", str(OLD_FILE)]) == 2
    assert "is a counts file, and the table is of times" in _one_line(capsys)


def test_two_sides_with_nothing_in_common_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = write_counts(run(bench(scenario="timers")), tmp_path)
    assert main(["explain", str(OLD_FILE), str(other)]) == 2
    assert "no benchmarks (scenario, runtime, scale) in common" in _one_line(capsys)
    # an N the file does not have: the line names the N it has, and one file once only
    assert main(["explain", str(other), "--sides", "asyncio,trio", "--scale", "5000"]) == 2
    line = _one_line(capsys)
    assert line.rstrip().endswith(f"{other.name} has timers on asyncio at N 1,000")
    assert " against " not in line


def test_an_unreadable_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing_counts.json"
    assert main(["explain", str(missing), str(OLD_FILE)]) == 2
    assert "missing_counts.json" in _one_line(capsys)


def test_files_without_the_traced_round_say_which_command_makes_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert (
        main(["explain", str(OLD_FILE), "--sides", "asyncio,trio", "--scale", "1000", "--top", "3"])
        == 0
    )
    out = capsys.readouterr().out
    assert "`anybench counts --scenario spawn` makes them" in out


def test_flame_graphs_are_written_for_explained_benchmarks_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write_counts(run(bench(), bench("trio"), anyio="4.13.0"), tmp_path / "a")
    b = write_counts(run(bench(extra_calls_per_op=2), bench("trio")), tmp_path / "b")
    assert main(["explain", str(a), str(b), "--flame", str(tmp_path / "flames")]) == 0
    out = capsys.readouterr().out
    assert "spawn on trio at N=1,000" in out
    assert "not significant" in out
    [svg] = (tmp_path / "flames").iterdir()
    assert "asyncio" in svg.name
    assert "work" in svg.read_text()
    # a file where the directory should be: one line before anything is printed
    (tmp_path / "a file").write_text("mine")
    assert main(["explain", str(a), str(b), "--flame", str(tmp_path / "a file")]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        f"anybench: --flame takes a directory for the flame graph, not {str(tmp_path / 'a file')!r}"
        "; name a directory (it is created if missing)\n"
    )
    assert (tmp_path / "a file").read_text() == "mine"


def test_a_partial_file_is_said_to_be_partial() -> None:
    a = run(bench("asyncio"), bench("trio", extra_calls_per_op=4))
    b = dataclasses.replace(a, partial="interrupted after 3 of 5 processes")
    lines, _ = explain(b, b, sides=("asyncio", "trio"))
    assert lines[1] == "PARTIAL: interrupted after 3 of 5 processes."
    lines, _ = explain(a, b)
    assert lines[1] == "PARTIAL B: interrupted after 3 of 5 processes."
