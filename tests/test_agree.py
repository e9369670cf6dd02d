"""``anybench agree``: whether runs agree, cell by cell, on synthetic runs with a known answer."""

from __future__ import annotations

import copy
import json
import math
import random
import re
from pathlib import Path
from typing import Any

import pytest

from anybench._agree import AgreeError, agree, cell_ratios
from anybench._cli import main
from anybench._results import load
from anybench._stats import geometric_mean, process_medians

from .test_results import RESULTS

SCENARIOS = ("spawn", "chain", "timers")
SCALES = (10, 1000)
#: The true ratio of each runtime to asyncio.
TRUE = {"asyncio": 1.0, "uvloop": 0.6, "trio": 2.0}
PROCESSES = 8


def run_data(
    seed: int,
    *,
    shift: dict[tuple[str, int, str], float] | None = None,
    run_level: float = 1.0,
    when: str = "2026-11-25T10:00:00+00:00",
    process_noise: float = 0.3,
    pair_noise: float = 0.02,
) -> dict[str, Any]:
    """A results file: every scenario at every scale on asyncio, uvloop and trio, each scale
    measured in PROCESSES shared worker processes. A process is slow or fast for all its
    runtimes alike (*process_noise*); the ratio within a process wobbles by *pair_noise*; the
    whole run's ratios are *run_level* times the true ones, and a cell in *shift* that much
    more."""
    rng = random.Random(seed)
    data = copy.deepcopy(RESULTS)
    data["datetime"] = when
    data["machine_info"]["anybench"]["unavailable_runtimes"] = {}
    data["benchmarks"] = []
    for scenario in SCENARIOS:
        for n in SCALES:
            speed = [math.exp(rng.gauss(0, process_noise)) for _ in range(PROCESSES)]
            for runtime, ratio in TRUE.items():
                factor = (shift or {}).get((scenario, n, runtime), 1.0)
                if runtime != "asyncio":
                    factor *= run_level
                rounds = [
                    [
                        1000.0 * n * s * ratio * factor * math.exp(rng.gauss(0, pair_noise))
                        for _ in range(3)
                    ]
                    for s in speed
                ]
                data["benchmarks"].append(
                    {
                        "name": f"test_scenario[{scenario}-{n}-{runtime}]",
                        "extra_info": {
                            "anybench_format": 4,
                            "scenario": scenario,
                            "runtime": runtime,
                            "scale": n,
                            "ops_per_round": n,
                            "rounds": 3 * PROCESSES,
                            # as anybench writes it: the geometric mean of the process medians
                            "ns_per_op": geometric_mean(process_medians(rounds, n)),
                            "round_elapsed_ns": [e for p in rounds for e in p],
                            "process_round_elapsed_ns": rounds,
                            "process_ids": list(range(100, 100 + PROCESSES)),
                            "latency_ns": {},
                        },
                    }
                )
    return data


def write(tmp_path: Path, name: str, data: dict[str, Any]) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_cells_are_the_reports_paired_ratios(tmp_path: Path) -> None:
    cells = cell_ratios(load(write(tmp_path, "a.json", run_data(1))))
    assert len(cells) == len(SCENARIOS) * len(SCALES) * 2  # uvloop and trio against asyncio
    trio = cells[("spawn", 10, "trio", "")]
    assert len(trio.logs) == PROCESSES
    # Paired by process: the processes' own speed cancels, the interval is tight around 2.
    assert trio.ratio.low < 2.0 < trio.ratio.high
    assert trio.ratio.high / trio.ratio.low < 1.1


def test_identical_runs_agree_everywhere(tmp_path: Path) -> None:
    a = load(write(tmp_path, "a.json", run_data(1)))
    b = load(write(tmp_path, "b.json", run_data(1)))
    [pair] = agree([a, b])
    assert len(pair.cells) == 12
    assert not any(c.differs or c.disjoint or c.a_outside_b or c.b_outside_a for c in pair.cells)
    assert pair.worst_first() == []


def test_runs_of_the_same_distribution_do_not_differ(tmp_path: Path) -> None:
    runs = [load(write(tmp_path, f"{seed}.json", run_data(seed))) for seed in (1, 2, 3)]
    pairs = agree(runs)
    assert len(pairs) == 3
    assert all(not c.differs for pair in pairs for c in pair.cells)


def test_a_cell_shifted_by_30_percent_is_named_first(tmp_path: Path) -> None:
    a = load(write(tmp_path, "a.json", run_data(1)))
    shifted = run_data(2, shift={("chain", 1000, "trio"): 1.3})
    b = load(write(tmp_path, "b.json", shifted))
    [pair] = agree([a, b])
    worst = pair.worst_first()
    assert worst[0].cell == ("chain", 1000, "trio", "")
    assert worst[0].differs
    assert worst[0].disjoint
    assert worst[0].shift == pytest.approx(1.3, rel=0.05)
    assert [c.cell for c in pair.cells if c.differs] == [("chain", 1000, "trio", "")]


