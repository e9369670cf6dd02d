"""How the report, the table and the comparison write numbers with units."""

from __future__ import annotations


def format_ns(value: float) -> str:
    """A duration in nanoseconds, to three digits in the unit that keeps it short (ns … s)."""
    sign = "-" if value < 0 else ""
    for unit, scale in (("ns", 1.0), ("µs", 1e3), ("ms", 1e6), ("s", 1e9)):
        shown = float(f"{abs(value) / scale:.3g}")
        if shown < 1000 or unit == "s":
            return f"{sign}{shown:g} {unit}"
    raise AssertionError("unreachable")
