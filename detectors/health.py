"""Health signals: error, timeout and retry rates, latency, failures per action.

* Rates: Bernoulli CUSUM (rising is bad); errors and timeouts also get multi-window
  multi-burn-rate SLO rules against ``config.slo`` (detectors.stats.burn_rate).
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

from typing import Any, Final

from detectors import signals as sig
from detectors.family import States, WorkflowInput, run_specs
from detectors.sequential import SignalSpec, iso_window
from detectors.stats.burn_rate import DEFAULT_RULES, evaluate_burn_rates
from detectors.types import Finding, Status

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


def _compact(buckets: dict[str, list[int]], now: float) -> dict[str, list[int]]:
    """Keep minutes for the last ``_MINUTE_S`` (the short windows, exact) and fold older
    minutes into hours: the 1d/3d windows then start on an hour (<= 1 h of 24 h off) and the
    state holds ~430 entries instead of 4,320."""
    cut = int(now - _MINUTE_S)
    cut -= cut % 3600
    out: dict[str, list[int]] = {}
    for b, (n, k) in buckets.items():
        t = int(b)
        key = str(t if t >= cut else t - t % 3600)
        acc = out.setdefault(key, [0, 0])
        acc[0] += n
        acc[1] += k
    return out


def _burn_rate(inp: WorkflowInput, signal: str) -> tuple[Finding, dict[str, Any]]:
    """Merge new minute buckets into the saved ones (3 days kept) and apply the SLO rules."""
    state = inp.states.get((signal, "burn_rate"), {})
    buckets: dict[str, list[int]] = {k: list(v) for k, v in state.get("buckets", {}).items()}
    for r in inp.rollups.get(signal, ()):
        n_k = buckets.setdefault(str(r.bucket), [0, 0])
        n_k[0] += r.count
        n_k[1] += r.successes
    buckets = _compact({b: v for b, v in buckets.items() if int(b) >= inp.now - _KEEP_S}, inp.now)
    res = evaluate_burn_rates(
        ((int(b), v[0], v[1]) for b, v in buckets.items()),
        inp.config.slo_for(inp.workflow),
        inp.now,
    )
    finding = Finding(
        workflow=inp.workflow,
        signal=signal,
        detector="burn_rate",
        status=Status(res.status),
        value=res.burn_rates.get("1h"),
        statistic=max(res.burn_rates.values(), default=None),
        threshold=DEFAULT_RULES[0].factor,
        window=iso_window(inp.now - _KEEP_S, inp.now),
        samples=res.trials.get("3d", 0),
        evidence={
            "detector": "burn_rate",
            "slo": inp.config.slo_for(inp.workflow),
            "burn_rates": res.burn_rates,
            "fired": res.fired,
            "source": "Google SRE Workbook ch. 5, multiwindow multi-burn-rate",
        },
    )
    return finding, {**state, "buckets": buckets}


def evaluate(inp: WorkflowInput) -> tuple[list[Finding], States]:
    actions = [SignalSpec(s, "rate", "up") for s in inp.signals(prefix=sig.ACTION_ERRORS_PREFIX)]
    findings, states = run_specs(inp, (*SPECS, *actions))
    for signal in inp.signals(BURN_RATE_SIGNALS):
        finding, state = _burn_rate(inp, signal)
        findings.append(finding)
        states[(signal, "burn_rate")] = state
    return findings, states
