"""Cost signals: cost and tokens per record, cost per run, spend per hour, monthly budget.

* ``spend_usd`` / ``tokens``: winsorised Gaussian CUSUM on the mean per priced record
  (costs are log-normal-ish; rollups carry sums, not sums of logs, so the clip stands in
  for the log transform). Rising is bad.
* ``cost_per_run``: spend / runs over the window against the learned ratio; WARN above
  ``1 + rate_rel_shift`` times the baseline (a plain ratio rule, not ARL-calibrated).
* Spend per hour: the last complete hour against the median of the same hour-of-week
  (falling back to the same hour of weekdays or weekends until three weeks exist), as a log
  ratio, scored against the log ratios of the last two weeks' hours (median/MAD pooled over
  all hours); WARN at the z whose Gaussian tail is 10 % of the WARN budget (0.2 a month by
  default: z 3.45).
* Budget: month-to-date spend plus the last 24 h rate times the hours left in the month.

Example:
    >>> from detectors.config import DetectionConfig
    >>> from detectors.family import WorkflowInput
    >>> from detectors.types import Rollup
    >>> spend = [Rollup("wf", "spend_usd", 3600 * h, 10, sum=5.0) for h in range(72)]
    >>> cfg = DetectionConfig(budgets_usd={"wf": 100.0})
    >>> fs, _ = evaluate(WorkflowInput("wf", {"spend_usd": spend}, {}, cfg, 72 * 3600.0))
    >>> [(f.detector, f.status.value) for f in fs if f.detector != "cusum"]
    [('robust_z', 'ok'), ('projection', 'critical')]
"""

from __future__ import annotations

import statistics
from typing import Any, Final

from detectors import signals as sig
from detectors.config import DetectionConfig
from detectors.family import States, WorkflowInput, run_specs
from detectors.sequential import SignalSpec, iso_window
from detectors.stats.dist import norm_isf
from detectors.stats.robust import (
    hour_of_week,
    log_ratio,
    month_bounds,
    pooled_z,
    project_monthly_spend,
)
from detectors.types import Finding, Status

SPECS: Final = (
    SignalSpec(sig.SPEND_USD, "mean", "up", robust=True),
    SignalSpec(sig.TOKENS, "mean", "up", robust=True),
)
COST_PER_RUN: Final = "cost_per_run"
SIGNALS: Final = frozenset({sig.SPEND_USD, sig.TOKENS, sig.UNPRICED})
_KEEP_HOURS: Final = 5 * 168  # five weeks of hourly spend for the same-hour-of-week baseline
_MIN_HOURS: Final = 24
# A flat history (MAD 0) would turn a cent into an infinite z: floor the scale at 5 % of
# the median hourly spend, and at one cent.
_REL_SCALE_FLOOR: Final = 0.05
_ABS_SCALE_FLOOR: Final = 0.01
_REF_HOURS: Final = 28 * 24  # an hour's reference: the same hour of the last 4 weeks' days
_POOL_HOURS: Final = 14 * 24  # residuals pooled for the hourly-spend scale
_MIN_LOG_SCALE: Final = 0.05  # a perfectly steady spend: +-5 % is still noise
# The hourly-spend rule's share of the WARN budget (the charts share the rest).
SPEND_HOUR_WARN_SHARE: Final = 0.1


def _finding(inp: WorkflowInput, signal: str, detector: str, **kw: Any) -> Finding:
    return Finding(inp.workflow, signal, detector, kw.pop("status", Status.UNKNOWN), **kw)


