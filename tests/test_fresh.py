"""A worker loads its environment's compiled extension modules from copies of their files made
for that process (anybench._fresh): a fresh placement in memory in every process."""

from __future__ import annotations

import copy
import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from anybench import _fresh, _measure
from anybench._compare import format_comparison
from anybench._fresh import LARGE_BLOCKS, LARGE_BYTES, SMALL_BYTES, SMALL_OBJECTS, FreshCopies
from anybench._measure import Plan, Variant, measure_group, measure_matrix, scenario_groups
from anybench._results import load, read_record
from anybench._sweep import Budget

from .test_busy import fake_workers
from .test_results import RESULTS


def _in_fresh_python(tmp_path: Path, code: str) -> dict[str, object]:
    """Run *code* after ``_fresh.install()`` in a fresh interpreter whose temporary directory
    is *tmp_path*/tmp; what it prints last, read as JSON."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    script = "import json, sys\nfrom anybench import _fresh\n_fresh.install()\n"
    done = subprocess.run(
        [sys.executable, "-c", script + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={**os.environ, "TMPDIR": str(temp)},
        check=True,
    )
    found: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    found["stderr"] = done.stderr
    found["left in tmp"] = sorted(p.name for p in temp.iterdir())
    return found


#: Where the running process maps a file named like uvloop's compiled loop from (Linux).
MAPPED = """
        def mapped():
            with open("/proc/self/maps") as maps:
                return sorted({line.split(None, 5)[5].strip() for line in maps
                               if "/loop.cpython" in line})
        """

linux_only = pytest.mark.skipif(
    not Path("/proc/self/maps").exists(), reason="reads where the process maps its files"
)


@linux_only
def test_an_installed_librarys_extension_loads_from_a_copy_that_is_then_removed(
    tmp_path: Path,
) -> None:
    pytest.importorskip("uvloop")
    found = _in_fresh_python(
        tmp_path,
        MAPPED
        + """
        import importlib.util
        importlib.util.find_spec("uvloop.loop")  # found, not loaded: nothing is copied
        import os, uvloop, uvloop.loop, asyncio
        assert uvloop.run(asyncio.sleep(0, "ran")) == "ran"
        print(json.dumps({"file": uvloop.loop.__file__, "mapped": mapped(),
                          "copied": _fresh.FROM_COPY, "own": _fresh.FROM_OWN_FILE}))
        """,
    )
    assert found["copied"] == ["uvloop.loop"]
    assert found["own"] == {}
    # The process runs a copy, in a directory of its own, removed once loaded...
    [mapped] = found["mapped"]
    assert mapped.startswith(str(tmp_path / "tmp"))
    assert mapped.endswith("(deleted)")
    assert found["left in tmp"] == []
    # ... and the module names its own file.
    assert Path(str(found["file"])).exists()
    assert not str(found["file"]).startswith(str(tmp_path))


def test_the_standard_librarys_extensions_load_from_their_own_files(tmp_path: Path) -> None:
    """The base installation's modules, which every environment of the interpreter shares."""
    found = _in_fresh_python(
        tmp_path,
        """
        import importlib.machinery, importlib.util
        # One not yet imported, and not built into the interpreter (as some builds have cmath).
        name = next((name for name in ("cmath", "_lsprof", "mmap", "_bz2", "_lzma", "_ctypes")
                     if name not in sys.modules and name not in sys.builtin_module_names
                     and isinstance(getattr(importlib.util.find_spec(name), "loader", None),
                                    importlib.machinery.ExtensionFileLoader)), None)
        if name is not None:
            module = importlib.import_module(name)
        print(json.dumps({"name": name, "file": name and module.__file__,
                          "copied": _fresh.FROM_COPY}))
        """,
    )
    if found["name"] is None:
        pytest.skip("no standard library extension module left to import")
    assert found["copied"] == []
    assert Path(str(found["file"])).exists()


