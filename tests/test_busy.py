"""How busy the machine was: the figures from the kernel's files (fake ones here), their way
through the worker protocol into the results, and where they are stated and marked.

No timing is asserted: the counters are made up, or only their presence is checked.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from anybench import _busy, _measure
from anybench._busy import Sample, Sources, between, busy_reasons, sample, summary_line
from anybench._compare import format_comparison
from anybench._measure import Plan, Variant, measure_group
from anybench._protocol import (
    Begin,
    Busy,
    Done,
    Event,
    Finished,
    Hello,
    Job,
    Round,
    ScaleJob,
    decode_event,
    encode_event,
    encode_job,
)
from anybench._report import SECTIONS, Context, _busy_section, _summary
from anybench._results import load, read_record
from anybench._sweep import Budget
from anybench._table import comparison_table

from .test_results import RESULTS

STAT = "cpu  {user} 0 100 {idle} 0 0 0 {steal} 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\nintr 1 2\n"
PRESSURE = "some avg10=1.00 avg60=1.00 avg300=1.00 total={some}\nfull avg10=0 total=0\n"
SCHEDSTAT = "123456 {wait} 42\n"


def _proc(tmp_path: Path, name: str, *, user: int, idle: int, steal: int, some: int, wait: int):
    root = tmp_path / name
    root.mkdir()
    (root / "stat").write_text(STAT.format(user=user, idle=idle, steal=steal))
    (root / "pressure").write_text(PRESSURE.format(some=some))
    (root / "schedstat").write_text(SCHEDSTAT.format(wait=wait))
    return Sources(root / "stat", root / "pressure", root / "schedstat")


def test_the_figures_come_from_the_kernels_counters(tmp_path: Path) -> None:
    before = sample(_proc(tmp_path, "a", user=1000, idle=800, steal=100, some=5_000, wait=1_000))
    after = sample(_proc(tmp_path, "b", user=1500, idle=1200, steal=200, some=55_000, wait=9_000))
    # 1 s of wall and 0.5 s of CPU, as the clocks would have given them.
    start = dataclasses.replace(before, wall_ns=0, cpu_ns=0)
    end = dataclasses.replace(after, wall_ns=1_000_000_000, cpu_ns=500_000_000)
    busy = between(start, end)
    assert busy.wall_ns == 1_000_000_000
    assert _busy.cpu_share(busy) == 0.5
    # steal: 100 of (500 user + 400 idle + 100 steal) jiffies; user 100 system unchanged.
    assert busy.steal_share == pytest.approx(0.1)
    # pressure: 50,000 µs of 1 s.
    assert busy.pressure_share == pytest.approx(0.05)
    assert busy.runqueue_ns == 8_000
    assert _busy.runqueue_share(busy) == pytest.approx(8e-6)


def test_a_worker_waiting_for_its_turn_is_measured_over_its_own_turns(tmp_path: Path) -> None:
    """``--pairing lockstep``: half of a worker's wall time is the other's rounds, while it
    waits blocked. Its CPU share and its wait for a CPU are over the rest; the machine's CPU
    pressure over the whole time."""
    before = sample(_proc(tmp_path, "a", user=1000, idle=800, steal=100, some=5_000, wait=1_000))
    after = sample(_proc(tmp_path, "b", user=1500, idle=1200, steal=200, some=55_000, wait=9_000))
    start = dataclasses.replace(before, wall_ns=0, cpu_ns=0)
    end = dataclasses.replace(after, wall_ns=1_000_000_000, cpu_ns=490_000_000)
    busy = between(start, end, waited_ns=500_000_000)
    assert busy.wall_ns == 500_000_000
    assert _busy.cpu_share(busy) == pytest.approx(0.98)
    assert _busy.runqueue_share(busy) == pytest.approx(1.6e-5)
    assert busy.pressure_share == pytest.approx(0.05)
    assert busy_reasons(dataclasses.replace(busy, runqueue_ns=None)) == []


def test_missing_or_unreadable_files_give_none_not_an_error(tmp_path: Path) -> None:
    garbled = tmp_path / "garbled"
    garbled.write_text("cpu  x y z\nsome nothing\n")
    for sources in (
        Sources(tmp_path / "no-stat", tmp_path / "no-pressure", tmp_path / "no-schedstat"),
        Sources(garbled, garbled, garbled),
        Sources(tmp_path, tmp_path, tmp_path),  # a directory cannot be read as a file
    ):
        now = sample(sources)
        assert (now.steal_ticks, now.pressure_us, now.runqueue_ns) == (None, None, None)
        busy = between(now, dataclasses.replace(now, wall_ns=now.wall_ns + 10))
        assert (busy.steal_share, busy.pressure_share, busy.runqueue_ns) == (None, None, None)
        assert busy_reasons(busy) == [] or "CPU time" in busy_reasons(busy)[0]


def test_counters_that_go_backwards_give_none() -> None:
    start = Sample(0, 0, 500, (10, 100), 1000)
    end = Sample(1000, 900, 400, (5, 200), 10)
    busy = between(start, end)
    assert (busy.runqueue_ns, busy.steal_share, busy.pressure_share) == (None, None, None)


def _figures(
    cpu: float = 1.0, wait: float | None = 0.0, steal: float | None = 0.0, psi: float = 0.0
):
    wall = 1_000_000_000
    return Busy(
        wall_ns=wall,
        cpu_ns=int(cpu * wall),
        runqueue_ns=None if wait is None else int(wait * wall),
        steal_share=steal,
        pressure_share=psi,
    )


def test_what_counts_as_busy() -> None:
    assert busy_reasons(_figures()) == []
    # A scenario that sleeps on purpose got little CPU, but never waited for one: not busy.
    assert busy_reasons(_figures(cpu=0.3, wait=0.01)) == []
    assert busy_reasons(_figures(wait=0.2)) == ["waited for a CPU 20% of the time"]
    assert busy_reasons(_figures(psi=0.3)) == ["CPU pressure 30%"]
    assert busy_reasons(_figures(steal=0.15)) == ["steal 15.0%"]
    # Without the run-queue wait, the CPU share decides.
    assert busy_reasons(_figures(cpu=0.6, wait=None)) == ["got 0.60 of its wall time in CPU time"]
    assert busy_reasons(_figures(cpu=0.95, wait=None)) == []


def test_the_summary_gives_the_median_and_the_worst_process() -> None:
    line = summary_line(
        [_figures(cpu=0.98, psi=0.03), _figures(cpu=0.61, psi=0.2), _figures(cpu=0.99)]
    )
    assert line is not None
    assert line.startswith("how busy: CPU share of wall median 0.98 (worst 0.61)")
    assert "steal 0.0% (worst 0.0%)" in line
    assert "CPU pressure 3% (worst 20%)" in line
    assert line.endswith("1 of 3 processes busy")
    assert summary_line([]) is None


def test_busy_crosses_the_protocol_and_old_workers_still_decode() -> None:
    event = Finished(n=10, runtime="asyncio", busy=_figures(wait=None, steal=None))
    assert decode_event(encode_event(event)) == event
    assert decode_event('{"event": "finished", "n": 10, "runtime": "trio"}') == Finished(
        n=10, runtime="trio"
    )


def fake_workers(
    finished: Callable[[int], dict[str, Any]],
) -> Callable[[Variant, Job], Iterator[Event]]:
    """Workers (pids 100, 101, ...) that run one throughput round of each benchmark of their
    job and end it with a Finished of the fields *finished* gives for their pid."""
    pids = iter(range(100, 200))

    def run_worker(variant: Variant, job: Job) -> Iterator[Event]:
        pid = next(pids)
        yield Hello(name="x", pid=pid, python="3.x", implementation="CPython", libraries={})
        for scale_job in job.scales:
            for runtime in scale_job.runtimes:
                n = scale_job.n
                yield Begin(n=n, runtime=runtime, kind="throughput", deadline_s=60.0)
                yield Round(n, runtime, "throughput", n, 100, 1_000_000, 1)
                yield Finished(n=n, runtime=runtime, **finished(pid))
        yield Done()

    return run_worker


def test_the_parent_keeps_each_processs_busy_beside_its_pid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run_worker = fake_workers(lambda pid: {"busy": _figures(cpu=pid / 1000)})
    monkeypatch.setattr(_measure, "run_worker", run_worker)
    plan = Plan(budget=Budget(processes=3, max_processes=3))
    results = measure_group("x", [(10, "asyncio", ""), (10, "trio", "")], plan, {"": Variant()})
    for m in results.values():
        assert m.process_ids == [100, 101, 102]
        assert [b.cpu_ns // 1_000_000 for b in m.process_busy if b] == [100, 101, 102]


def test_a_worker_measures_how_busy_it_was_over_each_scale() -> None:
    job = Job(
        scenario_module="scenarios.done_callback",
        sys_path=(str(Path(__file__).resolve().parent.parent),),
        runtimes=("asyncio", "trio"),
        plan=Plan(budget=Budget(processes=1, min_rounds=2, max_rounds=2), deadline_s=60),
        scales=(ScaleJob(n=10, runtimes=("asyncio", "trio")),),
    )
    proc = subprocess.run(
        [sys.executable, "-m", "anybench._worker"],
        input=encode_job(job),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    finished = [e for e in map(decode_event, proc.stdout.splitlines()) if isinstance(e, Finished)]
    assert [e.runtime for e in finished] == ["asyncio", "trio"]
    # The runtimes of a scale shared their rounds, and so their figures.
    assert finished[0].busy is not None
    assert finished[0].busy == finished[1].busy
    assert finished[0].busy.wall_ns > 0
    assert finished[0].busy.cpu_ns >= 0
    if Path("/proc/self/schedstat").exists():
        assert finished[0].busy.runqueue_ns is not None


# -- in the results, the table and the report -------------------------------------------------


def _with_busy(busy_trio: Busy) -> dict[str, Any]:
    """The test results, every benchmark in two processes: quiet, except the second process of
    N = 1000 (both runtimes: they share their processes)."""
    data = copy.deepcopy(RESULTS)
    for bench in data["benchmarks"]:
        extra = bench["extra_info"]
        extra["process_round_elapsed_ns"] = [extra["round_elapsed_ns"]] * 2
        extra["process_ids"] = [11, 12]
        busy = busy_trio if extra["scale"] == 1000 else _figures()
        extra["process_busy"] = [dataclasses.asdict(_figures()), dataclasses.asdict(busy)]
    return data


def test_busy_figures_are_kept_per_process_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    path.write_text(json.dumps(_with_busy(_figures(wait=0.3))))
    run = load(path)
    record = next(r for r in run.records if (r.runtime, r.n) == ("trio", 1000))
    assert record.process_busy == (_figures(), _figures(wait=0.3))
    # Each process once per scale (the runtimes of a scale share it): 2 scales x 2 pids.
    assert len(run.busy) == 4


def test_files_without_busy_figures_load() -> None:
    for bench in RESULTS["benchmarks"]:
        record = read_record(bench["name"], bench["extra_info"])
        assert record.process_busy == ()


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"wall_ns": 0, "cpu_ns": 1}, "wall_ns and cpu_ns"),
        ({"wall_ns": 10, "cpu_ns": 1, "steal_share": 1.5}, "steal_share must be a share"),
        ({"wall_ns": 10, "cpu_ns": 1, "pressure_share": "3%"}, "pressure_share must be a share"),
        ({"wall_ns": 10, "cpu_ns": 1, "runqueue_ns": -1}, "runqueue_ns must be whole"),
        ({"wall_ns": 10, "cpu_ns": 1, "load": 3}, "not a process's busy figures"),
        ("busy", "not a process's busy figures"),
    ],
)
def test_malformed_busy_figures_are_refused_in_one_line(value: Any, problem: str) -> None:
    extra = copy.deepcopy(RESULTS["benchmarks"][0]["extra_info"])
    extra["process_busy"] = [value]
    with pytest.raises(ValueError, match=problem):
        read_record("x", extra)
    extra["process_busy"] = [None, None]
    with pytest.raises(ValueError, match="names 2 processes, but 1"):
        read_record("x", extra)


def test_the_table_states_how_busy_and_marks_the_busy_figure(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    path.write_text(json.dumps(_with_busy(_figures(wait=0.3))))
    table = comparison_table(load(path))
    marked = [line for line in table.splitlines() if line.rstrip().endswith(" *")]
    assert len(marked) == 1
    assert marked[0].startswith("spawn")
    assert "1,000" in marked[0]
    assert marked[0].count(" *") == 2
    assert "how busy: CPU share of wall median 1.00 (worst 1.00)" in table
    assert "run-queue wait 0% (worst 30%)" in table
    assert "1 of 4 processes busy" in table
    assert "(2 figures)" in table
    assert "* measured while the machine was busy" in table
    quiet = tmp_path / "quiet.json"
    quiet.write_text(json.dumps(_with_busy(_figures())))
    assert " *" not in comparison_table(load(quiet))
    old = tmp_path / "old.json"
    old.write_text(json.dumps(RESULTS))
    assert "how busy:" not in comparison_table(load(old))


def test_the_report_states_how_busy_and_names_the_busy_benchmarks(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    path.write_text(json.dumps(_with_busy(_figures(psi=0.4))))
    assert _busy_section in SECTIONS
    lines = _busy_section(Context.of([load(path)], tmp_path))
    assert lines[0] == "## How busy the machine was"
    section = "\n".join(lines)
    assert "`run.json`: how busy: CPU share of wall median 1.00" in section
    busy_lines = [line for line in section.splitlines() if line.startswith("- `spawn`")]
    assert len(busy_lines) == 2
    assert all("1,000" in line for line in busy_lines)
    assert {line.split(" on ")[1].split(":")[0] for line in busy_lines} == {"asyncio", "trio"}
    assert "1 of 2 processes (CPU pressure 40%)" in busy_lines[0]
    assert "(a figure is marked when a process of it waited for a CPU, " in section
    # and the summary table marks the busy figures, as the terminal table does
    summary = "\n".join(_summary(Context.of([load(path)], tmp_path)))
    marked = [line for line in summary.splitlines() if line.startswith("|") and "\\*" in line]
    assert len(marked) == 1
    assert marked[0].startswith("| spawn | 1,000 |")
    assert marked[0].count("\\*") == 2
    assert "\\* measured while the machine was busy (2 figures)" in summary
    old = tmp_path / "old.json"
    old.write_text(json.dumps(RESULTS))  # made before the workers measured how busy
    assert "\\*" not in "\n".join(_summary(Context.of([load(old)], tmp_path)))
    section = "\n".join(_busy_section(Context.of([load(old)], tmp_path)))
    assert "how busy:" not in section
    assert "`old.json`: rounds within a worker process spread ±0.0%" in section


# -- the rounds' own spread ------------------------------------------------------------------


def test_round_spread_is_the_typical_sd_of_log_rounds_within_a_process() -> None:
    quiet = [[100.0, 102.0, 98.0, 101.0]] * 3
    noisy = [[100.0, 130.0, 75.0, 100.0]] * 3
    spread = _busy.round_spread([quiet, noisy, noisy])
    assert spread is not None
    assert 0.2 < spread < 0.3  # the median benchmark: a noisy one
    assert _busy.round_spread([quiet]) == pytest.approx(0.017, abs=0.002)
    # Fewer than three rounds in every process: nothing to tell from.
    assert _busy.round_spread([[[100.0, 150.0]], [[5.0]]]) is None


def _spread_rounds(factors: list[float]) -> dict[str, Any]:
    """The test results, every benchmark in two processes whose rounds are its round's time
    times *factors*."""
    data = copy.deepcopy(RESULTS)
    for bench in data["benchmarks"]:
        extra = bench["extra_info"]
        rounds = extra["round_elapsed_ns"]
        extra["process_round_elapsed_ns"] = [
            [round(rounds[0] * f) for f in factors] for _ in range(2)
        ]
        extra["process_ids"] = [11, 12]
    return data


def test_compare_and_report_say_when_rounds_spread_like_a_noisy_machine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    quiet, noisy = tmp_path / "quiet.json", tmp_path / "noisy.json"
    quiet.write_text(json.dumps(_spread_rounds([1.0, 1.02, 0.98, 1.0, 1.01, 0.99])))
    noisy.write_text(json.dumps(_spread_rounds([1.0, 1.4, 0.7, 1.0, 1.2, 0.8])))
    for record in load(noisy).records:
        assert all(len(rounds) == 6 for rounds in record.processes)
    text, _ = format_comparison(load(quiet), load(noisy), threshold=0.1)
    [line] = [line for line in text.splitlines() if line.startswith("NOISY")]
    assert line.startswith("NOISY new run: its rounds within a worker process spread ±25%")
    assert "measure again at a quieter hour" in line
    text, _ = format_comparison(load(quiet), load(quiet), threshold=0.1)
    assert "NOISY" not in text
    section = "\n".join(_busy_section(Context.of([load(quiet), load(noisy)], tmp_path)))
    assert "`quiet.json`: rounds within a worker process spread ±1.4%\n" in section + "\n"
    noisy_line = "`noisy.json`: rounds within a worker process spread ±25.4%: noisy, above ±5%"
    assert noisy_line in section