def _cost_per_run(inp: WorkflowInput) -> tuple[Finding, dict[str, Any]]:
    cfg, now = inp.config, inp.now
    state = dict(inp.states.get((COST_PER_RUN, "ratio"), {}))
    window = [w for w in state.get("window", []) if w[0] >= now - cfg.window_s]
    # runs and spend of one bucket must land on the same side of the learning cut-off
    per_bucket: dict[int, list[float]] = {}
    for r in inp.rollups.get(sig.RUNS, ()):
        per_bucket.setdefault(r.bucket, [0.0, 0.0])[0] += r.count
    for r in inp.rollups.get(sig.SPEND_USD, ()):
        per_bucket.setdefault(r.bucket, [0.0, 0.0])[1] += r.sum
    learned = state.get("learned")  # [runs, spend] once complete
    learning = state.get("learning", [0, 0.0])
    for bucket in sorted(per_bucket):
        runs_n, usd = per_bucket[bucket]
        if learned is None:
            learning = [learning[0] + runs_n, learning[1] + usd]
            if learning[0] >= cfg.learn_mean_obs:
                learned, learning = learning, [0, 0.0]
        elif bucket >= now - cfg.window_s:
            window.append([bucket, runs_n, usd])
    state.update({"window": window, "learning": learning, "learned": learned})
    runs = sum(int(w[1]) for w in window)
    spend = sum(float(w[2]) for w in window)
    f = _finding(
        inp,
        COST_PER_RUN,
        "ratio",
        value=spend / runs if runs else None,
        window=iso_window(now - cfg.window_s, now),
        samples=runs,
        evidence={"detector": "ratio_threshold", "rel_shift": cfg.rate_rel_shift},
    )
    if learned is None or runs < max(cfg.min_window_obs, 1):
        # a few night-time runs are no evidence of a cost change (measured: 44 WARN a
        # workflow-month on seasonal traffic without this floor)
        f.evidence["reason"] = (
            "learning baseline"
            if learned is None
            else f"{runs} runs in the window, need {cfg.min_window_obs}"
        )
        return f, state
    f.baseline = learned[1] / learned[0]
    f.threshold = f.baseline * (1 + cfg.rate_rel_shift)
    f.statistic = f.value
    f.status = Status.WARN if (f.value or 0.0) > f.threshold else Status.OK
    return f, state


def spend_z_warn(config: DetectionConfig, workflow: str) -> float:
    """The hourly-spend z that WARNs: its share of the workflow's WARN budget, one test per
    hour (720 a month), on the Gaussian scale of the pooled log residuals."""
    alpha = config.warn_budget_for(workflow) * SPEND_HOUR_WARN_SHARE / (30 * 24)
    return norm_isf(min(max(alpha, 1e-12), 0.5))


