"""Paired A/B between variants (environments) of one run: pairing by pass, the duet scheduler
(two variants' workers at the same moment, one per CPU), and the A/A control's labels.

Behaviour only: which processes pair, which method a comparison says it used, which workers
ran at once (their spans overlap) and what a stopped run kept. No timing is asserted.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import random
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from anybench import _measure
from anybench._cli import main
from anybench._compare import format_comparison
from anybench._measure import (
    Group,
    Measurement,
    Plan,
    Variant,
    measure_matrix,
    pairing_problem,
    scenario_groups,
)
from anybench._protocol import Begin, Done, Event, Finished, Hello, Job, Round, ScaleJob
from anybench._results import Record, Run
from anybench._sweep import Budget
from anybench._verdicts import BY_DUET, BY_PASS, WELCH, Ratio, compare_runs, variant_pairing

from .conftest import ROOT, run_benchmarks


def _record(
    medians: list[float],
    passes: list[int],
    *,
    variant: str,
    positions: list[int] | None = None,
    scenario: str = "spawn",
    runtime: str = "asyncio",
) -> Record:
    """A record whose process k has the median *medians[k]* (three rounds about it) and ran in
    pass *passes[k]*."""
    processes = tuple((m * 0.99, m, m * 1.01) for m in medians)
    return Record(
        scenario=scenario,
        runtime=runtime,
        n=100,
        ns_per_op=math.exp(sum(math.log(m) for m in medians) / len(medians)),
        rounds=3 * len(medians),
        ops_per_round=100,
        round_ns_per_op=tuple(v for p in processes for v in p),
        processes=processes,
        process_ids=tuple(range(1, len(medians) + 1)),
        process_passes=tuple(passes),
        # Back to back by default: a first in each pass, then b.
        process_positions=tuple(positions or [2 * k - (variant == "a") for k in passes]),
        variant=variant,
    )


def _drifting(seed: int, passes: int, change: float) -> tuple[list[float], list[float]]:
    """Per-pass medians of A and of B = A x *change*: each pass moves both by a factor of up
    to 2x (the machine's minute), each process by 0.5% of its own."""
    rng = random.Random(seed)
    a, b = [], []
    for _ in range(passes):
        minute = math.exp(rng.uniform(-0.35, 0.35))
        a.append(1000 * minute * math.exp(rng.gauss(0, 0.005)))
        b.append(1000 * change * minute * math.exp(rng.gauss(0, 0.005)))
    return a, b


def test_a_drift_common_to_both_sides_cancels_when_paired_by_pass() -> None:
    a, b = _drifting(seed=3, passes=8, change=1.10)
    passes = list(range(1, 9))
    old = _record(a, passes, variant="a")
    new = _record(b, passes, variant="b")
    paired = Ratio.between_variants(old, new)
    welch = Ratio.of(old, new)
    assert (paired.method, paired.pairs, paired.note) == (BY_PASS, 8, "")
    assert paired.low < 1.10 < paired.high
    assert paired.significant
    assert paired.log.floor() < 0.02  # the minutes' drift is gone from the interval
    assert welch.log.floor() > 0.20  # ... and in Welch's, over the same processes, it is not
    assert not welch.significant
    assert paired.ratio == pytest.approx(welch.ratio)  # the same ratio of geometric means


def test_passes_without_a_partner_are_left_out_of_the_pairing_with_a_note() -> None:
    a, b = _drifting(seed=4, passes=6, change=1.0)
    # Old's process of pass 6 failed; new got one more pass (7) than old.
    old = _record(a[:5], [1, 2, 3, 4, 5], variant="a")
    new = _record([*b[:4], b[5], 900.0], [1, 2, 3, 4, 6, 7], variant="b")
    ratio = Ratio.between_variants(old, new)
    assert (ratio.method, ratio.pairs) == (BY_PASS, 4)
    assert ratio.note == (
        "left out of the pairing, having no partner: pass 5 of old; passes 6, 7 of new"
    )
    expected = Ratio.between_variants(
        _record(a[:4], [1, 2, 3, 4], variant="a"), _record(b[:4], [1, 2, 3, 4], variant="b")
    )
    assert ratio.log == expected.log


def test_fewer_than_two_pairs_fall_back_to_welch_with_a_note() -> None:
    old = _record([100.0, 101.0, 99.0], [1, 2, 3], variant="a")
    new = _record([110.0, 111.0, 109.0], [3, 4, 5], variant="b")
    ratio = Ratio.between_variants(old, new)
    assert (ratio.method, ratio.pairs) == (WELCH, 0)
    assert ratio.note == "not paired (only 1 pass had both): Welch's t"
    assert ratio.log == Ratio.of(old, new).log
    # Records made before runs had passes carry no pass numbers.
    old, new = (dataclasses.replace(r, process_passes=(), process_positions=()) for r in (old, new))
    assert Ratio.between_variants(old, new).note == (
        "not paired (its processes carry no pass numbers): Welch's t"
    )


def test_workers_that_shared_their_place_in_every_pass_are_a_duet() -> None:
    a, b = _drifting(seed=5, passes=4, change=1.0)
    old = _record(a, [1, 2, 3, 4], variant="a", positions=[3, 1, 2, 5])
    new = _record(b, [1, 2, 3, 4], variant="b", positions=[3, 1, 2, 5])
    assert Ratio.between_variants(old, new).method == BY_DUET
    back_to_back = _record(b, [1, 2, 3, 4], variant="b", positions=[4, 2, 3, 6])
    assert Ratio.between_variants(old, back_to_back).method == BY_PASS
    # The report's Method section says how the variants of a run met.
    run_a = _run("r_a", "run-1", [old])
    assert variant_pairing([run_a, _run("r_b", "run-1", [new])]) == BY_DUET
    assert variant_pairing([run_a, _run("r_b", "run-1", [back_to_back])]) == BY_PASS
    assert variant_pairing([run_a, _run("r_b", "run-2", [new])]) is None


def _run(name: str, run_id: str, records: list[Record]) -> Run:
    return Run(Path(f"{name}.json"), records, {}, {}, "2026-01-01", {"run_id": run_id})


def test_compare_pairs_two_variants_of_one_run_and_says_so() -> None:
    a, b = _drifting(seed=6, passes=6, change=1.10)
    passes = list(range(1, 7))
    old = _run("r_a", "run-1", [_record(a, passes, variant="a")])
    new = _run("r_b", "run-1", [_record(b, passes, variant="b")])
    [change], _, _, _ = compare_runs(old, new)
    assert change.ratio.method == BY_PASS
    assert change.verdict == "slower"
    text, failed = format_comparison(old, new, 0.5)
    assert not failed
    row = next(line for line in text.splitlines() if line.startswith("spawn N=100 asyncio"))
    assert "6 pairs" in row
    assert "paired by pass" in text
    assert "Pairing notes" not in text
    # The same records as two separate runs: Welch's t, and no claim over that drift.
    other = _run("r_b", "run-2", [_record(b, passes, variant="b")])
    [change], _, _, _ = compare_runs(old, other)
    assert change.ratio.method == WELCH
    text, _ = format_comparison(old, other, 0.5)
    row = next(line for line in text.splitlines() if line.startswith("spawn N=100 asyncio"))
    assert "Welch" in row
    assert "paired by pass" not in text


def test_a_change_is_claimed_only_beyond_the_minimum_change() -> None:
    """A tight 1.5% change is real but within what separates two environments of the same code:
    not claimed at the default ±2%, claimed at --min-change 0; a 4% change is claimed."""
    passes = list(range(1, 13))

    def verdict(change: float, min_change: float | None = None) -> str:
        a, b = _drifting(seed=11, passes=12, change=change)
        old = _run("r_a", "run-1", [_record(a, passes, variant="a")])
        new = _run("r_b", "run-1", [_record(b, passes, variant="b")])
        kwargs = {} if min_change is None else {"min_change": min_change}
        [found], _, _, _ = compare_runs(old, new, **kwargs)
        assert found.ratio.log.floor() < 0.005  # the pairing cancels the minutes' drift
        return found.verdict

    assert verdict(1.015) == "not significant"
    assert verdict(1 / 1.015) == "not significant"
    assert verdict(1.015, min_change=0.0) == "slower"
    assert verdict(1 / 1.015, min_change=0.0) == "faster"
    assert verdict(1.04) == "slower"
    assert verdict(1 / 1.04) == "faster"


def test_a_bad_minimum_change_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for value in ("-1", "x", "nan"):
        assert main(["compare", "a.json", "b.json", "--min-change", value]) == 2
        err = capsys.readouterr().err
        assert err.strip().count("\n") == 0
        assert f"--min-change takes a percentage from 0 to 1000, like 2; not '{value}'" in err


def test_compare_notes_what_it_left_out_of_a_pairing() -> None:
    a, b = _drifting(seed=7, passes=5, change=1.0)
    old = _run("r_a", "run-1", [_record(a, [1, 2, 3, 4, 5], variant="a")])
    new = _run("r_b", "run-1", [_record(b[:4], [1, 2, 3, 4], variant="b")])
    text, _ = format_comparison(old, new, 0.1)
    lines = text.splitlines()
    assert lines[lines.index("Pairing notes:") + 1] == (
        "  spawn N=100 asyncio: left out of the pairing, having no partner: pass 5 of old"
    )


def test_a_duet_is_refused_in_one_line_unless_two_variants_and_two_cpus() -> None:
    assert pairing_problem("alternate", 3) is None
    assert pairing_problem("duet", 2, cpus=2) is None
    problem = pairing_problem("duet", 3, cpus=2)
    assert problem is not None
    assert problem.startswith("--pairing duet runs two variants side by side, but 3 were given")
    problem = pairing_problem("duet", 2, cpus=1)
    assert problem is not None
    assert "needs two CPUs" in problem
    assert pairing_problem("sideways", 2) == (
        "--pairing takes alternate, duet or lockstep, not 'sideways'"
    )
    assert pairing_problem("lockstep", 3, cpus=1) is None
    with pytest.raises(ValueError, match="but 1 was given"):
        measure_matrix(_groups(("a",)), Plan(), {"a": Variant("a")}, pairing="duet")


def _groups(labels: tuple[str, ...], scenario: str = "x") -> list[Group]:
    keys = [(10, rt, label) for rt in ("asyncio", "trio") for label in labels]
    return scenario_groups(scenario, keys)


def test_a_loose_variant_takes_the_other_into_its_extra_passes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The precision rule gives a group of two variants more processes while a ratio between
    them, paired by pass, is loose: in every variant, so that each extra pass's process of one
    has a partner in the other."""
    rng = random.Random(8)

    def run_worker(variant: Variant, job: Job) -> Iterator[Event]:
        [scale] = job.scales
        yield Hello(name="x", pid=rng.randrange(1, 10**6), python="3", implementation="C",
                    libraries={})  # fmt: skip
        for runtime in scale.runtimes:
            yield Begin(n=scale.n, runtime=runtime, kind="throughput", deadline_s=60.0)
            for _ in range(3):
                # Variant b's processes are 50% apart, a's all alike: only b is loose.
                loose = 0.5 * rng.random() if variant.label == "b" else 0.0
                yield Round(n=scale.n, runtime=runtime, kind="throughput", n_round=scale.n,
                            ops=100, elapsed_ns=int(1e6 * (1 + loose)), passes=1)  # fmt: skip
            yield Finished(n=scale.n, runtime=runtime)
        yield Done()

    monkeypatch.setattr(_measure, "run_worker", run_worker)
    plan = Plan(Budget(processes=3, max_processes=6, precision=1e-6))
    [found] = measure_matrix(
        _groups(("a", "b")), plan, {"a": Variant("a"), "b": Variant("b")}, seed=1,
        pairing="alternate",
    )  # fmt: skip
    for m in found.values():
        assert m.process_passes == [1, 2, 3, 4, 5, 6]


def test_variants_that_drift_together_are_settled_by_their_paired_ratio(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each variant's own processes are 50% apart, but by pass they move together (the
    minute's drift): their ratio, paired by pass, is exact, so the group stops at its least
    processes, though each benchmark's own interval is far wider than the precision asked."""
    drift = [1.0, 1.5, 1.2, 1.4, 1.1, 1.3]
    calls = {"a": 0, "b": 0}

    def run_worker(variant: Variant, job: Job) -> Iterator[Event]:
        [scale] = job.scales
        factor = drift[calls[variant.label]]
        calls[variant.label] += 1
        yield Hello(name="x", pid=1000 + sum(calls.values()), python="3", implementation="C",
                    libraries={})  # fmt: skip
        for runtime in scale.runtimes:
            yield Begin(n=scale.n, runtime=runtime, kind="throughput", deadline_s=60.0)
            for _ in range(3):
                cost = 1e6 * factor * (1.1 if variant.label == "b" else 1.0)
                yield Round(n=scale.n, runtime=runtime, kind="throughput", n_round=scale.n,
                            ops=100, elapsed_ns=int(cost), passes=1)  # fmt: skip
            yield Finished(n=scale.n, runtime=runtime)
        yield Done()

    monkeypatch.setattr(_measure, "run_worker", run_worker)
    plan = Plan(Budget(processes=3, max_processes=6, precision=1e-6, pair_precision=0.01))
    [found] = measure_matrix(
        _groups(("a", "b")), plan, {"a": Variant("a"), "b": Variant("b")}, seed=1,
        pairing="alternate",
    )  # fmt: skip
    for m in found.values():
        assert m.process_passes == [1, 2, 3]
        assert not m.tight(0.05)
    a, b = found[(10, "trio", "a")], found[(10, "trio", "b")]
    assert a.paired_floor(b) == pytest.approx(0.0, abs=1e-9)
    assert b.process_medians_ns_per_op()[1] / a.process_medians_ns_per_op()[1] == (
        pytest.approx(1.1, rel=1e-6)
    )


def test_a_paired_floor_needs_two_passes_in_common() -> None:
    """Processes pair only within a pass; with fewer than two pairs there is no interval."""
    a = Measurement(10, "asyncio", "a", processes=[[100], [120]], process_passes=[1, 2],
                    ops_per_round=1)  # fmt: skip
    b = Measurement(10, "asyncio", "b", processes=[[110], [130]], process_passes=[2, 3],
                    ops_per_round=1)  # fmt: skip
    assert a.paired_floor(b) == math.inf
    b.process_passes = [1, 2]
    assert 0 < a.paired_floor(b) < math.inf


#: A tiny scenario: each worker notes its pid and the CPUs it may run on in the directory
#: $PAIRING_MARKS; in a variant whose environment sets $PAIRING_SLOW, it sleeps for an hour.
TINY = '''
"""Nothing much, for the pairing tests."""
import os
import time

import anyio

NAME = "tiny"
OPERATION = "a loop turn"
LATENCIES = {}

with open(os.path.join(os.environ["PAIRING_MARKS"], str(os.getpid())), "w") as f:
    f.write(" ".join(map(str, sorted(os.sched_getaffinity(0)))))


async def run(n, probe):
    if os.environ.get("PAIRING_SLOW"):
        await anyio.sleep(3600)
    probe.start(ops=n)
    for _ in range(n):
        pass
    # A region past the 2 ms a round is planned to reach: one pass a round (an empty one is
    # repeated 2,000 times, a collection before each).
    time.sleep(0.0025)
    probe.stop()
'''


def _python(directory: Path, name: str, env: str = "") -> str:
    """A variant's Python: this one, through a script that sets *env* (``VAR=value``)."""
    path = directory / name
    path.write_text(f'#!/bin/sh\n{env} exec {sys.executable} "$@"\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


Span = tuple[str, int | None, float, float, int]


def _tiny(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slow: str = ""
) -> tuple[list[Group], dict[str, Variant], Plan, list[Span]]:
    """The tiny scenario's one group in variants a and b (b's environment sets *slow*), a
    plan of two cheap processes, and the spans of the workers as they are run: (variant, CPU
    asked for, start, end, pid)."""
    (tmp_path / "tiny_pairing.py").write_text(textwrap.dedent(TINY))
    marks = tmp_path / "marks"
    marks.mkdir()
    monkeypatch.setenv("PAIRING_MARKS", str(marks))
    keys = [(10, "asyncio", "a"), (10, "asyncio", "b")]
    groups = scenario_groups("tiny_pairing", keys, sys_path=[str(tmp_path), *sys.path])
    variants = {
        "a": Variant("a", _python(tmp_path, "python-a")),
        "b": Variant("b", _python(tmp_path, "python-b", slow)),
    }
    plan = Plan(
        Budget(processes=2, max_processes=2, target_ops=100, time_budget_s=0.05,
               min_rounds=1, max_rounds=2, latency_rounds=0),
        deadline_s=60,
    )  # fmt: skip
    spans: list[Span] = []
    real = _measure.run_worker

    def recording(variant: Variant, job: Job, **placed: Any) -> Iterator[Event]:
        start, pid = _measure.time.monotonic(), 0
        try:
            for event in real(variant, job, **placed):
                if isinstance(event, Hello):
                    pid = event.pid
                yield event
        finally:
            spans.append((variant.label, placed.get("cpu"), start, _measure.time.monotonic(), pid))

    monkeypatch.setattr(_measure, "run_worker", recording)
    return groups, variants, plan, spans


@pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="a duet needs two CPUs",
)
def test_a_duet_runs_the_two_variants_workers_at_once_one_per_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    groups, variants, plan, spans = _tiny(tmp_path, monkeypatch)
    settled: list[tuple[str, int, int]] = []
    main = threading.get_ident()

    def on_process(group: Group, key: tuple[int, str, str], m: Measurement) -> None:
        assert threading.get_ident() == main  # the journal is written by one thread
        settled.append((key[2], len(m.processes), m.process_passes[-1]))

    [found] = measure_matrix(groups, plan, variants, pairing="duet", on_process=on_process)
    a, b = found[(10, "asyncio", "a")], found[(10, "asyncio", "b")]
    assert a.failure is None
    assert b.failure is None
    assert a.process_passes == b.process_passes == [1, 2]
    assert a.process_positions == b.process_positions  # side by side: one place in the pass
    assert sorted(settled) == [("a", 1, 1), ("a", 2, 2), ("b", 1, 1), ("b", 2, 2)]
    cpus = sorted(os.sched_getaffinity(0))[:2]
    by_start = sorted(spans, key=lambda span: span[2])
    for number, duet in enumerate((by_start[:2], by_start[2:])):
        assert {label for label, *_ in duet} == {"a", "b"}
        # Both were running at once: each started before the other ended.
        assert max(start for _, _, start, _, _ in duet) < min(end for _, _, _, end, _ in duet)
        # One CPU each, the two changing sides from one pass to the next.
        placed = {label: cpu for label, cpu, *_ in duet}
        assert placed == {"a": cpus[number % 2], "b": cpus[(number + 1) % 2]}
    # Each worker could run only on the CPU it was given.
    marks = {int(p.name): p.read_text() for p in (tmp_path / "marks").iterdir()}
    assert len(spans) == 4
    for label, cpu, _, _, pid in spans:
        assert marks[pid] == str(cpu), label

    # Alternating, the same variants' workers never overlap, and nobody pins them.
    spans.clear()
    measure_matrix(groups, plan, variants, pairing="alternate")
    by_start = sorted(spans, key=lambda span: span[2])
    assert all(earlier[3] <= later[2] for earlier, later in itertools.pairwise(by_start))
    assert {cpu for _, cpu, *_ in spans} == {None}


@pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="a duet needs two CPUs",
)
@pytest.mark.parametrize("heard_by", ["main", "side"])
def test_a_duet_stopped_midway_keeps_the_process_that_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, heard_by: str
) -> None:
    """Ctrl-C while b's worker still runs: a's finished process was handed on (journalled) as
    it came, b's worker is killed, and the run stops; also where the kernel hands the signal
    to a thread that waits on a worker, not to the main thread (Python runs the handler in
    the main thread only when that thread next runs: it must not be in a long wait)."""
    groups, variants, plan, spans = _tiny(tmp_path, monkeypatch, slow="PAIRING_SLOW=1")
    settled: list[tuple[str, int]] = []
    returned = threading.Event()
    sent_to: list[str] = []

    def ctrl_c() -> None:
        # A real SIGINT to the main thread after 0.2 s, and again every 5 s until the run has
        # stopped, as a terminal's Ctrl-C sends. A simulated one (_thread.interrupt_main) only
        # sets a flag, which a main thread blocked in a wait does not see until the wait ends:
        # with it, on a loaded machine, the run went on to b's 60 s start-up deadline and ended
        # normally (four times beside valgrind runs). A stop takes milliseconds, so a second
        # signal never lands in the first's unwinding.
        wait = 0.2
        while not returned.wait(wait):
            sides = [t for t in threading.enumerate() if t.name.endswith("(body)")]
            target = threading.main_thread() if heard_by == "main" or not sides else sides[0]
            sent_to.append(target.name)
            signal.pthread_kill(target.ident or 0, signal.SIGINT)
            wait = 5.0

    def on_process(group: Group, key: tuple[int, str, str], m: Measurement) -> None:
        settled.append((key[2], len(m.processes)))
        if key[2] == "a":  # a Ctrl-C, once a's process is in
            threading.Thread(target=ctrl_c, daemon=True).start()

    # SIGINT has an interactive Python's handler even in a background job (conftest).
    try:
        with pytest.raises(KeyboardInterrupt):
            measure_matrix(groups, plan, variants, pairing="duet", on_process=on_process)
    finally:
        returned.set()
    assert settled == [("a", 1)]
    assert sent_to[0].endswith("(body)") == (heard_by == "side"), sent_to
    [(_, _, _, _, slow_pid)] = [span for span in spans if span[0] == "b"]
    assert slow_pid > 0
    with pytest.raises(ProcessLookupError):  # killed and reaped: no worker left behind
        os.kill(slow_pid, 0)


