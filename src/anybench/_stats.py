"""Statistics: latency summaries (percentiles, a compact CDF), and process-level intervals,
tests and false-discovery control for ratios of timings."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

#: The percentiles every latency summary carries, by the key they are stored under.
PERCENTILES: dict[str, float] = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99_9": 99.9}

#: A percentile is quoted only from this many samples: p99.9 from fewer than 10,000 rests on
#: fewer than ten samples above it.
MIN_SAMPLES_FOR: dict[str, int] = {"p50": 1, "p90": 1, "p99": 100, "p99_9": 10_000}

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


def process_medians(processes: Iterable[Sequence[float]], per: float = 1.0) -> list[float]:
    """The median of each process's rounds, divided by *per* (the operations of a round, to
    turn elapsed ns into ns/op): the unit of every interval and test. A process with no rounds
    has no median."""
    return [percentile(sorted(rounds), 50.0) / per for rounds in processes if rounds]


def once_by_pass(numbered: Iterable[tuple[int, T]]) -> tuple[dict[int, T], list[int]]:
    """Per-process items by the pass each process ran in (*numbered*: (pass, item) pairs):
    the item of each pass that has exactly one, and the passes that have more (of no use to a
    pairing by pass, which needs one partner a side)."""
    found: dict[int, list[T]] = {}
    for number, item in numbered:
        found.setdefault(number, []).append(item)
    once = {number: items[0] for number, items in found.items() if len(items) == 1}
    return once, sorted(number for number, items in found.items() if len(items) > 1)


def summarize_latency(samples_ns: Sequence[int]) -> dict[str, Any]:
    """Percentiles, extremes, mean, count and CDF points of latency samples in nanoseconds."""
    values = sorted(samples_ns)
    summary: dict[str, Any] = {"count": len(values)}
    if not values:
        return summary
    summary["min"] = values[0]
    for key, pct in PERCENTILES.items():
        if len(values) >= MIN_SAMPLES_FOR[key]:
            summary[key] = percentile(values, pct)
    summary["max"] = values[-1]
    summary["mean"] = sum(values) / len(values)
    summary["cdf"] = [[pct, percentile(values, pct)] for pct in CDF_POINTS]
    return summary


def summarize_round(samples_ns: Sequence[int]) -> dict[str, Any]:
    """The per-round latency summary kept beside the pooled one: count, p50, p99 and max."""
    values = sorted(samples_ns)
    if not values:
        return {"count": 0}
    summary: dict[str, Any] = {"count": len(values), "p50": percentile(values, 50.0)}
    if len(values) >= MIN_SAMPLES_FOR["p99"]:
        summary["p99"] = percentile(values, 99.0)
    summary["max"] = values[-1]
    return summary


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


# Process-level statistics. Each benchmark's rounds come from several fresh worker processes;
# variance between processes (and between minutes) is the largest source of spread on a shared
# machine, so intervals and tests take one value per process (the median of its rounds) as the
# unit, on a log scale (ratios of timings are what people read, and their logs are closer to
# normal). With few processes the Student t distribution, not the normal, sets the width.


def _t_quantile(p: float, df: float) -> float:
    from scipy.stats import t

    return float(t.ppf(p, df)) if math.isfinite(df) else float(t.ppf(p, 1e9))


def _t_sf(x: float, df: float) -> float:
    from scipy.stats import t

    return float(t.sf(x, df if math.isfinite(df) else 1e9))


def _log_mean_var(values: Sequence[float]) -> tuple[float, float, int]:
    logs = [math.log(v) for v in values]
    mean = sum(logs) / len(logs)
    var = sum((x - mean) ** 2 for x in logs) / (len(logs) - 1) if len(logs) > 1 else math.nan
    return mean, var, len(logs)


def log_interval_halfwidth(values: Sequence[float], confidence: float = 0.95) -> float:
    """Half-width, in log units, of the *confidence* t-interval of the mean log of *values*
    (inf with fewer than two)."""
    if len(values) < 2:
        return math.inf
    _, var, k = _log_mean_var(values)
    return _t_quantile(0.5 + confidence / 2, k - 1) * math.sqrt(var / k)


@dataclass(frozen=True)
class LogRatio:
    """``other / baseline`` from per-process values, with Welch's t interval on log scale.

    ``ratio`` is the ratio of geometric means of the per-process medians; ``se`` and ``df`` are
    the standard error and Welch-Satterthwaite degrees of freedom of its log. An extra variance
    term (between-run drift, with its own degrees of freedom) can widen it.
    """

    ratio: float
    low: float
    high: float
    se: float
    df: float

    @property
    def significant(self) -> bool:
        return significant(self.low, self.high)

    @property
    def known(self) -> bool:
        """False when there were too few processes on a side to estimate a spread."""
        return math.isfinite(self.se)

    def p_above(self, threshold: float) -> float:
        """One-sided p-value for "the slowdown is at most *threshold*" (H0: ratio ≤ 1+threshold)."""
        if not self.known or self.se == 0:
            return 0.0 if self.known and self.ratio > 1 + threshold else 1.0
        return _t_sf((math.log(self.ratio) - math.log1p(threshold)) / self.se, self.df)

    def p_changed(self, margin: float = 0.0) -> float:
        """Two-sided p-value for "no change beyond ±*margin*" (H0: the ratio lies within
        [1/(1+margin), 1+margin]; with no margin, H0: ratio = 1)."""
        beyond = abs(math.log(self.ratio)) - math.log1p(margin)
        if not self.known or self.se == 0:
            return 0.0 if self.known and beyond > 0 else 1.0
        return min(1.0, 2 * _t_sf(beyond / self.se, self.df))

    def beyond(self, margin: float = 0.0) -> bool:
        """Whether the interval lies wholly beyond ±*margin* (a change of more than *margin*,
        up or down); with no margin, whether it excludes 1."""
        return self.low > 1 + margin or self.high < 1 / (1 + margin)

    def floor(self, confidence: float = 0.95) -> float:
        """The smallest relative change this comparison could tell from none (its half-width)."""
        if not self.known:
            return math.inf
        return math.expm1(_t_quantile(0.5 + confidence / 2, self.df) * self.se)


def welch_log_ratio(
    baseline: Sequence[float],
    other: Sequence[float],
    *,
    extra_var: float = 0.0,
    extra_df: float = math.inf,
    shift: float = 0.0,
    confidence: float = 0.95,
) -> LogRatio:
    """Ratio of geometric means ``other / baseline`` of per-process values and its interval.

    Welch's t on the logs (unequal variances, Welch-Satterthwaite degrees of freedom). *shift*
    (log units) is subtracted from the log ratio, and *extra_var* (log units squared, with
    *extra_df* degrees of freedom) added to its variance: the correction for, and the spread of,
    drift between two runs made at different times. With fewer than two values on a side the
    spread is unknown and the interval is infinite.
    """
    if not baseline or not other:
        raise ValueError("a ratio needs values on both sides")
    mean_a, var_a, ka = _log_mean_var(baseline)
    mean_b, var_b, kb = _log_mean_var(other)
    log_ratio = mean_b - mean_a - shift
    if ka < 2 or kb < 2:
        return LogRatio(math.exp(log_ratio), 0.0, math.inf, math.inf, math.nan)
    parts: list[tuple[float, float]] = [(var_a / ka, ka - 1.0), (var_b / kb, kb - 1.0)]
    if extra_var > 0:
        parts.append((extra_var, extra_df))
    total = sum(v for v, _ in parts)
    if total == 0:
        return LogRatio(math.exp(log_ratio), math.exp(log_ratio), math.exp(log_ratio), 0.0, 1e9)
    denominator = sum(v * v / d for v, d in parts if v > 0 and math.isfinite(d))
    df = total * total / denominator if denominator > 0 else math.inf
    se = math.sqrt(total)
    half = _t_quantile(0.5 + confidence / 2, df) * se
    return LogRatio(
        math.exp(log_ratio), math.exp(log_ratio - half), math.exp(log_ratio + half), se, df
    )


def paired_log_ratio(pairs: Sequence[tuple[float, float]], confidence: float = 0.95) -> LogRatio:
    """``other / baseline`` from (baseline, other) values measured in the same process each: the
    t interval of the mean per-process log ratio (a paired test), so that whatever made one
    process slower for both cancels out of the ratio. The ratio is the same as Welch's (a ratio
    of geometric means); the interval is the paired one, with one degree of freedom fewer than
    there are processes."""
    if not pairs:
        raise ValueError("a ratio needs values on both sides")
    diffs = [math.log(other) - math.log(base) for base, other in pairs]
    k = len(diffs)
    mean = sum(diffs) / k
    if k < 2:
        return LogRatio(math.exp(mean), 0.0, math.inf, math.inf, math.nan)
    se = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (k - 1) / k)
    if se == 0:
        return LogRatio(math.exp(mean), math.exp(mean), math.exp(mean), 0.0, 1e9)
    half = _t_quantile(0.5 + confidence / 2, k - 1.0) * se
    return LogRatio(math.exp(mean), math.exp(mean - half), math.exp(mean + half), se, k - 1.0)


def benjamini_hochberg(p_values: Sequence[float], q: float = 0.05) -> list[bool]:
    """Which hypotheses to reject at false discovery rate *q* (Benjamini-Hochberg step-up)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    cutoff = 0
    for rank, i in enumerate(order, start=1):
        if p_values[i] <= q * rank / m:
            cutoff = rank
    rejected = set(order[:cutoff])
    return [i in rejected for i in range(m)]


