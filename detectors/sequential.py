"""Run one CUSUM chart on the rollups of one signal: learn the baseline, update, judge.

Shared by every signal family. State (JSON-safe dict, one per (workflow, signal, "cusum")):
``learner`` while learning, then ``baseline`` and ``chart``; ``window`` holds the recent
buckets ``[bucket, n, value, sumsq]`` for the window test and the reported value.

Status rules: no baseline yet, or no data in the last window -> UNKNOWN; chart alarm ->
CRITICAL; statistic above half the threshold -> WARN; otherwise OK (the engine may raise OK
to WARN when the window test survives Benjamini-Hochberg across the pass).

Example (an edit rate that jumps from 0.20 to 0.40 after its 500-run learning period):
    >>> from detectors.config import DetectionConfig
    >>> spec = SignalSpec("edited", "rate", "up")
    >>> ups = [Rollup("wf", "edited", 60 * i, 20, 4) for i in range(25)]
    >>> ups += [Rollup("wf", "edited", 60 * i, 20, 8) for i in range(25, 60)]
    >>> f, state = run_chart("wf", spec, ups, {}, DetectionConfig(), now=3600.0)
    >>> f.status.value, f.baseline, state["chart"]["alarm_at"]
    ('critical', 0.2, 80)
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from detectors.baseline import (
    Baseline,
    BaselineLearner,
    Direction,
    Kind,
    guarded_level,
    rate_design,
)
from detectors.config import DetectionConfig
from detectors.stats.cusum import (
    BernoulliCusum,
    GaussianCusum,
    SequentialDetector,
)
from detectors.stats.dist import beta_ppf, binom_cdf, binom_sf, norm_cdf, norm_sf
from detectors.stats.two_sided import TwoSidedCusum, detector_from_dict
from detectors.stats.window import (
    Alternative,
    TestResult,
    summary_from_moments,
    two_proportion_z,
    welch_t_summary,
)
from detectors.types import Finding, Rollup, Status

DETECTOR = "cusum"
_BATCHES = (64, 32, 16, 8)
_KEEP_SIZES = 100  # recent rollup sizes kept to choose the calibration bucket size
# the window test looks for a move in the bad direction only
_ALTERNATIVE: dict[str, Alternative] = {"up": "greater", "down": "less", "both": "two-sided"}


@dataclass(frozen=True, slots=True)
class SignalSpec:
    """How one signal is watched: a rate or a mean, which direction is bad, robust or not."""

    signal: str
    kind: Kind
    direction: Direction
    robust: bool = False


def iso_window(start: float, end: float) -> str:
    def fmt(t: float) -> str:
        return dt.datetime.fromtimestamp(t, tz=dt.UTC).strftime("%Y-%m-%dT%H:%MZ")

    return f"{fmt(start)}/{fmt(end)}"


def design_batch(sizes: Sequence[int]) -> int:
    """Bucket size to calibrate for: the lower quartile of recent rollup sizes, rounded down
    to 8/16/32/64 (the bucket chain is accurate from 8 up; 64 caps the calibration cost),
    else 1 (per-observation calibration, conservative on any bucket)."""
    if not sizes:
        return 1
    q = sorted(sizes)[len(sizes) // 4]
    return next((b for b in _BATCHES if b <= q), 1)


def build_chart(
    spec: SignalSpec, b: Baseline, config: DetectionConfig, batch: int = 1
) -> SequentialDetector:
    """The chart for a baseline, with the configured design shift (see detectors.config)."""
    level = guarded_level(b, spec.direction, config.guard_se)
    if spec.kind == "rate":
        if spec.direction == "both":
            up = rate_design(level, "up", config.rate_rel_shift, config.rate_abs_floor)
            down = rate_design(level, "down", config.rate_rel_shift, config.rate_abs_floor)
            return TwoSidedCusum.bernoulli(level, up, down, config.arl0, batch)
        p1 = rate_design(level, spec.direction, config.rate_rel_shift, config.rate_abs_floor)
        return BernoulliCusum(level, p1, config.arl0, batch)
    sd = b.sd if b.sd and b.sd > 0 else max(abs(b.value) * 1e-3, 1e-9)
    delta = config.mean_shift_sd * sd
    clip = config.clip if spec.robust else None
    if spec.direction == "both":
        return TwoSidedCusum.gaussian(level, sd, delta, config.arl0, clip, batch)
    signed = delta if spec.direction == "up" else -delta
    return GaussianCusum(level, sd, signed, config.arl0, clip, batch)


def binomial_p(k: int, n: int, p0: float, alternative: Alternative) -> float:
    """Exact binomial test of ``k`` events in ``n`` against ``p0`` (two-sided: doubled
    smaller tail, capped at 1)."""
    upper, lower = binom_sf(k, n, p0), binom_cdf(k, n, p0)
    if alternative == "greater":
        return upper
    if alternative == "less":
        return lower
    return min(1.0, 2.0 * min(upper, lower))


def _window_test(
    spec: SignalSpec, b: Baseline, n: int, value: float, sumsq: float
) -> TestResult | None:
    alt: Alternative = _ALTERNATIVE[spec.direction]
    if spec.kind == "rate":
        if b.samples is not None:
            k0 = round(b.value * b.samples)
            return two_proportion_z(k0, b.samples, int(value), n, alternative=alt)
        p0 = min(max(b.value, 1e-9), 1 - 1e-9)
        return TestResult(value / n, binomial_p(int(value), n, p0, alt), "binomial_exact")
    if n < 2 or b.sd is None:
        return None
    mean, sd = summary_from_moments(n, value, sumsq)
    if b.samples is not None and b.samples >= 2:
        return welch_t_summary(b.samples, b.value, b.sd, n, mean, sd, alternative=alt)
    z = (mean - b.value) / (b.sd / math.sqrt(n))
    p = {"greater": norm_sf(z), "less": norm_cdf(z)}.get(alt, 2 * norm_sf(abs(z)))
    return TestResult(z, p, "z")


def learned_enough(learner: BaselineLearner, config: DetectionConfig) -> bool:
    """Enough observations, and for a rate enough events to pin it down.

    A rare rate is pinned down either by ``learn_rate_events`` events of both kinds, or by
    an upper 97.5 % Clopper-Pearson bound within half the design floor of the estimate: the
    chart's reference value then lies above any rate the data allow, so a low guess cannot
    trip it on noise.
    """
    n, k = learner.n, learner.total
    if learner.kind == "mean":
        return n >= config.learn_mean_obs
    if n >= config.learn_rate_max_obs:
        return True
    if n < config.learn_rate_obs:
        return False
    if min(k, n - k) >= config.learn_rate_events:
        return True
    upper = beta_ppf(0.975, k + 1, n - k) if k < n else 1.0
    return upper <= k / n + config.rate_abs_floor / 2


def run_chart(
    workflow: str,
    spec: SignalSpec,
    rollups: Sequence[Rollup],
    state: dict[str, Any],
    config: DetectionConfig,
    now: float,
    fixed_baseline: Baseline | None = None,
    model_version: str | None = None,
) -> tuple[Finding, dict[str, Any]]:
    """Feed new rollups (deltas, in write order) to the chart and judge the signal.

    ``fixed_baseline`` (declared or from a named window) replaces learning; when it differs
    from the saved one the chart restarts on it.
    """
    new: dict[str, Any] = dict(state)
    baseline = Baseline.from_dict(new["baseline"]) if "baseline" in new else None
    chart = detector_from_dict(new["chart"]) if "chart" in new else None
    if fixed_baseline is not None and baseline != fixed_baseline:
        # a declared value or window changed in the config: restart the chart on it
        baseline, chart = fixed_baseline, None
    learner = BaselineLearner.from_dict(new["learner"]) if "learner" in new else None
    need = config.learn_rate_obs if spec.kind == "rate" else config.learn_mean_obs
    window = [w for w in new.get("window", []) if w[0] >= now - config.window_s]
    sizes = [*new.get("sizes", []), *(r.count for r in rollups if r.count > 0)][-_KEEP_SIZES:]
    new["sizes"] = sizes

    for r in rollups:
        if r.count <= 0:
            continue
        value = float(r.successes) if spec.kind == "rate" else r.sum
        # the window also fills while learning, so value and samples show the feed is alive
        if r.bucket >= now - config.window_s:
            window.append([r.bucket, r.count, value, r.sumsq])
        if baseline is None:
            learner = learner or BaselineLearner(spec.kind)
            learner.add_rollup(r)
            if learned_enough(learner, config):
                baseline = learner.baseline("learned")
                learner = None
            continue
        if chart is None:
            chart = build_chart(spec, baseline, config, design_batch(sizes))
        chart.update(r.count, value)
    if baseline is not None and chart is None:
        chart = build_chart(spec, baseline, config, design_batch(sizes))

    new["window"] = window
    new.pop("learner", None)
    if learner is not None:
        new["learner"] = learner.to_dict()
    if baseline is not None and chart is not None:
        new["baseline"] = baseline.to_dict()
        new["chart"] = chart.to_dict()

    n_w = sum(int(w[1]) for w in window)
    v_w = sum(float(w[2]) for w in window)
    sq_w = sum(float(w[3]) for w in window)
    finding = Finding(
        workflow=workflow,
        signal=spec.signal,
        detector=DETECTOR,
        status=Status.UNKNOWN,
        value=v_w / n_w if n_w else None,
        window=iso_window(now - config.window_s, now),
        samples=n_w,
        evidence={"model_version": model_version} if model_version else {},
    )
    if baseline is None or chart is None:
        have = learner.n if learner is not None else 0
        finding.evidence.update({"reason": "learning baseline", "learned": have, "needed": need})
        if spec.kind == "rate":  # a rare rate also waits for enough events
            finding.evidence["events_needed"] = config.learn_rate_events
        return finding, new

    finding.baseline = baseline.value
    finding.statistic = chart.statistic
    finding.threshold = chart.threshold
    finding.evidence.update(chart.evidence())
    finding.evidence.update({"baseline_source": baseline.source, "chart_obs": chart.n_obs})
    if n_w >= max(config.min_window_obs, 1):
        test = _window_test(spec, baseline, n_w, v_w, sq_w)
        if test is not None:
            finding.p_value = test.p_value
            finding.evidence["window_test"] = test.test
    if chart.alarmed:
        finding.status = Status.CRITICAL
    elif n_w == 0:
        finding.evidence["reason"] = "no data in the window"  # a dead feed is not healthy
    elif chart.statistic >= chart.threshold / 2:
        finding.status = Status.WARN
    else:
        finding.status = Status.OK
    return finding, new
