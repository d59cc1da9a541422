"""Health signals: error, timeout and retry rates, latency, failures per action.

* Rates: Bernoulli CUSUM (rising is bad); errors and timeouts also get multi-window
  multi-burn-rate SLO rules against ``config.slo`` that fire only on enough evidence
  (an exact binomial test against the SLO in both windows, detectors.stats.burn_rate).
* Latency: rollups keep only count/sum/sumsq/min/max per bucket, so a p95 cannot be
  tracked; we run a winsorised Gaussian CUSUM on the MEAN latency (rising is bad). Latency
  is log-normal-ish, so the winsorising (``config.clip`` sd) keeps one slow bucket from
  alarming alone; a p95 shift shows up as a mean shift only when the tail moves the mean.
* ``action_errors.<action>``: one Bernoulli CUSUM per action (integration failures).

Example:
    >>> from detectors.config import DetectionConfig
    >>> from detectors.family import WorkflowInput
    >>> from detectors.types import Rollup
    >>> ups = [Rollup("wf", "errors", 60 * i, 100, 30) for i in range(60)]
    >>> fs, _ = evaluate(WorkflowInput("wf", {"errors": ups}, {}, DetectionConfig(), 3600.0))
    >>> [(f.detector, f.status.value) for f in fs]  # steady 30 % errors: no change, over SLO
    [('cusum', 'ok'), ('burn_rate', 'critical')]
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from typing import Any, Final

from detectors import signals as sig
from detectors.family import States, WorkflowInput, run_specs
from detectors.sequential import SignalSpec, iso_window
from detectors.stats.burn_rate import (
    DEFAULT_EVIDENCE,
    DEFAULT_RULES,
    evaluate_burn_rates,
    window_label,
)
from detectors.types import Finding, Rollup, Status

SPECS: Final = (
    SignalSpec(sig.ERRORS, "rate", "up"),
    SignalSpec(sig.TIMEOUTS, "rate", "up"),
    SignalSpec(sig.RETRIES, "rate", "up"),
    SignalSpec(sig.LATENCY_MS, "mean", "up", robust=True),
)
BURN_RATE_SIGNALS: Final = (sig.ERRORS, sig.TIMEOUTS)
SIGNALS: Final = frozenset(s.signal for s in SPECS)
_KEEP_S: Final = max(r.long_s for r in DEFAULT_RULES)
_MINUTE_S: Final = 6 * 3600  # longest window that needs minute resolution (6h, 30m, 5m ...)
_RECENT_S: Final = 3600  # the recent sample named in the evidence when no rule fired


Buckets = list[list[int]]  # [[bucket start, trials, bad], ...] ascending: JSON-friendly


def _saved_buckets(state: dict[str, Any]) -> Buckets:
    saved = state.get("buckets", [])
    if isinstance(saved, dict):  # saved by an older version: {"<start>": [trials, bad]}
        return sorted([int(b), n, k] for b, (n, k) in saved.items())
    return list(saved)


def _merge(saved: Buckets, rollups: Iterable[Rollup], now: float) -> Buckets:
    """Add new minute rollups, drop what left the longest window, and keep minutes for the
    last ``_MINUTE_S`` (the short windows, exact) while older minutes fold into hours: the
    1d/3d windows then start on an hour (<= 1 h of 24 h off) and the state holds ~430
    entries instead of 4,320.

    Rows are never changed in place (they may be shared with the saved state), and only
    the rows older than the minute horizon are looped over in Python, so a pass costs
    O(new rollups + hours kept), not O(minutes kept).
    """
    added: dict[int, list[int]] = {}
    for r in rollups:
        row = added.get(r.bucket) or [r.bucket, 0, 0]
        added[r.bucket] = [r.bucket, row[1] + r.count, row[2] + r.successes]
    if saved and added and min(added) <= saved[-1][0]:  # a late bucket: merge by start
        merged = {row[0]: row for row in saved}
        for start, n, k in added.values():
            old = merged.get(start, [start, 0, 0])
            merged[start] = [start, old[1] + n, old[2] + k]
        rows = sorted(merged.values())
    else:
        rows = saved + sorted(added.values())
    starts = [row[0] for row in rows]
    cut = int(now - _MINUTE_S)
    cut -= cut % 3600
    split = bisect_left(starts, cut)
    hours: dict[int, list[int]] = {}
    for start, n, k in rows[bisect_left(starts, now - _KEEP_S) : split]:
        key = start - start % 3600
        acc = hours.get(key)
        hours[key] = [key, n, k] if acc is None else [key, acc[1] + n, acc[2] + k]
    return [*hours.values(), *rows[split:]]


def burn_rate_finding(inp: WorkflowInput, signal: str) -> tuple[Finding, dict[str, Any]]:
    """Merge new minute buckets into the saved ones (3 days kept) and apply the SLO rules
    with their evidence rule (detectors.stats.burn_rate).

    The finding rests on one rule (``evidence["rule"]``): ``value`` is the burn rate of its
    long window, ``samples`` that window's trials, ``threshold`` its factor, ``p_value``
    the exact binomial test of that window against the SLO; ``evidence["recent"]`` is its
    short window (the 1-hour window when nothing fired) and ``evidence["windows"]`` the
    ``[trials, bad]`` of every window.
    """
    state = inp.states.get((signal, "burn_rate"), {})
    buckets = _merge(_saved_buckets(state), inp.rollups.get(signal, ()), inp.now)
    slo = inp.config.slo_for(inp.workflow)
    res = evaluate_burn_rates(((b, n, k) for b, n, k in buckets), slo, inp.now)
    rule = res.rule or DEFAULT_RULES[0]
    long_label = window_label(rule.long_s)
    # the short window of a rule that fired (or burns without recent runs), else the last hour
    recent_s = rule.short_s if res.decisions.get(rule.name) in ("fired", "no_recent") else _RECENT_S
    recent = window_label(recent_s)
    evidence: dict[str, Any] = {
        "detector": "burn_rate",
        "slo": slo,
        "rule": rule.name,
        "burn_rates": res.burn_rates,
        "fired": res.fired,
        "decisions": dict(res.decisions),
        "windows": {w: [res.trials[w], res.bad[w]] for w in res.trials},
        "recent": {
            "samples": res.trials[recent],
            "events": res.bad[recent],
            "window_s": recent_s,
        },
        "evidence_rule": DEFAULT_EVIDENCE.to_dict(),
        "source": "Google SRE Workbook ch. 5, multiwindow multi-burn-rate",
    }
    if res.reason is not None:
        evidence["reason"] = res.reason
    if res.decisions and all(d == "too_few" for d in res.decisions.values()):
        evidence["learned"], evidence["needed"] = (
            res.trials[long_label],
            DEFAULT_EVIDENCE.min_trials,
        )
    finding = Finding(
        workflow=inp.workflow,
        signal=signal,
        detector="burn_rate",
        status=Status(res.status),
        value=res.burn_rates.get(long_label),
        statistic=max(res.burn_rates.values(), default=None),
        threshold=rule.factor,
        p_value=res.p_value,
        window=iso_window(inp.now - rule.long_s, inp.now),
        samples=res.trials[long_label],
        evidence=evidence,
    )
    return finding, {**state, "buckets": buckets}


def evaluate(inp: WorkflowInput) -> tuple[list[Finding], States]:
    actions = [SignalSpec(s, "rate", "up") for s in inp.signals(prefix=sig.ACTION_ERRORS_PREFIX)]
    findings, states = run_specs(inp, (*SPECS, *actions))
    for signal in inp.signals(BURN_RATE_SIGNALS):
        finding, state = burn_rate_finding(inp, signal)
        findings.append(finding)
        states[(signal, "burn_rate")] = state
    return findings, states
