"""Top-down attribution: the few call paths whose inclusive change accounts for a gap.

Both sides' folded stacks (outermost function first, each stack weighted by the work its
innermost function did itself, per operation) are merged into one tree, as a differential
flame graph draws them. A frame's *inclusive* work is its own plus everything below it, on
each side; its change is B's minus A's. The root's change is the whole gap.

:func:`responsible` reads the tree the way a differential profile is read, top down: it starts
from the root's children and keeps replacing the frame with the largest change by the children
that carry it, as long as they carry nearly all of it (:data:`KEEP`) and the list stays short
(:data:`MOST`). A frame on one side only (new in B, gone from A) is the answer itself: its
whole subtree is new, and the frame that calls it is the responsible code; it is descended only
along a chain where one child carries nearly all of it. So a gap spread over many small
functions that one caller is responsible for is named by that caller, with its inclusive
change, and the shares of the named frames add up (signed) to the part of the gap they
explain; the rest is said to be elsewhere.

Two runtimes share no frames below the scenario's own: the runtime's loop is the outermost
frame of every stack. :func:`align_at_scenario` re-roots each stack at its first frame in the
scenario's code, so that the scenario's frames are shared and the trees part where the
scenario (or the adapter it calls) calls into the runtime; the work outside the scenario's
frames (the loop itself, the runtime's bookkeeping) goes under one frame,
:data:`OUTSIDE`, shared by both sides, so that each runtime's own machinery is one frame with
both sides' figures, and below it the two loops part.

A frame whose children grew and shrank against each other (one runtime's call where the other
made another) is not split: it is where the sides part, named with its net change, and its
largest one-sided children on each side are given beside it (:attr:`Responsible.parts`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from ._bytecodes import OTHER_STACKS

#: At most this many frames are named.
MOST = 6
#: A frame is replaced by its children when they carry at least this share of its change.
KEEP = 0.9
#: A child carries part of a change when its own is at least this share of the gap.
PART = 0.05

Stacks = Mapping[tuple[str, ...], float]

#: The frame that holds, on each side, the runtime's work outside the scenario's frames.
OUTSIDE = "(the runtime, outside the scenario's code)"


def one_sided(a: float, b: float) -> str:
    """``new`` where there is something on side B only, ``gone`` where on side A only, else
    empty: the one rule for a function's calls, a frame's work and a drawn frame alike."""
    if not a and b:
        return "new"
    if a and not b:
        return "gone"
    return ""


@dataclass
class Node:
    """One frame of the merged tree: its own work on each side, and its callees."""

    name: str
    path: tuple[str, ...]
    self_a: float = 0.0
    self_b: float = 0.0
    children: dict[str, Node] = field(default_factory=dict)
    a: float = 0.0
    b: float = 0.0

    @property
    def delta(self) -> float:
        return self.b - self.a

    @property
    def kind(self) -> str:
        """``new`` (work on B only), ``gone`` (on A only), or empty."""
        return one_sided(self.a, self.b)


def merged_tree(stacks_a: Stacks, stacks_b: Stacks) -> Node:
    """The two sides' folded stacks as one tree (root ``all``), inclusive work summed."""
    root = Node("all", ())
    for stacks, side in ((stacks_a, "a"), (stacks_b, "b")):
        for path, weight in stacks.items():
            node = root
            for depth, name in enumerate(path):
                child = node.children.get(name)
                if child is None:
                    child = node.children[name] = Node(name, path[: depth + 1])
                node = child
            if side == "a":
                node.self_a += weight
            else:
                node.self_b += weight

    def total(node: Node) -> tuple[float, float]:
        a, b = node.self_a, node.self_b
        for child in node.children.values():
            ca, cb = total(child)
            a, b = a + ca, b + cb
        node.a, node.b = a, b
        return a, b

    total(root)
    return root


@dataclass(frozen=True)
class Responsible:
    """A named frame: its call path (outermost first), its inclusive work per operation on
    each side, and whether it is on one side only."""

    path: tuple[str, ...]
    a: float
    b: float
    kind: str
    #: Where the sides part below it: its largest children on one side only, A's then B's,
    #: each ``(path below it, a, b)``; empty where its children are shared.
    parts: tuple[tuple[tuple[str, ...], float, float], ...] = ()

    @property
    def delta(self) -> float:
        return self.b - self.a


def _significant(node: Node, gap: float, part: float) -> list[Node]:
    kids = [c for c in node.children.values() if abs(c.delta) >= part * abs(gap)]
    return sorted(kids, key=lambda c: (-abs(c.delta), c.name))


def responsible(
    root: Node, *, most: int = MOST, keep: float = KEEP, part: float = PART
) -> list[Responsible]:
    """The few frames whose inclusive change accounts for the root's (see the module's
    docstring), largest change first; empty where there is no gap."""
    gap = root.delta
    if not gap:
        return []
    frames = _significant(root, gap, part)[:most]
    final: set[tuple[str, ...]] = set()
    while True:
        for node in sorted(frames, key=lambda n: -abs(n.delta)):
            if node.path in final:
                continue
            kids = _significant(node, gap, part)
            one_sided = bool(node.kind)
            covered = sum(c.delta for c in kids)
            if (
                not kids
                or (one_sided and len(kids) > 1)
                or abs(node.delta - covered) > (1 - keep) * abs(node.delta)
                # children that grew and shrank against each other: the node is where the
                # sides part (two runtimes' calls into each), named with its net change
                or sum(abs(c.delta) for c in kids) > (2 - keep) * abs(node.delta)
                or len(frames) - 1 + len(kids) > most
            ):
                final.add(node.path)
                continue
            at = frames.index(node)
            frames[at : at + 1] = kids
            break
        else:
            break
    frames.sort(key=lambda n: (-abs(n.delta), n.path))
    return [Responsible(n.path, n.a, n.b, n.kind, _parts(n) if not n.kind else ()) for n in frames]