@pytest.mark.parametrize(
    ("origin", "copied"),
    [
        ("/base/lib/python3.x/lib-dynload/_asyncio.so", False),
        ("/base/lib/python3.x/site-packages/uvloop/loop.so", True),  # installed in the base
        ("/venv/lib/python3.x/site-packages/rloop/_rloop.so", True),
        ("/project/build/_speedups.so", True),
    ],
)
def test_what_is_copied_is_what_the_environments_do_not_share(origin: str, copied: bool) -> None:
    finder = FreshCopies(
        stdlib=["/base/lib/python3.x"],
        installed=["/base/lib/python3.x/site-packages", "/venv/lib/python3.x/site-packages"],
    )
    assert finder.copies(origin) is copied


#: Code that makes the copy fail to load (as one that finds its libraries beside its own file
#: would, or where the temporary directory forbids executing), or fail to be made (a full disk).
FAILING = {
    "to load": """
        import _imp, tempfile
        real = _imp.create_dynamic
        def refusing(spec, *args):
            if spec.origin.startswith(tempfile.gettempdir()):
                raise ImportError("cannot open shared object file: refused by the test")
            return real(spec, *args)
        _imp.create_dynamic = refusing
        """,
    "to be made": """
        import shutil
        def full(*args, **kwargs):
            raise OSError(28, "No space left on device")
        shutil.copyfile = full
        """,
}


@pytest.mark.parametrize(
    ("failing", "why"),
    [
        ("to load", "cannot open shared object file: refused by the test"),
        ("to be made", "[Errno 28] No space left on device"),
    ],
)
def test_an_extension_whose_copy_fails_loads_from_its_own_file(
    tmp_path: Path, failing: str, why: str
) -> None:
    """It loads all the same, and says so on standard error."""
    pytest.importorskip("uvloop")
    found = _in_fresh_python(
        tmp_path,
        FAILING[failing]
        + """
        import uvloop.loop
        print(json.dumps({"file": uvloop.loop.__file__, "copied": _fresh.FROM_COPY,
                          "own": _fresh.FROM_OWN_FILE}))
        """,
    )
    assert found["copied"] == []
    assert found["own"] == {"uvloop.loop": why}
    assert Path(str(found["file"])).exists()
    assert found["left in tmp"] == []
    assert "uvloop.loop loads from its own file" in str(found["stderr"])


#: Notes the file its runtime's loop was loaded from, in $FRESH_MARKS/<pid>.
NOTING = '''
"""Notes where uvloop's compiled loop is mapped from, for the test of fresh copies."""
import os

NAME = "noting_fresh"
OPERATION = "a loop turn"
LATENCIES = {}


async def run(n, probe):
    from anybench import _fresh

    probe.start(ops=n)
    probe.stop()
    with open("/proc/self/maps") as maps:
        mapped = {line.split(None, 5)[5].strip() for line in maps if "/loop.cpython" in line}
    with open(os.path.join(os.environ["FRESH_MARKS"], str(os.getpid())), "w") as f:
        f.write("\\n".join(sorted(mapped)))
    with open(os.path.join(os.environ["FRESH_MARKS"], f"{os.getpid()}.shift"), "w") as f:
        f.write(str(_fresh.SHIFTED_BYTES))
'''


