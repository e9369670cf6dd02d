"""``anybench run``: the benchmark matrix of some scenario modules, saved as a new results file.

One command for what ``pytest --scenarios PATH --benchmark-json=...`` followed by ``anybench
save`` and ``anybench report`` does, with nothing lost on the way: pytest writes into
``DIR/.incoming/`` first and journals every finished benchmark beside it as it goes; the raw
file is removed only once it is saved under its final name. If the run is interrupted (Ctrl-C,
SIGTERM) or dies, what finished is saved from the journal, marked partial, at once. Journals
left by earlier runs that were killed are recovered once this run has measured (a run that
stops on a usage error touches nothing); journals of runs still going are left to them.

:func:`pytest_command` is the one way into the matrix: ``anybench run``, ``nox -s bench`` (which
runs ``anybench run``) and the test suite all build their pytest command with it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from . import _journal
from ._files import OutputError, unwritable
from ._results import ResultsError, save
from ._signals import stopping

#: pytest's exit codes that still leave a whole results file: all passed, or some failed (the
#: failures are named in it).
SAVED_CODES = (0, 1)
#: pytest's exit codes of a run that measured, or began to: 0, 1, and 2 (interrupted).
RAN_CODES = (0, 1, 2)
#: After a Ctrl-C, how long pytest gets to stop by itself (a terminal's Ctrl-C reaches it
#: too), then to stop on a SIGINT of ours (one sent to this process alone), before it is
#: killed; its journal is on disk either way.
STOP_BY_ITSELF_S = 5.0
STOP_ON_SIGINT_S = 20.0
#: Options that use pytest-benchmark's storage (./.benchmarks unless told otherwise).
_STORAGE_OPTIONS = (
    "--benchmark-storage",
    "--benchmark-save",
    "--benchmark-autosave",
    "--benchmark-compare",
)


@dataclass
class RunOutcome:
    """What a run left: pytest's exit code, the results files saved, and what was done with
    earlier runs' journals."""

    exit_code: int
    saved: list[Path] = field(default_factory=list)
    recovered: list[_journal.Recovery] = field(default_factory=list)
    #: Why nothing (or only part) was saved, in one line; None when the run saved whole files.
    problem: str | None = None


def pytest_command(
    targets: Sequence[str], raw: Path | None, pytest_args: Sequence[str]
) -> list[str]:
    """The pytest command line that measures *targets* (scenario files, directories, module
    names) into *raw* (pytest-benchmark's JSON; None to leave that to *pytest_args*).

    Nothing is left in the current directory: no ``.pytest_cache`` (the cache plugin is off
    unless *pytest_args* name it).
    """
    # The plugin comes through its entry point, unless entry points are switched off.
    autoload = not os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    plugin = [] if autoload else ["-p", "anybench.pytest_plugin"]
    cache = [] if any("cacheprovider" in arg for arg in pytest_args) else ["-p", "no:cacheprovider"]
    scenarios = [arg for target in targets for arg in ("--scenarios", target)]
    json = [] if raw is None else [f"--benchmark-json={raw}"]
    # pytest-benchmark warns "Not saving anything" at the end of an interrupted run (what
    # finished is saved from the journal, not by it); a project whose pytest turns warnings into
    # errors (filterwarnings = error, as this one's) would print a traceback for it.
    quiet = ["-W", "ignore:Not saving anything:pytest_benchmark.logger.PytestBenchmarkWarning"]
    return [
        sys.executable,
        "-m",
        "pytest",
        *plugin,
        *cache,
        *quiet,
        *scenarios,
        *json,
        *pytest_args,
    ]


def _uses_storage(pytest_args: Sequence[str]) -> bool:
    return any(arg.startswith(_STORAGE_OPTIONS) for arg in pytest_args)


def _uses_junitxml(pytest_args: Sequence[str]) -> bool:
    return any(arg.startswith(("--junitxml", "--junit-xml")) for arg in pytest_args)


