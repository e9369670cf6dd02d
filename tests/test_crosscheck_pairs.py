"""benchmarks/crosscheck_spawn.py pairs its two sides inside one process: their regions
alternating ABBA over both N, a ratio per process, and the verdict on the interval over
processes; on fake regions and fake children (nothing is timed here)."""

from __future__ import annotations

import ast
import gc
import math
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from .conftest import BENCHMARKS, load_script

Times = dict[str, dict[int, list[float]]]
SCRIPT = BENCHMARKS / "crosscheck_spawn.py"


@pytest.fixture(scope="module")
def crosscheck() -> ModuleType:
    return load_script("crosscheck_spawn")


def test_a_process_alternates_its_sides_abba_and_reverses_its_n(crosscheck: ModuleType) -> None:
    warm, timed = crosscheck.schedule([1000, 10000], 4, hand_first=True)
    assert warm == [("hand", 10000), ("anybench", 10000)]
    assert timed == [
        ("hand", 1000), ("anybench", 1000), ("anybench", 10000), ("hand", 10000),
        ("hand", 10000), ("anybench", 10000), ("anybench", 1000), ("hand", 1000),
        ("hand", 1000), ("anybench", 1000), ("anybench", 10000), ("hand", 10000),
        ("hand", 10000), ("anybench", 10000), ("anybench", 1000), ("hand", 1000),
    ]  # fmt: skip
    # At every N each side goes first as often as second, and every side gets its regions.
    for n in (1000, 10000):
        at_n = [side for side, size in timed if size == n]
        firsts = at_n[0::2]
        assert firsts.count("hand") == firsts.count("anybench") == 2
        assert at_n.count("hand") == at_n.count("anybench") == 4
    warm, timed = crosscheck.schedule([1000, 10000], 4, hand_first=False)
    assert warm == [("anybench", 10000), ("hand", 10000)]
    assert timed[:4] == [("anybench", 1000), ("hand", 1000), ("hand", 10000), ("anybench", 10000)]


def test_a_process_gives_each_side_its_own_regions_after_the_warm_ups(
    crosscheck: ModuleType,
) -> None:
    calls: list[tuple[str, int]] = []

    def side(name: str, per_op: float) -> Callable[[int], float]:
        def region(n: int) -> float:
            calls.append((name, n))
            return 5000 + per_op * n + len(calls)  # each region a little later, a little slower

        return region

    region = {"hand": side("hand", 100.0), "anybench": side("anybench", 110.0)}
    times = crosscheck.run_process([1000, 10000], 3, True, region)
    assert calls[:2] == [("hand", 10000), ("anybench", 10000)]  # the warm-ups, not kept
    assert calls[2:] == crosscheck.schedule([1000, 10000], 3, True)[1]
    assert {side: {n: len(v) for n, v in by_n.items()} for side, by_n in times.items()} == {
        "hand": {1000: 3, 10000: 3},
        "anybench": {1000: 3, 10000: 3},
    }
    # The times are kept in the order each side ran them.
    assert times["hand"][1000] == sorted(times["hand"][1000])
    pair = crosscheck.Pair(times["hand"], times["anybench"], "hand", None)
    # Differential on the medians: the fixed 5 us cancels, the ratio is about 110 / 100.
    assert pair.ratio(1000, 10000) == pytest.approx(1.1, rel=1e-3)