@linux_only
def test_every_worker_loads_the_runtimes_compiled_code_from_a_copy_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("uvloop")
    (tmp_path / "noting_fresh.py").write_text(textwrap.dedent(NOTING))
    marks, temp = tmp_path / "marks", tmp_path / "tmp"
    marks.mkdir()
    temp.mkdir()
    monkeypatch.setenv("FRESH_MARKS", str(marks))
    monkeypatch.setenv("TMPDIR", str(temp))
    keys = [(10, "uvloop", "a")]
    groups = scenario_groups("noting_fresh", keys, sys_path=[str(tmp_path), *sys.path])
    plan = Plan(
        Budget(processes=2, max_processes=2, target_ops=10, time_budget_s=10,
               min_rounds=1, max_rounds=1, latency_rounds=0),
        deadline_s=60,
    )  # fmt: skip
    [found] = measure_matrix(groups, plan, {"a": Variant("a", sys.executable)})
    assert found[keys[0]].failure is None
    # ... which the benchmark's measurement says, for its results.
    assert "uvloop.loop" in found[keys[0]].copied
    assert (found[keys[0]].own_file, found[keys[0]].own_file_processes) == ({}, 0)
    loaded = [path.read_text() for path in marks.iterdir() if path.suffix != ".shift"]
    shifts = [int(path.read_text()) for path in marks.glob("*.shift")]
    assert len(loaded) == len(shifts) == 2  # two workers
    # Each held a heap shift of its own draw before the scenario ran, and said so.
    assert shifts[0] != shifts[1]
    assert sorted(found[keys[0]].process_heap_shift) == sorted(shifts)  # type: ignore[type-var]
    assert all(
        0 < shift <= SMALL_OBJECTS * SMALL_BYTES + LARGE_BLOCKS * LARGE_BYTES for shift in shifts
    )
    assert all(file.startswith(str(temp)) and file.endswith("(deleted)") for file in loaded)
    assert len(set(loaded)) == 2  # a copy each
    assert list(temp.iterdir()) == []


def test_the_heap_is_shifted_by_a_random_amount_held_for_the_life_of_the_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_fresh, "_SHIFT", [])
    monkeypatch.setattr(_fresh, "SHIFTED_BYTES", None)
    held = _fresh.shift_heap(random.Random(1))
    assert held == _fresh.SHIFTED_BYTES == sum(len(item) for item in _fresh._SHIFT) > 0
    small = [item for item in _fresh._SHIFT if isinstance(item, bytes)]
    large = [item for item in _fresh._SHIFT if isinstance(item, bytearray)]
    assert len(small) <= SMALL_OBJECTS
    assert all(1 <= len(b) <= SMALL_BYTES for b in small)
    assert len(large) <= LARGE_BLOCKS
    assert all(SMALL_BYTES < len(b) <= LARGE_BYTES for b in large)
    assert _fresh.shift_heap() == 0  # once a process
    monkeypatch.setattr(_fresh, "_SHIFT", [])
    monkeypatch.setattr(_fresh, "SHIFTED_BYTES", None)
    assert _fresh.shift_heap(random.Random(2)) != held  # another draw, another shift


# -- what the results say of it --------------------------------------------------------------


def test_the_parent_counts_the_processes_that_loaded_compiled_code_from_its_own_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def finished(pid: int) -> dict[str, Any]:
        # The second worker's copy could not be made: it loaded uvloop's from its own file.
        if pid == 101:
            return {
                "copied": (),
                "own_file": {"uvloop.loop": "no space left"},
                "heap_shift_bytes": 5,
            }
        return {"copied": ("uvloop.loop",), "heap_shift_bytes": 7}

    monkeypatch.setattr(_measure, "run_worker", fake_workers(finished))
    plan = Plan(budget=Budget(processes=2, max_processes=2))
    [m] = measure_group("x", [(10, "uvloop", "")], plan, {"": Variant()}).values()
    assert m.copied == {"uvloop.loop"}
    assert (m.own_file, m.own_file_processes) == ({"uvloop.loop": "no space left"}, 1)
    assert m.process_heap_shift == [7, 5]
    # A worker that says nothing of either (an older anybench's, as bench_ab's base runs)
    monkeypatch.setattr(_measure, "run_worker", fake_workers(lambda pid: {}))
    [m] = measure_group("x", [(10, "uvloop", "")], plan, {"": Variant()}).values()
    assert (m.copied, m.process_heap_shift) == (None, [None, None])


