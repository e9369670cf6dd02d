"""Summaries of latency samples: percentiles and a compact CDF."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

#: The percentiles every latency summary carries, by the key they are stored under.
PERCENTILES: dict[str, float] = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99_9": 99.9}

#: Percent points kept as the latency CDF (enough to draw it; the raw samples are too many).
CDF_POINTS: tuple[float, ...] = (
    *range(0, 100),
    99.5,
    99.9,
    99.99,
    100.0,
)


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """The *pct* percentile of already sorted values, by linear interpolation (numpy's default)."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    rank = (len(sorted_values) - 1) * pct / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


def summarize_latency(samples_ns: Sequence[int]) -> dict[str, Any]:
    """Percentiles, extremes, mean, count and CDF points of latency samples in nanoseconds."""
    values = sorted(samples_ns)
    summary: dict[str, Any] = {"count": len(values)}
    if not values:
        return summary
    summary["min"] = values[0]
    for key, pct in PERCENTILES.items():
        summary[key] = percentile(values, pct)
    summary["max"] = values[-1]
    summary["mean"] = sum(values) / len(values)
    summary["cdf"] = [[pct, percentile(values, pct)] for pct in CDF_POINTS]
    return summary
