"""The report's "Work per operation" section: counts beside time.

For each benchmark a counts file holds: instructions, Python calls, allocations and collector
runs per operation on each runtime, and the ratio to the baseline runtime (asyncio) in
instructions beside its ratio in time (from the time results shown in the same report, for the
same scenario and scale). Where the two ratios part by more than the time ratio's interval
allows, the line says so: the runtimes differ in what instructions do not see (memory and cache
behaviour, time in the kernel, waiting).
"""

from __future__ import annotations

from collections.abc import Sequence

from ._counts_results import BenchmarkCounts, CountsRun
from ._escape import markdown, markdown_code
from ._layout import Entry
from ._results import Run
from ._runtimes import BASELINE, runtime_distributions, time_dependent_work
from ._verdicts import Ratio


def _per_op(value: int | None, bench: BenchmarkCounts) -> str:
    if value is None:
        return "–"
    per = value / bench.ops
    return f"{per:,.0f}" if per >= 100 else f"{per:.3g}"


def differs_from_counts(run: Run, variant: str, counts: CountsRun) -> list[str]:
    """What differs between the software of *run*'s *variant* and that of *counts*: Python's
    version and the runtimes' libraries (empty when neither differs, or where one does not
    say)."""
    part = next((p for p in run.by_variant() if p.variant == variant), run)
    pairs = [("Python", part.machine_info.get("python_version"), counts.python.get("version"))]
    libraries = part.anybench_info.get("libraries") or {}
    pairs += [(n, libraries.get(n), counts.libraries.get(n)) for n in runtime_distributions()]
    return [
        f"{name} {timed} in the time results, {counted} in the counts"
        for name, timed, counted in pairs
        if timed and counted and timed != counted
    ]


def _time_ratio(
    entries: Sequence[Entry], bench: BenchmarkCounts, usable: Sequence[tuple[int, str]]
) -> Ratio | None:
    """The time ratio to the baseline of the same scenario, scale and run (the first run that
    has it, of the (run, variant) pairs in *usable*), if shown."""
    by_runtime: dict[tuple[int, str, str], Entry] = {}
    for entry in entries:
        record = entry.record
        if (entry.run, record.variant) not in usable:
            continue
        if record.scenario == bench.scenario and record.n == bench.scale:
            by_runtime.setdefault((entry.run, record.variant, entry.runtime), entry)
    for (run, variant, runtime), entry in by_runtime.items():
        baseline = by_runtime.get((run, variant, BASELINE))
        if runtime == bench.runtime and baseline is not None and baseline is not entry:
            if entry.record.unstable or baseline.record.unstable:
                return None
            return Ratio.within_run(baseline.record, entry.record)
    return None


def work_section(
    counts: Sequence[CountsRun], entries: Sequence[Entry], runs: Sequence[Run] = ()
) -> list[str]:
    """The section's Markdown lines; none without a counts file. A time ratio stands beside
    a counts ratio only where the time results (of *runs*, which *entries* index) are of the
    counts' software: a ratio of another anyio or Python would mix that change in."""
    if not counts:
        return []
    out = ["## Work per operation (counts)", ""]
    parted: list[str] = []
    timed: dict[str, str] = {}
    kept_apart: list[str] = []
    sides = list(dict.fromkeys((e.run, e.record.variant) for e in entries))
    for run in counts:
        usable = []
        for index, variant in sides:
            differs = differs_from_counts(runs[index], variant, run) if index < len(runs) else []
            if differs:
                name = runs[index].stem + (f" [{variant}]" if variant else "")
                said = f"{markdown(name)}: {markdown(differs[0])}"
                kept_apart.append(f"- {markdown_code(run.source)} against {said}")
            else:
                usable.append((index, variant))
        of_file = f" (counts of {markdown_code(run.source)})" if len(counts) > 1 else ""
        # The runtimes' libraries; the file records every installed distribution.
        shown = runtime_distributions()
        versions = ", ".join(f"{k} {v}" for k, v in run.libraries.items() if v and k in shown)
        out.append(
            f"From {markdown_code(run.source)}: Python {run.python.get('version')} "
            f"({markdown(str(run.python.get('compiler')))}), valgrind {run.valgrind}, "
            f"{markdown(versions)}; N up to {f'{run.max_n:,}' if run.max_n else 'any'}, "
            f"{run.repeats} processes each under valgrind."
            + (f" PARTIAL: {markdown(run.partial)}." if run.partial else "")
        )
        out += [
            "",
            "| scenario | N | runtime | instructions/op | vs asyncio (instr.) | vs asyncio "
            "(time) | Python calls/op | allocations/op | collections/op | loop waits/op | "
            "deterministic |",
            "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        by_key = run.by_key()
        for bench in run.benchmarks:
            base = by_key.get((bench.scenario, BASELINE, bench.scale))
            ratio = time_text = "–"
            if base is not None and base is not bench:
                instr_ratio = bench.instructions_per_op / base.instructions_per_op
                ratio = f"{instr_ratio:.2f}x"
                time = _time_ratio(entries, bench, usable)
                if time is not None:
                    time_text = str(time)
                    if time.known and not (time.low <= instr_ratio <= time.high):
                        parted.append(
                            f"- {markdown(bench.scenario)} at {bench.scale:,} on "
                            f"{markdown(bench.runtime)}{of_file}: {instr_ratio:.2f}x asyncio's "
                            f"instructions, {time.ratio:.2f}x its time"
                        )
            det = "yes" if bench.deterministic else f"no (spread {bench.spread:.2%})"
            if why := time_dependent_work(bench.runtime):
                det += " \N{DOUBLE DAGGER}"
                timed[bench.runtime] = why
            scale = f"B={bench.scale:,}" if bench.axis == "load" else f"{bench.scale:,}"
            calls = (
                None
                if bench.python_calls is None
                else bench.python_calls + (bench.builtin_calls or 0)
            )
            out.append(
                f"| {markdown(bench.scenario)} | {scale} | {markdown(bench.runtime)} | "
                f"{bench.instructions_per_op:,.0f} | {ratio} | {time_text} | "
                f"{_per_op(calls, bench)} | {_per_op(bench.allocations, bench)} | "
                f"{_per_op(bench.collections, bench)} | {_per_op(bench.loop_waits, bench)} | "
                f"{det} |"
            )
        out.append("")
    out.append(
        "Counted, not timed: instructions the interpreter executed inside the measured region "
        "(valgrind's callgrind, switched on and off around it), Python calls (functions and "
        "built-ins, by a profiler in a separate process), blocks asked of CPython's allocator, "
        "runs of its collector and waits of the event loop (epoll_wait calls), all per "
        "operation. A benchmark whose two processes differ by more than 0.1% is not "
        "deterministic (its work depends on wall time) and gets no verdict in compare."
    )
    for runtime, why in timed.items():
        out += [
            "",
            f"\N{DOUBLE DAGGER} {markdown(runtime)}: its work depends on wall time by its "
            f"design ({markdown(why)}): its counts can agree within a run and move with the "
            "machine's load between runs.",
        ]
    if kept_apart:
        out += [
            "",
            "No time ratio is set beside a counts file's ratios where the time results are of "
            "other software (it would mix that change with the runtimes' difference):",
            "",
            *kept_apart,
        ]
    if parted:
        out += [
            "",
            "Where the ratio in instructions lies outside the time ratio's 95% interval, the "
            "runtimes differ in what instructions do not see: memory and cache behaviour, "
            "time in the kernel (system calls), or waiting:",
            "",
            *parted,
        ]
    return out