def test_agree_prints_counts_per_pair_and_the_worst_cells(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write(tmp_path, "a.json", run_data(1))
    b = write(
        tmp_path,
        "b.json",
        run_data(2, shift={("timers", 10, "uvloop"): 0.7}, when="2026-11-25T12:30:00+00:00"),
    )
    assert main(["agree", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("A a vs B b"))
    hours, cells, differ, _, _, a_out, _, _, b_out, _, _, disjoint = row.split()[5:]
    assert (hours, cells, differ, disjoint) == ("2.5", "12", "1", "1")
    assert int(a_out) >= 1
    assert int(b_out) >= 1
    assert "A a vs B b: 1 cells disagree, worst first:" in out
    assert re.search(r"  timers N=10 uvloop: 0\.60x \[.*\] -> 0\.4\dx \[.*\] \(-[23]\d%", out)


def test_agree_marks_a_cell_made_with_a_mechanism_of_its_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = [run_data(1), run_data(2, shift={("timers", 10, "uvloop"): 0.7})]
    for run in data[1:]:  # the first, older file wrote no caveats down: the mark comes from b
        for bench in run["benchmarks"]:
            if bench["name"] == "test_scenario[timers-10-uvloop]":
                bench["extra_info"]["caveat"] = "uvloop counts whole milliseconds"
    paths = [str(write(tmp_path, f"{name}.json", d)) for name, d in zip("ab", data, strict=True)]
    assert main(["agree", *paths]) == 0
    out = capsys.readouterr().out.splitlines()
    assert any(line.startswith("  timers N=10 uvloop †: 0.60x") for line in out)
    assert out[-1] == "† uvloop counts whole milliseconds."


def test_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write(tmp_path, "a.json", run_data(1))
    assert main(["agree", str(a)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("anybench: agree needs two or more results files, not 1")
    assert err.count("\n") == 1
    other = run_data(2)
    for bench in other["benchmarks"]:
        bench["extra_info"]["scenario"] += "_elsewhere"
    b = write(tmp_path, "b.json", other)
    assert main(["agree", str(a), str(b)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("anybench: the runs have no ratio cell")
    assert err.count("\n") == 1
    assert main(["agree", str(a), str(tmp_path / "missing.json")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    with pytest.raises(AgreeError):
        agree([])


def test_hours_apart_are_start_to_start_where_both_runs_say_their_start(tmp_path: Path) -> None:
    a, b = run_data(1), run_data(2, when="2026-11-25T12:30:00+00:00")
    b["anybench_run"] = {"started": "2026-11-25T12:00:00+00:00"}
    # a says no start: both are placed by their files' dates, 10:00 and 12:30
    [pair] = agree([load(write(tmp_path, "a.json", a)), load(write(tmp_path, "b.json", b))])
    assert pair.hours_apart == pytest.approx(2.5)
    a["anybench_run"] = {"started": "2026-11-25T09:45:00+00:00"}
    [pair] = agree([load(write(tmp_path, "a.json", a)), load(write(tmp_path, "b.json", b))])
    assert pair.hours_apart == pytest.approx(2.25)
    b["anybench_run"] = {"started": "2026-11-25T12:21:00"}  # no zone: UTC
    [pair] = agree([load(write(tmp_path, "a.json", a)), load(write(tmp_path, "b.json", b))])
    assert pair.hours_apart == pytest.approx(2.6)


def test_one_run_given_twice_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same file twice, or a copy of it, would agree with itself in every cell (and weigh
    double in combine): refused, naming the two."""
    data = run_data(1)
    data["anybench_run"] = {"run_id": "r1"}
    a = write(tmp_path, "a.json", data)
    copy_of_a = write(tmp_path, "copy.json", data)
    b = write(tmp_path, "b.json", run_data(2, when="2026-11-25T12:00:00+00:00"))
    # files from before run ids: a copy is known by pytest-benchmark's datetime
    old = run_data(3, when="2026-11-25T14:00:00.123456+00:00")
    old_a, old_copy = write(tmp_path, "old.json", old), write(tmp_path, "old-copy.json", old)
    assert main(["agree", str(old_a), str(old_copy)]) == 2
    assert f"{old_a} and {old_copy} are the same run twice" in capsys.readouterr().err
    assert main(["agree", str(old_a), str(b)]) == 0
    capsys.readouterr()
    for command in (["agree"], ["combine"], ["combine", "--leave-one-out"]):
        assert main([*command, str(a), str(b), str(a)]) == 2
        assert (
            capsys.readouterr().err == f"anybench: {a} is the same run twice; pass each run once\n"
        )
        assert main([*command, str(a), str(copy_of_a), str(b)]) == 2
        assert f"{a} and {copy_of_a} are the same run twice" in capsys.readouterr().err
    # compare too: a run against itself would say "no change" everywhere, with nothing measured
    assert main(["compare", str(a), str(a)]) == 2
    assert capsys.readouterr().err == (
        f"anybench: {a} is the same run twice; compare two runs, or an A/B run's two files\n"
    )
    assert main(["compare", str(a), str(copy_of_a)]) == 2
    assert f"{a} and {copy_of_a} are the same run twice" in capsys.readouterr().err
    assert main(["compare", str(a), str(b)]) == 0


def _as_variant(data: dict[str, Any], label: str) -> dict[str, Any]:
    """*data* as one variant's file of an A/B run: every record carries *label*."""
    for bench in data["benchmarks"]:
        bench["extra_info"]["variant"] = label
    return data


def test_variant_files_share_no_cell_and_the_error_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The two files of one A/B run have the same scenarios but not one cell in common (a cell
    is also its variant): the one-line error names the labels and points to compare, in agree
    as in combine."""
    a = write(tmp_path, "a.json", _as_variant(run_data(1), "x"))
    b = write(tmp_path, "b.json", _as_variant(run_data(2), "y"))
    for command in (["agree"], ["combine"]):
        assert main([*command, str(a), str(b)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert "theirs differ (x in a, y in b)" in err
        assert err.rstrip().endswith("compared with anybench compare")


def test_a_pair_with_no_cell_in_common_is_not_said_to_agree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write(tmp_path, "a.json", run_data(1))
    b = write(tmp_path, "b.json", run_data(2, when="2026-11-25T12:00:00+00:00"))
    c = write(tmp_path, "c.json", _as_variant(run_data(3), "x"))
    assert main(["agree", str(a), str(b), str(c)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "A a vs B b: every cell agrees." in out
    assert "A a vs B c: no ratio cell in common; not compared." in out
    assert "A b vs B c: no ratio cell in common; not compared." in out
    assert not any("c: every cell agrees" in line for line in out)


def test_a_partial_run_and_runs_of_other_code_are_said_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """agree compares any runs, but says before its table what the reader must know: a run
    stopped early (its cells rest on fewer processes), runs that are not of one code, and runs
    made on different machines (a VM moved to another host keeps its name)."""
    a = run_data(1)
    a["anybench_run"] = {"partial": "interrupted after pass 2 of 6"}
    a["machine_info"]["cpu"] = {**a["machine_info"].get("cpu", {}), "brand_raw": "Intel Xeon"}
    b = run_data(2, when="2026-11-25T12:00:00+00:00")
    b["machine_info"]["anybench"]["libraries"] = {"anyio": "4.16.0"}
    b["machine_info"]["cpu"] = {**b["machine_info"].get("cpu", {}), "brand_raw": "AMD EPYC"}
    files = [str(write(tmp_path, "a.json", a)), str(write(tmp_path, "b.json", b))]
    assert main(["agree", *files]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "PARTIAL a: interrupted after pass 2 of 6."
    assert out[1].startswith("NOT THE SAME CODE: anyio None in a, 4.16.0 in b: a cell that differs")
    assert out[2].startswith("NOT ONE MACHINE: CPU ")
    assert out[2].endswith(
        " in a, AMD EPYC in b: what differs between the runs includes what "
        "differs between the machines."
    )
    # combine refuses other code unless forced; forced, it says both as well
    assert main(["combine", *files, "--force"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[2].startswith("NOT ONE MACHINE: CPU ")
    assert out[:2] == [
        "PARTIAL a: interrupted after pass 2 of 6.",
        "NOT THE SAME CODE: anyio None in a, 4.16.0 in b: a cell that differs may be the code's "
        "doing, not the machine's.",
    ]
    out_md = tmp_path / "combined.md"
    assert main(["combine", *files, "--force", "--out", str(out_md)]) == 0
    assert "- `a.json`, file dated 2026-11-25 10:00: " in out_md.read_text()
    page = out_md.read_text()
    assert "PARTIAL a: interrupted after pass 2 of 6.\n" in page
    assert "NOT THE SAME CODE: anyio None in a, 4.16.0 in b" in page
    assert "Combined from 2 runs (not all of one code), their files dated" in page


def test_the_terminal_table_marks_a_ratio_that_is_not_significant(tmp_path: Path) -> None:
    """As the report does: "0.55x" looked like a finding where its interval held 1."""
    from anybench._table import comparison_table

    data = run_data(1, shift={("spawn", 1000, "uvloop"): 1 / TRUE["uvloop"]})
    table = comparison_table(load(write(tmp_path, "run.json", data)))
    [row] = [line for line in table.splitlines() if line.startswith("spawn") and "1,000" in line]
    assert re.search(r"\(1\.0\dx ~\)", row)  # uvloop made as fast as asyncio: not claimed
    assert re.search(r"\(2\.0\dx\)", row)  # trio, twice as slow: significant, unmarked
    assert "~ = not significant" in table
