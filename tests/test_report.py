"""Statistics, the report and the compare command, on real and on made-up results."""

from __future__ import annotations

import json
import math
import re
import sys
import textwrap
from pathlib import Path

import pytest

from anybench._cli import main
from anybench._files import REPORT_MARKER
from anybench._format import format_ns
from anybench._report import SECTIONS, render
from anybench._results import load
from anybench._stats import (
    LogRatio,
    geometric_mean,
    scaling_class,
    scaling_slope,
    stability_warnings,
)
from anybench._table import comparison_table

from .conftest import ROOT, TinyReport, remeasured, run_benchmarks


@pytest.fixture
def spawn_results(tiny_results: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny results with their spawn benchmarks only: its report draws a few plots, not the
    whole matrix's, for tests of how a report is written rather than of what it holds."""
    data = json.loads(tiny_results.read_text())
    data["benchmarks"] = [b for b in data["benchmarks"] if b["extra_info"]["scenario"] == "spawn"]
    out = tmp_path_factory.mktemp("spawn") / "spawn.json"
    out.write_text(json.dumps(data))
    return out


def test_stability_rules_are_pyperfs() -> None:
    assert stability_warnings([100, 101, 99, 100, 100]) == []
    assert stability_warnings([100, 100, 100]) == ["only 3 rounds (fewer than 5)"]
    spread = stability_warnings([50, 150, 100, 100, 100, 100])
    assert any("std dev" in w for w in spread)
    assert any("min is 50% away" in w for w in spread)
    outlier = stability_warnings([100] * 19 + [300])
    assert any("max is" in w for w in outlier)


def test_geometric_mean() -> None:
    assert geometric_mean([0.5, 2.0]) == pytest.approx(1.0)
    assert geometric_mean([4.0]) == pytest.approx(4.0)


def test_scaling_slope_is_the_local_exponent_with_its_interval() -> None:
    tenfold = LogRatio(ratio=10.0, low=5.0, high=20.0, se=0.1, df=5.0)
    slope, low, high = scaling_slope(tenfold, 10, 100)
    assert slope == pytest.approx(1.0)
    assert (low, high) == pytest.approx((math.log10(5.0), math.log10(20.0)))
    assert scaling_class(slope) == "linear growth"
    unknown = LogRatio(ratio=1.0, low=0.0, high=math.inf, se=math.inf, df=math.nan)
    assert scaling_slope(unknown, 10, 100) == (0.0, -math.inf, math.inf)
    assert [scaling_class(k) for k in (-0.5, 0.0, 0.3)] == ["falling", "flat", "slow growth"]
    # An estimate of growth whose interval holds 0 is no finding ("+0.30 [-0.05, +0.64] slow
    # growth" was printed for `mixed` from 1,000 to 10,000 on asyncio).
    assert scaling_class(0.30, -0.05, 0.64) == "~"
    assert scaling_class(0.30, 0.02, 0.64) == "slow growth"
    assert scaling_class(-0.5, -0.9, 0.1) == "~"
    assert scaling_class(0.05, -0.05, 0.15) == "flat"


def test_durations_are_written_in_the_unit_that_keeps_them_short() -> None:
    assert [format_ns(v) for v in (999, 1_234, 45_600_000, 2.5e9)] == [
        "999 ns",
        "1.23 µs",
        "45.6 ms",
        "2.5 s",
    ]
    assert format_ns(-1_500) == "-1.5 µs"


@pytest.mark.usefixtures("unplotted")
def test_the_page_is_its_sections_in_order(spawn_results: Path, tmp_path: Path) -> None:
    page = render([load(spawn_results)], tmp_path)
    headings = [line for line in page.splitlines() if line.startswith(("# ", "## "))]
    assert headings[0] == "# anybench report"
    assert headings[-3:] == ["## Warnings", "## Runs", "## Method"]
    assert len(headings) <= len(SECTIONS)  # one heading per section at most


def test_report_writes_a_page_with_plots_it_links(tiny_report: TinyReport) -> None:
    out = tiny_report.path
    page = (out / "index.md").read_text()
    for section in ("## Summary", "## Latency", "## Plots", "## Warnings", "## Runs", "## Method"):
        assert section in page
    assert "geometric mean" in page
    assert "Welch's t on the logs of the per-process medians" in page
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page)
    assert links
    for link in links:
        assert (out / link).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", link
    assert {p.name for p in out.iterdir()} == {"index.md", REPORT_MARKER, *links}
    assert [p.name for p in out.parent.iterdir()] == ["report"], "staging left behind"


