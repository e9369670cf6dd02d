"""Each scenario at each scale on each runtime, timed in the loop, recorded by pytest-benchmark."""

from __future__ import annotations

from anybench import Runtime, ScenarioSpec
from anybench.pytest_plugin import MeasureScenario


def test_scenario(
    measure_scenario: MeasureScenario, scenario: ScenarioSpec, n: int, runtime: Runtime
) -> None:
    measure_scenario(scenario, runtime, n)
