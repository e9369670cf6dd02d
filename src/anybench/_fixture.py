"""The ``measure_scenario`` fixture's machinery and the bridge to pytest-benchmark's timer.

pytest-benchmark times a plain call and cannot await (pytest-benchmark issue #66), and timing a
whole ``anyio.run`` would count loop start-up. So each measured round is one fresh ``anyio.run``,
the scenario times its own region inside the loop, and :class:`InLoopClock` is handed to
pytest-benchmark as its timer: it advances only by that in-loop time, divided by the operation
count. pytest-benchmark's statistics, comparisons and histograms are therefore **per operation**.

The hooks and options live in :mod:`anybench.pytest_plugin`; this module holds what one run of
anybench benchmarks keeps (:class:`RunState`) and what a benchmark does (:class:`Measurer`).
"""

from __future__ import annotations

import datetime
import os
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ._busy import NOISY_SPREAD, noisy, round_spread
from ._harness import run_round
from ._journal import SUFFIX as JOURNAL_SUFFIX
from ._journal import Journal
from ._measure import (
    Group,
    Key,
    Measurement,
    Plan,
    Variant,
    measure_group,
    measure_matrix,
    scenario_groups,
)
from ._probe import ScenarioFailed, timer_cost_ns
from ._results import below_clock_note, write_extra_info
from ._runtimes import RUNTIMES, Runtime
from ._scenario import ScenarioSpec
from ._sweep import scale_text
from ._worker import MIN_REGION_NS


@dataclass(frozen=True)
class Selected:
    """A selected benchmark, as collection found it: enough to measure it and to write its
    record before its test runs."""

    spec: ScenarioSpec
    runtime: Runtime
    nodeid: str
    name: str
    params: dict[str, Any]
    param: str


#: ``measure_scenario(scenario, runtime, n)``: what the fixture returns.
MeasureScenario = Callable[[Any, Runtime, int], Measurement]


class InLoopClock:
    """A pytest-benchmark timer that only moves by in-loop measured time per operation."""

    __name__ = "InLoopClock"

    def __init__(self) -> None:
        self._now_s = 0.0

    def __call__(self) -> float:
        return self._now_s

    def advance(self, ns_per_op: float) -> None:
        self._now_s += ns_per_op / 1e9


