"""Seeded, vectorised traffic simulator that emits the store's minute rollups directly.

Per workflow it draws every run and review of a simulated day with numpy (no event
objects, no store) and aggregates them per minute exactly as ``monitor.batch.rollups`` does, into
``detectors.types.Rollup`` rows (one per workflow, signal and minute with data), so a
benchmark can call ``detectors.engine.run_pass`` the way the scheduler does at a few
microseconds per event. ``TrafficSim.events`` turns the same draws into
``collectors.events`` objects, which ``tests/bench/test_traffic_sim.py`` rolls up through the real
ingest code to check that both paths agree.

What is realistic about it (per workflow, ``WorkflowProfile``):

* volume: ~1,000 runs and ~1,000 reviews on a weekday, a business-hours plateau (8-18 h
  local time, ``night_floor`` of it at night), weekends at ``weekend_factor`` (0.3), a
  day-level volume factor (Gamma, ``volume_day_cv``), Poisson counts per minute;
* overdispersion: each (UTC) day's true rates are the workflow mean times a day factor
  whose rate is Beta-distributed with relative sd ``rate_day_rel_sd`` (0.12); score means
  move by a day-level normal offset of ``score_day_sd`` per-observation sds; log-normal
  medians by a day-level log offset ``log_day_sd``;
* groundedness and confidence: Beta(mean, sd) per scored (ok) run; edit ratios are
  zero-inflated (0 for approved, Beta for edited, absent for rejected: no text to diff);
* latency, tokens and cost per run: log-normal (timeouts at the client timeout), cost =
  tokens x the model's per-token prices; the store's value rollups (count, sum, sumsq,
  min, max);
* 2-3 teams (``team_runs.<team>``), a user pool whose members are active on a given day
  with a weekday/weekend probability (``active_users`` as ``load_active_users`` gives it),
  one model label ``model@version/prompt`` as ``detection_store.load_versions`` writes it.

Changes (``Change``): at ``at`` (a minute boundary) a parameter of the profile steps (or
ramps over ``ramp_s``) to ``to``, optionally with a new model version label.

Rollup semantics (``detectors/signals.py``, ``monitor/batch/rollups.py``): rates carry trials in
``count`` and events in ``successes`` with ``sum = sumsq = 0`` and no min/max; ``runs``
counts all runs with ``successes`` = status ok; ``team_runs.<team>`` likewise per team;
``retries`` is a value rollup of the retry counts of all runs whose ``successes`` are the
runs with retries > 0; ``action_errors.<action>`` counts runs with the action, failures =
status != ok; groundedness, confidence, validation and escalation come with ok runs only.

Example:
    >>> sim = TrafficSim([WorkflowProfile("wf-a", seed=1)], start=START, seed=7)
    >>> ups = sim.rollups(START + 10 * 3600, START + 11 * 3600)
    >>> sorted({signal for _, signal in ups})[:4]
    ['action_errors.send_email', 'approved', 'confidence', 'edit_ratio']
    >>> sum(r.count for r in ups[("wf-a", "runs")]) == sim.count("wf-a", "runs",
    ...     START + 10 * 3600, START + 11 * 3600)
    True
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from detectors import signals as sig
from detectors.types import Rollup

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
RollupKey = tuple[str, str]

DAY: Final = 86_400
MINUTES: Final = 1_440
# Thursday 2026-11-05 00:00 UTC: a change on day 5 falls on a Tuesday
START: Final = float(dt.datetime(2026, 11, 5, tzinfo=dt.UTC).timestamp())
TIMEOUT_MS: Final = 30_000.0
ACTION: Final = "send_email"

# which signal carries which profile parameter (delay benchmarks count its observations)
PARAM_SIGNAL: Final = {
    "edit_rate": sig.EDITED,
    "reject_share": sig.REJECTED,
    "error_rate": sig.ERRORS,
    "timeout_rate": sig.TIMEOUTS,
    "retry_rate": sig.RETRIES,
    "validation_fail_rate": sig.VALIDATION_FAILED,
    "escalation_rate": sig.ESCALATED,
    "groundedness": sig.GROUNDEDNESS,
    "confidence": sig.CONFIDENCE,
    "edit_ratio": sig.EDIT_RATIO,
    "latency_median_ms": sig.LATENCY_MS,
    "input_tokens_median": sig.TOKENS,
    "output_tokens_median": sig.TOKENS,
    "usd_per_input_token": sig.SPEND_USD,
    "usd_per_output_token": sig.SPEND_USD,
}


@dataclass(frozen=True, slots=True)
class Change:
    """At ``at`` (epoch seconds, rounded down to the minute) ``param`` moves to ``to``
    (a step, or linearly over ``ramp_s``); ``model_version`` (if given) becomes the
    workflow's version label at the same time. ``param=None`` changes only the version."""

    at: float
    param: str | None = None
    to: float = 0.0
    ramp_s: float = 0.0
    model_version: str | None = None

    def __post_init__(self) -> None:
        if self.param is not None and self.param not in PARAM_SIGNAL:
            raise ValueError(
                f"Change.param must be one of {sorted(PARAM_SIGNAL)}, got {self.param!r}"
            )
        if self.ramp_s < 0:
            raise ValueError(f"Change.ramp_s must be >= 0, got {self.ramp_s!r}")


