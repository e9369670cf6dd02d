"""The ``anybench`` command: run scenarios, and save, report and compare results files."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._escape import terminal
from ._files import OutputError
from ._results import ResultsError, Run, load, pair_variants, save
from ._table import comparison_table


def _load_all(paths: Sequence[str], split: bool = True) -> tuple[list[Run], bool]:
    """Load every file, each variant of a file a run of its own unless not *split*; report
    each bad one in one line and go on. Returns (runs, all_ok)."""
    runs, ok = [], True
    for path in paths:
        try:
            run = load(path)
            runs.extend(run.by_variant() if split else [run])
        except ResultsError as exc:
            print(f"anybench: {exc}", file=sys.stderr)
            ok = False
    return runs, ok


def _table(args: argparse.Namespace) -> int:
    from ._counts_results import is_counts_file

    # A counts file beside the time results (a directory's *.json) is the report's, not the
    # table's.
    runs, ok = _load_all([f for f in args.files if not is_counts_file(f)])
    status = 0 if ok else 1
    for run in runs:
        print(terminal(f"{run.source}:"))
        print(comparison_table(run))
        print()
        if run.failed:
            status = 1
    return status


def _report(args: argparse.Namespace) -> int:
    from ._counts_results import CountsError, is_counts_file, read_counts
    from ._report import default_report_dir, write_report

    counts, counts_ok = [], True
    for path in [f for f in args.files if is_counts_file(f)]:
        try:
            counts.append(read_counts(path))
        except CountsError as exc:
            print(f"anybench: {exc}", file=sys.stderr)
            counts_ok = False
    runs, ok = _load_all([f for f in args.files if not is_counts_file(f)])
    ok = ok and counts_ok
    if not runs:
        print("anybench: no usable results file; nothing to report", file=sys.stderr)
        return 1
    out_dir = Path(args.out) if args.out else default_report_dir(runs)
    try:
        page = write_report(runs, out_dir, replace=args.force, counts=counts)
    except OutputError as exc:
        print(f"anybench: {exc}", file=sys.stderr)
        return 1
    print(page)
    return 0 if ok else 1


#: The largest --threshold: a slow-down of more than 10x is no threshold at all.
MAX_THRESHOLD_PERCENT = 1000.0


def _threshold(value: str) -> float | None:
    """A --threshold in percent, or None if it is not a finite number in (0, 1000]."""
    try:
        percent = float(value)
    except ValueError:
        return None
    if not (math.isfinite(percent) and 0 < percent <= MAX_THRESHOLD_PERCENT):
        return None
    return percent


def _compare(args: argparse.Namespace) -> int:
    from ._counts_results import is_counts_file

    if is_counts_file(args.old) or is_counts_file(args.new):
        return _compare_counts(args)
    from ._compare import format_comparison

    threshold = _threshold(args.threshold)
    if threshold is None:
        print(
            f"anybench: --threshold takes a percentage above 0 and at most "
            f"{MAX_THRESHOLD_PERCENT:g}, like 10; not {args.threshold!r}",
            file=sys.stderr,
        )
        return 2
    runs, ok = _load_all([args.old, args.new], split=False)
    if not ok:
        return 2
    try:
        pairs = pair_variants(runs[0], runs[1])
    except ResultsError as exc:
        print(f"anybench: {exc}", file=sys.stderr)
        return 2
    regressed = False
    for old, new in pairs:
        text, worse = format_comparison(old, new, threshold / 100)
        print(text)
        regressed = regressed or worse
    return 1 if regressed else 0


def _save(args: argparse.Namespace) -> int:
    try:
        targets = save(args.file, args.into)
    except (ResultsError, OutputError) as exc:
        print(f"anybench: {exc}", file=sys.stderr)
        return 1
    for target in targets:
        print(target)
    return 0


def _run(args: argparse.Namespace) -> int:
    from ._journal import describe
    from ._run import run_and_save

    for option in args.pytest_args:
        if option.startswith("--benchmark-json"):
            print("anybench: run writes its own --benchmark-json; leave it out", file=sys.stderr)
            return 2
    try:
        outcome = run_and_save(
            args.paths, args.pytest_args, Path(args.into), log=lambda line: print(line)
        )
    except OutputError as exc:
        print(f"anybench: {exc}", file=sys.stderr)
        return 1
    for path in outcome.saved:
        print(f"results saved to {path}")
    if args.saved_list:
        try:
            Path(args.saved_list).write_text("".join(f"{p}\n" for p in outcome.saved))
        except OSError as exc:
            print(f"anybench: {args.saved_list}: cannot write it ({exc.strerror})", file=sys.stderr)
            return 1
    for recovery in outcome.recovered:
        if recovery.live:  # another run's, still going: not ours to mention
            continue
        for line in describe(recovery):
            if recovery.saved:
                line = line.replace("an unfinished run", "an unfinished earlier run")
            print(line, file=sys.stderr if recovery.problem else sys.stdout)
    if outcome.problem:
        print(f"anybench: {outcome.problem}", file=sys.stderr)
    if outcome.saved and not args.no_report:
        from ._report import default_report_dir, write_report

        runs, _ = _load_all([str(p) for p in outcome.saved])
        if runs:
            try:
                page = write_report(runs, default_report_dir(runs))
            except OutputError as exc:
                print(f"anybench: {exc}", file=sys.stderr)
                return 1
            print(f"report written to {page}")
    if outcome.problem and outcome.exit_code in (0, 1):
        return 1
    return outcome.exit_code


def _recover(args: argparse.Namespace) -> int:
    from . import _journal

    into = Path(args.into)
    if args.journals:
        recoveries = []
        for name in args.journals:
            journal = Path(name)
            if not journal.name.endswith(_journal.SUFFIX) or not journal.is_file():
                print(f"anybench: {journal} is not a run's journal (*.journal)", file=sys.stderr)
                recoveries.append(_journal.Recovery(journal, problem="not a journal"))
                continue
            try:
                recoveries.append(_journal.recover(journal, into))
            except OutputError as exc:
                print(f"anybench: {exc}", file=sys.stderr)
                return 1
    else:
        try:
            recoveries = _journal.recover_all(into)
        except OutputError as exc:
            print(f"anybench: {exc}", file=sys.stderr)
            return 1
        if not recoveries:
            incoming = into / _journal.INCOMING
            print(f"anybench: no journal of an unfinished run in {incoming}; nothing to recover")
            return 0
    for recovery in recoveries:
        if recovery.problem == "not a journal":
            continue
        for line in _journal.describe(recovery):
            print(line, file=sys.stderr if recovery.problem else sys.stdout)
    return 1 if any(r.problem for r in recoveries) else 0


def _agree(args: argparse.Namespace) -> int:
    from ._agree import AgreeError, agree, format_agreement

    runs, ok = _load_all(args.files)
    if not ok:
        return 2
    try:
        pairs = agree(runs)
    except AgreeError as exc:
        print(f"anybench: {exc}", file=sys.stderr)
        return 2
    print(format_agreement(pairs))
    return 0


def _add_agree(commands: Any) -> None:
    agree = commands.add_parser(
        "agree",
        help="whether runs of the same code agree, ratio cell by cell, for every pair of them",
    )
    agree.add_argument("files", nargs="+", metavar="RESULTS.json")
    agree.set_defaults(func=_agree)


def _combine(args: argparse.Namespace) -> int:
    from ._combine import CombineError, combine, format_combined, markdown_combined
    from ._files import atomic_write_text, unwritable

    runs, ok = _load_all(args.files)
    if not ok:
        return 2
    try:
        combined = combine(runs, force=args.force)
    except CombineError as exc:
        print(f"anybench: {exc}", file=sys.stderr)
        return 2
    print(format_combined(runs, combined))
    if args.out:
        out = Path(args.out)
        if out.exists():
            print(
                f"anybench: {out} exists; pass --out a new file (combine never replaces one)",
                file=sys.stderr,
            )
            return 1
        try:
            atomic_write_text(out, markdown_combined(runs, combined))
        except OSError as exc:
            print(f"anybench: {unwritable(out, exc, 'write it', '--out')}", file=sys.stderr)
            return 1
        print(f"Markdown table written to {out}")
    return 0


def _add_combine(commands: Any) -> None:
    combine = commands.add_parser(
        "combine",
        help="one figure per ratio from several runs of the same code, the run a level of its "
        "own: intervals that cover how the machine moves between runs",
    )
    combine.add_argument("files", nargs="+", metavar="RESULTS.json")
    combine.add_argument("--out", metavar="FILE", help="also write the table as Markdown to FILE")
    combine.add_argument(
        "--force", action="store_true", help="combine runs of different code or software too"
    )
    combine.set_defaults(func=_combine)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="anybench", description="Cross-runtime benchmarks of async callbacks and futures."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    table = commands.add_parser(
        "table",
        help="print ns/op per runtime for results files (exit 1 if a benchmark in them failed)",
    )
    table.add_argument("files", nargs="+", metavar="RESULTS.json")
    table.set_defaults(func=_table)

    report = commands.add_parser(
        "report", help="write a Markdown report with plots for results files"
    )
    report.add_argument("files", nargs="+", metavar="RESULTS.json")
    report.add_argument(
        "--out", metavar="DIR", help="report directory (default: results/report-<newest file>)"
    )
    report.add_argument(
        "--force",
        action="store_true",
        help="replace a report anybench wrote there before (never anything else)",
    )
    report.set_defaults(func=_report)

    compare = commands.add_parser(
        "compare",
        help="per benchmark change from OLD to NEW; exit 1 on a significant regression",
    )
    compare.add_argument("old", metavar="OLD.json")
    compare.add_argument("new", metavar="NEW.json")
    compare.add_argument(
        "--threshold",
        default="10",
        metavar="PERCENT",
        help="fail on significant slow-downs above this (default: 10)",
    )
    compare.set_defaults(func=_compare)

    save_cmd = commands.add_parser(
        "save", help="copy a fresh results file into a results directory under a new name"
    )
    save_cmd.add_argument("file", metavar="RESULTS.json")
    save_cmd.add_argument("--into", default="results", metavar="DIR")
    save_cmd.set_defaults(func=_save)

    recover = commands.add_parser(
        "recover",
        help="save what an interrupted or killed run finished, from its journal, as results "
        "marked partial (default: every journal left in DIR/.incoming)",
    )
    recover.add_argument("journals", nargs="*", metavar="RUN.journal")
    recover.add_argument("--into", default="results", metavar="DIR")
    recover.set_defaults(func=_recover)

    run = commands.add_parser(
        "run",
        help="run scenario modules on every selected runtime, save a new results file in DIR "
        "and write its report (options other than --into and --no-report go to pytest, e.g. "
        "--profile quick --runtime asyncio,trio)",
        allow_abbrev=False,
    )
    run.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="scenario files, directories of them, or importable module names",
    )
    run.add_argument(
        "--into", default="results", metavar="DIR", help="results directory (default: results)"
    )
    run.add_argument("--no-report", action="store_true", help="save the results only")
    run.add_argument(
        "--saved-list",
        metavar="FILE",
        help="also write the paths of the results files this run saved into FILE, one a line",
    )
    run.set_defaults(func=_run)
    _add_counts_command(commands)
    _add_agree(commands)
    _add_combine(commands)
    return parser


def _compare_counts(args: argparse.Namespace) -> int:
    from ._counts_compare import compare_counts
    from ._counts_results import CountsError, read_counts

    try:
        old, new = read_counts(args.old), read_counts(args.new)
    except CountsError as exc:
        print(f"anybench: {exc}", file=sys.stderr)
        return 2
    text, status = compare_counts(old, new)
    print(text)
    return status


def _counts(args: argparse.Namespace) -> int:
    from ._counts import counts_main

    return counts_main(
        args.paths,
        into=Path(args.into),
        profile=args.profile,
        runtime_names=comma_names(args.runtime),
        scenario_names=comma_names(args.scenario),
        max_n=args.max_n or None,
        repeats=args.repeats,
        jobs=args.jobs,
    )


def comma_names(values: Sequence[str]) -> list[str]:
    """The names in repeatable, comma-separated option values."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _add_counts_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ._counts import COUNTS_MAX_N, REPEATS

    counts = commands.add_parser(
        "counts",
        help="count the work per operation under valgrind (instructions, calls, allocations, "
        "collector runs, system calls) and save a counts file in DIR",
    )
    counts.add_argument("paths", nargs="*", metavar="PATH", help="scenario files or directories")
    counts.add_argument("--into", default="results", metavar="DIR", help="default: results")
    counts.add_argument("--profile", default="default", help="the scales' profile")
    counts.add_argument("--runtime", action="append", default=[], help="runtimes (default: all)")
    counts.add_argument("--scenario", action="append", default=[], help="scenarios (default: all)")
    counts.add_argument(
        "--max-n",
        type=int,
        default=COUNTS_MAX_N,
        metavar="N",
        help=f"count no N above this (default: {COUNTS_MAX_N:,}; 0: no limit)",
    )
    counts.add_argument(
        "--repeats",
        type=int,
        default=REPEATS,
        help=f"processes under valgrind per scenario (default: {REPEATS})",
    )
    counts.add_argument("--jobs", type=int, default=None, help="processes at once (default: cores)")
    counts.set_defaults(func=_counts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "run":
        args.pytest_args = extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    status: int = args.func(args)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
