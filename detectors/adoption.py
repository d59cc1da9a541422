"""Adoption signals: runs per team per day, active users, approval rate, time saved, KPIs.

* Runs per team per day (``team_runs.<team>``) and active users (a ``"YYYY-MM-DD" -> count``
  mapping the store supplies): the last complete day against earlier days (same weekday once
  three weeks exist, else the last 28 days) by robust z; a DROP beyond
  ``config.adoption_z_warn`` is a WARN. The scale is floored at ``sqrt(median)`` (Poisson
  noise), so a small team is not flagged for one quiet day.
* Approval rate: Bernoulli CUSUM, falling is bad. Time saved per review: winsorised
  Gaussian CUSUM, falling is bad. ``kpi.<name>``: two-sided winsorised CUSUM (we do not
  know which way is good for a business KPI).

Example:
    >>> from detectors.config import DetectionConfig
    >>> from detectors.family import WorkflowInput
    >>> users = {f"2026-11-{d:02d}": 40 for d in range(1, 22)} | {"2026-11-22": 12}
    >>> now = 1_795_392_000.0 + 3600  # 2026-11-23 01:00 UTC
    >>> inp = WorkflowInput("wf", {}, {}, DetectionConfig(), now, active_users=users)
    >>> [(f.signal, f.status.value, f.value) for f in evaluate(inp)[0]]
    [('active_users', 'warn', 12.0)]
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any, Final

from detectors import signals as sig
from detectors.family import States, WorkflowInput, run_specs
from detectors.sequential import SignalSpec, iso_window
from detectors.stats.robust import median_mad, robust_z
from detectors.types import Finding, Status

SPECS: Final = (
    SignalSpec(sig.APPROVED, "rate", "down"),
    SignalSpec(sig.TIME_SAVED_S, "mean", "down", robust=True),
)
ACTIVE_USERS: Final = "active_users"
SIGNALS: Final = frozenset(s.signal for s in SPECS)
DAY: Final = 86_400
_KEEP_DAYS: Final = 35
_SAME_WEEKDAY_MIN: Final = 3


def daily_drop(
    inp: WorkflowInput, signal: str, days: Mapping[int, float], detector: str
) -> Finding:
    """Score the last complete day of ``days`` (day start epoch -> count) for a drop."""
    today = int(inp.now - inp.now % DAY)
    last = today - DAY
    f = Finding(
        inp.workflow,
        signal,
        detector,
        Status.UNKNOWN,
        window=iso_window(last, today),
        evidence={"detector": "daily_robust_z", "z_warn": -inp.config.adoption_z_warn},
    )
    if not days:
        f.evidence["reason"] = "no data"
        return f
    first = max(min(days), last - 28 * DAY)
    history = [(d, days.get(d, 0.0)) for d in range(first, last, DAY)]
    f.value = float(days.get(last, 0.0))
    f.samples = len(history)
    if len(history) < inp.config.min_history_days:
        f.evidence["reason"] = f"need {inp.config.min_history_days} past days, have {len(history)}"
        return f
    same = [v for d, v in history if (d - last) % (7 * DAY) == 0]
    ref = same if len(same) >= _SAME_WEEKDAY_MIN else [v for _, v in history]
    median, _ = median_mad(ref)
    z = robust_z(f.value, ref, min_scale=math.sqrt(max(median, 1.0)))
    f.baseline, f.statistic, f.threshold = median, z, -inp.config.adoption_z_warn
    f.evidence["same_weekday"] = ref is same
    f.status = Status.WARN if z <= -inp.config.adoption_z_warn else Status.OK
    return f


def _team_runs(inp: WorkflowInput, signal: str) -> tuple[Finding, dict[str, Any]]:
    state = dict(inp.states.get((signal, "daily_robust_z"), {}))
    days = {int(d): float(v) for d, v in state.get("days", {}).items()}
    for r in inp.rollups.get(signal, ()):
        d = r.bucket - r.bucket % DAY
        days[d] = days.get(d, 0.0) + r.count
    today = int(inp.now - inp.now % DAY)
    days = {d: v for d, v in days.items() if d >= today - _KEEP_DAYS * DAY}
    state["days"] = {str(d): v for d, v in days.items()}
    return daily_drop(inp, signal, days, "daily_robust_z"), state


def _parse_day(key: str) -> int:
    try:
        day = dt.date.fromisoformat(key)
    except ValueError as exc:
        raise ValueError(f"active_users: day must be YYYY-MM-DD, got {key!r}") from exc
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())


def evaluate(inp: WorkflowInput) -> tuple[list[Finding], States]:
    kpis = [SignalSpec(s, "mean", "both", robust=True) for s in inp.signals(prefix=sig.KPI_PREFIX)]
    findings, states = run_specs(inp, (*SPECS, *kpis))
    for signal in inp.signals(prefix=sig.TEAM_RUNS_PREFIX):
        f, s = _team_runs(inp, signal)
        findings.append(f)
        states[(signal, "daily_robust_z")] = s
    if inp.active_users:
        days = {_parse_day(k): float(v) for k, v in inp.active_users.items()}
        findings.append(daily_drop(inp, ACTIVE_USERS, days, "daily_robust_z"))
    return findings, states
