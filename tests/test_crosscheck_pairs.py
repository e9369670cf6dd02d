"""benchmarks/crosscheck_spawn.py pairs its two sides as tightly as an A/B: many short pairs,
their order alternating, a ratio per pair and the verdict on the interval over pairs; on fake
children (nothing is timed here)."""

from __future__ import annotations

import ast
import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "crosscheck_spawn.py"


@pytest.fixture(scope="module")
def crosscheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location("crosscheck_spawn", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["crosscheck_spawn"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_pairs_alternate_their_order_and_interleave_the_benchmarks(crosscheck: ModuleType) -> None:
    calls: list[tuple[str, tuple[str, str]]] = []

    def child(method: str, key: tuple[str, str], sizes: list[int]) -> dict[int, float]:
        calls.append((method, key))
        per_op = 110.0 if method == "anybench" else 100.0
        return {n: 5000 + per_op * n for n in sizes}

    readings = iter([1.0, 2.0, 30.0, 3.0] + [0.0] * 100)
    keys = {("spawn", "asyncio"): [1000, 10000], ("spawn", "trio"): [1000, 10000]}
    found = crosscheck.measure(keys, 8, run_child=child, pressure=lambda: next(readings))
    assert [len(pairs) for pairs in found.values()] == [8, 8]
    # Every benchmark's pairs are spread over the check: one pair each per round, the
    # benchmarks forward then backward; within a pair the two sides run back to back.
    rounds = [calls[i : i + 4] for i in range(0, len(calls), 4)]
    assert [r[0][1] for r in rounds[:2]] == [("spawn", "asyncio"), ("spawn", "trio")]
    assert [r[0] for r in rounds[0]] == ["hand", "anybench", "hand", "anybench"]
    assert [r[0] for r in rounds[1]] == ["anybench", "hand", "anybench", "hand"]
    assert [p.first for p in found[("spawn", "asyncio")]] == ["hand", "anybench"] * 4
    # Differential: the fixed 5 us cancels, the ratio is 110 / 100 in every pair.
    pair = found[("spawn", "asyncio")][0]
    assert pair.ratio(1000, 10000) == pytest.approx(1.1)
    # The pressure around a pair: the higher of its start and its end.
    assert [p.pressure for p in found[("spawn", "asyncio")][:1]] == [2.0]
    assert found[("spawn", "trio")][0].pressure == 30.0
    text = crosscheck.pairs_text(found[("spawn", "trio")][:2], 1000, 10000, 10.0)
    assert text == "1.10 (busy: CPU pressure 30%), 1.10"


def test_a_pair_whose_side_failed_is_left_out(crosscheck: ModuleType) -> None:
    def child(method: str, key: tuple[str, str], sizes: list[int]) -> dict[int, float] | None:
        return None if method == "hand" else {n: float(n) for n in sizes}

    found = crosscheck.measure({("spawn", "asyncio"): [10, 100]}, 3, run_child=child)
    assert found == {("spawn", "asyncio"): []}


@pytest.mark.parametrize(
    ("ratios", "verdict"),
    [
        ([1.01, 0.99, 1.02, 0.98, 1.00, 1.01, 0.99, 1.00], "ok"),
        ([1.30, 1.28, 1.33, 1.31, 1.29, 1.30, 1.32, 1.27], "DISAGREE"),
        ([0.70, 0.72, 0.69, 0.71, 0.70, 0.73, 0.70, 0.71], "DISAGREE"),
        # Centred within the tolerance but too spread to tell: not "ok".
        ([0.80, 1.25, 0.85, 1.20, 0.90, 1.15, 0.82, 1.22], "UNCLEAR"),
        ([1.0], "UNCLEAR"),
    ],
)
def test_the_verdict_is_on_the_interval_over_pairs(
    crosscheck: ModuleType, ratios: list[float], verdict: str
) -> None:
    agreement = crosscheck.judge(ratios, 0.10)
    assert agreement.verdict == verdict
    if len(ratios) > 1:
        assert agreement.low < agreement.median < agreement.high


def test_the_interval_is_a_t_interval_of_the_log_ratios(crosscheck: ModuleType) -> None:
    ratios = [1.0, 1.1, 0.95, 1.05]
    logs = [math.log(r) for r in ratios]
    mean = sum(logs) / 4
    sd = math.sqrt(sum((x - mean) ** 2 for x in logs) / 3)
    agreement = crosscheck.judge(ratios, 0.10)
    assert agreement.high == pytest.approx(math.exp(mean + 3.182 * sd / 2))
    assert crosscheck.t975(30) == pytest.approx(2.042, abs=0.002)


def test_cpu_pressure_is_read_directly(crosscheck: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "cpu"
    path.write_text(
        "some avg10=12.50 avg60=3.00 avg300=1.00 total=123\n"
        "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
    )
    assert crosscheck.pressure_avg10(path) == 12.5
    assert crosscheck.pressure_avg10(tmp_path / "absent") is None


def test_it_shares_no_code_with_the_harness() -> None:
    """Only anybench's public face (the Future measured, run_round and the runtimes of its side),
    never a private module of the instrument."""
    imported = set()
    for node in ast.walk(ast.parse(SCRIPT.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    assert not {name for name in imported if name.startswith("anybench.")}