def _with_copies(own: dict[str, str], processes: int) -> dict[str, Any]:
    data = copy.deepcopy(RESULTS)
    for bench in data["benchmarks"]:
        extra = bench["extra_info"]
        extra["copied_modules"] = ["uvloop.loop"]
        extra["own_file_modules"] = own if extra["runtime"] == "trio" else {}
        extra["own_file_processes"] = processes if extra["runtime"] == "trio" else 0
        extra["process_heap_shift_bytes"] = [1234]
    return data


def test_results_keep_what_was_copied_and_what_was_not(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    path.write_text(json.dumps(_with_copies({"uvloop.loop": "no space left"}, 1)))
    run = load(path)
    trio = next(r for r in run.records if r.runtime == "trio")
    assert trio.copied_modules == ("uvloop.loop",)
    assert (trio.own_file_modules, trio.own_file_processes) == ({"uvloop.loop": "no space left"}, 1)
    assert run.placed_afresh
    assert run.placement is not None
    assert "uvloop.loop (no space left)" in run.placement
    # A file written before workers made copies says nothing of it.
    old = tmp_path / "old.json"
    old.write_text(json.dumps(RESULTS))
    assert not load(old).placed_afresh
    assert load(old).placement is None
    assert all(r.copied_modules is None for r in load(old).records)


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("copied_modules", "uvloop.loop", "copied_modules must be a list of module names"),
        ("own_file_modules", ["uvloop.loop"], "own_file_modules must map module names to why"),
        ("own_file_processes", 2, "own_file_processes must count the processes"),
        ("own_file_processes", 0, "own_file_processes must count the processes"),
        ("own_file_processes", True, "own_file_processes must count the processes"),
        ("own_file_modules", [], "own_file_modules must map module names to why"),
        ("own_file_modules", {"": "why"}, "own_file_modules must map module names to why"),
        ("process_heap_shift_bytes", [-1], "process_heap_shift_bytes must list whole bytes"),
        ("process_heap_shift_bytes", [1, 2], "process_heap_shift_bytes names 2 processes"),
    ],
)
def test_malformed_copies_are_refused_in_one_line(key: str, value: Any, problem: str) -> None:
    extra = copy.deepcopy(RESULTS["benchmarks"][0]["extra_info"])
    extra |= {"own_file_modules": {"uvloop.loop": "why"}, "own_file_processes": 1}
    read_record("x", dict(extra))  # as written, it loads: one process, one module
    extra[key] = value
    with pytest.raises(ValueError, match=problem):
        read_record("x", extra)


def test_compare_says_where_compiled_code_was_not_placed_afresh(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.json"
    fresh.write_text(json.dumps(_with_copies({}, 0)))
    fallen = tmp_path / "fallen.json"
    fallen.write_text(json.dumps(_with_copies({"uvloop.loop": "no space left"}, 1)))
    before = tmp_path / "before.json"
    before.write_text(json.dumps(RESULTS))
    text, _ = format_comparison(load(fresh), load(fresh), threshold=0.1)
    assert "PLACEMENT" not in text
    text, _ = format_comparison(load(fresh), load(fallen), threshold=0.1)
    [line] = [line for line in text.splitlines() if "PLACEMENT" in line]
    assert line.startswith("PLACEMENT new run: compiled code loaded from its own file")
    text, _ = format_comparison(load(before), load(fresh), threshold=0.1)
    [line] = [line for line in text.splitlines() if "PLACEMENT" in line]
    assert line.startswith("PLACEMENT: only the new run's workers placed their code and objects")
    # One that copied but did not shift its heap (2026-12-05, before 18fd81c) is not afresh.
    unshifted = _with_copies({}, 0)
    for bench in unshifted["benchmarks"]:
        bench["extra_info"]["process_heap_shift_bytes"] = [None]
    half = tmp_path / "half.json"
    half.write_text(json.dumps(unshifted))
    assert not load(half).placed_afresh