def test_the_same_requirement_twice_is_an_a_a_control_of_two_environments() -> None:
    code = (
        "import sys, noxfile\n"
        "for specs in sys.argv[1:]:\n"
        "    print(noxfile.requirement_labels(specs.split()))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "anyio anyio", "anyio==4.13.0 anyio", "anyio trio anyio"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYENV_VERSION": os.environ.get("PYENV_VERSION", "system")},
    )
    assert proc.stdout.splitlines() == [
        "['anyio-a', 'anyio-b']",
        "['anyio-4.13.0', 'anyio']",
        "['anyio-a', 'trio', 'anyio-b']",
    ]


def test_bench_versions_refuses_a_misspelt_or_late_requirement_before_installing() -> None:
    """A requirement it did not know once let the defaults be measured for minutes, then
    pytest failed on "file or directory not found"."""
    code = (
        "import sys, noxfile\n"
        "for args in sys.argv[1:]:\n"
        "    try:\n"
        "        print(noxfile.split_requirements(args.split()))\n"
        "    except ValueError as exc:\n"
        "        print('refused:', exc)\n"
    )
    cases = [
        "anyio==4.13.0 anyio --profile quick",
        "AnyIO>4.13 trio!=0.30 --profile quick",
        "--profile quick",
        "anyoi==4.13.0 anyio --profile quick",
        "--profile quick anyio==4.13.0 anyio",
        "anyio anyio --runtime trio",
    ]
    proc = subprocess.run(
        [sys.executable, "-c", code, *cases],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYENV_VERSION": os.environ.get("PYENV_VERSION", "system")},
    )
    lines = proc.stdout.splitlines()
    assert lines[0] == "(['anyio==4.13.0', 'anyio'], ['--profile', 'quick'])"
    assert lines[1] == "(['AnyIO>4.13', 'trio!=0.30'], ['--profile', 'quick'])"
    assert lines[2] == "([], ['--profile', 'quick'])"
    assert lines[3].startswith("refused: 'anyoi==4.13.0' is not a requirement of a runtime's")
    assert lines[3].endswith("requirements come first, then options")
    assert lines[4] == "refused: 'anyio==4.13.0' comes after an option; requirements come first"
    assert lines[5] == "(['anyio', 'anyio'], ['--runtime', 'trio'])"


@pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="a duet needs two CPUs",
)
def test_a_duet_run_through_pytest_is_compared_pass_by_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--pairing duet`` from the command line to compare's column: the two variants' files
    share the run's id, and their processes pair as duets."""
    raw = tmp_path / "raw.json"
    proc = run_benchmarks(
        "--scenario", "spawn", "--scales", "3", "--processes", "2", "--max-processes", "2",
        "--runtime", "asyncio", "--variant", f"a={sys.executable}",
        "--variant", f"b={_python(tmp_path, 'python-b')}", "--pairing", "duet",
        f"--benchmark-json={raw}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert main(["save", str(raw), "--into", str(tmp_path / "results")]) == 0
    a, b = capsys.readouterr().out.split()
    main(["compare", a, b])
    out = capsys.readouterr().out
    [row] = [line for line in out.splitlines() if line.startswith("spawn N=3 asyncio")]
    assert "2 duets" in row
    assert "at the same moment, one per CPU" in out


def test_a_duet_of_one_variant_is_refused_in_one_line() -> None:
    proc = run_benchmarks(
        "--variant", f"a={sys.executable}", "--pairing", "duet", "--collect-only", "-q"
    )
    assert proc.returncode == 4, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines() == [
        "ERROR: --pairing duet runs two variants side by side, but 1 was given; give exactly "
        "two --variant options, or use --pairing alternate"
    ]


def test_bench_ab_refuses_lockstep_against_a_base_whose_workers_cannot_take_turns(
    tmp_path: Path,
) -> None:
    """And warns (`_places_afresh`) of a base older than a fresh placement in every worker."""
    old = tmp_path / "old" / "src" / "anybench"
    old.mkdir(parents=True)
    (old / "_protocol.py").write_text("PROTOCOL = 1\n")
    # Turns for rounds but none for the exit (2026-12-04, before TURNS_VERSION).
    no_exit = tmp_path / "no_exit" / "src" / "anybench"
    no_exit.mkdir(parents=True)
    (no_exit / "_protocol.py").write_text('PROTOCOL = 1\nGO = "go"\n')
    # ... and copies of compiled code, but no shift of the heap (2026-12-05, before 18fd81c).
    (no_exit / "_fresh.py").write_text("def install():\n    pass\n")
    code = (
        "import sys, pathlib, noxfile\n"
        "print(*(noxfile._takes_turns(pathlib.Path(tree)) for tree in sys.argv[1:4]))\n"
        "print(*(noxfile._places_afresh(pathlib.Path(tree)) for tree in sys.argv[1:4]))\n"
        "for args in sys.argv[4:]:\n"
        "    print(repr(noxfile._asked_pairing(args.split())))\n"
        "old = pathlib.Path(sys.argv[1])\n"
        "for args in ([], ['--pairing', 'duet'], ['--pairing', 'lockstep']):\n"
        "    try:\n"
        "        found, note = noxfile._pairing_for_base(old, 'v1', args)\n"
        "        print(repr('+'.join(found)), bool(note))\n"
        "    except ValueError as exc:\n"
        "        print('refused', str(exc).startswith('the base v1 predates'))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "old"), str(tmp_path / "no_exit"), str(ROOT),
         "--pairing lockstep",
         "--pairing=lockstep -x", "--pairing lockstep --pairing alternate", "--profile quick",
         "--pairing"],
        cwd=ROOT, capture_output=True, text=True, check=True,
        env={**os.environ, "PYENV_VERSION": os.environ.get("PYENV_VERSION", "system")},
    )  # fmt: skip
    assert proc.stdout.split() == [
        "False", "False", "True",
        "False", "False", "True",  # bases older than a fresh placement in every worker: a warning
        "'lockstep'", "'lockstep'", "'alternate'", "None", "''",
        # Against a base that cannot take turns: none asked, alternate (and a note); one asked,
        # as asked; lockstep asked by name, refused.
        "'--pairing+alternate'", "True", "'--pairing+duet'", "False", "refused", "True",
    ]  # fmt: skip


