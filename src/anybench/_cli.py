"""The ``anybench`` command: run scenarios, and save, report and compare results files."""

from __future__ import annotations

import argparse
import contextlib
import errno
import io
import math
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._escape import terminal
from ._files import OutputError
from ._results import ResultsError, Run, load, pair_variants, repeated_run, save
from ._table import comparison_table
from ._verdicts import MIN_CHANGE

if TYPE_CHECKING:
    from ._counts_results import CountsRun


def _error(message: str) -> None:
    """An ``anybench: ...`` line on stderr, every control character in it escaped (names in
    messages come from files and scenarios): the one way this command reports a problem."""
    print(terminal(f"anybench: {message}"), file=sys.stderr)


def _say(line: str, problem: bool = False) -> None:
    """A line for people, escaped for the terminal; on stderr if it is a *problem*."""
    print(terminal(line), file=sys.stderr if problem else sys.stdout)


def _load_all(paths: Sequence[str], split: bool = True) -> tuple[list[Run], bool]:
    """Load every file, each variant of a file a run of its own unless not *split*; report
    each bad one in one line and go on. Returns (runs, all_ok)."""
    runs, ok = [], True
    for path in paths:
        try:
            run = load(path)
            runs.extend(run.by_variant() if split else [run])
        except ResultsError as exc:
            _error(str(exc))
            ok = False
    return runs, ok


def _load_distinct(paths: Sequence[str]) -> list[Run] | None:
    """Every file's runs, for a command that sets runs against each other: None (said in one
    line) if a file is bad or one run is given twice."""
    runs, ok = _load_all(paths)
    if not ok:
        return None
    repeated = repeated_run(runs)
    if repeated is not None:
        first, again = repeated
        same = "is" if first.source == again.source else "and " + again.source + " are"
        _error(f"{first.source} {same} the same run twice; pass each run once")
        return None
    return runs


def _table(args: argparse.Namespace) -> int:
    from ._counts_results import is_counts_file

    # A counts file beside the time results (a directory's *.json) is the report's, not the
    # table's.
    timed = [f for f in args.files if not is_counts_file(f)]
    if not timed:
        _error(
            f"{args.files[0]} is a counts file, and the table is of times; read counts with "
            "'anybench compare', 'explain', or 'report' beside a results file"
        )
        return 2
    runs, ok = _load_all(timed)
    status = 0 if ok else 1
    for run in runs:
        _say(f"{run.source}:")
        print(comparison_table(run))
        print()
        if run.failed:
            status = 1
    return status


def _report(args: argparse.Namespace) -> int:
    from ._counts_results import CountsError, is_counts_file, read_counts
    from ._report import default_report_dir, write_report

    if args.out == "":
        _error("--out is empty; name a directory, or leave --out out")
        return 2
    counts, counts_ok = [], True
    for path in [f for f in args.files if is_counts_file(f)]:
        try:
            counts.append(read_counts(path))
        except CountsError as exc:
            _error(str(exc))
            counts_ok = False
    timed = [f for f in args.files if not is_counts_file(f)]
    if not timed and counts:
        _error(
            "only counts files given: a report shows counts beside a results file of times; "
            "add one (anybench report RESULTS.json COUNTS.json), or read counts with "
            "'anybench compare' or 'explain'"
        )
        return 2
    runs, ok = _load_all(timed)
    ok = ok and counts_ok
    if not runs:
        _error("no usable results file; nothing to report")
        return 1
    out_dir = Path(args.out) if args.out is not None else default_report_dir(runs)
    try:
        page = write_report(runs, out_dir, replace=args.force, counts=counts)
    except OutputError as exc:
        _error(str(exc))
        return 1
    _say(str(page))
    return 0 if ok else 1


#: The largest --threshold: a slow-down of more than 10x is no threshold at all.
MAX_THRESHOLD_PERCENT = 1000.0


def _threshold(value: str, *, allow_zero: bool = False) -> float | None:
    """A --threshold in percent, or None if it is not a finite number in (0, 1000] (or
    [0, 1000] with *allow_zero*)."""
    try:
        percent = float(value)
    except ValueError:
        return None
    low_ok = percent >= 0 if allow_zero else percent > 0
    if not (math.isfinite(percent) and low_ok and percent <= MAX_THRESHOLD_PERCENT):
        return None
    return percent


