"""The benchmark matrix: which scenarios, scales, runtimes and variants the options choose, and
the ``pytest.param`` lists that parametrize it.

The pytest plugin (:mod:`anybench.pytest_plugin`) declares the options and calls these from its
hooks; a project's own conftest calls the public ones through the plugin's names
(``anybench.pytest_plugin.scenario_params`` and the others). A scenario's scales are its axis's
(:data:`anybench._sweep.AXES`): each axis's option (``--scales``, ``--loads``) chooses them,
else ``--profile``.
"""

from __future__ import annotations

import functools
import math
import os
import shutil
import subprocess
import types
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from ._fixture import MeasureScenario
from ._measure import Variant, pairing_problem
from ._runtimes import Runtime, UnknownRuntimeError, select_runtimes
from ._scenario import ScenarioError, ScenarioSpec
from ._sweep import AXES, Axis, N, ScaleError, UnknownProfileError, axis_named, scale_text, scales

#: The bounds of the whole-number options (a run of a billion rounds would never end).
BOUNDS: dict[str, tuple[int, int]] = {
    "processes": (2, 1_000),
    "max_processes": (2, 1_000),
    "rounds": (1, 10_000),
}
#: The longest --deadline: a day.
MAX_DEADLINE_S = 86_400


def physical_memory_mb() -> float | None:
    """This machine's physical memory in MiB, or None where it cannot be known."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20
    except (ValueError, OSError, AttributeError):
        return None


def memory_limit_ceiling_mb() -> float | None:
    """The highest --memory-limit: twice the physical memory (a limit far past it, swap and
    all, would kill nothing); None where the memory cannot be known."""
    physical = physical_memory_mb()
    return 2 * physical if physical else None


def comma_list(value: str, option: str = "") -> list[str]:
    """The names in a comma-separated option value; with *option*, an empty one is an error
    (an empty value must not silently mean "all")."""
    names = [part.strip() for part in value.split(",") if part.strip()]
    if option and not names:
        raise pytest.UsageError(
            f"--{option} {value!r} names nothing; give one or more names, or leave it out for all"
        )
    return names


def axis_dest(axis: Axis) -> str:
    """Where pytest keeps the value of *axis*'s option: ``--scales`` in ``scales``."""
    return axis.option.removeprefix("--").replace("-", "_")


def selected_runtimes(config: pytest.Config) -> list[Runtime]:
    """The runtimes chosen with ``--runtime`` (all by default)."""
    names = [name for value in config.getoption("runtime") for name in comma_list(value, "runtime")]
    return select_runtimes(names)


def selected_variants(config: pytest.Config) -> dict[str, Variant]:
    """The environments named with ``--variant LABEL=PYTHON``, by label."""
    variants = {}
    for value in config.getoption("variant"):
        label, sep, python = value.partition("=")
        if not sep or not label.strip() or not python.strip():
            raise pytest.UsageError(
                f"--variant takes LABEL=PYTHON, like anyio-4.13=.venv/bin/python; got {value!r}"
            )
        if label in variants:
            raise pytest.UsageError(
                f"--variant {label!r} is given twice; give each a label of its own"
            )
        if shutil.which(python) is None:
            raise pytest.UsageError(f"--variant {label}: {python!r} is not an executable Python")
        problem = variant_problem(python.strip())
        if problem:
            raise pytest.UsageError(
                f"--variant {label.strip()}: {python.strip()} cannot run anybench ({problem}); "
                f"install it there: {python.strip()} -m pip install {_installable()}"
            )
        variants[label.strip()] = Variant(label.strip(), python.strip())
    return variants


#: How long a variant's Python gets to import anybench and answer.
VARIANT_CHECK_TIMEOUT_S = 60.0


