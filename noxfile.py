"""nox sessions: ``tests``, ``lint``, ``bench`` and its variants, ``counts``, ``report``,
``compare``.

Every session installs what it needs from pyproject.toml's dependency groups. Arguments after
``--`` pass through to pytest, e.g. ``nox -s bench -- --runtime trio,asyncio --profile quick``.
"""

from __future__ import annotations

import importlib.util
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

import nox

nox.needs_version = ">=2025.2.9"  # nox.project.dependency_groups
nox.options.sessions = ["tests", "lint"]
nox.options.default_venv_backend = "venv"
# bench_pythons runs on the Pythons that are installed and says which it skipped.
nox.options.error_on_missing_interpreters = False

ROOT = Path(__file__).parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
PYTHONS = nox.project.python_versions(PYPROJECT)
RESULTS = ROOT / "results"
#: What bench_versions compares when not told: the anyio releases around the per-task-handle
#: change (4.16.0 the newest when it was pinned, so that the default A/B stays the same).
DEFAULT_VERSIONS = ("anyio==4.13.0", "anyio==4.16.0")
VERSION_PROCESSES = 6
#: ... and up to this many for a group while a ratio between the variants is wider than ±5%
#: (anybench._sweep.Budget.pair_precision): the interval narrows as one over the root of the
#: pairs, so 24 pairs bring a ±12% row of 6 pairs to about ±5%. At 24, the rows of `timers` at
#: N = 100 and `fan_out_event` at N = 10,000 on uvloop and rloop (changes of +100% to +240%
#: between anyio 4.13 and 4.16, whose pairs spread ±12-17%) stopped at ±6-8% in the `quick`
#: A/Bs of 2026-12-05; at 48, the A/B of 03:01 settled every group by pass 28, every row
#: within ±5%, in 11 min 12 s, as long as the runs that stopped at 24. The extra passes go to
#: the loose groups only.
VERSION_MAX_PROCESSES = 48
#: How long nox lets ``anybench run`` stop and save after a Ctrl-C before it terminates it
#: (nox's own default is 0.3 s): anybench gives pytest 25 s at most (anybench._run).
INTERRUPT_TIMEOUT_S = 60.0
VERSION_SCENARIOS = (
    "spawn,done_callback,await_future,mixed,"
    "spawn_native,done_callback_native,await_future_native,mixed_native"
)


def _expose_pyenv_pythons() -> None:
    # pyenv's shims only run the active Python; let them find every installed one, the active
    # one first (so that `python` is unchanged), for sessions that ask for several Pythons.
    if "PYENV_VERSION" in os.environ or shutil.which("pyenv") is None:
        return
    try:
        active = subprocess.run(
            ["pyenv", "version-name"], capture_output=True, text=True, check=True
        ).stdout.split()[0]
        installed = subprocess.run(
            ["pyenv", "versions", "--bare"], capture_output=True, text=True, check=True
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError, IndexError):
        return
    os.environ["PYENV_VERSION"] = ":".join([active, *(v for v in installed if v != active)])


_expose_pyenv_pythons()


def install(session: nox.Session, group: str) -> None:
    session.install(*nox.project.dependency_groups(PYPROJECT, group))
    session.install(".")


def run_benchmarks(
    session: nox.Session,
    *pytest_args: str,
    targets: Sequence[str] = ("scenarios",),
    into: Path = RESULTS,
) -> list[str]:
    """Run the benchmark matrix of *targets* and save it as new results files in *into* (one
    per variant); return their paths.

    ``anybench run`` does the work (see anybench._run): it journals every finished benchmark,
    saves what finished, marked partial, if the run is interrupted or dies, recovers journals
    that killed runs left, and lists the files of this run (``--saved-list``).
    """
    with tempfile.TemporaryDirectory(prefix="anybench-nox-") as tmp:
        saved_list = Path(tmp) / "saved.txt"
        # Exit code 1 means some benchmarks failed (a hung scenario, say): the others are still
        # saved and compared, and the comparison names the failures and fails the session.
        session.run(
            "anybench", "run", *targets, "--into", str(into), "--no-report",
            "--saved-list", str(saved_list), *pytest_args,
            success_codes=[0, 1],
            # On Ctrl-C nox waits this long before it terminates the command: anybench run
            # needs the time to stop pytest and save what finished.
            interrupt_timeout=INTERRUPT_TIMEOUT_S,
        )  # fmt: skip
        paths = saved_list.read_text(encoding="utf-8").splitlines() if saved_list.exists() else []
    if not paths:
        session.error("the run saved no results; see its output above")
    return paths