def test_processes_alternate_their_first_side_and_interleave_the_benchmarks(
    crosscheck: ModuleType,
) -> None:
    calls: list[tuple[tuple[str, str], str]] = []

    def child(key: tuple[str, str], sizes: list[int], regions: int, first: str, heap: str) -> Times:
        calls.append((key, first))
        assert (regions, heap) == (5, "frozen")
        return {
            "hand": {n: [5000 + 100.0 * n, 9e9, 5000 + 100.0 * n] for n in sizes},
            "anybench": {n: [5000 + 110.0 * n] for n in sizes},
        }

    readings = iter([1.0, 2.0, 30.0, 3.0] + [0.0] * 100)
    keys = {("spawn", "asyncio"): [1000, 10000], ("spawn", "trio"): [1000, 10000]}
    found = crosscheck.measure(keys, 4, 5, run_child=child, pressure=lambda: next(readings))
    assert [len(pairs) for pairs in found.values()] == [4, 4]
    # One process per benchmark per round, the benchmarks forward then backward, the side that
    # starts alternating from round to round.
    a, t = ("spawn", "asyncio"), ("spawn", "trio")
    assert calls == [
        (a, "hand"), (t, "hand"), (t, "anybench"), (a, "anybench"),
        (a, "hand"), (t, "hand"), (t, "anybench"), (a, "anybench"),
    ]  # fmt: skip
    assert [p.first for p in found[a]] == ["hand", "anybench"] * 2
    # Each side's median per N: the slow outlier region by hand does not count.
    assert found[a][0].ratio(1000, 10000) == pytest.approx(1.1)
    # The pressure around a process: the higher of its start and its end.
    assert found[a][0].pressure == 2.0
    assert found[t][0].pressure == 30.0
    text = crosscheck.pairs_text(found[t][:2], 1000, 10000, 10.0)
    assert text == "1.10 (busy: CPU pressure 30%), 1.10"


def test_a_process_that_failed_is_left_out(crosscheck: ModuleType) -> None:
    found = crosscheck.measure({("spawn", "asyncio"): [10, 100]}, 3, run_child=lambda *a: None)
    assert found == {("spawn", "asyncio"): []}


def test_region_times_are_shown_per_side_and_n(crosscheck: ModuleType) -> None:
    pair = crosscheck.Pair({10: [1e6, 2e6]}, {10: [3e6, 4.5e6]}, "hand", None)
    assert crosscheck.regions_text(pair) == [
        "    hand N=10      1.00 2.00 ms",
        "anybench N=10      3.00 4.50 ms",
    ]


@pytest.mark.parametrize(
    ("ratios", "verdict"),
    [
        ([1.01, 0.99, 1.02, 0.98, 1.00, 1.01, 0.99, 1.00], "ok"),
        ([1.30, 1.28, 1.33, 1.31, 1.29, 1.30, 1.32, 1.27], "DISAGREE"),
        ([0.70, 0.72, 0.69, 0.71, 0.70, 0.73, 0.70, 0.71], "DISAGREE"),
        # Centred within the tolerance but too spread to tell: not "ok".
        ([0.80, 1.25, 0.85, 1.20, 0.90, 1.15, 0.82, 1.22], "UNCLEAR"),
        ([1.0], "UNCLEAR"),
        ([1.0, -1.0, 1.0], "UNCLEAR"),  # a negative marginal has no log
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


@pytest.mark.parametrize(("heap", "frozen_inside"), [("frozen", True), ("live", False)])
def test_the_side_by_hand_sets_its_heap_outside_its_region(
    crosscheck: ModuleType, monkeypatch: pytest.MonkeyPatch, heap: str, frozen_inside: bool
) -> None:
    """Collected before each region (whatever ran before it), frozen around it unless *live*,
    and the heap unfrozen again after it."""
    seen: list[int] = []

    async def work(n: int) -> int:
        seen.append(gc.get_freeze_count())
        return 1234

    monkeypatch.setattr(crosscheck, "_spawn", work)
    region = crosscheck.by_hand("asyncio", "spawn", heap)
    gc.unfreeze()
    assert region(10) == 1234.0
    assert (seen[0] > 0) is frozen_inside
    assert gc.get_freeze_count() == 0


def test_it_checks_the_two_largest_n_up_to_ten_thousand(crosscheck: ModuleType) -> None:
    """A `full` run's N = 1,000,000 would make each region last seconds: the check stays at
    the largest N where a region lasts milliseconds."""
    full = {10: 1.0, 100: 1.0, 1_000: 1.0, 10_000: 1.0, 100_000: 1.0, 1_000_000: 1.0}
    assert crosscheck.checked_scales(full) == [1_000, 10_000]
    assert crosscheck.checked_scales({100: 1.0, 10_000: 1.0}) == [100, 10_000]
    # A full run has one N up to 10,000: the check measures it and a tenth of it.
    assert crosscheck.checked_scales({10_000: 1.0, 100_000: 1.0}) == [1_000, 10_000]
    assert crosscheck.checked_scales({10: 1.0, 100_000: 1.0}) == [10]
    assert crosscheck.checked_scales({100_000: 1.0}) == []
