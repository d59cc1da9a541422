"""Is a count far below what its own history predicts? Tail probabilities for counts.

Runs of a team over a span of time are counts: Poisson if every run were independent,
but real usage varies from day to day more than that (a busy Monday, a quiet Friday), so
the test uses a negative binomial (a Poisson whose rate is Gamma distributed) with the
coefficient of variation of the RATE estimated robustly from comparable spans, shrunk
towards a typical value while they are few, and never below ``cv_floor``.

Example (a team of ~300 runs a day that ran 12 in the last 24 h):
    >>> v = drop_test(12, [310.0, 290.0, 305.0, 298.0])
    >>> v.status, round(v.ratio, 3), v.p_low < 1e-6
    ('critical', 0.04, True)
    >>> drop_test(260, [310.0, 290.0, 305.0, 298.0]).status  # a quiet day
    'ok'
    >>> drop_test(0, [6.0, 4.0]).status  # 0 of ~5 happens (e^-5 = 0.7 %): not critical
    'ok'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from scipy import special

from detectors.stats.robust import median_mad

CRITICAL_RATIO: Final = 0.10  # observed at most 10 % of expected ...
CRITICAL_P: Final = 1e-6  # ... and this improbable under the team's own variability
WARN_Z: Final = 3.0  # warn at z <= -3, z the normal quantile of P(X <= observed)
# The day-to-day CV of a team's rate, estimated from few spans, is often far too low (from
# 3 days of a team whose true CV is 0.48, a third of the estimates are below 0.15), and an
# underestimated CV turns an ordinary quiet day into a "significant" drop. So the estimate
# is shrunk towards a typical CV with the weight of PRIOR_SPANS spans, and floored.
CV_PRIOR: Final = 0.3
PRIOR_SPANS: Final = 5
CV_FLOOR: Final = 0.15


def nb_cdf(x: float, mean: float, cv: float) -> float:
    """``P(X <= x)`` for a count with ``E[X] = mean`` whose rate has coefficient of
    variation ``cv`` (negative binomial with size ``1 / cv**2``; Poisson when ``cv == 0``)."""
    if not (math.isfinite(mean) and mean >= 0 and math.isfinite(cv) and cv >= 0):
        raise ValueError(f"need a finite mean >= 0 and cv >= 0, got mean={mean!r} cv={cv!r}")
    if x < 0:
        return 0.0
    k = math.floor(x)
    if mean == 0:
        return 1.0
    if cv == 0:
        return float(special.pdtr(k, mean))
    size = 1.0 / (cv * cv)
    # NB(size, p) with p = size / (size + mean): P(X <= k) = I_p(size, k + 1)
    return float(special.betainc(size, k + 1, size / (size + mean)))


def rate_cv(totals: Sequence[float]) -> float:
    """Robust coefficient of variation of the rate behind ``totals`` (counts of comparable
    spans): the MAD's sd beyond Poisson noise, relative to the median; 0 if it is 0."""
    median, mad_sd = median_mad(totals)
    if median <= 0:
        return 0.0
    return math.sqrt(max(mad_sd * mad_sd - median, 0.0)) / median


@dataclass(frozen=True, slots=True)
class DropVerdict:
    status: str  # "ok" / "warn" / "critical"
    observed: float
    expected: float  # median of the reference spans
    ratio: float | None  # observed / expected (None when nothing was expected)
    z: float  # normal quantile of p_low (0 when observed >= expected)
    p_low: float  # P(X <= observed) under the team's own variability
    cv: float  # day-to-day coefficient of variation used
    references: int


def drop_test(
    observed: float,
    references: Sequence[float],
    *,
    spread: Sequence[float] | None = None,
    cv_floor: float = CV_FLOOR,
    critical_ratio: float = CRITICAL_RATIO,
    critical_p: float = CRITICAL_P,
    z_warn: float = WARN_Z,
    allow_critical: bool = True,
) -> DropVerdict:
    """Score ``observed`` against the totals of comparable past spans.

    * expected = median of ``references``; the rate's CV: ``rate_cv`` of ``spread`` (all
      spans of the same kind; default the references) shrunk towards ``CV_PRIOR`` with
      the weight of ``PRIOR_SPANS`` spans, at least ``cv_floor``;
    * critical (if ``allow_critical``): ``observed <= critical_ratio * expected`` and
      ``P(X <= observed) < critical_p``; warn: ``z <= -z_warn``, ``z`` the normal
      quantile of ``P(X <= observed)`` (0 when nothing fell).
    """
    if not references:
        raise ValueError("drop_test needs at least one reference span")
    if not (math.isfinite(observed) and observed >= 0):
        raise ValueError(f"observed must be a finite count >= 0, got {observed!r}")
    expected, _ = median_mad(references)
    spans = spread if spread else references
    m = len(spans)
    own = rate_cv(spans)
    cv = max(cv_floor, math.sqrt((m * own**2 + PRIOR_SPANS * CV_PRIOR**2) / (m + PRIOR_SPANS)))
    p_low = nb_cdf(observed, expected, cv)
    # the normal quantile of the lower tail: a z users can read, exact for counts (a
    # Gaussian z on a skewed count would call a 3-sd drop of a CV 0.35 team impossible)
    z = max(float(special.ndtri(max(p_low, 1e-300))), -37.0) if observed < expected else 0.0
    ratio = observed / expected if expected > 0 else None
    status = "ok"
    if allow_critical and ratio is not None and ratio <= critical_ratio and p_low < critical_p:
        status = "critical"
    elif z <= -z_warn:
        status = "warn"
    return DropVerdict(status, observed, expected, ratio, z, p_low, cv, len(references))