def _stop(proc: subprocess.Popen[bytes]) -> int:
    """Stop pytest after a Ctrl-C of ours, promptly, and return its exit code."""
    try:
        return proc.wait(timeout=STOP_BY_ITSELF_S)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # the interrupt came to this process alone
    try:
        return proc.wait(timeout=STOP_ON_SIGINT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def _outcomes(report: Path) -> str | None:
    """What pytest's JUnit XML *report* says became of the tests: counts of skipped, failed
    and errors, each with its first reasons; None if it cannot be read."""
    try:
        root = ET.parse(report).getroot()
    except (OSError, ET.ParseError):
        return None
    kinds = {"skipped": Counter[str](), "failure": Counter[str](), "error": Counter[str]()}
    for case in root.iter("testcase"):
        for kind, reasons in kinds.items():
            for element in case.findall(kind):
                message = (element.get("message") or element.text or kind).strip()
                reasons[message.splitlines()[0] if message else kind] += 1
    words = {"skipped": "skipped", "failure": "failed", "error": "errors"}
    parts = []
    for kind, reasons in kinds.items():
        if reasons:
            shown = "; ".join(reason[:160] for reason, _ in reasons.most_common(2))
            more = ", ..." if len(reasons) > 2 else ""
            parts.append(f"{sum(reasons.values())} {words[kind]} ({shown}{more})")
    return " / ".join(parts) if parts else None


#: pytest's exit code for a usage error, which pytest says in one line of its own.
USAGE_ERROR = 4


def _why_nothing(code: int, report: Path | None) -> str | None:
    """Why a run saved no benchmark, in one line; None where pytest has said it."""
    if code in SAVED_CODES:
        outcomes = _outcomes(report) if report is not None else None
        return f"no benchmark finished: {outcomes or 'see pytest output above'}"
    if code == 2:
        return "the run was interrupted before any benchmark finished"
    if code == 5:
        return "pytest collected no benchmark; check the paths and --scenario"
    if code == USAGE_ERROR:
        return None
    return "pytest stopped before any benchmark finished; see its output"


def _new_raw(incoming: Path) -> Path:
    fd, name = tempfile.mkstemp(dir=incoming, prefix=_journal.RAW_PREFIX, suffix=".json")
    os.close(fd)
    return Path(name)


def run_and_save(
    targets: Sequence[str],
    pytest_args: Sequence[str],
    results_dir: Path,
    log: Callable[[str], None] = print,
) -> RunOutcome:
    """Run the matrix of *targets* with *pytest_args* and save it into *results_dir* (created
    if missing), never overwriting a file; see the module docstring for what is kept when."""
    if results_dir.exists() and not results_dir.is_dir():
        raise OutputError(f"{results_dir} is a file, not a directory; pass --into a directory")
    incoming = results_dir / _journal.INCOMING
    made = [] if results_dir.exists() else [results_dir]
    try:
        incoming.mkdir(parents=True, exist_ok=True)
        raw = _new_raw(incoming)
    except OSError as exc:
        raise unwritable(results_dir, exc, "save into it", "--into") from None
    journal = raw.with_name(raw.name + _journal.SUFFIX)
    with tempfile.TemporaryDirectory(prefix="anybench-run-") as scratch:
        extra: list[str] = []
        if not _uses_storage(pytest_args):  # pytest-benchmark makes its storage, used or not
            extra.append(f"--benchmark-storage=file://{Path(scratch) / 'storage'}")
        report = None if _uses_junitxml(pytest_args) else Path(scratch) / "outcomes.xml"
        if report is not None:
            extra.append(f"--junitxml={report}")
        # No __pycache__ beside the user's scenario files.
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        # Live until saved: no other run's recovery takes this journal once pytest has ended.
        with _journal.running(raw), stopping() as stop:
            proc: subprocess.Popen[bytes] | None = None
            try:
                proc = subprocess.Popen(
                    pytest_command(targets, raw, [*extra, *pytest_args]), env=env
                )
                code = proc.wait()
                interrupted = False
            except KeyboardInterrupt:
                if proc is None:
                    # Popen had not returned: no journal to save (a pytest it had started got
                    # the terminal's Ctrl-C too).
                    raise
                interrupted = True
            stop.deaf()  # a second Ctrl-C, or SIGTERM, waits until what finished is saved
            if interrupted:
                log("anybench: interrupted; saving what finished")
                code = _stop(proc)
            outcome = _save(code, raw, journal, results_dir, report)
            if code in RAN_CODES:
                outcome.recovered = _journal.recover_all(results_dir)
    _remove_if_empty(incoming)
    if results_dir in made:  # a run that saved nothing leaves no directory of its own
        _remove_if_empty(results_dir)
    return outcome


def _save(
    code: int, raw: Path, journal: Path, results_dir: Path, report: Path | None
) -> RunOutcome:
    outcome = RunOutcome(exit_code=code)
    whole = code in SAVED_CODES and raw.exists() and raw.stat().st_size > 0
    if whole:
        try:
            outcome.saved = save(raw, results_dir)
        except ResultsError as exc:
            outcome.problem = f"{exc}; the raw results are kept in {raw}"
            return outcome
        raw.unlink()
        journal.unlink(missing_ok=True)
        return outcome
    if journal.exists():
        recovery = _journal.recover(journal, results_dir, ours=True)
        outcome.saved = recovery.saved + recovery.raw_saved
        if recovery.raw_problem:
            outcome.problem = recovery.raw_problem
        elif recovery.problem:
            outcome.problem = f"{journal}: {recovery.problem}"
        elif recovery.saved:
            outcome.problem = "the run stopped early; what finished is saved, marked partial"
        else:
            outcome.problem = _why_nothing(code, report)
    else:
        outcome.problem = _why_nothing(code, report)
    if not journal.exists():
        raw.unlink(missing_ok=True)
    return outcome


def _remove_if_empty(directory: Path) -> None:
    """Leave no empty ``.incoming`` behind (another run may have filled it meanwhile)."""
    with suppress(OSError):
        directory.rmdir()