def _daily_median(history: list[tuple[float, float]], i: int) -> float:
    """Median of the same hour on the same kind of day (weekday / weekend) over the last
    four weeks before ``history[i]`` (hours are contiguous: a day is 24 entries back);
    all earlier hours when there are fewer than three such days. Not the hour of the WEEK:
    3-5 same-slot values make a noisy median whose noise changes when the reference does."""
    weekend = hour_of_week(history[i][0]) // 24 >= 5
    same = [
        history[j][1]
        for j in range(i - 24, max(-1, i - _REF_HOURS - 1), -24)
        if (hour_of_week(history[j][0]) // 24 >= 5) == weekend
    ]
    if len(same) < 3:
        same = [v for _, v in history[max(0, i - _REF_HOURS) : i]]
    return statistics.median(same)


def _hourly(inp: WorkflowInput) -> tuple[Finding, dict[str, Any], dict[int, float]]:
    now = inp.now
    state = dict(inp.states.get((sig.SPEND_USD, "robust_z"), {}))
    hours = {int(h): float(v) for h, v in state.get("hours", {}).items()}
    for r in inp.rollups.get(sig.SPEND_USD, ()):
        h = r.bucket - r.bucket % 3600
        hours[h] = hours.get(h, 0.0) + r.sum
    current = int(now - now % 3600)
    hours = {h: v for h, v in hours.items() if h >= current - _KEEP_HOURS * 3600}
    state["hours"] = {str(h): v for h, v in hours.items()}
    last = current - 3600
    z_warn = spend_z_warn(inp.config, inp.workflow)
    f = _finding(
        inp,
        sig.SPEND_USD,
        "robust_z",
        window=iso_window(last, current),
        evidence={"detector": "seasonal_robust_z", "z_warn": z_warn},
    )
    if not hours:
        f.evidence["reason"] = "no spend recorded"
        return f, state, hours
    # Missing hours after the first recorded one had no spend: count them as 0.
    first = min(hours)
    history = [(float(h), hours.get(h, 0.0)) for h in range(first, last, 3600)]
    f.value = hours.get(last, 0.0)
    f.samples = len(history)
    if len(history) < _MIN_HOURS:
        f.evidence["reason"] = f"need {_MIN_HOURS} past hours, have {len(history)}"
        return f, state, hours
    values = sorted(v for _, v in history)
    unit = max(_REL_SCALE_FLOOR * values[len(values) // 2], _ABS_SCALE_FLOOR)
    # each complete hour's log residual against its own reference, computed once (when the
    # hour is complete) and kept: the pooled scale of the last two weeks of them
    pool_from = last - _POOL_HOURS * 3600
    resid = {int(h): float(r) for h, r in state.get("resid", {}).items() if int(h) >= pool_from}
    for i in range(max(_MIN_HOURS, (pool_from - first) // 3600), len(history)):
        h = int(history[i][0])
        if h not in resid:
            resid[h] = log_ratio(history[i][1], _daily_median(history, i), unit)
    state["resid"] = {str(h): r for h, r in resid.items()}
    if len(resid) < _MIN_HOURS:
        f.evidence["reason"] = f"need {_MIN_HOURS} scored hours, have {len(resid)}"
        return f, state, hours
    baseline = _daily_median([*history, (float(last), f.value)], len(history))
    z = pooled_z(log_ratio(f.value, baseline, unit), list(resid.values()), _MIN_LOG_SCALE)
    f.baseline, f.statistic, f.threshold = baseline, z, z_warn
    f.evidence.update({"seasonal": True, "scale": "log", "unit": unit, "pooled_hours": len(resid)})
    f.status = Status.WARN if z >= z_warn else Status.OK
    return f, state, hours


def _budget(inp: WorkflowInput, hours: dict[int, float]) -> tuple[Finding, dict[str, Any]]:
    budget = inp.config.budgets_usd[inp.workflow]
    start, end = month_bounds(inp.now)
    state = dict(inp.states.get((sig.SPEND_USD, "projection"), {}))
    if state.get("month") != start:
        state = {"month": start, "spent": 0.0}
    state["spent"] += sum(r.sum for r in inp.rollups.get(sig.SPEND_USD, ()) if r.bucket >= start)
    current = int(inp.now - inp.now % 3600)
    last_day = sum(v for h, v in hours.items() if current - 24 * 3600 <= h < current)
    projected = project_monthly_spend(state["spent"], last_day / 24, max(0.0, end - inp.now) / 3600)
    f = _finding(
        inp,
        sig.SPEND_USD,
        "projection",
        value=projected,
        baseline=budget,
        statistic=projected / budget,
        threshold=1.0,
        window=iso_window(start, end),
        samples=len(hours),
        evidence={"detector": "projection", "spent": state["spent"], "budget": budget},
    )
    if not hours and state["spent"] == 0.0:
        f.evidence["reason"] = "no spend recorded"
    elif state["spent"] > budget:
        f.status = Status.CRITICAL
    else:
        f.status = Status.WARN if projected > budget else Status.OK
    return f, state


def evaluate(inp: WorkflowInput) -> tuple[list[Finding], States]:
    findings, states = run_specs(inp, SPECS)
    if inp.signals([sig.SPEND_USD]) and (inp.signals([sig.RUNS]) or inp.signals([COST_PER_RUN])):
        f, s = _cost_per_run(inp)
        findings.append(f)
        states[(COST_PER_RUN, "ratio")] = s
    if inp.signals([sig.SPEND_USD]):
        f, s, hours = _hourly(inp)
        findings.append(f)
        states[(sig.SPEND_USD, "robust_z")] = s
        if inp.workflow in inp.config.budgets_usd:
            f, s = _budget(inp, hours)
            findings.append(f)
            states[(sig.SPEND_USD, "projection")] = s
    return findings, states
