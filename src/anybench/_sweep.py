"""The scale axis, declared once: named profiles of N on a log scale, and rounds per N."""

from __future__ import annotations

import math

#: N values per profile. ``quick`` is for CI and first looks; ``full`` is the at-scale sweep.
PROFILES: dict[str, tuple[int, ...]] = {
    "quick": (100, 10_000),
    "default": (10, 1_000, 10_000),
    "full": (10, 100, 1_000, 10_000, 100_000, 1_000_000),
}
DEFAULT_PROFILE = "default"

#: Each measured round is one fresh ``anyio.run``; small N gets more rounds, so that every
#: benchmark does about TARGET_OPS operations, within [MIN_ROUNDS, MAX_ROUNDS] rounds.
TARGET_OPS = 100_000
MIN_ROUNDS = 5
MAX_ROUNDS = 50
WARMUP_ROUNDS = 1


class UnknownProfileError(ValueError):
    """A profile name that is not in :data:`PROFILES`."""


def scales(profile: str, max_n: int | None = None) -> tuple[int, ...]:
    """The N values of *profile*, without those above *max_n* (a scenario's own limit)."""
    try:
        values = PROFILES[profile]
    except KeyError:
        raise UnknownProfileError(
            f"unknown profile {profile!r}; choose from: {', '.join(PROFILES)}"
        ) from None
    return tuple(n for n in values if max_n is None or n <= max_n)


def rounds_for(n: int) -> int:
    """How many measured rounds a benchmark at scale *n* runs."""
    return max(MIN_ROUNDS, min(MAX_ROUNDS, math.ceil(TARGET_OPS / n)))
