"""Multi-window, multi-burn-rate SLO alerting for error and timeout rates.

The windows and factors are Google's recommendation for a 30-day SLO (SRE Workbook,
ch. 5 "Alerting on SLOs", Table 5-8, sre.google/workbook/alerting-on-slos/): a rule fires
only when the burn rate exceeds its factor over BOTH the long and the short window (the
short one, 1/12 of the long, makes the alert reset quickly once errors stop).

Example (SLO 99 %: 20 % errors in the last hour burns the budget 20x):
    >>> minute = [(t * 60, 100, 20) for t in range(60)]   # (bucket, trials, errors)
    >>> r = evaluate_burn_rates(minute, slo=0.99, now=3600)
    >>> r.status, r.fired, round(r.burn_rates["1h"], 1)
    ('critical', ['page_1h', 'page_6h', 'ticket_1d', 'ticket_3d'], 20.0)
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Final


@dataclass(frozen=True, slots=True)
class BurnRule:
    name: str
    long_s: int
    short_s: int
    factor: float
    severity: str  # "critical" (page) or "warn" (ticket)


# SRE Workbook ch. 5, Table 5-8 (budget consumed at firing: 2 %, 5 %, 10 %); the 1d/2h 3x
# ticket rule is the workbook's intermediate tier for slower burns.
DEFAULT_RULES: Final = (
    BurnRule("page_1h", 3600, 300, 14.4, "critical"),
    BurnRule("page_6h", 6 * 3600, 1800, 6.0, "critical"),
    BurnRule("ticket_1d", 86400, 2 * 3600, 3.0, "warn"),
    BurnRule("ticket_3d", 3 * 86400, 6 * 3600, 1.0, "warn"),
)

_LABELS: Final = {
    300: "5m",
    1800: "30m",
    3600: "1h",
    7200: "2h",
    21600: "6h",
    86400: "1d",
    259200: "3d",
}


def window_label(seconds: int) -> str:
    return _LABELS.get(seconds, f"{seconds // 3600}h" if seconds % 3600 == 0 else f"{seconds}s")


@dataclass(slots=True)
class BurnRateResult:
    status: str  # "ok" / "warn" / "critical" / "unknown"
    fired: list[str] = field(default_factory=list)
    burn_rates: dict[str, float] = field(default_factory=dict)  # window label -> burn rate
    trials: dict[str, int] = field(default_factory=dict)


def evaluate_burn_rates(
    buckets: Iterable[tuple[int, int, int]],
    slo: float,
    now: float,
    rules: tuple[BurnRule, ...] = DEFAULT_RULES,
    min_trials: int = 1,
) -> BurnRateResult:
    """Evaluate burn-rate rules on ``(bucket_start, trials, bad_events)`` minute buckets.

    A bucket belongs to a window ``[now - w, now)`` when it starts inside it. Windows with
    fewer than ``min_trials`` trials cannot fire; if the longest window has none, the status
    is ``unknown`` (no data is never ok).
    """
    if not 0.0 < slo < 1.0:
        raise ValueError(f"slo must be in (0, 1), e.g. 0.99, got {slo!r}")
    budget = 1.0 - slo
    # prefix sums over buckets sorted by start: each window is two bisections, so a pass
    # costs O(buckets) once, not once per window
    rows = sorted(buckets)
    starts = [b for b, _, _ in rows]
    trials = list(accumulate((t for _, t, _ in rows), initial=0))
    errors = list(accumulate((e for _, _, e in rows), initial=0))
    end = bisect_left(starts, now)
    windows = sorted({s for r in rules for s in (r.long_s, r.short_s)})
    result = BurnRateResult(status="ok")
    for w in windows:
        start = bisect_left(starts, now - w)
        n = trials[end] - trials[start]
        bad = errors[end] - errors[start]
        if bad < 0 or bad > n:
            raise ValueError(f"bad events must be within [0, trials] in window {w}s")
        result.trials[window_label(w)] = n
        if n >= min_trials:
            result.burn_rates[window_label(w)] = (bad / n) / budget
    if result.trials.get(window_label(max(windows)), 0) < min_trials:
        result.status = "unknown"
        return result
    for rule in rules:
        long_rate = result.burn_rates.get(window_label(rule.long_s))
        short_rate = result.burn_rates.get(window_label(rule.short_s))
        if long_rate is None or short_rate is None:
            continue
        # 1 - 0.99 is 0.010000000000000009 in floating point: compare with a tolerance so
        # an error rate exactly at the factor fires, as the rule says (>=).
        bar = rule.factor * (1 - 1e-9)
        if long_rate >= bar and short_rate >= bar:
            result.fired.append(rule.name)
            if rule.severity == "critical" or result.status != "critical":
                result.status = rule.severity
    return result