def test_the_report_and_compare_sessions_tell_files_from_option_values() -> None:
    """``report -- --out DIR`` names no file (the newest is reported), ``report -- results/``
    names one (it is not replaced by the newest), ``compare -- A.json --threshold 5`` names one
    (the session's usage line, not anybench's)."""
    code = (
        "import sys, noxfile\n"
        "print(noxfile._positionals(['--out', 'DIR'], ('--out',)))\n"
        "print(noxfile._positionals(['results/', '--force'], ('--out',)))\n"
        "print(noxfile._positionals(['A.json', '--threshold', '5'], ('--threshold',)))\n"
        "print(noxfile._positionals(['A.json', '--threshold=5', 'B.json'], ('--threshold',)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT, capture_output=True, text=True, check=True,
        env={**os.environ, "PYENV_VERSION": os.environ.get("PYENV_VERSION", "system")},
    )  # fmt: skip
    assert proc.stdout.splitlines() == ["[]", "['results/']", "['A.json']", "['A.json', 'B.json']"]


def test_the_tests_session_names_a_test_path_that_does_not_exist() -> None:
    """Under pytest-xdist a missing path said only "no tests ran"; the session checks the
    arguments that look like paths, never an option's value."""
    code = "import sys, noxfile\nprint(noxfile._test_paths(sys.argv[1:]))\n"
    args = ["tests/test_nope.py", "-k", "spawn", "-o", "xfail_strict=false", "tests/a.py::t", "-x",
            "--junitxml", "out/j.xml", "--basetemp", "/tmp/t"]  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT, capture_output=True, text=True, check=True,
        env={**os.environ, "PYENV_VERSION": os.environ.get("PYENV_VERSION", "system")},
    )  # fmt: skip
    assert proc.stdout.strip() == "['tests/test_nope.py', 'tests/a.py']"


