"""The sweep axes, declared once, and the profiles' values along them."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from anybench import ScenarioSpec
from anybench._sweep import (
    AXES,
    LOAD,
    PROFILES,
    Axis,
    N,
    Profile,
    ScaleError,
    axis_named,
    scale_text,
    scales,
)


def test_each_axis_is_a_field_of_every_profile() -> None:
    assert list(AXES) == [N.name, LOAD.name]
    fields = {field.name for field in dataclasses.fields(Profile)}
    assert set(AXES) <= fields
    assert len({axis.symbol for axis in AXES.values()}) == len(AXES)
    assert len({axis.option for axis in AXES.values()}) == len(AXES)


@pytest.mark.parametrize("name", list(PROFILES))
def test_profiles_stay_at_or_above_each_axis_lowest_value(name: str) -> None:
    for axis in AXES.values():
        values = PROFILES[name].values(axis)
        assert values == PROFILES[name].values(axis.name)
        assert values == tuple(sorted(values))
        assert min(values) >= axis.lowest, (name, axis.name)


def test_scales_default_to_n_and_cap_at_max_n() -> None:
    assert scales("full", max_n=1_000) == tuple(n for n in PROFILES["full"].n if n <= 1_000)
    assert scales("quick", axis=LOAD) == PROFILES["quick"].load


def test_an_unknown_axis_is_named_in_one_line() -> None:
    with pytest.raises(ValueError, match=r"^unknown sweep axis 'm'; choose from: n, load$"):
        PROFILES["quick"].values("m")
    with pytest.raises(ValueError, match=r"^unknown sweep axis 'm'; choose from: n, load$"):
        scale_text("m", 1)


def test_a_scale_is_written_with_its_axis_symbol() -> None:
    assert scale_text(N, 1_000) == "N=1,000"
    assert scale_text("n", 7) == "N=7"
    assert scale_text("load", 10) == "B=10"
    assert axis_named("load") is LOAD


def test_an_axis_parses_its_option_down_to_its_lowest_value() -> None:
    assert N.parse(" 10, 1_000") == (10, 1_000)
    assert LOAD.parse("0,100") == (0, 100)  # no load is a load
    for axis, text in ((N, "0"), (N, "ten"), (N, ""), (LOAD, "-1"), (N, " ")):
        with pytest.raises(ScaleError) as info:
            axis.parse(text)
        message = f"{axis.option} takes integers of at least {axis.lowest} like 10,1000; got"
        assert str(info.value) == f"{message} {text!r}"


def test_an_axis_refuses_a_repeated_value_or_an_empty_item() -> None:
    # Two benchmarks of one scale would share a key, and the results file refuses that.
    for text, value in (("10,10", "10"), ("10,1_000,1000", "1,000")):
        with pytest.raises(ScaleError) as info:
            N.parse(text)
        assert str(info.value) == f"--scales {text!r} gives {value} twice; give each value once"
    for text in ("10,,20", "10,", ",10"):
        with pytest.raises(ScaleError) as info:
            LOAD.parse(text)
        assert str(info.value) == (
            f"--loads {text!r} has an empty item; give values like 10,1000, with no empty one"
        )


def test_the_contract_takes_its_axes_from_the_sweep(monkeypatch: pytest.MonkeyPatch) -> None:
    width = Axis("width", "W", "--widths", 2, "W, widths", "widths W", default_values=(2, 4))
    latency = Axis("gap", "G", "--gaps", 0, "G", "gaps G", counts_operations=False)
    monkeypatch.setitem(AXES, width.name, width)
    monkeypatch.setitem(AXES, latency.name, latency)

    async def run(n: int, probe: object) -> None:
        pass

    fields = {"NAME": "s", "OPERATION": "op", "LATENCIES": {}, "run": run, "OPS_PER_N": 3}
    spec = ScenarioSpec.from_module(type("M", (), {**fields, "AXIS": "width"}))
    assert spec.ops(5) == 15
    assert PROFILES["quick"].values(width) == (2, 4)
    with pytest.raises(ValueError, match="AXIS 'gap' needs SAMPLES"):
        ScenarioSpec.from_module(type("M", (), {**fields, "AXIS": "gap"}))
    spec = ScenarioSpec.from_module(type("M", (), {**fields, "AXIS": "gap", "SAMPLES": 50}))
    assert spec.ops(5) == 50


#: A plugin that declares a throwaway axis before anybench's plugin adds its options, as one
#: entry in AXES would.
AXIS_PLUGIN = """
from anybench import _sweep

WIDTH = _sweep.Axis(
    "width", "W", "--widths", 2, "W, tasks side by side", "widths W for width scenarios",
    default_values=(2, 4),
)
_sweep.AXES[WIDTH.name] = WIDTH
"""

WIDTH_SCENARIO = """
NAME = "wide"
OPERATION = "one task of W"
LATENCIES = {}
AXIS = "width"

async def run(n, probe):
    probe.start(ops=n)
    probe.stop()
"""


def _collect(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    env["PYTHONPATH"] = str(project)
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "axis_plugin"]
    return subprocess.run(
        [*command, "--scenarios", "wide.py", "--runtime", "asyncio", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_an_axis_is_one_entry_its_option_and_parsing_follow(tmp_path: Path) -> None:
    (tmp_path / "axis_plugin.py").write_text(textwrap.dedent(AXIS_PLUGIN))
    (tmp_path / "wide.py").write_text(textwrap.dedent(WIDTH_SCENARIO))

    shown = _collect(tmp_path, "--help")
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "--widths=W,W" in shown.stdout
    assert "comma-separated widths W for width scenarios" in shown.stdout

    given = _collect(tmp_path, "--collect-only", "-q", "--widths", "3,5")
    assert given.returncode == 0, given.stdout[-2000:] + given.stderr[-2000:]
    assert "wide.py::test_scenario[wide-3-asyncio]" in given.stdout
    assert "wide.py::test_scenario[wide-5-asyncio]" in given.stdout

    default = _collect(tmp_path, "--collect-only", "-q")
    assert "wide.py::test_scenario[wide-4-asyncio]" in default.stdout, default.stderr[-2000:]

    wrong = _collect(tmp_path, "--collect-only", "-q", "--widths", "1")
    assert wrong.returncode == 4
    assert (
        wrong.stderr.strip() == "ERROR: --widths takes integers of at least 2 like 10,1000; got '1'"
    )