def _test_paths(args: Sequence[str]) -> list[str]:
    """The test files and directories among pytest's arguments, without a ``::test`` part: under
    ``tests``, a ``.py`` file, or a node id. An option's value elsewhere (``--junitxml
    out/j.xml``, ``--basetemp /tmp/t``, ``-k spawn``) is not one."""
    found = []
    for arg in args:
        path = arg.split("::")[0]
        if not arg.startswith("-") and (
            "::" in arg or path.endswith(".py") or path == "tests" or path.startswith("tests/")
        ):
            found.append(path)
    return found


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite: the future, the adapter, and every scenario on every runtime."""
    # pytest-xdist's workers would say only "no tests ran" of a path that does not exist.
    missing = [p for p in _test_paths(session.posargs) if not (ROOT / p).exists()]
    if missing:
        session.error(f"{missing[0]}: no such file or directory (paths are from {ROOT})")
    install(session, "test")
    # On every core (pytest-xdist); benchmarks are never run this way: they run one at a time.
    # The ten slowest tests are named at the end: the suite's time is watched, not guessed.
    session.run("pytest", "-n", "auto", "--durations=10", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Run the benchmark matrix, save it as a new file under results/, report and compare."""
    install(session, "bench")
    [path] = run_benchmarks(session, *session.posargs)
    session.run("anybench", "report", path)
    # Fails the session if a benchmark failed, after printing the comparison.
    session.run("anybench", "table", path)
    # An independent measurement of spawn and done_callback; a disagreement is printed loudly
    # but does not fail the session, whose results are already saved.
    session.run("python", "benchmarks/crosscheck_spawn.py", path, success_codes=[0, 1])


@nox.session(python=PYTHONS)
def bench_pythons(session: nox.Session) -> None:
    """Run the benchmark matrix on each supported Python that is installed (others skipped)."""
    install(session, "bench")
    paths = run_benchmarks(session, *session.posargs)
    session.run("anybench", "table", *paths)
    session.log("put Pythons side by side with: nox -s report -- results/<file>.json ...")


def runtime_distributions() -> list[str]:
    """The distributions the runtimes come from, asked of the registry itself.

    nox runs outside anybench's environment, so the registry's module is loaded from its file
    (it imports the standard library only, and its own package not at all).
    """
    spec = importlib.util.spec_from_file_location(
        "anybench_runtimes_for_nox", ROOT / "src" / "anybench" / "_runtimes.py"
    )
    assert spec is not None
    assert spec.loader is not None
    registry = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = registry  # a dataclass looks its module up while it is made
    spec.loader.exec_module(registry)
    distributions: list[str] = registry.runtime_distributions()
    return distributions


def variant_option(session: nox.Session, label: str, *requirements: str) -> list[str]:
    """Make (or update) the environment of one variant and return its ``--variant`` option.

    The environment gets *requirements* (pip arguments: a checkout of anybench, a library's
    version) and the optional runtimes. A label names it in test ids and file names.
    """
    env = Path(session.virtualenv.location) / "variants" / label
    python = env / "bin" / "python"
    if not python.exists():
        session.run("python", "-m", "venv", str(env))
    runtimes = nox.project.dependency_groups(PYPROJECT, "runtimes")
    session.run(
        str(python), "-m", "pip", "install", "--quiet", *requirements, *runtimes, external=True
    )
    return ["--variant", f"{label}={python}"]


def run_variants(
    session: nox.Session, variants: dict[str, list[str]], pytest_args: list[str]
) -> list[str]:
    """Benchmark *variants* (label: pip requirements) interleaved in one run, save one results
    file per variant and report them side by side; return the files' paths. Each pass over the
    matrix gives every benchmark one process per variant, alive at once on one CPU and taking
    turns round by round (``--pairing lockstep``, the default; ``alternate``: back to back;
    ``duet``: at the same moment, one per CPU): compare pairs them by pass."""
    # A verdict between variants needs more processes than a first look: the variance between
    # processes is the unit of its interval.
    if not any(a.startswith("--processes") for a in pytest_args):
        pytest_args = ["--processes", str(VERSION_PROCESSES), *pytest_args]
    if not any(a.startswith("--max-processes") for a in pytest_args):
        pytest_args = ["--max-processes", str(VERSION_MAX_PROCESSES), *pytest_args]
    install(session, "bench")
    options = []
    for label, requirements in variants.items():
        options += variant_option(session, label, *requirements)
    paths = run_benchmarks(session, *options, *pytest_args)
    session.run("anybench", "report", *paths)
    return paths