@dataclass(eq=False)  # registered as a plugin: hashed by identity
class RunState:
    """What one pytest run of anybench benchmarks keeps: its id, the benchmarks selected per
    scenario, the groups measured so far, the failures and the journal.

    Nothing here runs until a benchmark does: a project that installs anybench and never uses
    its fixtures gets no journal and no measurement.
    """

    plan: Plan
    variants: dict[str, Variant]
    deadline_s: float
    #: How the variants' workers meet in a pass (see :data:`anybench._measure.PAIRINGS`; none:
    #: :func:`anybench._measure.resolved_pairing`).
    pairing: str | None = None
    journal_target: str | None = None
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    #: Scenario name -> the (N, runtime, variant) of its selected benchmarks.
    selected: dict[str, list[Key]] = field(default_factory=dict)
    #: The selected benchmarks, by scenario name and key.
    items: dict[tuple[str, Key], Selected] = field(default_factory=dict)
    #: Whether the selected matrix has been measured (when its first benchmark ran).
    measured: bool = False
    #: The node ids of the selected benchmarks: only their failures are anybench's to record.
    nodeids: set[str] = field(default_factory=set)
    groups: dict[str, dict[Key, Measurement]] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)
    #: One line each, printed at the end of the run: figures a person should doubt.
    notes: list[str] = field(default_factory=list)
    journal: Journal | None = None
    #: When measuring began (ISO 8601, UTC): at the first benchmark; "" before.
    started: str = ""
    _timer_cost_ns: float | None = None

    def __post_init__(self) -> None:
        if self.journal_target:
            self.journal = Journal(Path(f"{self.journal_target}{JOURNAL_SUFFIX}"))

    @property
    def timer_cost_ns(self) -> float:
        """The cost of one clock reading in this process, measured once, when first asked."""
        if self._timer_cost_ns is None:
            self._timer_cost_ns = timer_cost_ns()
        return self._timer_cost_ns

    def select(self, item: pytest.Item, spec: ScenarioSpec, runtime: Runtime, key: Key) -> None:
        """Note a selected benchmark, so that the matrix measures exactly those."""
        keys = self.selected.setdefault(spec.name, [])
        if key not in keys:
            keys.append(key)
        callspec = getattr(item, "callspec", None)
        self.items.setdefault(
            (spec.name, key),
            Selected(
                spec,
                runtime,
                item.nodeid,
                item.name,
                dict(getattr(callspec, "params", {})),
                str(getattr(callspec, "id", "")),
            ),
        )

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Keep a failed benchmark, so that the results say which are missing, and why."""
        if not report.failed or report.nodeid not in self.nodeids:
            return
        crash = getattr(report.longrepr, "reprcrash", None)
        message = crash.message if crash is not None else str(report.longrepr)
        error = message.splitlines()[0] if message else "failed"
        self.failures.append({"test": report.nodeid, "error": error})
        if self.journal is not None and self.journal.started:
            self.journal.failure(report.nodeid, error)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Print the notes on the run's figures, one line each, after pytest's own summary."""
        if self.notes:
            terminalreporter.section("anybench notes", sep="-", yellow=True)
            for note in self.notes:
                terminalreporter.line(note)

    def pytest_sessionfinish(self, exitstatus: int) -> None:
        if self.journal is not None:
            # 0: all passed, 1: some benchmarks failed (named in the results); else stopped.
            self.journal.end(complete=exitstatus in (0, 1))

    def pytest_unconfigure(self) -> None:
        if self.journal is not None:
            self.journal.close()

    def start_journal(self, config: pytest.Config, run_info: dict[str, Any]) -> None:
        """Write the journal's header, if it has none yet: at the start of measuring, or at the
        first finished benchmark."""
        if self.journal is None or self.journal.started:
            return
        hook = config.hook
        machine_info = hook.pytest_benchmark_generate_machine_info(config=config)
        hook.pytest_benchmark_update_machine_info(config=config, machine_info=machine_info)
        commit_info = hook.pytest_benchmark_generate_commit_info(config=config)
        self.journal.header(machine_info, commit_info, self.started or _now(), run_info)
        for failure in self.failures:
            self.journal.failure(failure["test"], failure["error"])

    def finished(
        self, config: pytest.Config, record: dict[str, Any], run_info: dict[str, Any]
    ) -> None:
        """Journal one finished benchmark (its header first, at the first one)."""
        if self.journal is None:
            return
        self.start_journal(config, run_info)
        self.journal.benchmark(record)


STATE = pytest.StashKey[RunState]()


