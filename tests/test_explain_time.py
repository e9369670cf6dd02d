"""explain's top-down attribution on synthetic folded stacks with known answers, the time
path's statistics on synthetic samples, and its one-line errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from anybench import _sampling
from anybench._attribution import OUTSIDE, merged_tree, moved_functions, renamed, responsible
from anybench._cli import main
from anybench._explain import align_runtimes, explain, explained_section
from anybench._sampling import (
    BEGIN,
    END,
    HARNESS_ROUND,
    ProcessSamples,
    beyond_noise,
    common_prefix,
    difference_interval,
    explain_time,
    region_stacks,
    time_lines,
)

from .test_explain import bench, run

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"

Stacks = dict[tuple[str, ...], float]

#: Side A of a spawn: the spawner's loop and the tasks' bodies, bytecodes per operation.
BASE: Stacks = {
    ("run",): 10.0,
    ("run", "start_soon"): 20.0,
    ("run", "start_soon", "spawn"): 30.0,
    ("loop", "step", "task"): 15.0,
}


def test_a_subtree_added_on_one_side_is_named_by_its_root_with_all_of_the_gap() -> None:
    added: Stacks = {
        ("loop", "step", "run_coro"): 5.0,
        ("loop", "step", "run_coro", "enter"): 8.0,
        ("loop", "step", "run_coro", "exit"): 7.0,
        ("loop", "step", "run_coro", "init"): 10.0,
    }
    [frame] = responsible(merged_tree(BASE, {**BASE, **added}))
    assert frame.path == ("loop", "step", "run_coro")
    assert frame.kind == "new"
    assert frame.a == 0
    assert frame.b == pytest.approx(30.0)
    assert frame.delta == pytest.approx(30.0)


def test_two_subtrees_seventy_thirty_are_both_named_with_their_shares() -> None:
    b = {
        **BASE,
        ("run", "start_soon", "spawn", "handle"): 7.0,
        ("loop", "step", "task", "scope"): 3.0,
    }
    root = merged_tree(BASE, b)
    frames = responsible(root)
    assert [f.path for f in frames] == [
        ("run", "start_soon", "spawn", "handle"),
        ("loop", "step", "task", "scope"),
    ]
    assert [f.delta / root.delta for f in frames] == [pytest.approx(0.7), pytest.approx(0.3)]


def test_a_gap_spread_over_many_small_callees_is_named_by_their_caller() -> None:
    b = dict(BASE)
    for i in range(30):  # thirty functions, each a thirtieth of the gap: no one is a part
        b["run", "start_soon", "spawn", f"small{i}"] = 1.0
    [frame] = responsible(merged_tree(BASE, b))
    assert frame.path == ("run", "start_soon", "spawn")
    assert frame.delta == pytest.approx(30.0)
    assert frame.kind == ""


def test_frames_that_grew_and_shrank_add_up_signed_to_the_gap() -> None:
    b = {**BASE, ("run", "start_soon", "spawn"): 50.0, ("loop", "step", "task"): 5.0}
    root = merged_tree(BASE, b)
    frames = responsible(root)
    assert {f.path[-1]: f.delta for f in frames} == {"spawn": 20.0, "task": -10.0}
    assert sum(f.delta for f in frames) == pytest.approx(root.delta)


def test_two_runtimes_part_at_the_scenarios_frames() -> None:
    scenario = "spawn"
    body = "spawn.py:run.<locals>.task"
    loop = "asyncio/base_events.py:BaseEventLoop._run_once"
    asyncio = {
        (loop,): 40.0,
        (loop, "asyncio/events.py:Handle._run", body): 5.0,
        ("spawn.py:run", "anyio/_backends/_asyncio.py:TaskGroup.start_soon"): 30.0,
    }
    trio = {
        ("trio/_core/_run.py:unrolled_run",): 60.0,
        ("trio/_core/_run.py:unrolled_run", body): 5.0,
        ("spawn.py:run", "anyio/_backends/_trio.py:TaskGroup.start_soon"): 50.0,
    }
    a, b = align_runtimes(asyncio, trio, scenario)
    assert (body,) in a
    assert (body,) in b  # the task's body is one frame on both sides
    assert (OUTSIDE, loop) in a
    assert (OUTSIDE, "trio/_core/_run.py:unrolled_run") in b
    frames = {f.path: f for f in responsible(merged_tree(a, b))}
    # Each runtime's own machinery is one frame with both sides' figures, parting below it.
    outside = frames[(OUTSIDE,)]
    assert (outside.a, outside.b, outside.kind) == (40.0, 60.0, "")
    assert outside.parts == (
        ((loop,), 40.0, 0.0),
        (("trio/_core/_run.py:unrolled_run",), 0.0, 60.0),
    )
    # Where the stacks part: the scenario's call into each backend's start_soon.
    spawner = frames[("spawn.py:run",)]
    assert (spawner.a, spawner.b) == (30.0, 50.0)
    assert [names for names, _, _ in spawner.parts] == [
        ("anyio/_backends/_asyncio.py:TaskGroup.start_soon",),
        ("anyio/_backends/_trio.py:TaskGroup.start_soon",),
    ]
    assert sum(f.delta for f in frames.values()) == pytest.approx(40.0)


def test_a_traced_explanation_lists_the_responsible_call_paths_with_their_share() -> None:
    a, b = bench(), bench(extra_calls_per_op=3)
    lines, _ = explain(run(a, anyio="4.13.0"), run(b))
    text = "\n".join(lines)
    assert "responsible call paths, top down" in text
    [line] = [x for x in lines if x.endswith("body -> work")]
    assert "+21" in line
    assert "100%" in line
    assert "these 1 call paths account for 100% of the bytecode gap" in text


def test_counts_that_are_not_deterministic_point_to_the_time_path() -> None:
    spread = (1_000_000, 1_700_000)
    a = dataclasses.replace(bench("asyncio", scenario="timers"), instructions=spread)
    b = dataclasses.replace(bench("trio", scenario="timers"), instructions=spread)
    one = run(a, b)
    lines, explained = explain(one, one, sides=("asyncio", "trio"))
    assert not explained
    [line] = [x for x in lines if x.startswith("timers")]
    assert "no verdict from counts" in line
    assert "anybench explain --time scenarios --scenario timers --sides asyncio,trio" in line


# -- the samples -----------------------------------------------------------------------------

FRAMES = [
    {"name": "<module>", "file": "w.py", "line": 1},
    {"name": HARNESS_ROUND, "file": "src/anybench/_harness.py", "line": 1},
    {"name": BEGIN, "file": "w.py", "line": 2},
    {"name": END, "file": "w.py", "line": 3},
    {"name": "f", "file": "lib/f.py", "line": 4},
    {"name": "g", "file": "lib/g.py", "line": 5},
]


def test_only_samples_between_a_begin_and_its_end_are_the_regions() -> None:
    samples = [
        [0, 1, 4],  # before any region: set-up
        [0, 1, 2],
        [0, 1, 2],  # the begin marker, twice
        [0, 1, 4],
        [0, 1, 4, 5],
        [0, 1, 3],  # end
        [0, 1, 5],  # after: the check
        [0, 1, 2],
        [0, 1, 5],  # a region whose end the sampler missed ...
        [0, 1, 2],  # ... is dropped when the next begins
        [0, 1, 5],
        [0, 1, 3],
    ]
    stacks, seen, dropped = region_stacks(FRAMES, samples, lambda f: f["name"])
    assert stacks == {("f",): 1, ("f", "g"): 1, ("g",): 1}
    assert (seen, dropped) == (3, 1)


def _process(runtime: str, f: int, g: int, rest: int = 800) -> ProcessSamples:
    """A process of 1,000 ns/op whose samples are *f* in f, *g* in g, and *rest* elsewhere."""
    return ProcessSamples(
        runtime=runtime,
        stacks={("main",): rest, ("main", "f"): f, ("main", "g"): g},
        ops=1000,
        elapsed_ns=1000 * (f + g + rest),
        regions=10,
    )


def test_a_function_is_named_only_beyond_noise() -> None:
    # f costs 100 ns/op more on B in every process; g differs by noise (50 +- 20 on both).
    a = [_process("trio", 100, g) for g in (30, 70, 50, 40, 60)]
    b = [_process("trio", 200, g) for g in (65, 35, 50, 58, 42)]
    ex = explain_time(a, b, title="t", labels=("A", "B"), scenario="s")
    rows = {name: (self_d, incl_d) for name, self_d, incl_d in ex.functions()}
    assert rows["f"][0][0] == pytest.approx(100.0)
    assert beyond_noise(rows["f"][0])
    assert not beyond_noise(rows["g"][0])
    text = "\n".join(time_lines(ex, processes=(5, 5)))
    assert "from time, not counts" in text
    assert "5 + 5 processes" in text
    assert "main -> f" in text
    named = [x for x in text.splitlines() if x.strip().startswith("f ")]
    assert len(named) == 1
    assert not [x for x in text.splitlines() if x.strip().startswith("g ")]


def test_a_gap_within_noise_is_not_explained() -> None:
    a = [_process("trio", 100, 50, rest) for rest in (700, 900, 800)]
    b = [_process("trio", 100, 50, rest) for rest in (850, 750, 810)]
    ex = explain_time(a, b, title="t", labels=("A", "B"), scenario="s")
    assert ex.gap[1] <= 0 <= ex.gap[2]
    assert "within noise: not significant" in "\n".join(time_lines(ex, processes=(3, 3)))


def test_welch_interval_of_a_difference() -> None:
    diff, low, high = difference_interval([1.0, 2.0, 3.0], [11.0, 12.0, 13.0])
    assert diff == 10.0
    assert low < 10.0 < high
    assert low > 7.0  # t(4 df) 2.776 x sqrt(2/3)


# -- the one-line errors -----------------------------------------------------------------------


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    return err


def test_without_py_spy_the_time_path_is_one_line_saying_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_sampling.shutil, "which", lambda *_, **__: None)
    assert main(["explain", "--time", str(SCENARIOS), "--sides", "asyncio,trio"]) == 2
    assert "pip install py-spy" in _one_line(capsys)


def test_a_benchmark_not_found_is_one_line_naming_the_choices(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_sampling, "find_py_spy", lambda: "py-spy")
    argv = ["explain", "--time", str(SCENARIOS), "--sides", "asyncio,trio", "--scenario", "nope"]
    assert main(argv) == 2
    err = _one_line(capsys)
    assert "no benchmark 'nope'" in err
    assert "timers" in err


def test_the_time_path_needs_two_runtimes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "--time", str(SCENARIOS), "--sides", "trio"]) == 2
    assert "--sides RUNTIME,RUNTIME" in _one_line(capsys)


# -- the report's section ----------------------------------------------------------------------


def test_the_report_explains_the_largest_differences_and_links_their_flame_graphs(
    tmp_path: Path,
) -> None:
    counts = run(
        bench("asyncio"),
        bench("trio", extra_calls_per_op=4),
        bench("uvloop"),  # the same work as asyncio: not significant, not explained
    )
    lines = explained_section([counts], tmp_path)
    assert lines[0] == "## Explained differences (counts)"
    [item] = [x for x in lines if x.startswith("- ")]
    assert "spawn on asyncio vs trio at N=1,000" in item
    assert "`body -> work` (anyio) +28/op, 100%" in item
    [svg] = tmp_path.iterdir()
    assert f"[Flame graph]({svg.name})" in item


def test_the_report_has_no_explained_section_without_the_traced_round(tmp_path: Path) -> None:
    untraced = dataclasses.replace(bench("trio", extra_calls_per_op=4), python_work={}, stacks={})
    assert explained_section([run(bench("asyncio"), untraced)], tmp_path) == []


def test_a_function_moved_to_another_file_is_one_frame() -> None:
    old, new = (
        "anyio/_backends/_asyncio.py:TaskGroup.start_soon",
        "anyio/abc/_tasks.py:TaskGroup.start_soon",
    )
    a = {("run", old, "x.py:_spawn"): 30.0}
    b = {("run", new, "x.py:create_task"): 50.0}
    moved = moved_functions({n for p in a for n in p}, {n for p in b for n in p})
    assert moved == {old: new}
    [frame] = responsible(merged_tree(renamed(a, moved), b))
    assert frame.path == ("run", new)
    assert (frame.a, frame.b) == (30.0, 50.0)
    assert [names for names, _, _ in frame.parts] == [("x.py:_spawn",), ("x.py:create_task",)]


def test_the_frames_every_sample_starts_with_are_dropped() -> None:
    assert common_prefix([("run", "loop", "a"), ("run", "loop", "b"), ("run", "x")]) == ("run",)
    assert common_prefix([("run", "a"), ("run", "a")]) == ("run",)


def test_functions_of_two_libraries_are_never_one_frame() -> None:
    moved = moved_functions({"asyncio/tasks.py:sleep"}, {"trio/_timeouts.py:sleep"})
    assert moved == {}


def test_a_runtime_whose_work_is_one_loop_shows_what_the_loop_calls() -> None:
    a = {(OUTSIDE, "_run_once"): 10.0, (OUTSIDE, "_run_once", "Handle._run"): 40.0}
    b = {
        (OUTSIDE, "unrolled_run"): 20.0,
        (OUTSIDE, "unrolled_run", "expire"): 50.0,
        (OUTSIDE, "unrolled_run", "task_exited"): 30.0,
    }
    [frame] = responsible(merged_tree(a, b))
    assert frame.parts == (
        (("_run_once", "Handle._run"), 40.0, 0.0),
        (("_run_once", "(itself)"), 10.0, 0.0),
        (("unrolled_run", "expire"), 0.0, 50.0),
        (("unrolled_run", "task_exited"), 0.0, 30.0),
        (("unrolled_run", "(itself)"), 0.0, 20.0),
    )


def test_the_runtime_frame_shows_the_loop_below_its_chain_of_callers() -> None:
    a = {(OUTSIDE, "run", "run_forever", "_run_once", "Handle._run"): 40.0}
    b = {(OUTSIDE, "trio_run", "unrolled_run", "expire"): 50.0}
    [frame] = responsible(merged_tree(a, b))
    assert frame.parts == (
        (("_run_once", "Handle._run"), 40.0, 0.0),
        (("unrolled_run", "expire"), 0.0, 50.0),
    )


FAKE_PY_SPY = """#!{python}
# A stand-in for py-spy: runs the command after --, passing standard input and output through,
# and writes a speedscope file with two regions' samples (the worker's markers around them).
import json, subprocess, sys
args = sys.argv[1:]
out = args[args.index("--output") + 1]
code = subprocess.run(args[args.index("--") + 1 :]).returncode
frames = [
    {{"name": "run_round", "file": "/x/src/anybench/_harness.py", "line": 1}},
    {{"name": "region_begins", "file": "/x/src/anybench/_counts_worker.py", "line": 2}},
    {{"name": "region_ends", "file": "/x/src/anybench/_counts_worker.py", "line": 3}},
    {{"name": "spin", "file": "{scenarios}/spawn.py", "line": 4}},
]
samples = [[0, 1], [0, 3], [0, 3], [0, 2], [0, 1], [0, 3], [0, 2]]
profile = {{"type": "sampled", "samples": samples, "weights": [1] * len(samples)}}
json.dump({{"shared": {{"frames": frames}}, "profiles": [profile]}}, open(out, "w"))
sys.exit(code)
"""


def test_a_sampled_process_runs_the_worker_and_keeps_its_regions_samples(tmp_path: Path) -> None:
    import sys

    fake = tmp_path / "py-spy"
    fake.write_text(FAKE_PY_SPY.format(python=sys.executable, scenarios=SCENARIOS))
    fake.chmod(0o755)
    got = _sampling.sample_process(
        "spawn", str(SCENARIOS), "asyncio", 10, seconds=0.05, py_spy=str(fake)
    )
    assert got.stacks == {("spawn.py:spin",): 3}
    assert (got.regions, got.dropped) == (2, 0)
    assert got.ops >= 10  # the worker's own count of the operations it ran
    assert got.elapsed_ns > 0
    assert got.anyio  # from the worker's hello: what labels an A/B of versions
    # The region's samples share out its time per operation.
    assert sum(got.per_op().values()) == pytest.approx(got.ns_per_op)


def test_an_ab_of_versions_needs_two_pythons_that_exist_and_one_runtime(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_sampling, "find_py_spy", lambda: "py-spy")
    base = ["explain", "--time", str(SCENARIOS), "--scenario", "spawn"]
    assert main([*base, "--sides", "asyncio,trio", "--pythons", "a,b"]) == 2
    assert "--sides one runtime" in _one_line(capsys)
    missing = str(tmp_path / "venv" / "bin" / "python")
    assert main([*base, "--sides", "asyncio", "--pythons", f"{missing},{missing}"]) == 2
    assert f"no Python at {missing}" in _one_line(capsys)


def test_a_library_function_is_named_alike_in_any_environment() -> None:
    key_of = _sampling._key_maker([])
    for prefix in ("/work/venv413/lib/python3.11/site-packages", "/opt/py/lib/python3.11"):
        frame = {"name": "TaskGroup.start_soon", "file": f"{prefix}/anyio/abc/_tasks.py", "line": 1}
        assert key_of(frame) == "anyio/abc/_tasks.py:TaskGroup.start_soon"
