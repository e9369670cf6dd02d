"""The benchmark matrix: every scenario x every scale of the sweep x every runtime."""

from __future__ import annotations

import pytest

import scenarios
from anybench.pytest_plugin import scenario_scales


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("anybench").addoption(
        "--scenario",
        action="append",
        default=[],
        metavar="NAMES",
        help=f"comma-separated scenarios to run; known: {', '.join(scenarios.BY_NAME)}",
    )


def selected_scenarios(config: pytest.Config) -> list[scenarios.ScenarioModule]:
    names = [n.strip() for value in config.getoption("scenario") for n in value.split(",")]
    names = [n for n in names if n]
    unknown = [n for n in names if n not in scenarios.BY_NAME]
    if unknown:
        raise pytest.UsageError(
            f"unknown scenario {', '.join(map(repr, unknown))}; "
            f"choose from: {', '.join(scenarios.BY_NAME)}"
        )
    return [s for s in scenarios.ALL if not names or s.NAME in names]


def pytest_configure(config: pytest.Config) -> None:
    selected_scenarios(config)  # a typo is a usage error before anything runs


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if {"scenario", "n"} <= set(metafunc.fixturenames):
        metafunc.parametrize(
            ("scenario", "n"),
            [
                pytest.param(scenario, n, id=f"{scenario.NAME}-{n}")
                for scenario in selected_scenarios(metafunc.config)
                for n in scenario_scales(metafunc.config, scenario)
            ],
        )
