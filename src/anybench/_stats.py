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


def bootstrap_ratio(
    baseline: Sequence[float],
    other: Sequence[float],
    *,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Ratio of medians ``median(other) / median(baseline)`` and its bootstrap interval.

    Percentile bootstrap: both samples are resampled with replacement *resamples* times (fixed
    seed, so a report is reproducible) and the interval is the central *confidence* share of the
    resampled ratios. Medians and resampling make no assumption about the (skewed) shape of
    timing distributions. Returns ``(ratio, low, high)``.
    """
    import numpy as np

    if not baseline or not other:
        raise ValueError("bootstrap of an empty sample")
    rng = np.random.default_rng(seed)
    base = np.asarray(baseline, dtype=float)
    new = np.asarray(other, dtype=float)
    base_medians = np.median(rng.choice(base, (resamples, base.size)), axis=1)
    new_medians = np.median(rng.choice(new, (resamples, new.size)), axis=1)
    ratios = new_medians / base_medians
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return float(np.median(new) / np.median(base)), float(low), float(high)


def significant(low: float, high: float) -> bool:
    """Whether a ratio interval excludes 1 (no change)."""
    return high < 1.0 or low > 1.0


#: pyperf's rules for a benchmark too unstable to trust.
MIN_SAMPLES = 5
MAX_RELATIVE_STDEV = 0.10
MAX_EXTREME_DISTANCE = 0.50


def stability_warnings(values: Sequence[float]) -> list[str]:
    """Why a benchmark's per-round values are too spread to trust (empty when they are fine).

    The rules are pyperf's: too few samples, a standard deviation of 10% of the mean or more, or
    a minimum or maximum 50% or more away from the mean.
    """
    warnings = []
    if len(values) < MIN_SAMPLES:
        warnings.append(f"only {len(values)} rounds (fewer than {MIN_SAMPLES})")
    if len(values) >= 2:
        mean = sum(values) / len(values)
        stdev = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
        if mean > 0 and stdev / mean >= MAX_RELATIVE_STDEV:
            warnings.append(f"std dev is {stdev / mean:.0%} of the mean")
        if mean > 0:
            for label, value in (("min", min(values)), ("max", max(values))):
                if abs(value - mean) / mean >= MAX_EXTREME_DISTANCE:
                    warnings.append(f"{label} is {abs(value - mean) / mean:.0%} away from the mean")
    return warnings


def geometric_mean(values: Sequence[float]) -> float:
    """The geometric mean of positive values."""
    if not values:
        raise ValueError("geometric mean of no values")
    return math.exp(sum(math.log(v) for v in values) / len(values))