def _parts(node: Node, most: int = 3) -> tuple[tuple[tuple[str, ...], float, float], ...]:
    """Where a frame's sides part: its largest children on one side only, each side's (those
    of at least a twentieth of the frame's larger side), each as its path below the frame. In
    the runtime's frame (:data:`OUTSIDE`), a side whose work is nearly all one child (its loop)
    shows, down that child's chain of single callees, the first frame's largest children
    instead, and that frame's own work."""
    least = PART * max(node.a, node.b)
    one_sided = [c for c in node.children.values() if c.kind and max(c.a, c.b) >= least]
    if not (any(c.kind == "new" for c in one_sided) and any(c.kind == "gone" for c in one_sided)):
        return ()
    out: list[tuple[tuple[str, ...], float, float]] = []
    for kind in ("gone", "new"):
        side = sorted(
            (c for c in one_sided if c.kind == kind), key=lambda c: (-max(c.a, c.b), c.name)
        )[:most]
        total = sum(max(c.a, c.b) for c in side)
        if node.name == OUTSIDE and side and max(side[0].a, side[0].b) >= KEEP * total:
            only = side[0]
            while True:  # down the loop's chain of callers (anyio.run -> ... -> _run_once)
                width = max(only.a, only.b)
                below = [c for c in only.children.values() if max(c.a, c.b) >= KEEP * width]
                if len(below) != 1 or not below[0].children:
                    break
                only = below[0]
            inner = sorted(
                (g for g in only.children.values() if max(g.a, g.b) >= least),
                key=lambda g: (-max(g.a, g.b), g.name),
            )[:most]
            if inner:
                out += [((only.name, g.name), g.a, g.b) for g in inner]
                if max(only.self_a, only.self_b) >= least:
                    out.append(((only.name, "(itself)"), only.self_a, only.self_b))
                continue
        out += [((c.name,), c.a, c.b) for c in side]
    return tuple(out)


def align_at_scenario(
    stacks: Stacks, in_scenario: Callable[[str], bool], outside: str = OUTSIDE
) -> dict[tuple[str, ...], float]:
    """*stacks* re-rooted at each stack's first frame in the scenario's code; a stack that
    never enters it goes under one frame named *outside* (its own path below it)."""
    aligned: dict[tuple[str, ...], float] = {}
    for path, weight in stacks.items():
        if path == (OTHER_STACKS,):  # a file's unkept stacks: where they ran is not known
            aligned[path] = aligned.get(path, 0.0) + weight
            continue
        first = next((i for i, name in enumerate(path) if in_scenario(name)), None)
        new = path[first:] if first is not None else (outside, *path)
        aligned[new] = aligned.get(new, 0.0) + weight
    return aligned


def by_library(stacks: Stacks, library: Callable[[str], str]) -> dict[str, float]:
    """Each library's own (self) work per operation: the weight of the stacks whose innermost
    function is in it, largest first."""
    out: dict[str, float] = {}
    for path, weight in stacks.items():
        name = library(path[-1]) if path else "other"
        out[name] = out.get(name, 0.0) + weight
    return dict(sorted(out.items(), key=lambda item: -item[1]))


def moved_functions(keys_a: Iterable[str], keys_b: Iterable[str]) -> dict[str, str]:
    """A's function names to rename so that a function that moved to another file (or, between
    two runtimes, the same method of each backend: ``TaskGroup.start_soon`` of anyio's asyncio
    and trio backends) is one frame: each name on A's side only whose qualified name (the part
    after the last ``:``) and top-level package (the first part of its file) belong to exactly
    one name on B's side only, and to no other of A's. asyncio's ``sleep`` is not trio's."""
    set_a, set_b = set(keys_a), set(keys_b)
    only_a, only_b = set_a - set_b, set_b - set_a
    by_name_a: dict[str, list[str]] = {}
    by_name_b: dict[str, list[str]] = {}
    for keys, into in ((only_a, by_name_a), (only_b, by_name_b)):
        for key in keys:
            if not key.startswith(("(", "<")):
                package = key.split(":", 1)[0].split("/", 1)[0]
                into.setdefault(f"{package} {key.rsplit(':', 1)[-1]}", []).append(key)
    return {
        found_a[0]: found_b[0]
        for name, found_a in by_name_a.items()
        if len(found_a) == 1 and len(found_b := by_name_b.get(name, [])) == 1
    }


def renamed(stacks: Stacks, names: Mapping[str, str]) -> dict[tuple[str, ...], float]:
    """*stacks* with their functions renamed by *names* (the same weights)."""
    out: dict[tuple[str, ...], float] = {}
    for path, weight in stacks.items():
        new = tuple(names.get(name, name) for name in path)
        out[new] = out.get(new, 0.0) + weight
    return out
