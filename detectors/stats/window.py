"""Fixed-window two-sample tests and Benjamini-Hochberg across many tests.

Rollups keep ``(n, sum, sumsq)`` per bucket, not raw values, so means are compared with
Welch's t on summaries; Kolmogorov-Smirnov and Mann-Whitney need raw samples and are
provided for callers that have them (e.g. a canary export).

Example:
    >>> r = two_proportion_z(200, 1000, 260, 1000)
    >>> round(r.statistic, 3), round(r.p_value, 5)
    (3.188, 0.00143)
    >>> benjamini_hochberg([0.001, 0.2, 0.03, 0.04], q=0.05)
    [True, False, False, False]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from detectors.stats.dist import norm_cdf, norm_sf, t_sf

Alternative = Literal["two-sided", "greater", "less"]


@dataclass(frozen=True, slots=True)
class TestResult:
    """A test statistic and its p-value (``greater`` means sample 2 above sample 1)."""

    statistic: float
    p_value: float
    test: str


def _check_alternative(alternative: str) -> None:
    if alternative not in ("two-sided", "greater", "less"):
        raise ValueError(f"alternative must be two-sided/greater/less, got {alternative!r}")


def _check_counts(k: int, n: int, label: str) -> None:
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"{label}: need 0 <= events <= trials and trials > 0, got {k}/{n}")


def _p_from_z(z: float, alternative: Alternative) -> float:
    if alternative == "greater":
        return norm_sf(z)
    if alternative == "less":
        return norm_cdf(z)
    return 2.0 * norm_sf(abs(z))


def two_proportion_z(
    k1: int, n1: int, k2: int, n2: int, alternative: Alternative = "two-sided"
) -> TestResult:
    """Pooled two-proportion z test of ``k2/n2`` against ``k1/n1``."""
    _check_alternative(alternative)
    _check_counts(k1, n1, "sample 1")
    _check_counts(k2, n2, "sample 2")
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2))
    if se == 0.0:  # both samples all-0 or all-1: no evidence of a difference
        return TestResult(0.0, 1.0, "two_proportion_z")
    z = (k2 / n2 - k1 / n1) / se
    return TestResult(z, _p_from_z(z, alternative), "two_proportion_z")


def fisher_exact(
    k1: int, n1: int, k2: int, n2: int, alternative: Alternative = "two-sided"
) -> TestResult:
    """Fisher's exact test; the statistic is the sample odds ratio (sample 2 vs 1)."""
    _check_alternative(alternative)
    _check_counts(k1, n1, "sample 1")
    _check_counts(k2, n2, "sample 2")
    # scipy's "greater" is about the odds ratio of row 1 vs row 2: put sample 2 first.
    from scipy import stats  # 65 MB; only this offline test needs it

    res = stats.fisher_exact([[k2, n2 - k2], [k1, n1 - k1]], alternative=alternative)
    return TestResult(float(res.statistic), float(res.pvalue), "fisher_exact")


def welch_t_summary(
    n1: int,
    mean1: float,
    sd1: float,
    n2: int,
    mean2: float,
    sd2: float,
    alternative: Alternative = "two-sided",
) -> TestResult:
    """Welch's t test from summaries (``n``, mean, sample sd) of two samples."""
    _check_alternative(alternative)
    if n1 < 2 or n2 < 2:
        raise ValueError(f"welch_t_summary needs n >= 2 per sample, got n1={n1}, n2={n2}")
    if sd1 < 0 or sd2 < 0:
        raise ValueError(f"sd must be >= 0, got sd1={sd1}, sd2={sd2}")
    if sd1 == 0 and sd2 == 0:
        return TestResult(0.0, 1.0 if mean1 == mean2 else 0.0, "welch_t")
    v1, v2 = sd1 * sd1 / n1, sd2 * sd2 / n2
    t = (mean2 - mean1) / math.sqrt(v1 + v2)
    df = (v1 + v2) ** 2 / (v1 * v1 / (n1 - 1) + v2 * v2 / (n2 - 1))  # Welch-Satterthwaite
    if alternative == "greater":
        p = t_sf(t, df)
    elif alternative == "less":
        p = t_sf(-t, df)
    else:
        p = min(1.0, 2.0 * t_sf(abs(t), df))
    return TestResult(t, p, "welch_t")


def summary_from_moments(n: int, total: float, total_sq: float) -> tuple[float, float]:
    """Mean and sample sd from ``(n, sum, sum of squares)`` (clamped at 0 for rounding)."""
    if n < 2:
        raise ValueError(f"need n >= 2 for a sample sd, got {n}")
    mean = total / n
    var = max(0.0, (total_sq - n * mean * mean) / (n - 1))
    return mean, math.sqrt(var)


def ks_two_sample(
    sample1: Sequence[float], sample2: Sequence[float], alternative: Alternative = "two-sided"
) -> TestResult:
    """Two-sample Kolmogorov-Smirnov test (raw samples)."""
    _check_alternative(alternative)
    if not sample1 or not sample2:
        raise ValueError("ks_two_sample needs two non-empty samples")
    from scipy import stats

    res = stats.ks_2samp(sample1, sample2, alternative=alternative)
    return TestResult(float(res.statistic), float(res.pvalue), "ks")


def mann_whitney(
    sample1: Sequence[float], sample2: Sequence[float], alternative: Alternative = "two-sided"
) -> TestResult:
    """Mann-Whitney U test; ``greater`` means sample 2 tends to be larger."""
    _check_alternative(alternative)
    if not sample1 or not sample2:
        raise ValueError("mann_whitney needs two non-empty samples")
    from scipy import stats

    res = stats.mannwhitneyu(sample2, sample1, alternative=alternative)
    return TestResult(float(res.statistic), float(res.pvalue), "mann_whitney")


def benjamini_hochberg(p_values: Sequence[float], q: float = 0.05) -> list[bool]:
    """Which hypotheses are rejected at false-discovery rate ``q`` (step-up procedure)."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"q must be in (0, 1), got {q!r}")
    m = len(p_values)
    for i, p in enumerate(p_values):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p_values[{i}] must be in [0, 1], got {p!r}")
    order = sorted(range(m), key=lambda i: p_values[i])
    cutoff = 0
    for rank, i in enumerate(order, start=1):
        if p_values[i] <= q * rank / m:
            cutoff = rank
    rejected = [False] * m
    for i in order[:cutoff]:
        rejected[i] = True
    return rejected