def _compare(args: argparse.Namespace) -> int:
    from ._counts_results import is_counts_file

    counted = [is_counts_file(args.old), is_counts_file(args.new)]
    if counted[0] != counted[1]:
        counts, timed = (args.old, args.new) if counted[0] else (args.new, args.old)
        _error(
            f"{counts} is a counts file and {timed} a results file of times; compare two of "
            "one kind"
        )
        return 2
    if all(counted):
        if args.work:
            _error("--work goes with two results files of times; these are counts already")
            return 2
        return _compare_counts(args)
    from ._compare import format_comparison, work_mismatch

    threshold = _threshold(args.threshold)
    if threshold is None:
        _error(
            f"--threshold takes a percentage above 0 and at most "
            f"{MAX_THRESHOLD_PERCENT:g}, like 10; not {args.threshold!r}"
        )
        return 2
    min_change = _threshold(args.min_change, allow_zero=True)
    if min_change is None:
        _error(
            f"--min-change takes a percentage from 0 to {MAX_THRESHOLD_PERCENT:g}, like 2; "
            f"not {args.min_change!r}"
        )
        return 2
    runs, ok = _load_all([args.old, args.new], split=False)
    if not ok:
        return 2
    try:
        pairs = pair_variants(runs[0], runs[1])
    except ResultsError as exc:
        _error(str(exc))
        return 2
    if any(repeated_run(pair) for pair in pairs):
        same = "is" if args.old == args.new else f"and {args.new} are"
        _error(f"{args.old} {same} the same run twice; compare two runs, or an A/B run's two files")
        return 2
    work = None
    if args.work:
        work = _work_counts(args.work, len(pairs))
        if work is None:
            return 2
        if why := work_mismatch(pairs[0][0], pairs[0][1], work):
            _error(why)
            return 2
    regressed = False
    for old, new in pairs:
        text, worse = format_comparison(old, new, threshold / 100, min_change / 100, work=work)
        print(text)
        regressed = regressed or worse
    return 1 if regressed else 0


def _save(args: argparse.Namespace) -> int:
    try:
        targets = save(args.file, args.into)
    except (ResultsError, OutputError) as exc:
        _error(str(exc))
        return 1
    for target in targets:
        _say(str(target))
    return 0


def _run(args: argparse.Namespace) -> int:
    from ._journal import describe
    from ._run import run_and_save

    for option in args.pytest_args:
        if option.startswith("--benchmark-json"):
            _error("run writes its own --benchmark-json; leave it out")
            return 2
    try:
        outcome = run_and_save(args.paths, args.pytest_args, Path(args.into), log=_say)
    except OutputError as exc:
        _error(str(exc))
        return 1
    for path in outcome.saved:
        _say(f"results saved to {path}")
    if args.saved_list:
        try:
            Path(args.saved_list).write_text("".join(f"{p}\n" for p in outcome.saved))
        except OSError as exc:
            _error(f"{args.saved_list}: cannot write it ({exc.strerror})")
            return 1
    for recovery in outcome.recovered:
        if recovery.live:  # another run's, still going: not ours to mention
            continue
        for line in describe(recovery):
            if recovery.saved:
                line = line.replace("an unfinished run", "an unfinished earlier run")
            _say(line, problem=line.startswith("anybench:"))
    if outcome.problem:
        _error(outcome.problem)
    if outcome.saved and not args.no_report:
        from ._report import default_report_dir, write_report

        runs, _ = _load_all([str(p) for p in outcome.saved])
        if runs:
            try:
                page = write_report(runs, default_report_dir(runs))
            except OutputError as exc:
                _error(str(exc))
                return 1
            except KeyboardInterrupt:
                saved = " ".join(shlex.quote(str(p)) for p in outcome.saved)
                _error(
                    f"interrupted before the report was written; write it: anybench report {saved}"
                )
                return 130
            _say(f"report written to {page}")
    if outcome.problem and outcome.exit_code in (0, 1):
        return 1
    return outcome.exit_code


def _recover(args: argparse.Namespace) -> int:
    from . import _journal

    into = Path(args.into)
    if args.journals:
        recoveries = []
        # A journal named twice (or by two paths) is recovered once: the second would find it gone.
        unique: dict[str, Path] = {}
        for name in args.journals:
            unique.setdefault(os.path.realpath(name), Path(name))
        for journal in unique.values():
            if not journal.name.endswith(_journal.SUFFIX) or not journal.is_file():
                _error(f"{journal} is not a run's journal (*.journal)")
                recoveries.append(_journal.Recovery(journal, problem="not a journal"))
                continue
            try:
                recoveries.append(_journal.recover(journal, into))
            except OutputError as exc:
                _error(str(exc))
                return 1
    else:
        try:
            recoveries = _journal.recover_all(into)
        except OutputError as exc:
            _error(str(exc))
            return 1
        if not recoveries:
            incoming = into / _journal.INCOMING
            _say(f"anybench: no journal of an unfinished run in {incoming}; nothing to recover")
            return 0
    for recovery in recoveries:
        if recovery.problem == "not a journal":
            continue
        for line in _journal.describe(recovery):
            _say(line, problem=line.startswith("anybench:"))
    return 1 if any(r.problem or r.raw_problem for r in recoveries) else 0


