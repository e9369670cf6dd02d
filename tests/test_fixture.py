"""What a person sees of a run of their own scenarios: a figure that cannot be right is noted
(and kept), a scenario's failure shows the scenario's own line, not anybench's frames, and rounds
that spread as on a noisy machine are named as each pass ends."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from anybench._fixture import noisy_so_far
from anybench._results import below_clock_note

LIAR = '''
"""Claims a million operations for each of its twenty thousand loop turns."""
NAME = "liar"
OPERATION = "a loop turn"
LATENCIES = {}


async def run(n, probe):
    probe.start(ops=n * 20_000 * 1_000_000)
    for _ in range(n * 20_000):
        pass
    probe.stop()
'''

BUGGY = '''
"""Fails in its own code."""
NAME = "buggy"
OPERATION = "nothing"
LATENCIES = {}


def helper(n):
    raise ValueError(f"no good at {n}")


async def run(n, probe):
    probe.start(ops=n)
    helper(n)
    probe.stop()
'''


UNEVEN = '''
"""Every other round's region sleeps twice as long: rounds that spread as on a noisy machine."""
import time

NAME = "uneven"
OPERATION = "a sleep"
LATENCIES = {}
_rounds = [0]


async def run(n, probe):
    _rounds[0] += 1
    probe.start(ops=n)
    time.sleep(0.002 * (1 + _rounds[0] % 2))
    probe.stop()
'''


def _run(tmp_path: Path, scenario: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--scenarios", scenario,
            "--scales", "10", "--runtime", "asyncio", "--processes", "2", "--rounds", "1", *args,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip


def test_a_figure_below_one_clock_reading_is_noted_and_kept(tmp_path: Path) -> None:
    (tmp_path / "liar.py").write_text(textwrap.dedent(LIAR))
    out = tmp_path / "run.json"
    proc = _run(tmp_path, "liar.py", f"--benchmark-json={out}")
    assert proc.returncode == 0, proc.stdout[-3000:]
    [bench] = json.loads(out.read_text())["benchmarks"]  # the figure is saved all the same
    kept = bench["extra_info"]
    notes = [line for line in proc.stdout.splitlines() if "below one clock reading" in line]
    assert len(notes) == 1, proc.stdout[-3000:]
    # the note is about the figure the file keeps, and the clock cost the file states
    assert notes[0].startswith(
        f"test_scenario[liar-10-asyncio]: {kept['ns_per_op']:.3g} ns/op is below one clock "
        f"reading ({kept['timer_cost_ns']:.0f} ns)"
    )
    assert "its operation count is probably wrong (OPS_PER_N" in notes[0]
    assert "anybench notes" in proc.stdout


def test_a_figure_above_one_clock_reading_has_no_note() -> None:
    assert below_clock_note("b", 69.0, 68.0) is None
    assert below_clock_note("b", float("nan"), 68.0) is None
    note = below_clock_note("b", 4.67, 68.0)
    assert note is not None
    assert note.startswith("b: 4.67 ns/op is below one clock reading (68 ns)")


def test_a_scenarios_failure_shows_its_own_line_first(tmp_path: Path) -> None:
    (tmp_path / "buggy.py").write_text(textwrap.dedent(BUGGY))
    proc = _run(tmp_path, "buggy.py")
    assert proc.returncode == 1, proc.stdout[-3000:]
    failures = proc.stdout[proc.stdout.index("= FAILURES =") : proc.stdout.index("short test")]
    lines = failures.splitlines()
    error = next(i for i, line in enumerate(lines) if "ScenarioFailed:" in line)
    assert lines[error].endswith("buggy on asyncio at N=10: ValueError: no good at 10")
    assert lines[error + 1].endswith(f'File "{tmp_path / "buggy.py"}", line 9, in helper')
    assert lines[error + 2].endswith('raise ValueError(f"no good at {n}")')
    # anybench's own frames are left out.
    assert "_fixture.py" not in failures
    assert "_measure.py" not in failures
    assert len(lines) < 20, failures


def test_a_pass_whose_rounds_spread_says_the_run_will_be_wide(tmp_path: Path) -> None:
    (tmp_path / "uneven.py").write_text(textwrap.dedent(UNEVEN))
    proc = _run(tmp_path, "uneven.py", "--rounds", "4")
    assert proc.returncode == 0, proc.stdout[-3000:]
    line = next(line for line in proc.stdout.splitlines() if "pass 1 over the matrix" in line)
    # rounds of 2 and 4 ms in turn: the sd of their logs is 0.4 (39% here: a sleep overruns a
    # little), far above the threshold even where a busy machine stretches every sleep
    said = re.search(r"; rounds within a worker process spread ±(\d+)% so far \(above ±5%\)", line)
    assert said is not None, line
    assert int(said[1]) > 5, line
    assert line.endswith("Ctrl-C stops it and keeps what finished")


def test_rounds_within_the_threshold_add_nothing_to_the_pass_line() -> None:
    assert noisy_so_far(None) == ""
    assert noisy_so_far(0.05) == ""
    assert noisy_so_far(0.051).startswith("; rounds within a worker process spread ±5% so far")