@dataclass(frozen=True, slots=True)
class WorkflowProfile:
    """One workflow's traffic. Rates are per trial; ``*_sd`` are per observation."""

    name: str
    seed: int = 0
    runs_per_day: float = 1_000.0
    reviews_per_day: float = 1_000.0
    """Runs and reviews on a weekday (weekends get ``weekend_factor`` of it)."""
    weekend_factor: float = 0.3
    night_floor: float = 0.05
    """Night intensity relative to business hours (8-18 h local time)."""
    utc_offset_h: float = 0.0
    volume_day_cv: float = 0.10
    edit_rate: float = 0.20
    """Reviews edited or rejected: the ``edited`` signal."""
    reject_share: float = 0.20
    """Share of the non-approved decisions that are rejections."""
    error_rate: float = 0.01
    timeout_rate: float = 0.005
    retry_rate: float = 0.05
    validation_fail_rate: float = 0.03
    """Among ok runs, like escalations (a failed run reports neither)."""
    escalation_rate: float = 0.02
    action_share: float = 0.30
    rate_day_rel_sd: float = 0.12
    """Relative sd of a day's rate around the workflow mean (0: binomial days)."""
    groundedness: float = 0.85
    groundedness_sd: float = 0.10
    confidence: float = 0.80
    confidence_sd: float = 0.12
    """Bounded scores: Beta(mean, sd) per ok run."""
    edit_ratio: float = 0.25
    edit_ratio_sd: float = 0.15
    """Beta for an edited output; 0 when approved, absent when rejected."""
    score_day_sd: float = 0.15
    """Day-level offset of the score means, in per-observation sds."""
    latency_median_ms: float = 1_200.0
    latency_sigma: float = 0.6
    input_tokens_median: float = 1_500.0
    input_tokens_sigma: float = 0.7
    """Log-normal per run: the median and the sigma of the log."""
    output_tokens_median: float = 400.0
    output_tokens_sigma: float = 0.8
    usd_per_input_token: float = 2.5e-6
    usd_per_output_token: float = 1.0e-5
    """Cost = tokens x these prices."""
    review_ms_median: float = 40_000.0
    review_ms_sigma: float = 0.9
    time_saved_median_s: float = 300.0
    time_saved_sigma: float = 0.6
    """Per approved review; an edited one saves half, a rejected one costs a fifth."""
    log_day_sd: float = 0.05
    """Day-level offset of the log-normal medians (latency, tokens, review time)."""
    teams: tuple[str, ...] = ("billing", "ops", "support")
    users: int = 40
    user_active_weekday: float = 0.85
    user_active_weekend: float = 0.30
    """Chance that a user is active on a weekday / weekend day."""
    model_label: str = "gpt-4o@2024-08-06/v3"
    changes: tuple[Change, ...] = ()

    def __post_init__(self) -> None:
        for name in ("edit_rate", "error_rate", "timeout_rate", "retry_rate"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{self.name}: {name} must be in [0, 1), got {value!r}")
        if self.error_rate + self.timeout_rate >= 1.0:
            raise ValueError(f"{self.name}: error_rate + timeout_rate must be < 1")
        if not self.teams or self.users < len(self.teams):
            raise ValueError(f"{self.name}: need at least one team and one user per team")

    def level(self, param: str, t: FloatArray) -> FloatArray:
        """The parameter's value at times ``t`` (epoch seconds), changes applied."""
        base = float(getattr(self, param))
        out = np.full(t.shape, base)
        for c in self.changes:
            if c.param != param:
                continue
            at = _minute(c.at)
            frac = (t >= at) * 1.0 if c.ramp_s == 0 else np.clip((t - at) / c.ramp_s, 0.0, 1.0)
            out = out + (c.to - out) * frac
        return out

    def labels_at(self, now: float) -> list[str]:
        """Version labels seen by ``now`` (the store keeps every label it has seen)."""
        out = [self.model_label]
        for c in self.changes:
            if c.model_version is not None and _minute(c.at) < now:
                out.append(c.model_version)
        return sorted(set(out))


def _minute(t: float) -> float:
    return float(math.floor(t / 60.0) * 60)


@dataclass(slots=True)
class Columns:
    """One signal's rollups of one day: parallel arrays, ascending buckets."""

    bucket: IntArray
    count: IntArray
    successes: IntArray
    sum: FloatArray
    sumsq: FloatArray
    min: FloatArray | None = None  # None for a rate signal (the store keeps no min/max)
    max: FloatArray | None = None

    def rows(self, workflow: str, signal: str, lo: int, hi: int) -> list[Rollup]:
        """``Rollup`` rows with ``lo <= bucket < hi``."""
        a, b = np.searchsorted(self.bucket, [lo, hi])
        cols: list[list[Any]] = [
            self.bucket[a:b].tolist(),
            self.count[a:b].tolist(),
            self.successes[a:b].tolist(),
            self.sum[a:b].tolist(),
            self.sumsq[a:b].tolist(),
        ]
        if self.min is None or self.max is None:
            return [
                Rollup(workflow, signal, bk, n, k, s, q)
                for bk, n, k, s, q in zip(*cols, strict=True)
            ]
        cols += [self.min[a:b].tolist(), self.max[a:b].tolist()]
        return [
            Rollup(workflow, signal, bk, n, k, s, q, lo_, hi_)
            for bk, n, k, s, q, lo_, hi_ in zip(*cols, strict=True)
        ]


def _starts(minutes: IntArray) -> tuple[IntArray, IntArray]:
    """Distinct minutes (ascending input) and where each starts."""
    if minutes.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    first = np.flatnonzero(np.r_[True, minutes[1:] != minutes[:-1]]).astype(np.int64)
    return minutes[first], first


def rate_columns(day_start: int, minutes: IntArray, hits: BoolArray) -> Columns:
    """Trials per minute in ``count``, events in ``successes`` (a rate rollup)."""
    uniq, first = _starts(minutes)
    count = np.diff(np.r_[first, minutes.size]).astype(np.int64)
    succ = np.add.reduceat(hits.astype(np.int64), first) if first.size else np.zeros(0, np.int64)
    zeros = np.zeros(uniq.size)
    return Columns(day_start + 60 * uniq, count, succ.astype(np.int64), zeros, zeros.copy())


def value_columns(
    day_start: int, minutes: IntArray, values: FloatArray, hits: BoolArray | None = None
) -> Columns:
    """count, sum, sumsq, min, max of the values per minute (a value rollup)."""
    uniq, first = _starts(minutes)
    count = np.diff(np.r_[first, minutes.size]).astype(np.int64)
    if not first.size:
        z = np.zeros(0)
        return Columns(uniq, count, count.copy(), z, z.copy(), z.copy(), z.copy())
    succ = (
        np.add.reduceat(hits.astype(np.int64), first)
        if hits is not None
        else np.zeros(uniq.size, dtype=np.int64)
    )
    return Columns(
        day_start + 60 * uniq,
        count,
        succ.astype(np.int64),
        np.add.reduceat(values, first),
        np.add.reduceat(values * values, first),
        np.minimum.reduceat(values, first),
        np.maximum.reduceat(values, first),
    )


def beta_params(mean: FloatArray, sd: float) -> tuple[FloatArray, FloatArray]:
    """Beta(a, b) with the given means and sd (sd capped so that a, b > 0)."""
    m = np.clip(mean, 1e-4, 1 - 1e-4)
    var = np.minimum(sd * sd, m * (1 - m) * 0.95)
    conc = m * (1 - m) / var - 1.0
    return m * conc, (1 - m) * conc


def day_rate_factor(rng: np.random.Generator, mean: float, rel_sd: float) -> float:
    """The day's rate over the workflow mean: Beta(mean, rel_sd x mean) / mean (1 if iid)."""
    if rel_sd <= 0 or not 0 < mean < 1:
        return 1.0
    a, b = beta_params(np.array([mean]), rel_sd * mean)
    return float(rng.beta(a[0], b[0])) / mean


def volume_shape(profile: WorkflowProfile, day_start: int) -> FloatArray:
    """Relative intensity per UTC minute of the day: plateau 8-18 h local, weekends low."""
    t = day_start + 60.0 * np.arange(MINUTES)
    local = t + profile.utc_offset_h * 3600.0
    hour: FloatArray = np.asarray((local % DAY) / 3600.0, dtype=np.float64)
    # logistic edges at 8 h and 18 h local, ~0.7 h wide: a smooth business-hours plateau
    day_part = 1.0 / (1.0 + np.exp(-(hour - 8.0) / 0.7)) / (1.0 + np.exp(-(18.0 - hour) / 0.7))
    shape = profile.night_floor + (1.0 - profile.night_floor) * day_part
    weekday = (np.floor(local / DAY).astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    return np.asarray(shape * np.where(weekday >= 5, profile.weekend_factor, 1.0), np.float64)


def _weekday_total(profile: WorkflowProfile) -> float:
    """Sum of the plateau shape over a weekday (normalises ``runs_per_day``)."""
    flat = replace(profile, weekend_factor=1.0)
    return float(volume_shape(flat, 0).sum())


@dataclass(slots=True)
class DayDraws:
    """Everything one workflow did in one UTC day, event by event (sorted by minute)."""

    day_start: int
    run_minute: IntArray
    run_status: npt.NDArray[np.int8]  # 0 ok, 1 error, 2 timeout
    run_retries: IntArray
    run_latency: FloatArray
    run_grounded: FloatArray  # nan when not scored (runs that did not succeed)
    run_confidence: FloatArray
    run_validation_failed: BoolArray
    run_escalated: BoolArray
    run_action: BoolArray
    run_input_tokens: IntArray
    run_output_tokens: IntArray
    run_cost: FloatArray
    run_team: IntArray
    run_user: IntArray
    review_minute: IntArray
    review_decision: npt.NDArray[np.int8]  # 0 approved, 1 edited, 2 rejected
    review_edit_ratio: FloatArray  # nan for rejected
    review_ms: FloatArray
    review_time_saved: FloatArray
    review_user: IntArray
    users_by_minute: IntArray  # distinct users with an event up to the end of each minute


def _poisson_minutes(rng: np.random.Generator, intensity: FloatArray) -> IntArray:
    counts = rng.poisson(intensity)
    return np.repeat(np.arange(MINUTES, dtype=np.int64), counts)


def _lognormal(
    rng: np.random.Generator, median: FloatArray, sigma: float, offset: float
) -> FloatArray:
    return np.asarray(np.exp(np.log(median) + offset + sigma * rng.standard_normal(median.size)))


def draw_day(profile: WorkflowProfile, day: int, start: float, seed: int) -> DayDraws:
    """One workflow's day, from its own random stream (seed, profile seed, day)."""
    rng = np.random.default_rng([seed, profile.seed, day])
    p = profile
    day_start = int(start) + day * DAY
    shape = volume_shape(p, day_start)
    norm = _weekday_total(p)
    vol = rng.gamma(1 / p.volume_day_cv**2, p.volume_day_cv**2) if p.volume_day_cv > 0 else 1.0
    run_minute = _poisson_minutes(rng, shape * (p.runs_per_day * vol / norm))
    review_minute = _poisson_minutes(rng, shape * (p.reviews_per_day * vol / norm))
    t_run: FloatArray = np.asarray(day_start + 60.0 * run_minute, dtype=np.float64)
    t_rev: FloatArray = np.asarray(day_start + 60.0 * review_minute, dtype=np.float64)
    n, m = run_minute.size, review_minute.size

    def rate(name: str, t: FloatArray) -> FloatArray:
        factor = day_rate_factor(rng, float(getattr(p, name)), p.rate_day_rel_sd)
        return np.asarray(np.clip(p.level(name, t) * factor, 0.0, 0.999))

    def score(name: str, sd: float, t: FloatArray) -> FloatArray:
        mean = p.level(name, t) + rng.normal(0.0, p.score_day_sd * sd)
        a, b = beta_params(mean, sd)
        return np.asarray(rng.beta(a, b), dtype=np.float64)

    # users active today, picked with a skewed (Zipf-like) weight
    weekend = ((day_start + p.utc_offset_h * 3600 + DAY / 2) // DAY + 3) % 7 >= 5
    active_p = p.user_active_weekend if weekend else p.user_active_weekday
    active = np.flatnonzero(rng.random(p.users) < active_p)
    if active.size == 0:
        active = np.array([int(rng.integers(p.users))])
    weights = 1.0 / (active + 1.0) ** 0.8
    weights /= weights.sum()
    run_user = rng.choice(active, size=n, p=weights).astype(np.int64)
    review_user = rng.choice(active, size=m, p=weights).astype(np.int64)
    team_of = np.arange(p.users, dtype=np.int64) % len(p.teams)

    # runs
    u = rng.random(n)
    err, tmo = rate("error_rate", t_run), rate("timeout_rate", t_run)
    status = np.where(u < err, 1, np.where(u < err + tmo, 2, 0)).astype(np.int8)
    ok = status == 0
    retried = rng.random(n) < rate("retry_rate", t_run)
    retries = np.where(retried, rng.geometric(0.6, size=n), 0).astype(np.int64)
    latency = _lognormal(
        rng, p.level("latency_median_ms", t_run), p.latency_sigma, rng.normal(0, p.log_day_sd)
    )
    latency = np.where(status == 2, TIMEOUT_MS, np.minimum(latency, TIMEOUT_MS))
    grounded = np.where(ok, score("groundedness", p.groundedness_sd, t_run), np.nan)
    confidence = np.where(ok, score("confidence", p.confidence_sd, t_run), np.nan)
    validation_failed = rng.random(n) < rate("validation_fail_rate", t_run)
    escalated = rng.random(n) < rate("escalation_rate", t_run)
    action = rng.random(n) < p.action_share
    tok_off = rng.normal(0, p.log_day_sd)
    tin = np.maximum(
        1,
        np.rint(
            _lognormal(rng, p.level("input_tokens_median", t_run), p.input_tokens_sigma, tok_off)
        ),
    ).astype(np.int64)
    tout = np.maximum(
        1,
        np.rint(
            _lognormal(rng, p.level("output_tokens_median", t_run), p.output_tokens_sigma, tok_off)
        ),
    ).astype(np.int64)
    cost = tin * p.level("usd_per_input_token", t_run) + tout * p.level(
        "usd_per_output_token", t_run
    )

    # reviews
    v = rng.random(m)
    edit = rate("edit_rate", t_rev)
    reject = edit * np.clip(p.level("reject_share", t_rev), 0.0, 1.0)
    decision = np.where(v < reject, 2, np.where(v < edit, 1, 0)).astype(np.int8)
    edited_ratio = score("edit_ratio", p.edit_ratio_sd, t_rev)
    edit_ratio = np.where(decision == 0, 0.0, np.where(decision == 1, edited_ratio, np.nan))
    review_ms = _lognormal(
        rng, np.full(m, p.review_ms_median), p.review_ms_sigma, rng.normal(0, p.log_day_sd)
    )
    saved = _lognormal(rng, np.full(m, p.time_saved_median_s), p.time_saved_sigma, 0.0)
    time_saved = np.where(decision == 0, saved, np.where(decision == 1, 0.5 * saved, -0.2 * saved))

    # distinct users so far, per minute (the store's actors table, by UTC day)
    minutes = np.r_[run_minute, review_minute]
    users = np.r_[run_user, review_user]
    first_minute = np.full(p.users, MINUTES, dtype=np.int64)
    np.minimum.at(first_minute, users, minutes)
    seen = np.bincount(first_minute[first_minute < MINUTES], minlength=MINUTES)
    return DayDraws(
        day_start=day_start,
        run_minute=run_minute,
        run_status=status,
        run_retries=retries,
        run_latency=latency,
        run_grounded=grounded,
        run_confidence=confidence,
        run_validation_failed=validation_failed & ok,
        run_escalated=escalated & ok,
        run_action=action,
        run_input_tokens=tin,
        run_output_tokens=tout,
        run_cost=cost,
        run_team=team_of[run_user],
        run_user=run_user,
        review_minute=review_minute,
        review_decision=decision,
        review_edit_ratio=edit_ratio,
        review_ms=review_ms,
        review_time_saved=time_saved,
        review_user=review_user,
        users_by_minute=np.cumsum(seen).astype(np.int64),
    )


def day_columns(
    profile: WorkflowProfile, d: DayDraws, wanted: Collection[str] | None = None
) -> dict[str, Columns]:
    """The day's rollups per signal, as ``monitor.batch.rollups`` computes them."""
    out: dict[str, Columns] = {}
    ds, rm, vm = d.day_start, d.run_minute, d.review_minute

    def want(signal: str) -> bool:
        return wanted is None or signal in wanted

    ok = d.run_status == 0
    if want(sig.RUNS):
        out[sig.RUNS] = rate_columns(ds, rm, ok)
    if want(sig.ERRORS):
        out[sig.ERRORS] = rate_columns(ds, rm, d.run_status == 1)
    if want(sig.TIMEOUTS):
        out[sig.TIMEOUTS] = rate_columns(ds, rm, d.run_status == 2)
    if want(sig.RETRIES):
        out[sig.RETRIES] = value_columns(ds, rm, d.run_retries.astype(float), d.run_retries > 0)
    if want(sig.LATENCY_MS):
        out[sig.LATENCY_MS] = value_columns(ds, rm, d.run_latency)
    if want(sig.GROUNDEDNESS):
        out[sig.GROUNDEDNESS] = value_columns(ds, rm[ok], d.run_grounded[ok])
    if want(sig.CONFIDENCE):
        out[sig.CONFIDENCE] = value_columns(ds, rm[ok], d.run_confidence[ok])
    if want(sig.VALIDATION_FAILED):
        out[sig.VALIDATION_FAILED] = rate_columns(ds, rm[ok], d.run_validation_failed[ok])
    if want(sig.ESCALATED):
        out[sig.ESCALATED] = rate_columns(ds, rm[ok], d.run_escalated[ok])
    action = sig.ACTION_ERRORS_PREFIX + ACTION
    if want(action):
        out[action] = rate_columns(ds, rm[d.run_action], ~ok[d.run_action])
    for i, team in enumerate(profile.teams):
        name = sig.TEAM_RUNS_PREFIX + team
        if want(name):
            mine = d.run_team == i
            out[name] = rate_columns(ds, rm[mine], ok[mine])
    if want(sig.SPEND_USD):
        out[sig.SPEND_USD] = value_columns(ds, rm, d.run_cost)
    if want(sig.TOKENS):
        tokens = (d.run_input_tokens + d.run_output_tokens).astype(float)
        out[sig.TOKENS] = value_columns(ds, rm, tokens)
    dec = d.review_decision
    if want(sig.EDITED):
        out[sig.EDITED] = rate_columns(ds, vm, dec != 0)
    if want(sig.REJECTED):
        out[sig.REJECTED] = rate_columns(ds, vm, dec == 2)
    if want(sig.APPROVED):
        out[sig.APPROVED] = rate_columns(ds, vm, dec == 0)
    if want(sig.EDIT_RATIO):
        has = ~np.isnan(d.review_edit_ratio)
        out[sig.EDIT_RATIO] = value_columns(ds, vm[has], d.review_edit_ratio[has])
    if want(sig.REVIEW_MS):
        out[sig.REVIEW_MS] = value_columns(ds, vm, d.review_ms)
    if want(sig.TIME_SAVED_S):
        out[sig.TIME_SAVED_S] = value_columns(ds, vm, d.review_time_saved)
    return {s: c for s, c in out.items() if c.bucket.size}


@dataclass(slots=True)
class _Day:
    columns: dict[str, Columns]
    users_by_minute: IntArray
    rows: list[Rollup]  # every signal's rollups, ascending bucket (stable by signal)
    buckets: IntArray  # the rows' buckets, for slicing by time


def _day_rows(workflow: str, columns: Mapping[str, Columns]) -> tuple[list[Rollup], IntArray]:
    rows: list[Rollup] = []
    buckets: list[IntArray] = []
    for signal, cols in columns.items():
        rows.extend(cols.rows(workflow, signal, -(2**62), 2**62))
        buckets.append(cols.bucket)
    if not rows:
        return rows, np.zeros(0, dtype=np.int64)
    flat = np.concatenate(buckets)
    order = np.argsort(flat, kind="stable")
    return [rows[i] for i in order.tolist()], flat[order]


@dataclass
class TrafficSim:
    """A fleet of workflows from ``start``; days are drawn lazily and the last few kept.

    ``signals`` restricts the emitted rollups (None: all), e.g. a delay benchmark that only
    watches one chart; the draws, and so the emitted values, do not depend on it.
    """

    profiles: Sequence[WorkflowProfile]
    start: float = START
    seed: int = 0
    signals: frozenset[str] | None = None
    keep_days: int = 2
    _days: dict[tuple[str, int], _Day] = field(default_factory=dict)
    _users: dict[str, dict[int, int]] = field(default_factory=dict)  # wf -> day -> users
    _iso: dict[int, str] = field(default_factory=dict)  # day index -> "YYYY-MM-DD"

    def __post_init__(self) -> None:
        names = [p.name for p in self.profiles]
        if len(set(names)) != len(names):
            raise ValueError("TrafficSim: workflow names must be unique")
        if self.start % DAY:
            raise ValueError(f"TrafficSim.start must be a UTC midnight, got {self.start!r}")
        self._by_name = {p.name: p for p in self.profiles}

    def draws(self, workflow: str, day: int) -> DayDraws:
        """The raw events of one workflow-day (for tests and event export)."""
        return draw_day(self._by_name[workflow], day, self.start, self.seed)

    def _day(self, profile: WorkflowProfile, day: int) -> _Day:
        key = (profile.name, day)
        found = self._days.get(key)
        if found is None:
            d = self.draws(profile.name, day)
            cols = day_columns(profile, d, self.signals)
            rows, buckets = _day_rows(profile.name, cols)
            found = self._days[key] = _Day(cols, d.users_by_minute, rows, buckets)
            self._users.setdefault(profile.name, {})[day] = int(d.users_by_minute[-1])
            for old in [
                k for k in self._days if k[0] == profile.name and k[1] < day - self.keep_days
            ]:
                del self._days[old]
        return found

    def _day_range(self, start: float, end: float) -> range:
        return range(int((start - self.start) // DAY), math.ceil((end - self.start) / DAY))

    def rollups(self, start: float, end: float) -> dict[RollupKey, list[Rollup]]:
        """Every rollup with ``start <= bucket < end`` (what a pass at ``end`` reads new)."""
        out: dict[RollupKey, list[Rollup]] = {}
        lo, hi = int(start), int(end)
        for day in self._day_range(start, end):
            if day < 0:
                continue
            for p in self.profiles:
                found = self._day(p, day)
                a, b = np.searchsorted(found.buckets, [lo, hi]).tolist()
                for r in found.rows[a:b]:
                    key = (r.workflow, r.signal)
                    got = out.get(key)
                    if got is None:
                        out[key] = [r]
                    else:
                        got.append(r)
        return out

    def count(self, workflow: str, signal: str, start: float, end: float) -> int:
        """Observations of ``signal`` with ``start <= bucket < end``."""
        total = 0
        for day in self._day_range(start, end):
            cols = self._day(self._by_name[workflow], day).columns.get(signal)
            if cols is not None:
                a, b = np.searchsorted(cols.bucket, [int(start), int(end)])
                total += int(cols.count[a:b].sum())
        return total

    def model_versions(self, now: float) -> dict[str, list[str]]:
        """``detection_store.load_versions`` at ``now``: every label seen so far."""
        return {p.name: p.labels_at(now) for p in self.profiles if now > self.start}

    def active_users(self, now: float, days: int = 35) -> dict[str, dict[str, int]]:
        """``detection_store.load_active_users`` at ``now`` (today so far included)."""
        today = int((now - self.start) // DAY)
        out: dict[str, dict[str, int]] = {}
        for p in self.profiles:
            per: dict[str, int] = {}
            for day in range(max(0, today - days), today + 1):
                if day == today:
                    minute = int((now - self.start - day * DAY) // 60) - 1
                    if minute < 0:
                        continue
                    users = int(self._day(p, day).users_by_minute[minute])
                else:
                    known = self._users.get(p.name, {}).get(day)
                    users = (
                        known
                        if known is not None
                        else int(self.draws(p.name, day).users_by_minute[-1])
                    )
                if users:
                    iso = self._iso.get(day)
                    if iso is None:
                        iso = self._iso[day] = _iso_day(self.start + day * DAY)
                    per[iso] = users
            if per:
                out[p.name] = per
        return out

    def events(self, workflow: str, day: int, start: float, end: float) -> list[Any]:
        """The same draws as ``collectors.events`` Run/Review objects (tests; slow)."""
        from collectors.events import Review, Run

        p = self._by_name[workflow]
        d = self.draws(workflow, day)
        model, rest = p.model_label.split("@", 1)
        version, prompt = rest.split("/", 1)
        out: list[Any] = []
        statuses: tuple[Literal["ok", "error", "timeout"], ...] = ("ok", "error", "timeout")
        decisions: tuple[Literal["approved", "edited", "rejected"], ...] = (
            "approved",
            "edited",
            "rejected",
        )
        for i in range(d.run_minute.size):
            ts = d.day_start + 60.0 * int(d.run_minute[i]) + 1.0
            if not start <= ts < end:
                continue
            ok = d.run_status[i] == 0
            out.append(
                Run(
                    id=f"{workflow}-r{day}-{i}",
                    workflow=workflow,
                    ts=ts,
                    team=p.teams[int(d.run_team[i])],
                    user=f"u{int(d.run_user[i])}",
                    status=statuses[int(d.run_status[i])],
                    retries=int(d.run_retries[i]),
                    latency_ms=float(d.run_latency[i]),
                    action=ACTION if d.run_action[i] else None,
                    model=model,
                    model_version=version,
                    prompt_version=prompt,
                    groundedness=float(d.run_grounded[i]) if ok else None,
                    confidence=float(d.run_confidence[i]) if ok else None,
                    validation=("failed" if d.run_validation_failed[i] else "passed")
                    if ok
                    else None,
                    escalated=bool(d.run_escalated[i]) if ok else None,
                    input_tokens=int(d.run_input_tokens[i]),
                    output_tokens=int(d.run_output_tokens[i]),
                    cost_usd=float(d.run_cost[i]),
                )
            )
        for i in range(d.review_minute.size):
            ts = d.day_start + 60.0 * int(d.review_minute[i]) + 2.0
            if not start <= ts < end:
                continue
            ratio = float(d.review_edit_ratio[i])
            out.append(
                Review(
                    id=f"{workflow}-v{day}-{i}",
                    workflow=workflow,
                    ts=ts,
                    user=f"u{int(d.review_user[i])}",
                    decision=decisions[int(d.review_decision[i])],
                    edit_ratio=None if math.isnan(ratio) else ratio,
                    review_ms=float(d.review_ms[i]),
                    time_saved_s=float(d.review_time_saved[i]),
                )
            )
        return out


def _iso_day(t: float) -> str:
    return dt.datetime.fromtimestamp(t, tz=dt.UTC).date().isoformat()


def healthy_fleet(n: int, seed: int, prefix: str = "wf") -> list[WorkflowProfile]:
    """``n`` stationary workflows whose means, volumes, teams and time zones differ."""
    rng = np.random.default_rng([seed, 0xF1EE7])
    offsets = (-8.0, -5.0, 0.0, 1.0, 5.5, 8.0)
    team_sets = (("billing", "ops"), ("billing", "ops", "support"), ("sales", "support", "legal"))
    out = []
    for i in range(n):
        out.append(
            WorkflowProfile(
                name=f"{prefix}-{i:03d}",
                seed=i,
                runs_per_day=float(1_000 * rng.lognormal(0, 0.25)),
                reviews_per_day=float(1_000 * rng.lognormal(0, 0.25)),
                utc_offset_h=float(rng.choice(offsets)),
                edit_rate=float(rng.uniform(0.12, 0.28)),
                error_rate=float(rng.uniform(0.005, 0.02)),
                timeout_rate=float(rng.uniform(0.002, 0.01)),
                retry_rate=float(rng.uniform(0.03, 0.08)),
                groundedness=float(rng.uniform(0.80, 0.90)),
                confidence=float(rng.uniform(0.75, 0.85)),
                latency_median_ms=float(rng.uniform(600, 2_500)),
                latency_sigma=float(rng.uniform(0.5, 1.0)),
                input_tokens_sigma=float(rng.uniform(0.5, 1.0)),
                output_tokens_sigma=float(rng.uniform(0.5, 1.0)),
                teams=team_sets[int(rng.integers(len(team_sets)))],
                users=int(rng.integers(20, 60)),
            )
        )
    return out


def signal_of(param: str) -> str:
    """The rollup signal whose observations a parameter change moves."""
    return PARAM_SIGNAL[param]
