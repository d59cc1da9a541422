"""Day-level facts a chart needs about its own signal: how much it moves from day to day
(overdispersion) and how many observations a day it gets (to turn a monthly false-alarm
budget into observations).

Real edit rates are not binomial: the true rate of a day moves (0.18 one day, 0.23 the
next) with the mix of documents and reviewers. A chart that ignores it false-alarms on the
bad-but-normal days. ``tau`` is the standard deviation of the day-level true value, by the
method of moments (DerSimonian-Laird) over complete days, shrunk towards a prior while few
days exist (two prior days' weight), because a variance from 3 days is +-80 %.

Example (days at 0.20 and 0.26 with 1,000 reviews each are overdispersed; binomial noise
alone is 0.013):
    >>> days = [(1000, 200.0, 0.0), (1000, 260.0, 0.0), (1000, 200.0, 0.0), (1000, 260.0, 0.0)]
    >>> round(between_day_sd(days, "rate"), 3)
    0.032
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

MIN_DAY_OBS = 30  # a day with fewer observations says little about its own level
PRIOR_DAYS = 2.0

DayTotal = tuple[float, float, float]  # (observations, events or sum, sum of squares)


def between_day_sd(days: Sequence[DayTotal], kind: Literal["rate", "mean"]) -> float:
    """Method-of-moments sd of the day-level true value (0 when the days agree with pure
    sampling noise). Rates: the rate's own scale; means: the value's own scale."""
    used = [d for d in days if d[0] >= MIN_DAY_OBS]
    if len(used) < 2:
        return 0.0
    ns = [d[0] for d in used]
    total = sum(ns)
    values = [d[1] / d[0] for d in used]
    if kind == "rate":
        grand = sum(d[1] for d in used) / total
        within = [grand * (1.0 - grand) / n for n in ns]
    else:
        grand = sum(d[1] for d in used) / total
        pooled = sum(d[2] - d[1] * d[1] / d[0] for d in used) / max(total - len(used), 1.0)
        within = [max(pooled, 0.0) / n for n in ns]
    weights = [1.0 / w if w > 0 else 0.0 for w in within]
    if not any(weights):
        return 0.0
    wsum = sum(weights)
    mean_w = sum(w * v for w, v in zip(weights, values, strict=True)) / wsum
    q = sum(w * (v - mean_w) ** 2 for w, v in zip(weights, values, strict=True))
    c = wsum - sum(w * w for w in weights) / wsum
    if c <= 0:
        return 0.0
    return math.sqrt(max(0.0, (q - (len(used) - 1)) / c))


def blended_sd(estimate: float, days: int, prior: float) -> float:
    """The day-level sd to design for: the estimate from ``days`` complete days shrunk towards
    ``prior`` with ``PRIOR_DAYS`` days' weight (a variance from few days is unreliable)."""
    dof = max(days - 1, 0)
    return math.sqrt((PRIOR_DAYS * prior**2 + dof * estimate**2) / (PRIOR_DAYS + dof))


def obs_per_day(day_counts: Sequence[float], span_s: float) -> float:
    """Observations per day over the kept days (``span_s``: seconds they cover, at least
    one hour so a first burst is not taken for the daily rate)."""
    return sum(day_counts) * 86_400.0 / max(span_s, 3_600.0)