@functools.cache
def variant_problem(python: str) -> str | None:
    """Why the interpreter *python* cannot run anybench's workers, in a few words; None if it
    imports anybench. Asked once per interpreter, before anything is measured: a worker that
    cannot start would fail every benchmark of its variant with less to go on."""
    marker = "anybench-variant-check"
    code = f"import anybench, sys; print({marker!r}, anybench.__version__)"
    try:
        proc = subprocess.run(
            [python, "-c", code],
            capture_output=True,
            text=True,
            timeout=VARIANT_CHECK_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return f"it did not answer within {VARIANT_CHECK_TIMEOUT_S:g} s"
    except OSError as exc:
        return exc.strerror or str(exc)
    if proc.returncode == 0 and proc.stdout.startswith(marker):
        return None
    last = (proc.stderr.strip().splitlines() or [""])[-1][:200]
    if proc.returncode:
        return f"it exited with status {proc.returncode}" + (f": {last}" if last else "")
    answer = (proc.stdout.strip().splitlines() or [""])[0][:80]
    return f"it is not a Python with anybench (it answered {answer!r})"


def _installable() -> str:
    """What to install in a variant: this checkout, if anybench runs from one, else anybench."""
    root = Path(__file__).resolve().parents[2]
    return str(root) if (root / "pyproject.toml").is_file() else "anybench"


def _explicit_scales(config: pytest.Config, axis: Axis) -> tuple[int, ...] | None:
    """The values given with *axis*'s option, or None if it is not given."""
    text = config.getoption(axis_dest(axis))
    if text is None:
        return None
    try:
        return axis.parse(text)
    except ScaleError as exc:
        raise pytest.UsageError(str(exc)) from None


def selected_scales(
    config: pytest.Config, max_n: int | None = None, axis: str | Axis = N
) -> tuple[int, ...]:
    """The values of *axis* (an :class:`~anybench._sweep.Axis` or its name) chosen with its
    option (``--scales`` for N, ``--loads`` for B), or else by ``--profile``, capped at
    *max_n*."""
    chosen = axis_named(axis)
    explicit = _explicit_scales(config, chosen)
    if explicit is None:
        return scales(config.getoption("profile"), max_n, chosen)
    return tuple(scale for scale in explicit if max_n is None or scale <= max_n)


def scenario_scales(config: pytest.Config, scenario: Any) -> tuple[int, ...]:
    """The values a scenario (a module or :class:`~anybench.ScenarioSpec`) runs at: its axis of
    the sweep, capped at its MAX_N."""
    spec = ScenarioSpec.of(scenario)
    return selected_scales(config, spec.max_n, spec.axis)


def check_choices(config: pytest.Config) -> None:
    """Check the options once, up front, so that a typo is one clear line, not a traceback."""
    try:
        selected_runtimes(config)
        scales(config.getoption("profile"))
    except (UnknownRuntimeError, UnknownProfileError) as exc:
        raise pytest.UsageError(str(exc)) from None
    for axis in AXES.values():
        _explicit_scales(config, axis)
    deadline = config.getoption("deadline")
    if not (math.isfinite(deadline) and 0 < deadline <= MAX_DEADLINE_S):
        raise pytest.UsageError(
            f"--deadline takes a positive number of seconds up to {MAX_DEADLINE_S} (a day), "
            f"not {deadline}"
        )
    for option, (lowest, highest) in BOUNDS.items():
        value = config.getoption(option)
        if value is not None and not lowest <= value <= highest:
            flag = option.replace("_", "-")
            raise pytest.UsageError(f"--{flag} takes {lowest} to {highest}, not {value}")
    least, most = config.getoption("processes"), config.getoption("max_processes")
    if least is not None and most is not None and most < least:
        raise pytest.UsageError(
            f"--max-processes {most} is fewer than --processes {least}; give at least as many"
        )
    limit = config.getoption("memory_limit")
    highest_mb = memory_limit_ceiling_mb()
    if limit is not None and not (math.isfinite(limit) and 0 < limit <= (highest_mb or math.inf)):
        ceiling = f"{highest_mb:.0f} (twice this machine's memory)" if highest_mb else "any"
        raise pytest.UsageError(
            f"--memory-limit takes a positive number of MiB up to {ceiling}, not {limit}"
        )
    asked = config.getoption("pairing")
    problem = None if asked is None else pairing_problem(asked, len(selected_variants(config)))
    if problem is not None:
        raise pytest.UsageError(problem)


def selected_scenarios(config: pytest.Config, scenarios: Sequence[Any]) -> list[ScenarioSpec]:
    """The scenarios (modules or specs) that ``--scenario`` chooses, checked (all by default);
    an unknown name, or a scenario that breaks the contract, is a usage error in one line."""
    try:
        specs = [ScenarioSpec.of(s) for s in scenarios]
    except ScenarioError as exc:
        raise pytest.UsageError(str(exc)) from None
    names = [
        name for value in config.getoption("scenario") for name in comma_list(value, "scenario")
    ]
    known = [spec.name for spec in specs]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise pytest.UsageError(
            f"unknown scenario {', '.join(map(repr, unknown))}; choose from: {', '.join(known)}"
        )
    return [spec for spec in specs if not names or spec.name in names]


def check_runnable(config: pytest.Config, specs: Iterable[ScenarioSpec]) -> None:
    """A usage error if the options are wrong, or the scales chosen leave no benchmark of
    *specs* to run."""
    check_choices(config)  # a conftest's pytest_configure may run before the plugin's
    specs = list(specs)
    if specs and not any(scenario_scales(config, spec) for spec in specs):
        limits = {s.name: (s.axis, s.max_n) for s in specs if s.max_n is not None}
        named = sorted(f"{name} ({scale_text(*limit)})" for name, limit in limits.items())
        options = (
            " or ".join(sorted({axis_named(a).option for a, _ in limits.values()})) or N.option
        )
        raise pytest.UsageError(
            "no benchmark to run: every scale chosen is above the MAX_N of every scenario "
            f"chosen ({', '.join(named)}); choose smaller {options}"
        )


def scenario_params(config: pytest.Config, scenarios: Sequence[Any]) -> list[Any]:
    """``pytest.param(spec, scale)`` for each scenario ``--scenario`` chooses at each of its
    scales, for parametrizing ``("scenario", "n")`` (``n`` holds the scale on every axis: N, or
    B on the load axis); ids ``NAME-SCALE``."""
    return scale_params(config, selected_scenarios(config, scenarios))


def scale_params(config: pytest.Config, specs: Sequence[ScenarioSpec]) -> list[Any]:
    """``pytest.param(spec, scale)`` for each of *specs* (chosen already) at each of its
    scales; ids ``NAME-SCALE``."""
    return [
        pytest.param(spec, scale, id=f"{spec.name}-{scale}")
        for spec in specs
        for scale in scenario_scales(config, spec)
    ]


def runtime_params(config: pytest.Config) -> list[Any]:
    """``pytest.param`` per selected runtime; one that cannot run here is a skip with its reason."""
    params = []
    for runtime in selected_runtimes(config):
        reason = runtime.unavailable_reason()
        marks = [pytest.mark.filterwarnings(spec) for spec in runtime.known_warnings]
        if reason:
            marks.append(pytest.mark.skip(reason=f"{runtime.name}: {reason}"))
        params.append(pytest.param(runtime, id=runtime.name, marks=marks))
    return params


# ``n`` is the name the matrix is parametrized with (see scenario_params), on every axis. The
# function stays short: pytest prints it above a scenario's failure.
def _matrix_test(
    measure_scenario: MeasureScenario, scenario: ScenarioSpec, n: int, runtime: Runtime
) -> None:
    """One scenario at one scale on one runtime, measured and recorded."""
    measure_scenario(scenario, runtime, n)


class ScenarioFile(pytest.Module):
    """A scenario module named with ``--scenarios``, collected as its benchmark matrix.

    The module itself is imported once, by anybench (see :func:`anybench._scenario
    .import_scenario`), not as a test module: the collector's object is a namespace holding the
    one matrix test.
    """

    def _getobj(self) -> types.ModuleType:
        namespace = types.ModuleType(f"anybench-matrix:{self.path.name}")
        namespace.__file__ = str(self.path)
        namespace.test_scenario = _matrix_test  # type: ignore[attr-defined]
        return namespace