def _agree(args: argparse.Namespace) -> int:
    from ._agree import AgreeError, agree, format_agreement

    runs = _load_distinct(args.files)
    if runs is None:
        return 2
    try:
        pairs = agree(runs)
    except AgreeError as exc:
        _error(str(exc))
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
    from ._files import create_text, unwritable

    # Said before any work, and again if the file appears while combine works.
    taken = f"{args.out} exists; pass --out a new file (combine never replaces one)"
    if args.out is not None:
        if args.leave_one_out:
            _error(
                "--out writes the combined table, --leave-one-out only checks it: "
                "run them as two commands"
            )
            return 2
        if not args.out:
            _error("--out is empty; name a new file for the Markdown table, or leave --out out")
            return 2
        if Path(args.out).exists():
            _error(taken)
            return 2
    runs = _load_distinct(args.files)
    if runs is None:
        return 2
    if args.leave_one_out:
        return _leave_one_out(runs, args.force)
    try:
        combined = combine(runs, force=args.force)
    except CombineError as exc:
        _error(str(exc))
        return 2
    print(format_combined(runs, combined))
    if args.out:
        out = Path(args.out)
        try:
            create_text(out, markdown_combined(runs, combined))
        except FileExistsError:
            _error(taken)
            return 1
        except OSError as exc:
            _error(str(unwritable(out, exc, "write it", "--out")))
            return 1
        _say(f"Markdown table written to {out}")
    return 0


