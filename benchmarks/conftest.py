"""The benchmark matrix: every scenario x every scale of the sweep x every runtime."""

from __future__ import annotations

import pytest

import scenarios
from anybench.pytest_plugin import _comma_list, scenario_scales


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("anybench").addoption(
        "--scenario",
        action="append",
        default=[],
        metavar="NAMES",
        help=f"comma-separated scenarios to run; known: {', '.join(scenarios.BY_NAME)}",
    )


def selected_scenarios(config: pytest.Config) -> list[scenarios.ScenarioModule]:
    names = [n for value in config.getoption("scenario") for n in _comma_list(value, "scenario")]
    unknown = [n for n in names if n not in scenarios.BY_NAME]
    if unknown:
        raise pytest.UsageError(
            f"unknown scenario {', '.join(map(repr, unknown))}; "
            f"choose from: {', '.join(scenarios.BY_NAME)}"
        )
    return [s for s in scenarios.ALL if not names or s.NAME in names]


def pytest_configure(config: pytest.Config) -> None:
    # A typo, or a choice that leaves nothing to run, is a usage error before anything runs.
    chosen = selected_scenarios(config)
    try:
        runnable = any(scenario_scales(config, scenario) for scenario in chosen)
    except ValueError as exc:  # an unknown profile
        raise pytest.UsageError(str(exc)) from None
    if not runnable:
        raise pytest.UsageError(
            "no benchmark to run: every scale chosen is above the MAX_N of every scenario "
            "chosen (spawn and the others that keep every task alive stop at 100,000); "
            "choose smaller --scales"
        )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if {"scenario", "n"} <= set(metafunc.fixturenames):
        params = [
            pytest.param(scenario, n, id=f"{scenario.NAME}-{n}")
            for scenario in selected_scenarios(metafunc.config)
            for n in scenario_scales(metafunc.config, scenario)
        ]
        metafunc.parametrize(("scenario", "n"), params)
