"""Counting executed bytecode instructions by Python function, and by call stack.

callgrind counts machine instructions by C function; on CPython 3.11 the interpreter's work for
every Python function lands in ``_PyEval_EvalFrameDefault``, so it cannot say which Python
function did the work. This counter can: it runs a region under :func:`sys.settrace` with
``frame.f_trace_opcodes`` on (CPython 3.12 and later have :mod:`sys.monitoring`'s
``INSTRUCTION`` events for the same count; this module uses the trace hook, which every version
has), and counts, per function:

- *calls*: how often a frame of it started or resumed (a coroutine resumed after an ``await``
  counts again, as :mod:`cProfile` counts it);
- *self*: the bytecode instructions its own frames executed;
- *inclusive*: self plus the instructions of the Python functions it called, however deeply
  (a recursive function is counted once per outermost frame).

and, per call stack (the functions from the outermost frame started in the region to the one
executing), the self instructions executed there: the folded stacks a flame graph draws.

**The unit** is one bytecode instruction executed by the interpreter (what ``dis`` lists; a
specialised instruction counts as one). It is deterministic: the same code on the same input
executes the same instructions, whatever the machine's load. It is not a machine instruction:
one bytecode instruction costs from a few to thousands of machine instructions (a ``CALL`` of a
C function counts one, whatever the C function does), and C functions called from Python
(``list.append``, ``heapq.heappush``, the selector) have no bytecode of their own; their
machine instructions are callgrind's figures. Tracing slows the region some tens of times, so
it runs in a process of its own, never under valgrind.

Only frames started (or resumed) after :meth:`BytecodeCounter.start` are seen: the frames below
the region (the harness's, the event loop's ``run_forever``) execute untraced, and the frames a
region leaves on the stack at :meth:`BytecodeCounter.stop` are counted up to that point.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from types import CodeType, FrameType
from typing import Any

#: Folded stacks deeper than this are cut: the deeper functions count in the last one kept.
MAX_STACK_DEPTH = 32
#: The separator of a folded stack's functions (``outer;inner``), as flame graph tools use.
STACK_SEPARATOR = ";"

#: How a function is named in the counts, or None for a function left out (the instrument's).
KeyOf = Callable[[CodeType], "str | None"]


@dataclass
class FunctionWork:
    """One function's work in a region: calls, and bytecode instructions, own and inclusive."""

    calls: int = 0
    self_ops: int = 0
    inclusive_ops: int = 0

    def as_list(self) -> list[int]:
        return [self.calls, self.self_ops, self.inclusive_ops]


@dataclass
class _Frame:
    key: str | None
    path: tuple[str, ...]
    self_ops: int = 0
    child_ops: int = 0


@dataclass
class BytecodeCounter:
    """Counts the bytecode instructions executed between :meth:`start` and :meth:`stop` in this
    thread, by function (:attr:`functions`) and by folded stack (:attr:`stacks`)."""

    key_of: KeyOf
    functions: dict[str, FunctionWork] = field(default_factory=dict)
    stacks: dict[tuple[str, ...], int] = field(default_factory=dict)
    #: Instructions executed in the region, every function's self summed.
    total_ops: int = 0
    _stack: list[_Frame] = field(default_factory=list)
    _on_stack: dict[str, int] = field(default_factory=dict)
    _keys: dict[CodeType, str | None] = field(default_factory=dict)
    _previous: Any = None

    def start(self) -> None:
        """Count from here: every frame this thread starts or resumes from now on."""
        self._previous = sys.gettrace()
        sys.settrace(self._call)

    def stop(self) -> None:
        """Stop counting; the frames still running are counted up to here."""
        sys.settrace(self._previous)
        while self._stack:
            self._leave()

    def _key(self, code: CodeType) -> str | None:
        try:
            return self._keys[code]
        except KeyError:
            own = code.co_filename == __file__
            key = self._keys[code] = None if own else self.key_of(code)
            return key

    def _call(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event != "call":
            return None
        key = self._key(frame.f_code)
        if key is None:
            return None  # the instrument's own frames: not traced, not counted
        parent = self._stack[-1].path if self._stack else ()
        path = (*parent, key) if len(parent) < MAX_STACK_DEPTH else parent
        self._stack.append(_Frame(key, path))
        self._on_stack[key] = self._on_stack.get(key, 0) + 1
        work = self.functions.get(key)
        if work is None:
            work = self.functions[key] = FunctionWork()
        work.calls += 1
        frame.f_trace_lines = False
        frame.f_trace_opcodes = True
        return self._local

    def _local(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "opcode":
            self._stack[-1].self_ops += 1
        elif event == "return":
            self._leave()
        return self._local

    def _leave(self) -> None:
        done = self._stack.pop()
        assert done.key is not None
        inclusive = done.self_ops + done.child_ops
        work = self.functions[done.key]
        work.self_ops += done.self_ops
        self._on_stack[done.key] -= 1
        if not self._on_stack[done.key]:  # the outermost frame of a recursion counts it all
            work.inclusive_ops += inclusive
        if self._stack:
            self._stack[-1].child_ops += inclusive
        if done.self_ops:
            self.stacks[done.path] = self.stacks.get(done.path, 0) + done.self_ops
        self.total_ops += done.self_ops


def top_work(functions: dict[str, FunctionWork], count: int) -> dict[str, list[int]]:
    """The functions that matter most, at most *count*: the heaviest by self instructions and
    by inclusive instructions, half each (as many by self as there are left); each as
    ``[calls, self, inclusive]``, heaviest by self first."""
    by_self = sorted(functions, key=lambda k: (-functions[k].self_ops, k))
    by_inclusive = sorted(functions, key=lambda k: (-functions[k].inclusive_ops, k))
    chosen = dict.fromkeys(by_inclusive[: count // 2])
    for key in by_self:
        if len(chosen) >= count:
            break
        chosen.setdefault(key)
    ranked = sorted(chosen, key=lambda k: (-functions[k].self_ops, k))
    return {key: functions[key].as_list() for key in ranked}


def top_stacks(stacks: dict[tuple[str, ...], int], count: int) -> dict[str, int]:
    """The *count* heaviest folded stacks, ``"outer;inner" -> self instructions``; the weight
    of the rest under ``"(other stacks)"``, so that the total stays whole."""
    ranked = sorted(stacks.items(), key=lambda item: (-item[1], item[0]))
    kept = {STACK_SEPARATOR.join(path): ops for path, ops in ranked[:count]}
    rest = sum(ops for _, ops in ranked[count:])
    if rest:
        kept[OTHER_STACKS] = rest
    return kept


#: The folded stack that stands for the stacks a file leaves out.
OTHER_STACKS = "(other stacks)"
