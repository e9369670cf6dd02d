"""The benchmark matrix: every scenario x every scale of the sweep x every runtime.

anybench's own scenarios, run through the public plugin as any project's would be: this
conftest parametrizes ``scenario`` and ``n``; the plugin parametrizes ``runtime`` (and
``variant``) for every test that uses its ``measure_scenario`` fixture. ``pytest --scenarios
scenarios/`` (what ``anybench run scenarios/`` runs) measures the same matrix.
"""

from __future__ import annotations

import pytest

import scenarios
from anybench.pytest_plugin import check_runnable, scenario_params, selected_scenarios


def pytest_configure(config: pytest.Config) -> None:
    # A typo, or a choice that leaves nothing to run, is a usage error before anything runs.
    check_runnable(config, selected_scenarios(config, scenarios.ALL))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if {"scenario", "n"} <= set(metafunc.fixturenames):
        metafunc.parametrize(("scenario", "n"), scenario_params(metafunc.config, scenarios.ALL))
