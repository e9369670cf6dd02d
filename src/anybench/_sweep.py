"""The scale axes, declared once: named profiles of values on a log scale, and rounds per value.

Most scenarios scale with N, the number of operations (tasks, callbacks, futures). Scenarios that
measure latency under load scale with B, the background load, at a fixed sample count; they
declare ``AXIS = "load"``.
"""

from __future__ import annotations

import math

#: Values per profile and axis. ``quick`` is for CI and first looks (the whole matrix in about
#: two minutes on two cores); ``full`` is the at-scale sweep (1,000,000 callbacks; scenarios that
#: keep every task alive at once stop at their MAX_N, 100,000).
PROFILES: dict[str, dict[str, tuple[int, ...]]] = {
    "quick": {"n": (100, 10_000), "load": (0, 1_000)},
    "default": {"n": (10, 1_000, 10_000), "load": (0, 10, 100, 1_000)},
    "full": {
        "n": (10, 100, 1_000, 10_000, 100_000, 1_000_000),
        "load": (0, 10, 100, 1_000, 10_000),
    },
}
DEFAULT_PROFILE = "default"
AXES = {"n": "N", "load": "B (background load)"}

#: Each measured round is one fresh ``anyio.run``. A benchmark runs enough rounds for about
#: TARGET_OPS operations, but no more than fit in TIME_BUDGET_S of measured time (judged by the
#: warm-up round), and always between MIN_ROUNDS and MAX_ROUNDS.
TARGET_OPS = 100_000
TIME_BUDGET_S = 2.0
MIN_ROUNDS = 5
MAX_ROUNDS = 50


class UnknownProfileError(ValueError):
    """A profile name that is not in :data:`PROFILES`."""


def scales(profile: str, max_n: int | None = None, axis: str = "n") -> tuple[int, ...]:
    """The values of *profile* on *axis*, without those above *max_n* (a scenario's limit)."""
    try:
        values = PROFILES[profile][axis]
    except KeyError:
        raise UnknownProfileError(
            f"unknown profile {profile!r}; choose from: {', '.join(PROFILES)}"
        ) from None
    return tuple(n for n in values if max_n is None or n <= max_n)


def rounds_for(ops: int, round_s: float = 0.0) -> int:
    """How many rounds to measure, for *ops* operations taking about *round_s* per round."""
    wanted = math.ceil(TARGET_OPS / max(ops, 1))
    if round_s > 0:
        wanted = min(wanted, math.ceil(TIME_BUDGET_S / round_s))
    return max(MIN_ROUNDS, min(MAX_ROUNDS, wanted))