def test_report_is_not_overwritten_unless_forced(
    spawn_results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    assert main(["report", str(spawn_results), "--out", str(out)]) == 0
    (out / "index.md").write_text("kept")
    assert main(["report", str(spawn_results), "--out", str(out)]) == 1
    assert "exists; pass --force" in capsys.readouterr().err
    assert (out / "index.md").read_text() == "kept"
    assert main(["report", str(spawn_results), "--out", str(out), "--force"]) == 0
    assert (out / "index.md").read_text().startswith("# anybench report")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_report_names_a_bad_file_and_reports_the_rest(
    spawn_results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2")
    out = tmp_path / "report"
    assert main(["report", str(bad), str(spawn_results), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"anybench: {bad}: not valid JSON")
    assert err.count("\n") == 1
    assert bad.read_text() == "[1, 2"
    assert (out / "index.md").exists()


def test_compare_of_a_run_made_again_finds_no_regression(
    tiny_results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    again = remeasured(tiny_results, tmp_path / "again.json")
    assert main(["compare", str(tiny_results), str(again)]) == 0
    out = capsys.readouterr().out
    assert "  REGRESSION" not in out  # the verdict column, not the legend
    assert "WARNING" not in out
    assert out.count("not significant") >= 4


def test_an_interleaved_ab_run_flags_a_slowed_runtime_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The "slow" variant is this Python with a sitecustomize on its path (Python imports it at
    # start-up, in every worker process) that makes each of spawn's measured regions on trio
    # 20 ms longer (500 us per operation at N=40, about ten times the work itself); its native
    # twin is left as it is. Both variants are measured in one run, their workers interleaved,
    # and saved as two files. The slowdown is far above the spread of whole processes on a
    # shared machine (2x between processes of one run has been seen here, and a 2 ms slowdown,
    # +90%, once came out "not significant"), so the verdict does not depend on the minute.
    slow_path = tmp_path / "slow"
    slow_path.mkdir()
    (slow_path / "sitecustomize.py").write_text(
        textwrap.dedent(
            """
            import sys

            if "anybench._worker" in sys.orig_argv:
                import time
                import scenarios.spawn
                from anybench._adapter import current_backend

                real_run = scenarios.spawn.run

                async def slow_run(n, probe):
                    real_stop = probe.stop

                    def slow_stop():
                        if current_backend() == "trio":
                            end = time.perf_counter() + 0.020
                            while time.perf_counter() < end:
                                pass
                        real_stop()

                    probe.stop = slow_stop
                    await real_run(n, probe)

                scenarios.spawn.run = slow_run
            """
        )
    )
    slow_python = tmp_path / "slow-python"
    slow_python.write_text(
        f'#!/bin/sh\nPYTHONPATH="{slow_path}:$PYTHONPATH" exec "{sys.executable}" "$@"\n'
    )
    slow_python.chmod(0o755)
    raw = tmp_path / "raw.json"
    proc = run_benchmarks(
        "--scenario", "spawn,spawn_native", "--scales", "40", "--processes", "4", "--rounds", "2",
        "--runtime", "asyncio,trio", "--variant", f"base={sys.executable}",
        "--variant", f"slow={slow_python}", f"--benchmark-json={raw}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert main(["save", str(raw), "--into", str(tmp_path / "results")]) == 0
    base, slow = capsys.readouterr().out.split()
    assert main(["compare", base, slow, "--threshold", "10"]) == 1
    out = capsys.readouterr().out
    assert "both from one run, interleaved" in out
    [trio_line] = [line for line in out.splitlines() if line.startswith("spawn N=40 trio")]
    assert "  REGRESSION" in trio_line
    for line in out.splitlines():
        if line.startswith("spawn_native"):
            assert "REGRESSION" not in line, line


def test_compare_warns_when_machines_differ(
    tiny_results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = remeasured(tiny_results, tmp_path / "other.json")
    other.write_text(other.read_text().replace('"python_version": "', '"python_version": "9.'))
    main(["compare", str(tiny_results), str(other)])
    out = capsys.readouterr().out
    assert "WARNING: the runs differ in machine or software" in out
    assert "Python: " in out


def test_compare_bad_input_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.json"
    assert main(["compare", str(missing), str(missing)]) == 2
    assert "cannot read it" in capsys.readouterr().err


def test_compare_fails_when_new_lost_benchmarks_or_failed(
    tiny_results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.loads(tiny_results.read_text())
    data["benchmarks"] = [b for b in data["benchmarks"] if b["extra_info"]["runtime"] != "trio"]
    data["machine_info"]["anybench"]["failed"] = [{"test": "test_scenario[x]", "error": "hung"}]
    new = tmp_path / "new.json"
    new.write_text(json.dumps(data))
    assert main(["compare", str(tiny_results), str(new)]) == 1
    out = capsys.readouterr().out
    assert "spawn N=40 trio" in out
    assert "MISSING from new" in out
    assert "FAILED in new: test_scenario[x]: hung" in out


def test_columns_follow_the_runtimes_the_results_recorded(tmp_path: Path) -> None:
    # A committed results file, its recorded runtimes reversed (as a run that chose them so, or
    # registered some of its own, records them): the columns follow the record.
    source = ROOT / "results" / "20261129T112446_vm_cpython3.11_anyio-4.16.0.json"
    data = json.loads(source.read_text())
    info = data["machine_info"]["anybench"]
    recorded = list(reversed(info["runtimes"]))
    info["runtimes"] = {name: info["runtimes"][name] for name in recorded}
    path = tmp_path / source.name
    path.write_text(json.dumps(data))
    header = comparison_table(load(path)).splitlines()[0].split()
    ran = [name for name in recorded if name in header]
    assert header == ["scenario", "N", *ran]
    assert len(ran) >= 2


def test_a_ratio_is_taken_within_its_run_never_across_machines(
    spawn_results: Path, tmp_path: Path
) -> None:
    """Two files from two machines side by side: each is labelled by its machine, and each
    runtime's ratio is to asyncio of its own run. The second machine is three times slower at
    everything, so its ratios are the first's."""
    data = json.loads(spawn_results.read_text())
    data["machine_info"]["system"] = "Darwin"
    for bench in data["benchmarks"]:
        extra = bench["extra_info"]
        extra["ns_per_op"] *= 3
        extra["round_elapsed_ns"] = [3 * e for e in extra["round_elapsed_ns"]]
        extra["process_round_elapsed_ns"] = [
            [3 * e for e in rounds] for rounds in extra["process_round_elapsed_ns"]
        ]
    other = tmp_path / "other.json"
    other.write_text(json.dumps(data))
    here = load(spawn_results).machine_info["system"]
    page = render([load(spawn_results), load(other)], tmp_path)
    summary = page.split("## Summary", 1)[1].split("\n## ", 1)[0]
    header = next(line for line in summary.splitlines() if line.startswith("| scenario"))
    columns = [c.strip() for c in header.strip("|").split("|")][2:]
    assert f"asyncio ({here})" in columns
    assert "asyncio (Darwin)" in columns
    rows = [line for line in summary.splitlines() if line.startswith("| spawn | 40 |")]
    cells = dict(zip(columns, [c.strip() for c in rows[0].strip("|").split("|")][2:], strict=True))
    for runtime in ("trio", "uvloop"):
        mine, theirs = cells[f"{runtime} ({here})"], cells[f"{runtime} (Darwin)"]
        ratio = re.compile(r"\((\d+\.\d+x) \[")
        assert ratio.search(mine) is not None, mine
        assert ratio.search(mine).group(1) == ratio.search(theirs).group(1), (mine, theirs)


def test_the_runtimes_of_a_scale_share_their_worker_processes(tiny_results: Path) -> None:
    run = load(tiny_results)
    by_scale: dict[tuple[str, int], set[tuple[int, ...]]] = {}
    for record in run.records:
        assert len(record.process_ids) == len(record.processes) == 2
        by_scale.setdefault(record.key, set()).add(record.process_ids)
    assert all(len(pids) == 1 for pids in by_scale.values()), by_scale


def test_files_of_one_name_from_two_directories_get_two_columns(
    spawn_results: Path, tmp_path: Path
) -> None:
    copies = []
    for directory in ("a", "b"):
        (tmp_path / directory).mkdir()
        copy = tmp_path / directory / "spawn.json"
        copy.write_bytes(spawn_results.read_bytes())
        copies.append(load(copy))
    page = render(copies, tmp_path)
    header = next(line for line in page.splitlines() if line.startswith("| scenario | N |"))
    assert "asyncio (a/spawn)" in header
    assert "asyncio (b/spawn)" in header
    # The same file given twice is one run, shown once, and the page says so.
    page = render([copies[0], load(tmp_path / "a" / "spawn.json")], tmp_path)
    header = next(line for line in page.splitlines() if line.startswith("| scenario | N |"))
    assert header.count("asyncio") == 1, header
    assert "spawn.json` was given 2 times: shown once" in page


def test_the_report_and_compare_write_a_load_scale_with_its_own_symbol(
    tiny_results: Path,
    tiny_report: TinyReport,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    again = remeasured(tiny_results, tmp_path / "again.json")
    assert main(["compare", str(tiny_results), str(again)]) == 0
    out = capsys.readouterr().out
    assert "latency_under_load B=3 asyncio" in out
    assert "latency_under_load N=" not in out
    page = (tiny_report.path / "index.md").read_text()
    assert "latency distribution at B=3" in page
    assert "latency_under_load` N=" not in page


@pytest.mark.usefixtures("unplotted")
def test_what_the_report_says_of_a_scenario_is_what_it_declared(
    tiny_results: Path, tiny_report: TinyReport, tmp_path: Path
) -> None:
    page = (tiny_report.path / "index.md").read_text()
    memory = page.split("## Memory", 1)[1].split("\n## ", 1)[0]
    assert "- `spawn`: per live task" in memory
    latency = page.split("## Latency", 1)[1].split("\n## ", 1)[0]
    assert "- `timers`: lateness is read on each runtime's own loop clock" in latency
    # A scenario that declares nothing gets no word, and the report's prose names no scenario
    # of its own: it serves other projects' scenarios too.
    # The scenarios that declared remarks, with them taken away.
    data = json.loads(tiny_results.read_text())
    data["benchmarks"] = [b for b in data["benchmarks"] if b["extra_info"].get("remarks")]
    assert {b["extra_info"]["scenario"] for b in data["benchmarks"]} >= {"spawn", "timers"}
    for bench in data["benchmarks"]:
        del bench["extra_info"]["remarks"]
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(data))
    assert "What the scenarios declare" not in render([load(bare)], tmp_path)
    source = (ROOT / "src" / "anybench" / "_report.py").read_text()
    for path in (ROOT / "scenarios").glob("*.py"):
        assert f"`{path.stem}`" not in source, path.stem


def test_a_remark_on_an_unknown_topic_is_refused_in_one_line() -> None:
    from types import SimpleNamespace

    from anybench import ScenarioSpec
    from anybench._scenario import ScenarioError

    async def run(n: int, probe: object) -> None:
        pass

    fields = {"NAME": "x", "OPERATION": "op", "LATENCIES": {}, "run": run}
    spec = ScenarioSpec.from_module(SimpleNamespace(**fields, REMARKS={"memory": "per task"}))
    assert dict(spec.remarks) == {"memory": "per task"}
    with pytest.raises(ScenarioError, match="REMARKS names unknown topic 'memroy'; choose from"):
        ScenarioSpec.from_module(SimpleNamespace(**fields, REMARKS={"memroy": "per task"}))


def test_the_memory_table_names_the_n_the_memory_was_measured_at(tmp_path: Path) -> None:
    """A quick run measures memory at N = 1,000 and its largest N is 10,000: the rows said
    10,000 and every cell "(at N=1,000)"."""
    from anybench._report import Context, _memory

    from .test_outputs import _results

    data = _results("spawn")
    for bench in data["benchmarks"]:
        if bench["extra_info"]["scale"] == 100:
            bench["extra_info"]["memory"] = {"bytes_per_op": 970.0, "peak_bytes": 97_000, "n": 10}
    path = tmp_path / "run.json"
    path.write_text(json.dumps(data))
    lines = _memory(Context.of([load(path)], tmp_path))
    [row] = [line for line in lines if line.startswith("| spawn |")]
    assert row.startswith("| spawn | 10 | 970 B, peak 0.1 MiB | 970 B")
    assert "(at" not in row
    # one cell measured elsewhere: said in that cell, the row keeps the scale it shows
    data["benchmarks"][-1]["extra_info"]["memory"]["n"] = 20
    path.write_text(json.dumps(data))
    [row] = [line for line in _memory(Context.of([load(path)], tmp_path)) if "| spawn |" in line]
    assert row.startswith("| spawn | 100 |")
    assert row.count("(at N=") == 2


def test_the_latency_table_says_each_cells_samples_where_they_differ(tmp_path: Path) -> None:
    """The samples column once listed "100, 200, 300" for a row of four runtimes, saying which
    p99 rested on 100 (the largest but one) to no one."""
    from anybench._report import Context, _latency

    from .test_outputs import _results

    data = _results("spawn")
    for bench in data["benchmarks"]:
        info = bench["extra_info"]
        if info["scale"] == 100 and info["runtime"] == "trio":
            info["latency_ns"]["wake"]["count"] = 5
    path = tmp_path / "run.json"
    path.write_text(json.dumps(data))
    rows = [line for line in _latency(Context.of([load(path)], tmp_path)) if "| spawn |" in line]
    by_n = {row.split(" | ")[2]: row for row in rows}
    assert by_n["10"].endswith("| 3 |")
    assert "(" not in by_n["10"]
    assert by_n["100"].endswith("| per cell |")
    assert by_n["100"].count(" (3) |") == 1
    assert by_n["100"].count(" (5) |") == 1


@pytest.mark.usefixtures("unplotted")
def test_a_file_from_before_the_scenarios_remarks_says_why_it_has_none(tmp_path: Path) -> None:
    """The 2026-12-01 A/B report said that anyio's `done_callback` figure includes anybench's
    Future; written again from its format-3 files, which do not record the scenarios'
    REMARKS, it dropped that without a word."""
    old = load(ROOT / "results" / "20261201T195106_vm_cpython3.11_anyio-4.13.0.json")
    new = load(ROOT / "results" / "20261202T165602_vm_cpython3.11.json")
    page = render([old, new], tmp_path)
    said = [line for line in page.splitlines() if "no such remarks are shown" in line]
    assert said == [
        f"- `{old.path.name}`: written before results files recorded what each scenario declares "
        "of its figures (results format 3): no such remarks are shown for it."
    ]
    assert "anybench's portable Future" in page  # the format-4 file's remarks are