def test_bench_ab_refuses_a_base_from_before_the_worker_protocol(tmp_path: Path) -> None:
    """Such a base's workers all failed to start, after minutes of measuring the head alone."""
    (tmp_path / "old" / "src" / "anybench").mkdir(parents=True)
    code = (
        "import sys, pathlib, noxfile\n"
        "print(*(noxfile._speaks_protocol(pathlib.Path(a)) for a in sys.argv[1:]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "old"), str(ROOT)],
        cwd=ROOT, capture_output=True, text=True, check=True,
        env={**os.environ, "PYENV_VERSION": os.environ.get("PYENV_VERSION", "system")},
    )  # fmt: skip
    assert proc.stdout.split() == ["False", "True"]


def _by_turns(order: Sequence[object]) -> bool:
    """Whether *order* goes a, b, a, b, ...: no side twice in a row."""
    return all(x != y for x, y in itertools.pairwise(order))


@pytest.mark.parametrize("leader", ["a", "b"])
def test_turns_go_to_one_side_at_a_time_by_turns_the_lower_rank_first(leader: str) -> None:
    turns = _measure.Turns(expected=2)
    held: list[str] = []
    inside = threading.Lock()
    ready = threading.Barrier(2)

    def side(name: str, pause_s: float) -> None:
        ready.wait()
        turns.arrive(name, rank=0 if name == leader else 1)
        if name == leader:
            time.sleep(0.05)  # the other asks first: the rank decides, not who asks first
        for _ in range(20):
            turns.acquire(name)
            assert inside.acquire(blocking=False), "two sides held a turn at once"
            held.append(name)
            inside.release()
            turns.release(name)
            time.sleep(pause_s)  # between its rounds: b is slower to ask again than a

    threads = [threading.Thread(target=side, args=args) for args in (("a", 0), ("b", 0.002))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(held) == ["a"] * 20 + ["b"] * 20
    # However slow b is to ask for its next turn: the leader's, the other's, the leader's, ...
    assert held[0] == leader
    assert _by_turns(held), held


def _kept_waiting(turns: _measure.Turns, side: str) -> None:
    """Assert that *side* would wait for its turn now: asked with the run already stopping, its
    acquire ends in KeyboardInterrupt instead of a turn."""
    stop = threading.Event()
    stop.set()
    with pytest.raises(KeyboardInterrupt):
        turns.acquire(side, stop)


def test_a_side_that_has_ended_is_not_waited_for() -> None:
    turns = _measure.Turns(expected=2)
    turns.arrive("a", rank=1)
    turns.arrive("b", rank=0)
    _kept_waiting(turns, "a")  # as many turns each (none): b, of the lower rank, leads
    turns.acquire("b")
    turns.release("b")
    _kept_waiting(turns, "b")  # a has had no turn yet: b waits for it
    turns.acquire("a")
    turns.release("a")
    _kept_waiting(turns, "a")  # as many turns each again: b leads
    turns.acquire("b")
    turns.release("b")
    turns.leave("a")  # a's worker ended (its last round done, or it failed)
    turns.acquire("b")
    turns.release("b")
    turns.acquire("b")


def test_no_turn_is_given_before_every_worker_has_started_or_ended() -> None:
    turns = _measure.Turns(expected=2)
    turns.arrive("a")
    _kept_waiting(turns, "a")  # b is still starting
    turns.arrive("b")  # b said hello
    turns.acquire("a")
    turns = _measure.Turns(expected=2)
    turns.arrive("a")
    turns.leave("b")  # b ended before it said hello: nobody waits for it
    turns.acquire("a")


def test_a_worker_that_joins_late_starts_level_with_the_others_not_at_none() -> None:
    """A fresh worker (after a kill) takes turns by turns with the one still running, not
    every turn the other has had, in a row."""
    turns = _measure.Turns(expected=2)
    turns.arrive("a", rank=0)
    turns.arrive("b", rank=1)
    for _ in range(3):
        for side in ("a", "b"):
            turns.acquire(side)
            turns.release(side)
    turns.leave("a")  # killed in its round; a fresh worker takes its place
    turns.arrive("a2", rank=0)
    turns.acquire("a2")  # as many turns as b (three): the lower rank leads
    turns.release("a2")
    _kept_waiting(turns, "a2")  # then b's turn, not a2's fourth in a row
    turns.acquire("b")


def test_a_released_turn_that_was_never_held_changes_nothing() -> None:
    turns = _measure.Turns()
    turns.arrive("a")
    turns.acquire("a")
    turns.release("b")
    _kept_waiting(turns, "b")  # a still holds it: b waits until the run stops
    turns.release("a")
    turns.acquire("b")


#: Each round's region, and the worker's exit, noted as "start end CPUS round|exit" on the
#: system-wide monotonic clock, in a file per worker in $PAIRING_MARKS.
STAMPED = '''
"""A region that notes when it ran, and the worker's exit, for the lockstep test."""
import atexit
import os
import time

NAME = "stamped"
OPERATION = "a loop turn"
LATENCIES = {}


async def run(n, probe):
    probe.start(ops=n)
    start = time.monotonic()
    time.sleep(0.003)
    end = time.monotonic()
    probe.stop()
    _note(start, end)


def _note(start, end, what="round"):
    marks = os.environ.get("PAIRING_MARKS")  # none in a process that only imported this
    if marks is None:
        return
    with open(os.path.join(marks, str(os.getpid())), "a") as f:
        cpus = ",".join(map(str, sorted(getattr(os, "sched_getaffinity", lambda _: "-")(0))))
        f.write(f"{start} {end} {cpus} {what}\\n")


@atexit.register
def _exiting():
    # The worker's exit, made long enough to be seen beside another worker's round.
    start = time.monotonic()
    time.sleep(0.02)
    _note(start, time.monotonic(), "exit")
'''


def test_lockstep_runs_the_variants_rounds_by_turns_never_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--pairing lockstep``: both variants' workers alive at once, each round of one run
    while the other's worker waits, their rounds alternating, both pinned to one CPU (where
    there are two, the other in the next pass); and a worker's exit, which follows its last
    round, never beside the other's last round."""
    (tmp_path / "stamped_pairing.py").write_text(textwrap.dedent(STAMPED))
    marks = tmp_path / "marks"
    marks.mkdir()
    monkeypatch.setenv("PAIRING_MARKS", str(marks))
    keys = [(10, "asyncio", "a"), (10, "asyncio", "b")]
    groups = scenario_groups("stamped_pairing", keys, sys_path=[str(tmp_path), *sys.path])
    variants = {
        "a": Variant("a", _python(tmp_path, "python-a")),
        "b": Variant("b", _python(tmp_path, "python-b")),
    }
    plan = Plan(
        Budget(processes=2, max_processes=2, target_ops=10**6, time_budget_s=10,
               min_rounds=6, max_rounds=6, latency_rounds=0),
        deadline_s=60,
    )  # fmt: skip
    pids: dict[int, str] = {}
    pass_of: dict[int, int] = {}
    real = _measure.run_worker

    cpu_of: dict[int, int | None] = {}

    def noting(variant: Variant, job: Job, **placed: Any) -> Iterator[Event]:
        assert placed.get("turns") is not None
        for event in real(variant, job, **placed):
            if isinstance(event, Hello):
                pids[event.pid] = variant.label
                pass_of[event.pid] = 1 + len(pids) // 3  # two workers a pass
                cpu_of[event.pid] = placed.get("cpu")
            yield event

    monkeypatch.setattr(_measure, "run_worker", noting)
    [found] = measure_matrix(groups, plan, variants, pairing="lockstep")
    a, b = found[(10, "asyncio", "a")], found[(10, "asyncio", "b")]
    assert a.failure is None
    assert b.failure is None
    assert a.process_passes == b.process_passes == [1, 2]
    assert a.process_positions == b.process_positions  # one place in the pass, as a duet
    assert [len(rounds) for rounds in a.processes] == [6, 6]
    regions = sorted(
        (float(start), float(end), int(path.name))
        for path in marks.iterdir()
        for start, end, *_ in (line.split() for line in path.read_text().splitlines())
    )
    exits = [line for path in marks.iterdir() for line in path.read_text().splitlines()
             if line.endswith(" exit")]  # fmt: skip
    assert len(exits) == 4
    assert len(pids) == 4
    if hasattr(os, "sched_setaffinity"):
        # One CPU for both workers of a pass, the other CPU (if any) for the next pass's, and
        # each worker ran on nothing else, its exit included.
        usable = sorted(os.sched_getaffinity(0))[:2]
        for pid, number in pass_of.items():
            assert cpu_of[pid] == usable[(number - 1) % len(usable)]
            ran_on = {line.split()[2] for line in (marks / str(pid)).read_text().splitlines()}
            assert ran_on == {str(cpu_of[pid])}
    assert len(regions) >= 28  # warm-ups, six throughput rounds and the exit of four workers
    for (_, end, _), (start, _, _) in itertools.pairwise(regions):
        assert end <= start, "two workers' rounds (or a round and an exit) overlapped"
    # No round before both workers of a pass had started, and then theirs went by turns until
    # one had none left: a's, b's, a's, ... then the rest of one (cut here); a led both
    # passes (the leader changes every second pass: test_lockstep_leaders_change_every_...).
    for number, leader in ((1, "a"), (2, "a")):
        mine = [pid for pid in pids if pass_of[pid] == number]
        order = [pid for _, _, pid in regions if pid in mine]
        first_done = min(len(order) - order[::-1].index(pid) for pid in mine)
        assert _by_turns(order[:first_done]), order
        assert pids[order[0]] == leader, order


