"""``anybench run``: the benchmark matrix of some scenario modules, saved as a new results file.

One command for what ``pytest --scenarios PATH --benchmark-json=...`` followed by ``anybench
save`` and ``anybench report`` does, with nothing lost on the way: pytest writes into
``DIR/.incoming/`` first and journals every finished benchmark beside it as it goes; the raw
file is removed only once it is saved under its final name. If the run is interrupted (Ctrl-C)
or dies, what finished is saved from the journal, marked partial; a journal left by a run that
was killed is recovered before the next one starts.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import _journal
from ._files import OutputError, unwritable
from ._results import ResultsError, save

#: pytest's exit codes that still leave a whole results file: all passed, or some failed (the
#: failures are named in it).
SAVED_CODES = (0, 1)


@dataclass
class RunOutcome:
    """What a run left: pytest's exit code, the results files saved, and what was recovered
    from earlier runs' journals."""

    exit_code: int
    saved: list[Path] = field(default_factory=list)
    recovered: list[Path] = field(default_factory=list)
    #: Why nothing (or only part) was saved, in one line; None when the run saved whole files.
    problem: str | None = None


def pytest_command(targets: Sequence[str], raw: Path, pytest_args: Sequence[str]) -> list[str]:
    """The pytest command line that measures *targets* (scenario files, directories, module
    names) into *raw*."""
    # The plugin comes through its entry point, unless entry points are switched off.
    autoload = not os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    plugin = [] if autoload else ["-p", "anybench.pytest_plugin"]
    scenarios = [arg for target in targets for arg in ("--scenarios", target)]
    return [
        sys.executable, "-m", "pytest", *plugin, *scenarios, f"--benchmark-json={raw}",
        *pytest_args,
    ]  # fmt: skip


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
    incoming = results_dir / ".incoming"
    try:
        incoming.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise unwritable(results_dir, exc, "save into it", "--into") from None
    outcome = RunOutcome(exit_code=0)
    for journal in _journal.leftovers(incoming):
        log(f"anybench: an earlier run did not finish: recovering {journal.name}")
        try:
            outcome.recovered += _journal.recover(journal, results_dir)
        except (ResultsError, OutputError, OSError, ValueError, KeyError) as exc:
            log(f"anybench: {journal}: cannot recover it ({exc}); it is left in place")
    fd, name = tempfile.mkstemp(dir=incoming, prefix="run-", suffix=".json")
    os.close(fd)
    raw = Path(name)
    journal = raw.with_name(raw.name + _journal.SUFFIX)
    proc = subprocess.Popen(pytest_command(targets, raw, pytest_args))
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        # The same Ctrl-C reached pytest: let it stop its workers and end its journal.
        code = proc.wait()
    outcome.exit_code = code
    if code not in SAVED_CODES or not raw.stat().st_size:
        if journal.exists():
            outcome.saved = _journal.recover(journal, results_dir)
            outcome.problem = "the run stopped early; what finished is saved, marked partial"
        else:
            outcome.problem = "pytest stopped before any benchmark finished; see its output"
        raw.unlink(missing_ok=True)
        return outcome
    try:
        outcome.saved = save(raw, results_dir)
    except (ResultsError, OutputError) as exc:
        outcome.problem = f"{exc}; the raw results are kept in {raw}"
        return outcome
    raw.unlink()
    journal.unlink(missing_ok=True)
    return outcome
