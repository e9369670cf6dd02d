"""A worker loads its environment's compiled extension modules from copies of their files made
for that process (anybench._fresh): a fresh placement in memory in every process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from anybench._fresh import FreshCopies
from anybench._measure import Plan, Variant, measure_matrix, scenario_groups
from anybench._sweep import Budget


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
    probe.start(ops=n)
    probe.stop()
    with open("/proc/self/maps") as maps:
        mapped = {line.split(None, 5)[5].strip() for line in maps if "/loop.cpython" in line}
    with open(os.path.join(os.environ["FRESH_MARKS"], str(os.getpid())), "w") as f:
        f.write("\\n".join(sorted(mapped)))
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
    loaded = [path.read_text() for path in marks.iterdir()]
    assert len(loaded) == 2  # two workers
    assert all(file.startswith(str(temp)) and file.endswith("(deleted)") for file in loaded)
    assert len(set(loaded)) == 2  # a copy each
    assert list(temp.iterdir()) == []
