"""The scenario contract, declared once: what a scenario module provides, checked on import.

A scenario is one small Python module (see ``scenarios/`` and ``examples/``)::

    NAME = "my_client_roundtrip"
    OPERATION = "one request through my client"
    LATENCIES = {"reply": "send -> reply received"}

    async def run(n: int, probe: anybench.Probe) -> None: ...

:class:`ScenarioSpec` names every field a module may declare, required and optional, with its
default and meaning (:data:`FIELDS`). Every other part of anybench (the harness, the worker, the
pytest plugin, the results) reads a scenario through its spec, never with ``getattr``.

**Fields and parameters.** Any other public UPPER_CASE constant of the module is one of the
scenario's *parameters* (``BACKGROUND_TASKS = 8``): it is recorded in every result of the
scenario (extra info ``parameters``), as pyperformance records its benchmarks' parameters. A
constant named close to a field (``MAXN``, ``LATENCY``; see :data:`CLOSE_MATCH`), or an async
function named close to a runner (``async def runn``), is taken for a misspelling and refused,
unless the module lists it in ``PARAMETERS``, the one way to say "this near-miss is meant".
The constants anybench offers scenarios (:data:`ANYBENCH_CONSTANTS`, such as
``TRIO_CALLBACKS_CAVEAT``) and values that are not plain data (numbers, text, flags, and tuples,
lists or mappings of those) are not parameters.

The sweep axes a scenario may declare (``AXIS``) are :data:`anybench._sweep.AXES`.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import sys
import types
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ._runtimes import BASELINE
from ._sweep import AXES, N, axis_named

if TYPE_CHECKING:
    from ._probe import Probe

#: ``async def run(n, probe)``: one pass of the scenario at scale n.
Runner = Callable[[int, "Probe"], Awaitable[None]]

#: How alike a name must be to a field's to be taken for its misspelling (difflib's ratio):
#: MAXN, LATENCY, SAMPLE, AXES, runn; not YIELDS_PER_TASK, SEED or BUFFER.
CLOSE_MATCH = 0.75
#: The backends a native runner may be written for: ``run_asyncio``, ``run_trio``.
NATIVE_BACKENDS = ("asyncio", "trio")
#: The figures of the report a scenario may remark on (``REMARKS``).
REMARK_TOPICS = ("anyio_tax", "memory", "latency")

#: The mark of a figure whose done-callbacks on trio go through anybench's own queue (trio has
#: no done-callbacks; see anybench._adapter), where asyncio's go through ``loop.call_soon``: a
#: scenario's ``CAVEATS = {"trio": TRIO_CALLBACKS_CAVEAT}``.
TRIO_CALLBACKS_CAVEAT = (
    "on trio, done-callbacks go through anybench's own queue, run from trio's scheduler "
    "between task batches (trio has none of its own); on asyncio through loop.call_soon: a "
    "different mechanism"
)
#: anybench's public constants a scenario may import (``from anybench import
#: TRIO_CALLBACKS_CAVEAT``): anybench's, not the scenario's parameters. Only those of this
#: module and below it: the contract reads nothing of the modules built on it.
ANYBENCH_CONSTANTS: Mapping[str, object] = MappingProxyType(
    {"BASELINE": BASELINE, "TRIO_CALLBACKS_CAVEAT": TRIO_CALLBACKS_CAVEAT}
)


class ScenarioError(ValueError):
    """A scenario module that breaks the contract; the message is one line naming the module's
    file and the field."""


@dataclass(frozen=True)
class Field:
    """One field of the contract: its module-level name, whether it is required, its default
    and what it means (shown in errors and in this module's documentation)."""

    name: str
    meaning: str
    required: bool = False
    default: Any = None


#: Every field a scenario module may declare. ``run`` and its native forms are the runners.
FIELDS: tuple[Field, ...] = (
    Field(
        "NAME",
        "the scenario's name, unique in a run: results, reports and --scenario use it",
        required=True,
    ),
    Field("OPERATION", "what one operation is, in a few words (the report's unit)", required=True),
    Field(
        "LATENCIES",
        "latency series -> what each sample measures, e.g. {'wake': 'set -> "
        "resumed'}; a round may record only these (may be empty)",
        required=True,
    ),
    Field(
        "run",
        "async def run(n, probe): one pass at scale n, written against anyio; "
        "required unless a native runner is given",
    ),
    Field("run_asyncio", "async def run_asyncio(n, probe): a native baseline's asyncio pass"),
    Field("run_trio", "async def run_trio(n, probe): a native baseline's trio pass"),
    Field(
        "AXIS",
        "the sweep axis n scales along: 'n' (operations) or 'load' (background "
        "load B, with a fixed sample count)",
        default=N.name,
    ),
    Field("MAX_N", "the largest n it runs at (None: the whole sweep)"),
    Field("NATIVE_OF", "for a native baseline, the NAME of the anyio scenario it mirrors"),
    Field(
        "CAVEATS",
        "backend -> what its figure does differently there (marked † wherever it appears)",
        default=MappingProxyType({}),
    ),
    Field(
        "REMARKS",
        "report topic (anyio_tax, memory, latency) -> what a reader of that figure should know "
        "of this scenario, printed with it, e.g. {'memory': 'per live task'}",
        default=MappingProxyType({}),
    ),
    Field("SAMPLES", "operations per pass of a 'load' scenario (required there)"),
    Field("OPS_PER_N", "operations per pass per unit of n (e.g. 10 yields per task)", default=1),
    Field(
        "EARLY_TOLERANCE_NS",
        "how early (negative) a latency sample may be, in ns: for "
        "delays measured against a deadline on a coarse clock",
        default=0,
    ),
    Field(
        "PARAMETERS",
        "names of constants meant as parameters though close to a field's name",
        default=(),
    ),
)
_BY_NAME = {f.name: f for f in FIELDS}
_RUNNERS = ("run", *(f"run_{backend}" for backend in NATIVE_BACKENDS))


def _plain(value: Any) -> bool:
    """Whether *value* is plain data a results file can hold as it is."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (tuple, list)):
        return all(_plain(v) for v in value)
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


@dataclass(frozen=True)
class ScenarioSpec:
    """A scenario, checked: the fields of :data:`FIELDS`, in Python's spelling.

    Built with :meth:`from_module`; immutable. ``runners`` maps a backend (``"asyncio"``,
    ``"trio"``) to its native runner, and ``""`` to the portable ``run``.
    """

    name: str
    operation: str
    latencies: Mapping[str, str]
    runners: Mapping[str, Runner]
    axis: str = N.name
    max_n: int | None = None
    native_of: str | None = None
    caveats: Mapping[str, str] = field(default_factory=dict)
    remarks: Mapping[str, str] = field(default_factory=dict)
    samples: int | None = None
    ops_per_n: int = 1
    early_tolerance_ns: int = 0
    #: The module's own constants (see the module docstring), recorded with its results.
    parameters: Mapping[str, Any] = field(default_factory=dict)
    #: The module's import name and the directory a fresh process must put on sys.path to
    #: import it ("" when it is importable as is).
    module: str = ""
    import_root: str = ""
    #: The module's docstring: what it measures, what it checks.
    doc: str = ""
    #: Where it came from, for error messages: the module's file, or its name.
    source: str = ""

    def runner(self, backend: str) -> Runner | None:
        """The coroutine function that runs one pass on *backend*: its native runner, else the
        portable ``run``; None if it has neither."""
        return self.runners.get(backend) or self.runners.get("")

    def ops(self, scale: int) -> int:
        """Operations in one pass at *scale*: SAMPLES on an axis that does not count operations
        (the load's), else scale x OPS_PER_N."""
        if not axis_named(self.axis).counts_operations:
            assert self.samples is not None  # checked in from_module
            return self.samples
        return scale * self.ops_per_n

    @classmethod
    def of(cls, scenario: Any) -> ScenarioSpec:
        """*scenario* itself if it is a spec, else :meth:`from_module` of it."""
        return scenario if isinstance(scenario, ScenarioSpec) else cls.from_module(scenario)

    @classmethod
    def from_module(cls, module: Any) -> ScenarioSpec:
        """Check *module* (a module, or any object with the fields as attributes) against the
        contract; raise :class:`ScenarioError` in one line naming its file and the field."""
        source = _source(module)
        names = {name for name in dir(module) if not name.startswith("_")}

        def fail(problem: str) -> ScenarioError:
            return ScenarioError(f"{source}: {problem}")

        declared = getattr(module, "PARAMETERS", ())
        if not isinstance(declared, (tuple, list)) or not all(isinstance(d, str) for d in declared):
            raise fail("PARAMETERS must be a tuple of constant names")
        for name in sorted(names - set(_BY_NAME) - set(declared)):
            # Constants against the fields, and async functions against the runners: an
            # imported module (asyncio) or a helper is neither.
            if name.isupper():
                candidates: Iterable[str] = _BY_NAME
            elif inspect.iscoroutinefunction(getattr(module, name)):
                candidates = _RUNNERS
            else:
                continue
            close = difflib.get_close_matches(name, candidates, n=1, cutoff=CLOSE_MATCH)
            if close:
                raise fail(f"unknown field {name} (did you mean {close[0]}?)")
        for f in FIELDS:
            if f.required and f.name not in names:
                raise fail(f"missing field {f.name} ({f.meaning})")

        def get(name: str) -> Any:
            return getattr(module, name, _BY_NAME[name].default)

        def text(name: str, value: Any, optional: bool = False) -> None:
            if not (isinstance(value, str) and value) and not (optional and value is None):
                raise fail(f"{name} must be non-empty text, not {value!r}")

        def whole(name: str, value: Any, lowest: int, optional: bool = False) -> None:
            if optional and value is None:
                return
            if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
                raise fail(f"{name} must be a whole number of at least {lowest}, not {value!r}")

        def text_map(name: str, value: Any) -> None:
            if not isinstance(value, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()
            ):
                raise fail(f"{name} must map names to text, like {{'wake': '...'}}, not {value!r}")

        text("NAME", get("NAME"))
        text("OPERATION", get("OPERATION"))
        text_map("LATENCIES", get("LATENCIES"))
        text_map("CAVEATS", get("CAVEATS"))
        text_map("REMARKS", get("REMARKS"))
        text("NATIVE_OF", get("NATIVE_OF"), optional=True)
        whole("MAX_N", get("MAX_N"), 1, optional=True)
        whole("SAMPLES", get("SAMPLES"), 1, optional=True)
        whole("OPS_PER_N", get("OPS_PER_N"), 1)
        whole("EARLY_TOLERANCE_NS", get("EARLY_TOLERANCE_NS"), 0)
        axis = get("AXIS")
        if axis not in AXES:
            raise fail(f"AXIS must be one of {', '.join(map(repr, AXES))}, not {axis!r}")
        if not AXES[axis].counts_operations and get("SAMPLES") is None:
            raise fail(f"AXIS {axis!r} needs SAMPLES, the operations of one pass")
        runners: dict[str, Runner] = {}
        for name in _RUNNERS:
            if name not in names:
                continue
            fn = getattr(module, name)
            if not inspect.iscoroutinefunction(fn):
                raise fail(f"{name} must be an async function (async def {name}(n, probe))")
            runners[name.removeprefix("run").lstrip("_")] = fn
        if not runners:
            raise fail("missing field run (async def run(n, probe): one pass at scale n)")
        unknown_caveats = set(get("CAVEATS")) - set(NATIVE_BACKENDS)
        if unknown_caveats:
            raise fail(f"CAVEATS names unknown backend {sorted(unknown_caveats)[0]!r}")
        unknown_topics = set(get("REMARKS")) - set(REMARK_TOPICS)
        if unknown_topics:
            raise fail(
                f"REMARKS names unknown topic {sorted(unknown_topics)[0]!r}; "
                f"choose from: {', '.join(REMARK_TOPICS)}"
            )
        name = getattr(module, "__name__", "")
        return cls(
            name=get("NAME"),
            operation=get("OPERATION"),
            latencies=MappingProxyType(dict(get("LATENCIES"))),
            runners=MappingProxyType(runners),
            axis=axis,
            max_n=get("MAX_N"),
            native_of=get("NATIVE_OF"),
            caveats=MappingProxyType(dict(get("CAVEATS"))),
            remarks=MappingProxyType(dict(get("REMARKS"))),
            samples=get("SAMPLES"),
            ops_per_n=get("OPS_PER_N"),
            early_tolerance_ns=get("EARLY_TOLERANCE_NS"),
            parameters=MappingProxyType(_parameters(module, names)),
            module=name if isinstance(module, types.ModuleType) else "",
            import_root=_import_root(module),
            doc=inspect.getdoc(module) or "",
            source=source,
        )


def _parameters(module: Any, names: Iterable[str]) -> dict[str, Any]:
    params = {}
    for name in sorted(names):
        if not name.isupper() or name in _BY_NAME:
            continue
        value = getattr(module, name)
        if ANYBENCH_CONSTANTS.get(name, object()) is value or not _plain(value):
            continue
        params[name] = list(value) if isinstance(value, tuple) else value
    return params


def _source(module: Any) -> str:
    where = getattr(module, "__file__", None)
    if where:
        try:
            return str(os.path.relpath(where))
        except ValueError:  # another drive, on Windows
            return str(where)
    return str(getattr(module, "__name__", None) or type(module).__name__)


def _import_root(module: Any) -> str:
    """The directory a worker must put on its path to import *module*, and nothing more: a
    variant's worker must import its own anybench, not this interpreter's."""
    name = getattr(module, "__name__", "")
    top = sys.modules.get(name.split(".")[0]) if isinstance(module, types.ModuleType) else None
    where = getattr(top, "__file__", None)
    if where is None:
        return ""
    path = Path(where).parent
    return str(path.parent if Path(where).name == "__init__.py" else path)


def _module_name(path: Path) -> tuple[str, Path]:
    """The import name of the module file *path* and its root: the first directory above it
    that is not a package (as pytest's default import mode finds it)."""
    parts = [path.stem]
    root = path.parent
    while (root / "__init__.py").is_file():
        parts.insert(0, root.name)
        root = root.parent
    return ".".join(parts), root


def scenario_files(target: str) -> list[Path] | None:
    """The scenario module files *target* names: a ``.py`` file, or every public ``.py`` file
    of a directory; None if it is not a path."""
    path = Path(target)
    if path.is_dir():
        return sorted(
            p.resolve() for p in path.glob("*.py") if not p.name.startswith(("_", "test_"))
        )
    if path.suffix == ".py" and path.is_file():
        return [path.resolve()]
    return None


def import_scenario(path: Path) -> Any:
    """Import the scenario module at *path* under its package-qualified name."""
    name, root = _module_name(path)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    module = importlib.import_module(name)
    if Path(getattr(module, "__file__", "") or "").resolve() != path:
        raise ScenarioError(
            f"{os.path.relpath(path)}: its module name {name!r} is taken by "
            f"{getattr(module, '__file__', 'a built-in module')}; rename the file"
        )
    return module


def load_scenarios(targets: Iterable[str]) -> list[tuple[Path | None, ScenarioSpec]]:
    """The scenarios *targets* name (files, directories, importable module names), checked,
    in order, each with its file; raise :class:`ScenarioError` in one line on a bad one."""
    found: list[tuple[Path | None, ScenarioSpec]] = []
    for target in targets:
        files = scenario_files(target)
        if files is None:
            if target.endswith(".py") or os.sep in target or "/" in target:
                raise ScenarioError(f"{target}: no such scenario file or directory")
            try:
                module = importlib.import_module(target)
            except ImportError as exc:
                raise ScenarioError(
                    f"{target}: not a file, a directory or an importable module ({exc})"
                ) from None
            where = getattr(module, "__file__", None)
            found.append(
                (Path(where).resolve() if where else None, ScenarioSpec.from_module(module))
            )
            continue
        if not files:
            raise ScenarioError(f"{target}: holds no scenario module (*.py)")
        for path in files:
            try:
                module = import_scenario(path)
            except ScenarioError:
                raise
            except Exception as exc:  # the user's module failed to import: say where, once
                raise ScenarioError(
                    f"{os.path.relpath(path)}: cannot import it ({type(exc).__name__}: {exc})"
                ) from None
            found.append((path, ScenarioSpec.from_module(module)))
    names: dict[str, str] = {}
    for _, spec in found:
        if spec.name in names and names[spec.name] != spec.source:
            raise ScenarioError(
                f"{spec.source}: NAME {spec.name!r} is also the NAME of {names[spec.name]}; "
                "give each scenario a name of its own"
            )
        names[spec.name] = spec.source
    unique = {spec.source: (path, spec) for path, spec in found}
    return list(unique.values())