def requirement_labels(specs: Sequence[str]) -> list[str]:
    """A label per requirement, naming its environment in test ids and file names (no "=": it
    goes into ``--variant LABEL=PYTHON``). A requirement given more than once (an A/A control,
    ``anyio anyio``) gets an environment per time, labelled ``-a``, ``-b``, ...: the same
    versions installed twice, apart."""
    labels = [re.sub(r"[^A-Za-z0-9._-]+", "-", spec).strip("-") or "latest" for spec in specs]
    times = {label: labels.count(label) for label in labels}
    seen: dict[str, int] = {}
    unique = []
    for label in labels:
        if times[label] > 1:
            seen[label] = seen.get(label, 0) + 1
            label = f"{label}-{chr(ord('a') + seen[label] - 1)}"
        unique.append(label)
    return unique


def split_requirements(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """bench_versions' arguments: the requirements that come first (of a runtime's library,
    as the registry names them), then pytest's options. Raises ValueError, before anything is
    installed, for what would otherwise measure the defaults for minutes and end in pytest's
    "file or directory not found": a first argument that is neither (a misspelt name), or a
    requirement after an option."""
    distributions = runtime_distributions()
    names = "|".join(map(re.escape, distributions))
    requirement = re.compile(rf"^({names})\s*(===|==|>=|<=|~=|!=|>|<|$)", re.IGNORECASE)
    rest = list(args)
    specs = []
    while rest and requirement.match(rest[0]):
        specs.append(rest.pop(0))
    if rest and not rest[0].startswith("-"):
        raise ValueError(
            f"{rest[0]!r} is not a requirement of a runtime's library "
            f"({', '.join(distributions)}); requirements come first, then options"
        )
    late = [a for a in rest if requirement.match(a) and re.search(r"[=<>~!]", a)]
    if late:
        raise ValueError(f"{late[0]!r} comes after an option; requirements come first")
    return specs, rest


@nox.session
def bench_versions(session: nox.Session) -> None:
    """Benchmark chosen versions of the runtimes' libraries interleaved in one run (an A/B run).

    nox -s bench_versions -- anyio==4.13.0 anyio [pytest options]
    The requirements (of anyio or of a runtime's distribution, as the registry in
    anybench._runtimes names them) come first; each gets an environment of its own, and one run
    interleaves their worker processes, so the machine's drift falls on all of them alike. Each
    is saved as a results file of its own (sharing the run's id), then reported side by side
    and, for two, compared, their processes paired by pass. By default: anyio 4.13.0 and
    4.16.0, on the scenarios that show scheduling cost, and the native baselines as the control.
    The same requirement twice (``-- anyio anyio``) is the A/A control: two environments with
    the same versions (``anyio-a``, ``anyio-b``), which compare must find alike. Pytest options
    pass through, ``--pairing alternate`` or ``duet`` among them (duet: two requirements only).
    """
    try:
        specs, pytest_args = split_requirements(session.posargs)
    except ValueError as exc:
        session.error(str(exc))
    if not specs:
        specs = list(DEFAULT_VERSIONS)
        if not any(a.startswith("--scenario") for a in pytest_args):
            pytest_args = ["--scenario", VERSION_SCENARIOS, *pytest_args]
    variants = {
        label: [".", spec] for label, spec in zip(requirement_labels(specs), specs, strict=True)
    }
    paths = run_variants(session, variants, pytest_args)
    if len(paths) == 2:
        session.run("anybench", "compare", *paths, success_codes=[0, 1])


@nox.session
def bench_ab(session: nox.Session) -> None:
    """Benchmark a git revision against this working tree, interleaved in one run (an A/B run).

    nox -s bench_ab -- BASE_REF [pytest options]
    BASE_REF (a branch, tag or commit) is exported into a temporary directory; the base and the
    head (this working tree, uncommitted changes included) each get an environment of their own
    with their own anybench and its dependencies, and one run interleaves their worker
    processes. Both sides run this tree's benchmarks and scenarios, driven by this tree's
    plugin: what differs is the installed package (harness, adapter, Future) and what it
    requires. The two results files (``*_base``, ``*_head``) are reported side by side and
    compared, their processes paired by pass (a base too old to take turns pairs by
    ``--pairing alternate``, and says so); the comparison is saved beside them
    (``compare-*.txt``), and the session fails on its verdict: a REGRESSION, or a benchmark
    that ran in the base and is missing or failed in the head. The pull-request workflow
    (.github/workflows/pr-bench.yml) runs this.
    """
    if not session.posargs or session.posargs[0].startswith("-"):
        session.error("usage: nox -s bench_ab -- BASE_REF [pytest options], e.g. origin/main")
    base_ref, *pytest_args = session.posargs
    found = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{base_ref}^{{commit}}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if found.returncode != 0:
        session.error(f"{base_ref!r} is not a commit of this repository; fetch it first")
    commit = found.stdout.strip()
    with tempfile.TemporaryDirectory(prefix="anybench-base-") as tmp:
        # git archive: the committed tree alone, and no worktree for git to keep track of.
        archive = subprocess.run(
            ["git", "archive", "--format=tar", commit], cwd=ROOT, capture_output=True, check=True
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
        if not _speaks_protocol(Path(tmp)):
            session.error(
                f"the base {base_ref} predates anybench's worker protocol (2026-12-01): its "
                "workers cannot run this tree's jobs; pick a later base"
            )
        try:
            pytest_args, note = _pairing_for_base(Path(tmp), base_ref, pytest_args)
        except ValueError as exc:
            session.error(str(exc))
        if note:
            session.warn(note)
        if not _places_afresh(Path(tmp)):
            session.warn(
                f"the base {base_ref} predates a fresh placement in memory in every worker "
                "(copies of compiled code, a random shift of the heap: 2026-12-05): its workers "
                "lay out their code and objects alike in every process, so a change of a few "
                "percent (a native row's too) may be that layout, not the head's doing"
            )
        # pip copies the base into its environment: the directory may go once they are made.
        paths = run_variants(session, {"base": [tmp], "head": ["."]}, pytest_args)
    side = {label: p for p in paths for label in ("base", "head") if _is_variant(p, label)}
    if set(side) != {"base", "head"}:
        missing = " and ".join(sorted({"base", "head"} - set(side)))
        session.error(
            f"the {missing} measured nothing (its failures are above, and in "
            f"{', '.join(paths) or 'no file'}); nothing to compare"
        )
    anybench = str(Path(session.bin) / "anybench")
    compared = subprocess.run(
        [anybench, "compare", side["base"], side["head"]], capture_output=True, text=True
    )
    text = f"base: {base_ref} ({commit[:10]})\nhead: {_describe_tree()}\n{compared.stdout}"
    print(text, end="")
    print(compared.stderr, end="", file=sys.stderr)
    stem = Path(side["base"]).stem
    saved = Path(side["base"]).with_name(f"compare-{stem}-{commit[:10]}_vs_head.txt")
    saved.write_text(text, encoding="utf-8")
    session.log(f"comparison saved to {os.path.relpath(saved, ROOT)}")
    if compared.returncode == 1:
        session.error("the head is slower than the base (REGRESSION above), or lost a benchmark")
    if compared.returncode != 0:
        session.error("anybench compare could not compare the two runs; see its message above")


def _pairing_for_base(tree: Path, base_ref: str, pytest_args: list[str]) -> tuple[list[str], str]:
    """The pytest options of an A/B against the base exported to *tree*, and what to tell the
    user ("": nothing). A base whose workers cannot take turns is paired by ``alternate`` where
    no pairing was asked (lockstep being the default), and cannot run ``lockstep`` asked for by
    name (ValueError, in one line)."""
    if _takes_turns(tree):
        return pytest_args, ""
    asked = _asked_pairing(pytest_args)
    if asked == "lockstep":
        raise ValueError(
            f"the base {base_ref} predates --pairing lockstep as it is now (2026-12-04): its "
            "workers cannot take turns, or take none for their exit; use --pairing alternate "
            "or duet"
        )
    if asked is not None:
        return pytest_args, ""
    note = (
        f"the base {base_ref} predates --pairing lockstep as it is now (2026-12-04), the "
        "default: its workers cannot take turns; this run pairs by --pairing alternate"
    )
    return [*pytest_args, "--pairing", "alternate"], note


def _asked_pairing(pytest_args: Sequence[str]) -> str | None:
    """The ``--pairing`` that *pytest_args* ask for (the last one counts), if any."""
    asked = [
        (
            a.split("=", 1)[1]
            if "=" in a
            else (pytest_args[i + 1] if i + 1 < len(pytest_args) else "")
        )
        for i, a in enumerate(pytest_args)
        if a == "--pairing" or a.startswith("--pairing=")
    ]
    return asked[-1] if asked else None


def _protocol(tree: Path) -> Path:
    """The worker protocol's module of the anybench in *tree* (an exported revision)."""
    return tree / "src" / "anybench" / "_protocol.py"


def _speaks_protocol(tree: Path) -> bool:
    """Whether the anybench in *tree* has the worker protocol this tree's parent speaks
    (``_protocol.py``, from 2026-12-01): older workers cannot run its jobs."""
    return _protocol(tree).is_file()


def _takes_turns(tree: Path) -> bool:
    """Whether the anybench in *tree* has workers that take turns as this tree's do: a turn
    for each round and one for the exit (``TURNS_VERSION`` 2 or later)."""
    if not _speaks_protocol(tree):
        return False
    found = re.search(r"^TURNS_VERSION = (\d+)$", _protocol(tree).read_text(encoding="utf-8"), re.M)
    return found is not None and int(found.group(1)) >= 2


def _places_afresh(tree: Path) -> bool:
    """Whether the anybench in *tree* has its workers load compiled extension modules from
    copies of their own and shift their heap (``_fresh.py`` with ``shift_heap``, from
    2026-12-05), as this tree's do."""
    fresh = _protocol(tree).with_name("_fresh.py")
    return fresh.is_file() and "def shift_heap(" in fresh.read_text(encoding="utf-8")


def _is_variant(path: str, label: str) -> bool:
    """Whether *path* is the results file of variant *label* (``..._label.json``, or
    ``..._label-2.json`` beside an older one)."""
    return re.search(rf"_{re.escape(label)}(-[0-9]+)?$", Path(path).stem) is not None


def _describe_tree() -> str:
    """This working tree: its commit, and whether it has uncommitted changes."""
    git = ["git", "-C", str(ROOT)]
    head = subprocess.run([*git, "rev-parse", "--short=10", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
    )
    changes = " with uncommitted changes" if dirty.stdout.strip() else ""
    return f"this working tree ({head.stdout.strip() or '?'}{changes})"


def newest_results() -> str:
    # Counts files (…_counts.json) sit beside the results files; the report takes them apart.
    runs = sorted(
        (p for p in RESULTS.glob("*.json") if "_counts" not in p.name),
        key=lambda p: p.stat().st_mtime,
    )
    if not runs:
        raise SystemExit("no results under results/; run 'nox -s bench' first")
    return str(runs[-1])


def _positionals(args: Sequence[str], takes_value: Sequence[str]) -> list[str]:
    """The arguments that are not options nor the values of *takes_value* options (``--out
    DIR``; ``--out=DIR`` is one argument)."""
    found = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in takes_value:
            skip = True
        elif not arg.startswith("-"):
            found.append(arg)
    return found


@nox.session
def report(session: nox.Session) -> None:
    """Write the Markdown and PNG report for results files (default: the newest one)."""
    session.install(".")
    files = _positionals(session.posargs, takes_value=("--out",))
    session.run("anybench", "report", *session.posargs, *([] if files else [newest_results()]))


@nox.session
def compare(session: nox.Session) -> None:
    """Compare two results files: nox -s compare -- OLD.json NEW.json [--threshold 10]."""
    if len(_positionals(session.posargs, takes_value=("--threshold", "--min-change"))) < 2:
        session.error("usage: nox -s compare -- OLD.json NEW.json [--threshold PERCENT]")
    session.install(".")
    session.run("anybench", "compare", *session.posargs)


@nox.session
def counts(session: nox.Session) -> None:
    """Count the work per operation under valgrind (instructions, calls, allocations) into
    results/: nox -s counts -- [--profile quick] [--scenario spawn] [--runtime trio]."""
    if shutil.which("valgrind") is None:
        session.error(
            "counts need valgrind, which is not on PATH; install it (sudo apt-get install "
            "valgrind, or dnf install valgrind) and run again"
        )
    install(session, "bench")
    # Exit code 1: some benchmarks failed; the others are saved, and the failures named.
    session.run(
        "anybench", "counts", "scenarios", "--into", str(RESULTS), *session.posargs,
        success_codes=[0, 1],
    )  # fmt: skip


@nox.session
def lint(session: nox.Session) -> None:
    """Check style and types (ruff, mypy) and the GitHub workflows (actionlint)."""
    install(session, "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
    # actionlint also runs shellcheck on every `run:` script when shellcheck is on PATH.
    session.run("actionlint")