def test_a_worker_stopped_while_it_waits_for_its_exit_turn_keeps_its_work(
    tmp_path: Path,
) -> None:
    """Its Done sent, its work stands: a stop while it waits for the turn of its exit (the other
    worker still in its rounds) hands on every event, Done last, with no exception, and kills
    it. (Once, the stop raised there, and its finished process never reached the journal.)"""
    (tmp_path / "stamped_pairing.py").write_text(textwrap.dedent(STAMPED))
    job = Job(
        scenario_module="stamped_pairing",
        sys_path=(str(tmp_path), *sys.path),
        runtimes=("asyncio",),
        plan=Plan(Budget(processes=1, min_rounds=2, max_rounds=2, latency_rounds=0), 60),
        scales=(ScaleJob(n=10, runtimes=("asyncio",)),),
    )
    turns = _measure.Turns()
    stop = threading.Event()
    events: list[Event] = []
    for event in _measure.run_worker(
        Variant("a", sys.executable), job, stop=stop, turns=turns, rank=1
    ):
        events.append(event)
        if isinstance(event, Finished):
            # Another worker joins, level with it, and leads the next turn, which it holds:
            # this one's exit waits for it, and the run stops meanwhile.
            turns.arrive("other", rank=0)
            turns.acquire("other")
            threading.Timer(0.3, stop.set).start()
    assert isinstance(events[-1], Done)
    assert sum(isinstance(e, Round) and e.kind == "throughput" for e in events) == 2
    [pid] = [e.pid for e in events if isinstance(e, Hello)]
    with pytest.raises(ProcessLookupError):  # killed and reaped
        os.kill(pid, 0)