class Measurer:
    """``measure_scenario``: benchmark a scenario at scale N on a runtime; record it through
    pytest-benchmark.

    The first selected benchmark measures the whole selected matrix in passes of worker
    processes, runtimes interleaved within each (see :mod:`anybench._measure`); each benchmark
    then records its own rounds. pytest-benchmark sees the throughput rounds only,
    one per round of every process, per operation. A benchmark that failed in its worker fails
    here with the worker's reason.
    """

    def __init__(
        self,
        request: pytest.FixtureRequest,
        variant: str,
        run_info: Callable[[], dict[str, Any]],
    ) -> None:
        self.request = request
        self.variant = variant
        self.state = request.config.stash[STATE]
        self._run_info = run_info

    def __call__(self, scenario: Any, runtime: Runtime, n: int) -> Measurement:
        # A failure is the scenario's (its own line is in the message): not these frames.
        __tracebackhide__ = True
        spec = ScenarioSpec.of(scenario)
        request, state = self.request, self.state
        clock = InLoopClock()
        request.node.add_marker(
            pytest.mark.benchmark(timer=clock, group=f"{spec.name} {scale_text(spec.axis, n)}")
        )
        key = (n, runtime.name, self.variant)
        state.started = state.started or _now()
        if not state.measured and key in state.selected.get(spec.name, ()):
            # The first selected benchmark measures the whole selected matrix, in passes; the
            # others then find their measurement waiting.
            state.measured = True
            self._measure_matrix()
        group = state.groups.setdefault(spec.name, {})
        if key not in group:
            # A call with a scenario and N of the test's own choosing (not parametrized) is a
            # group of its own.
            group.update(self._measure_group(spec, [key]))
        m = group.get(key)
        if m is None:
            raise ScenarioFailed(
                f"{spec.name} on {runtime.name} at {scale_text(spec.axis, n)} was not measured"
            )
        if m.failure is not None:
            raise ScenarioFailed(m.failure)
        if not m.processes:
            raise ScenarioFailed(
                f"{spec.name} on {runtime.name} at {scale_text(spec.axis, n)}: no rounds"
            )
        benchmark = request.getfixturevalue("benchmark")
        values = [e / m.ops_per_round for rounds in m.processes for e in rounds]
        feed = iter(values)

        def one_round() -> None:
            value = next(feed, None)
            if value is None:
                # An extra call (--benchmark-cprofile) profiles one in-process round; it is
                # not a timed round and moves no clock.
                run_round(spec, runtime, n, state.deadline_s)
                return
            clock.advance(value)

        benchmark.pedantic(one_round, rounds=len(values))
        benchmark.extra_info.update(
            write_extra_info(
                spec,
                runtime,
                n,
                m,
                self.variant,
                timer_cost_ns=state.timer_cost_ns,
                min_region_ns=MIN_REGION_NS,
            )
        )
        # On disk before anything else can go wrong: Ctrl-C or a kill loses no finished one.
        state.finished(
            request.config, benchmark.stats.as_dict(include_data=False), self._run_info()
        )
        note = below_clock_note(
            request.node.name, benchmark.extra_info["ns_per_op"], state.timer_cost_ns
        )
        if note is not None:
            state.notes.append(note)
        return m

    def _measure_matrix(self) -> None:
        """Measure every selected benchmark in passes over the matrix (see
        :func:`anybench._measure.measure_matrix`), the group order seeded with the run's id;
        each process's figures go to the journal as the process finishes, each pass's end too."""
        state, config = self.state, self.request.config
        groups: list[Group] = []
        names: dict[str, str] = {}  # scenario module -> scenario name
        for name, keys in state.selected.items():
            spec = state.items[(name, keys[0])].spec
            found = state.groups.setdefault(name, {})
            if not spec.module:
                for key in keys:
                    found[key] = Measurement(*key, failure=_NOT_A_MODULE.format(spec.source))
                continue
            names[spec.module] = name
            groups += scenario_groups(
                spec.module,
                keys,
                sys_path=[spec.import_root or os.getcwd()],
                runtime_order=list(RUNTIMES),
                axis=spec.axis,
            )
        journal = state.journal
        budget = state.plan.budget
        # Failures found before the first finished process: journalled with it, so that a run
        # in which nothing finishes leaves no journal (as before passes).
        pending: list[tuple[str, str]] = []
        # Every benchmark's processes so far, for how far rounds spread within a process.
        rounds: dict[tuple[str, Key], list[list[int]]] = {}

        def on_process(group: Group, key: Key, m: Measurement) -> None:
            if m.failure is None:
                rounds[(group.scenario, key)] = m.processes
            if journal is None:
                return
            selected = state.items[(names[group.scenario], key)]
            if m.failure is not None:
                pending.append((selected.nodeid, m.failure.splitlines()[0]))
                if not journal.started:
                    return
            state.start_journal(config, self._run_info())
            for test, error in pending:
                journal.failure(test, error)
            pending.clear()
            if m.failure is not None:
                return
            journal.process(
                selected.nodeid,
                m.process_passes[-1],
                m.process_positions[-1],
                m.process_ids[-1],
                m.processes[-1],
                self._record_so_far(selected, m),
            )

        # The matrix is measured before the first test reports: a line a pass shows progress,
        # written past pytest's capture (as live logging is), not into the test's output.
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        capture = config.pluginmanager.get_plugin("capturemanager")
        most = max(budget.processes, budget.max_processes)
        plural = "" if len(groups) == 1 else "s"

        def on_pass(number: int) -> None:
            if journal is not None and journal.started:
                journal.passed(number, most)
            if reporter is None or capture is None:
                return
            with capture.global_and_fixture_disabled():
                reporter.write_line(
                    f"anybench: pass {number} over the matrix done ({len(groups)} group{plural}; "
                    f"at least {budget.processes}, at most {most} passes)"
                    + noisy_so_far(round_spread(rounds.values()))
                )

        measured = measure_matrix(
            groups,
            state.plan,
            {"": Variant(), **state.variants},
            seed=state.run_id,
            pairing=state.pairing,
            on_process=on_process,
            on_pass=on_pass,
        )
        for group, found in zip(groups, measured, strict=True):
            state.groups[names[group.scenario]].update(found)

    def _record_so_far(self, selected: Selected, m: Measurement) -> dict[str, Any]:
        """The benchmark's record as pytest-benchmark would write it from the processes it has
        so far: what recovery saves if the run stops before its test runs."""
        from pytest_benchmark.stats import Stats

        stats = Stats()  # type: ignore[no-untyped-call]
        values = [e / m.ops_per_round for rounds in m.processes for e in rounds]
        for value in values:
            stats.update(value)  # type: ignore[no-untyped-call]
        spec = selected.spec
        return {
            "group": f"{spec.name} {scale_text(spec.axis, m.n)}",
            "name": selected.name,
            "fullname": selected.nodeid,
            "params": selected.params,
            "param": selected.param,
            "extra_info": write_extra_info(
                spec,
                selected.runtime,
                m.n,
                m,
                m.variant,
                timer_cost_ns=self.state.timer_cost_ns,
                min_region_ns=MIN_REGION_NS,
            ),
            "options": {"timer": InLoopClock.__name__, "rounds": len(values)},
            "stats": stats.as_dict(),  # type: ignore[no-untyped-call]
        }

    def _measure_group(self, spec: ScenarioSpec, keys: list[Key]) -> dict[Key, Measurement]:
        state = self.state
        if not spec.module:
            raise ScenarioFailed(_NOT_A_MODULE.format(spec.source))
        return measure_group(
            spec.module,  # the module a worker imports
            keys,
            state.plan,
            {"": Variant(), **state.variants},
            sys_path=[spec.import_root or os.getcwd()],
            runtime_order=list(RUNTIMES),
            axis=spec.axis,
            pairing=state.pairing,
        )


_NOT_A_MODULE = "{}: only a scenario module can be measured in worker processes"


def noisy_so_far(spread: float | None) -> str:
    """What the pass line adds when the rounds so far spread within a process past
    NOISY_SPREAD (see :func:`~anybench._busy.round_spread`): that the run's intervals will be
    wide, before it has spent its time on it; nothing otherwise."""
    if spread is None or not noisy(spread):
        return ""
    return (
        f"; rounds within a worker process spread ±{spread:.0%} so far (above "
        f"±{NOISY_SPREAD:.0%}): the machine is noisy and this run's intervals will be wide; "
        "Ctrl-C stops it and keeps what finished"
    )


def peak_rss_bytes() -> int | None:
    """The benchmark process's peak resident memory so far (None where it cannot be read)."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


def _now() -> str:
    """Now, as a results file's times are written: ISO 8601 in UTC, to the second."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
