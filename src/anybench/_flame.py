"""A differential flame graph: two sides' folded stacks in one picture, drawn as SVG by hand.

Each frame is a Python function on a call stack, its callers below it (the region's outermost
frames at the bottom). A frame's width is the larger side's work, piece by piece: its own
bytecode instructions per operation on whichever side has more, plus its callees' widths, so
that what grew and what shrank both show and callees always fit inside their caller. Its colour
is how its inclusive work changed from A to B: red grew, blue shrank (the stronger, the larger
the change relative to the larger side), purple new (on B only), grey gone (on A only), sand
about the same (within 2%). Each frame's tooltip gives both sides' figures. Two runtimes'
stacks are drawn as the explanation reads them: re-rooted at the scenario's frames, the
runtimes' own work under one frame (see :mod:`anybench._attribution`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

from ._attribution import one_sided
from ._files import safe_name, write_new

if TYPE_CHECKING:
    from ._explain import Pair

#: A change within this share of the larger side is drawn as "about the same".
SAME = 0.02
WIDTH_PX = 1200
ROW_PX = 17
MARGIN_PX = 10
TOP_PX = 62


@dataclass
class _Node:
    name: str
    self_a: float = 0.0
    self_b: float = 0.0
    children: dict[str, _Node] = field(default_factory=dict)

    def inclusive(self) -> tuple[float, float]:
        a, b = self.self_a, self.self_b
        for child in self.children.values():
            ca, cb = child.inclusive()
            a, b = a + ca, b + cb
        return a, b

    def width(self) -> float:
        return max(self.self_a, self.self_b) + sum(c.width() for c in self.children.values())


@dataclass(frozen=True)
class FlameFrame:
    """One drawn frame: its stack (outermost first), where it starts and how wide it is (in
    bytecode instructions per operation), and its inclusive work on each side."""

    path: tuple[str, ...]
    x: float
    width: float
    a: float
    b: float

    @property
    def depth(self) -> int:
        return len(self.path) - 1

    @property
    def kind(self) -> str:
        """``new``, ``gone``, ``grew``, ``shrank`` or ``same``."""
        side = one_sided(self.a, self.b)
        if side:
            return side
        change = (self.b - self.a) / max(self.a, self.b)
        if change > SAME:
            return "grew"
        if change < -SAME:
            return "shrank"
        return "same"


def flame_frames(
    stacks_a: dict[tuple[str, ...], float], stacks_b: dict[tuple[str, ...], float]
) -> list[FlameFrame]:
    """The frames of the differential flame graph of two sides' folded stacks (per operation),
    root (``all``) first, then depth by depth; siblings ordered by name, as flame graphs do."""
    root = _Node("all")
    for stacks, side in ((stacks_a, "a"), (stacks_b, "b")):
        for path, weight in stacks.items():
            node = root
            for name in path:
                node = node.children.setdefault(name, _Node(name))
            if side == "a":
                node.self_a += weight
            else:
                node.self_b += weight
    frames: list[FlameFrame] = []

    def walk(node: _Node, path: tuple[str, ...], x: float) -> None:
        a, b = node.inclusive()
        frames.append(FlameFrame(path, x, node.width(), a, b))
        offset = x
        for name in sorted(node.children):
            child = node.children[name]
            walk(child, (*path, name), offset)
            offset += child.width()

    walk(root, ("all",), 0.0)
    frames.sort(key=lambda f: (f.depth, f.x))
    return frames


def _xml(text: str) -> str:
    """*text* for an SVG text node or attribute: escaped, control characters dropped."""
    return escape(re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", "", text), quote=True)


_COLOURS = {"new": "#9b3fb5", "gone": "#9a9a9a", "same": "#e8d9b0"}


def _colour(frame: FlameFrame) -> str:
    if frame.kind in _COLOURS:
        return _COLOURS[frame.kind]
    strength = min(abs(frame.b - frame.a) / max(frame.a, frame.b), 1.0)
    fade = int(225 - 175 * strength)
    return f"rgb(235,{fade},{fade})" if frame.kind == "grew" else f"rgb({fade},{fade},235)"


def flame_svg(frames: list[FlameFrame], title: str, labels: tuple[str, str]) -> str:
    """The picture of *frames* as an SVG document."""
    from ._explain import short_name

    total = frames[0].width if frames else 0.0
    depth = max((f.depth for f in frames), default=0) + 1
    height = TOP_PX + depth * ROW_PX + MARGIN_PX
    scale = (WIDTH_PX - 2 * MARGIN_PX) / total if total else 0.0
    la, lb = labels
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH_PX}" height="{height}" '
        f'font-family="Verdana, sans-serif" font-size="11">',
        f'<rect width="{WIDTH_PX}" height="{height}" fill="white"/>',
        f'<text x="{MARGIN_PX}" y="18" font-size="14">{_xml(title)}</text>',
    ]
    legend = [
        ("grew", "rgb(235,80,80)"),
        ("shrank", "rgb(80,80,235)"),
        (f"new in {lb}", _COLOURS["new"]),
        (f"gone from {la}", _COLOURS["gone"]),
        ("about the same", _COLOURS["same"]),
    ]
    x = MARGIN_PX
    for text, colour in legend:
        out.append(f'<rect x="{x}" y="28" width="12" height="12" fill="{colour}"/>')
        out.append(f'<text x="{x + 16}" y="38">{_xml(text)}</text>')
        x += 30 + 7 * len(text)
    note = f"width: the larger side, {la} or {lb}; bytecode instructions per operation"
    out.append(f'<text x="{x + 10}" y="38" fill="#555">{_xml(note)}</text>')
    for f in frames:
        if f.width * scale < 0.5:
            continue
        px = MARGIN_PX + f.x * scale
        py = height - MARGIN_PX - (f.depth + 1) * ROW_PX
        w = f.width * scale
        name = f.path[-1]
        label = name if f.depth == 0 else short_name(name)
        tip = (
            f"{name}\n{la}: {f.a:,.1f}/op, {lb}: {f.b:,.1f}/op, "
            f"change {f.b - f.a:+,.1f}/op ({f.kind})"
        )
        out.append(
            f'<g><title>{_xml(tip)}</title><rect x="{px:.2f}" y="{py}" width="{w:.2f}" '
            f'height="{ROW_PX - 1}" fill="{_colour(f)}" stroke="white" stroke-width="0.5"/>'
        )
        room = int((w - 6) / 6.6)
        if room >= 3:
            shown = label if len(label) <= room else label[: room - 1] + "…"
            out.append(f'<text x="{px + 3:.2f}" y="{py + ROW_PX - 5}">{_xml(shown)}</text>')
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_flame(pair: Pair, labels: tuple[str, str], into: Path) -> Path:
    """Draw *pair*'s differential flame graph into *into* under a fresh name; its path."""
    from ._explain import aligned_stacks

    # The stacks the explanation reads: two runtimes' re-rooted at the scenario's frames, a
    # function that moved between files as one frame.
    frames = flame_frames(*aligned_stacks(pair))
    title = f"{pair.title}: {labels[0]} -> {labels[1]}"
    into.mkdir(parents=True, exist_ok=True)
    name = safe_name(
        f"flame-{pair.a.scenario}-{pair.a.runtime}-{pair.b.runtime}-{pair.a.scale}-"
        f"{labels[0]}-{labels[1]}"
    )
    return write_new(into, f"{name}.svg", flame_svg(frames, title, labels).encode("utf-8"))