def robust_spread(values: Sequence[float]) -> tuple[float, float]:
    """Median and a robust standard deviation (1.4826 times the median absolute deviation)."""
    ordered = sorted(values)
    center = percentile(ordered, 50.0)
    mad = percentile(sorted(abs(v - center) for v in values), 50.0)
    return center, 1.4826 * mad


def scaling_slope(ratio: LogRatio, smaller_n: int, larger_n: int) -> tuple[float, float, float]:
    """The local exponent k of ns/op ∝ N^k between two scales, and its 95% interval.

    *ratio* is ns/op at *larger_n* over ns/op at *smaller_n*; without a known interval (or with
    one reaching zero) the interval is infinite.
    """
    span = math.log(larger_n / smaller_n)
    if not ratio.known or ratio.low <= 0:
        return math.log(ratio.ratio) / span, -math.inf, math.inf
    return (
        math.log(ratio.ratio) / span,
        math.log(ratio.low) / span,
        math.log(ratio.high) / span,
    )


def scaling_class(exponent: float, low: float = -math.inf, high: float = math.inf) -> str:
    """A word for a scaling exponent and its interval (see :func:`scaling_slope`): "~" where
    the estimate says growth or fall but the interval still holds 0 (no growth), since a word
    the next run may not repeat is no finding."""
    if not -0.1 < exponent < 0.1 and low <= 0 <= high and math.isfinite(high - low):
        return "~"
    if exponent <= -0.1:
        return "falling"
    if exponent < 0.1:
        return "flat"
    if exponent < 0.6:
        return "slow growth"
    return "linear growth"


def run_level_interval(
    run_logs: Sequence[float], confidence: float = 0.95
) -> tuple[float, float, float]:
    """From each run's log figure, treating the run as a level of its own (Kalibera and Jones):
    their mean, the half-width of its *confidence* t interval over the runs (df = runs - 1),
    and the half-width of the prediction interval for another run's figure (wider by
    sqrt(1 + 1/runs)). With fewer than two runs both half-widths are infinite."""
    k = len(run_logs)
    if not k:
        raise ValueError("a run-level interval needs at least one run")
    mean = sum(run_logs) / k
    if k < 2:
        return mean, math.inf, math.inf
    sd = math.sqrt(sum((x - mean) ** 2 for x in run_logs) / (k - 1))
    t = _t_quantile(0.5 + confidence / 2, k - 1)
    return mean, t * sd / math.sqrt(k), t * sd * math.sqrt(1 + 1 / k)