def _leave_one_out(runs: list[Run], force: bool) -> int:
    from ._combine import CombineError, format_leave_one_out, leave_one_out

    try:
        left_out = leave_one_out(runs, force=force)
    except CombineError as exc:
        _error(str(exc))
        return 2
    print(format_leave_one_out(left_out))
    return 0 if all(left.agrees for left in left_out if left.cells) else 1


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
    combine.add_argument(
        "--leave-one-out",
        action="store_true",
        help="check the combination instead: leave each run out in turn and count its cells "
        "inside where the others say another run should land (exit 1 if a run has under 90%%)",
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
        "--out",
        metavar="DIR",
        help="report directory (default: report-<stem> beside the newest results file, as in "
        "results/report-<stem> for results/<stem>.json)",
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
    compare.add_argument(
        "--min-change",
        default=f"{MIN_CHANGE * 100:g}",
        metavar="PERCENT",
        help="call a change slower or faster only if its interval lies wholly beyond this "
        f"(default: {MIN_CHANGE * 100:g}; 0: any change whose interval excludes none)",
    )
    compare.add_argument(
        "--work",
        nargs=2,
        metavar=("OLD_counts.json", "NEW_counts.json"),
        help="counts files of the old and the new side's software (anybench counts): each row "
        "also shows the change in instructions per operation, and where time and work part",
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
        "and write its report (options other than --into, --no-report and --saved-list go to "
        "pytest, e.g. --profile quick --runtime asyncio,trio)",
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
    _add_explain_command(commands)
    _add_agree(commands)
    _add_combine(commands)
    return parser


def _options_before_paths(argv: list[str], args: argparse.Namespace) -> bool:
    """Whether a pytest option comes before the first PATH of ``anybench run``: argparse
    would take its value (``--profile quick``) for a path, or leave it with none."""
    rest = argv[argv.index("run") + 1 :]
    first_path = rest.index(args.paths[0])
    return any(arg.startswith("-") and arg in args.pytest_args for arg in rest[:first_path])


#: errno values of an output that cannot be written (a full disk, a device gone): one line.
_OUTPUT_ERRNOS = {errno.ENOSPC, errno.EIO, errno.EFBIG, errno.EDQUOT, errno.EBADF}


def _work_counts(paths: list[str], pairs: int) -> tuple[CountsRun, CountsRun] | None:
    """compare's --work: the two counts files, or None once the error is said."""
    from ._counts_results import CountsError, read_counts

    if pairs != 1:
        _error(f"--work goes with one comparison, of two sides; these files make {pairs}")
        return None
    try:
        return read_counts(paths[0]), read_counts(paths[1])
    except CountsError as exc:
        _error(str(exc))
        return None


def _compare_counts(args: argparse.Namespace) -> int:
    from ._counts_compare import compare_counts
    from ._counts_results import CountsError, counts_to_json, read_counts

    try:
        old, new = read_counts(args.old), read_counts(args.new)
    except CountsError as exc:
        _error(str(exc))
        return 2
    if counts_to_json(old) == counts_to_json(new):  # as compare refuses one timed run twice
        same = "is" if args.old == args.new else f"and {args.new} are"
        _error(f"{args.old} {same} the same counts twice; compare two runs' counts")
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


def _explain(args: argparse.Namespace) -> int:
    from ._explain import explain_main

    if args.time:
        from ._sampling import sample_main

        if args.flame or args.runtime:
            _error("explain --time takes neither --flame nor --runtime: --sides names the runtimes")
            return 2
        return sample_main(
            args.files,
            sides=args.sides,
            scenarios=",".join(args.scenario) or None,
            scale=args.scale,
            processes=args.processes,
            seconds=args.seconds,
            top=args.top,
            pythons=args.pythons,
        )
    if args.flame is not None:
        flame = Path(args.flame)
        if not args.flame or (flame.exists() and not flame.is_dir()):
            _error(
                f"--flame takes a directory for the flame graph, not {args.flame!r}; name a "
                "directory (it is created if missing)"
            )
            return 2
    return explain_main(
        args.files,
        sides=args.sides,
        scenarios=",".join(args.scenario) or None,
        runtimes=",".join(args.runtime) or None,
        scale=args.scale,
        top=args.top,
        flame=args.flame,
    )


def _add_explain_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    explain = commands.add_parser(
        "explain",
        help="where a difference in work comes from: the top contributors per operation "
        "between two counts files (A B), or two runtimes of one (--sides asyncio,trio); with "
        "--time, from py-spy's samples of scenarios (where counts are missing or not "
        "deterministic)",
        description="Explain a gap from counts (two counts files, or one with --sides), or, "
        "with --time, from time alone: py-spy samples each scenario's region in --processes "
        "fresh processes per runtime of --sides (needs `pip install py-spy`; run it on a quiet "
        "machine: it measures time). Counts are exact; time has intervals, and names a "
        "contributor only beyond them. Where counts are not deterministic (timers), explain "
        "says which --time command explains it.",
    )
    explain.add_argument(
        "files",
        nargs="*",
        metavar="COUNTS_OR_SCENARIOS",
        help="one or two counts files; with --time, scenario files or directories "
        "(default: scenarios)",
    )
    explain.add_argument("--sides", default=None, metavar="RT,RT", help="two runtimes to compare")
    explain.add_argument("--scenario", action="append", default=[], help="scenarios (default: all)")
    explain.add_argument("--runtime", action="append", default=[], help="runtimes (default: all)")
    explain.add_argument("--scale", type=int, default=None, metavar="N", help="one scale only")
    explain.add_argument("--top", type=int, default=10, metavar="K", help="rows per table")
    explain.add_argument(
        "--flame", default=None, metavar="DIR", help="draw a differential flame graph (SVG) in DIR"
    )
    explain.add_argument(
        "--time",
        action="store_true",
        help="explain from time: sample the scenarios with py-spy (needs --sides)",
    )
    explain.add_argument(
        "--processes", type=int, default=5, metavar="K", help="with --time: processes per side"
    )
    explain.add_argument(
        "--pythons",
        default=None,
        metavar="PY_A,PY_B",
        help="with --time: two environments' Pythons (each with anybench installed), sampled "
        "on the one runtime of --sides: an A/B of versions",
    )
    explain.add_argument(
        "--seconds",
        type=float,
        default=2.0,
        metavar="S",
        help="with --time: seconds of rounds sampled in each process",
    )
    explain.set_defaults(func=_explain)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``anybench`` command. A reader that stops reading (``| head -1``) ends it
    quietly with status 1, as Python's docs advise (the note on SIGPIPE in :mod:`signal`); an
    output that cannot be written is one line; a character the output's encoding lacks (µ in
    ASCII) is written as its escape (``\\xb5``)."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    try:
        status = _main(argv)
        if sys.stdout is not None:  # None where it was closed (>&-): nothing to flush
            sys.stdout.flush()
    except KeyboardInterrupt:
        # What a command had finished is on disk (files are written whole or not at all).
        _error("interrupted")
        return 130
    except BrokenPipeError:
        # Python flushes stdout again at exit: point it at devnull so that it says nothing.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OSError as exc:
        if exc.errno not in _OUTPUT_ERRNOS:
            raise
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        _error(f"cannot write its output ({exc.strerror or exc})")
        return 1
    return status


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "run":
        args.pytest_args = extra
        if _options_before_paths(list(argv if argv is not None else sys.argv[1:]), args):
            _error(
                "anybench run needs scenario files, directories or module names first: "
                "anybench run PATH... [options]"
            )
            return 2
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    status: int = args.func(args)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