def test_lockstep_leaders_change_every_second_pass_where_the_runtimes_change_every_pass() -> None:
    """Each variant leads in as many passes with the runtimes forward as backward."""
    led = [(_measure._leaders(["a", "b"], number)[0], number % 2) for number in range(8)]
    assert sorted(led) == [(label, way) for label in "ab" for way in (0, 0, 1, 1)]


@pytest.mark.parametrize("asked", [["--pairing", "lockstep"], []], ids=["asked", "by default"])
def test_a_lockstep_run_through_pytest_is_compared_by_turns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], asked: list[str]
) -> None:
    """``lockstep`` is also what a run of several variants that asks for no pairing does."""
    raw = tmp_path / "raw.json"
    proc = run_benchmarks(
        "--scenario", "spawn", "--scales", "3", "--processes", "2", "--max-processes", "2",
        "--runtime", "asyncio", "--variant", f"a={sys.executable}",
        "--variant", f"b={_python(tmp_path, 'python-b')}", *asked,
        f"--benchmark-json={raw}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert main(["save", str(raw), "--into", str(tmp_path / "results")]) == 0
    a, b = capsys.readouterr().out.split()
    main(["compare", a, b])
    out = capsys.readouterr().out
    [row] = [line for line in out.splitlines() if line.startswith("spawn N=3 asyncio")]
    assert "2 turns" in row
    assert "their rounds taking turns one at a time" in out
    assert main(["report", a, b, "--out", str(tmp_path / "report")]) == 0
    capsys.readouterr()
    [page] = (tmp_path / "report").glob("*.md")
    assert "`--pairing lockstep`" in page.read_text(encoding="utf-8")


def test_lockstep_of_one_variant_is_refused_in_one_line() -> None:
    proc = run_benchmarks(
        "--variant", f"a={sys.executable}", "--pairing", "lockstep", "--collect-only", "-q"
    )
    assert proc.returncode == 4, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines() == [
        "ERROR: --pairing lockstep runs variants' rounds by turns, but only one was given; "
        "give two or more --variant options, or use --pairing alternate"
    ]
