"""The ``anybench`` command: save and compare results files."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._results import ResultsError, load, save
from ._table import comparison_table


def _table(args: argparse.Namespace) -> int:
    status = 0
    for path in args.files:
        try:
            run = load(path)
        except ResultsError as exc:
            print(f"anybench: {exc}", file=sys.stderr)
            status = 1
            continue
        print(f"{path}:")
        print(comparison_table(run))
        print()
        if run.failed:
            status = 1
    return status


def _save(args: argparse.Namespace) -> int:
    try:
        target = save(args.file, args.into)
    except ResultsError as exc:
        print(f"anybench: {exc}", file=sys.stderr)
        return 1
    print(target)
    return 0


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

    save_cmd = commands.add_parser(
        "save", help="copy a fresh results file into a results directory under a new name"
    )
    save_cmd.add_argument("file", metavar="RESULTS.json")
    save_cmd.add_argument("--into", default="results", metavar="DIR")
    save_cmd.set_defaults(func=_save)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    status: int = args.func(args)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
