"""Run one signal's chart set on its rollups: learn the baseline, calibrate to the budget,
update, judge, and say why.

Shared by every signal family. State: :class:`detectors.signal_state.SignalState` (JSON-safe),
one per (workflow, signal, "cusum").

The rules (README "How verdicts are made"):

* **Learning.** Without a declared or windowed baseline the chart learns one (see
  detectors.config for how long). A change inside the learning period (the best split
  between 15-minute chunks beyond 3.5 standard errors, allowing for day-to-day variation) is not
  learned as normal: a change for the worse keeps the part before it as the baseline and
  replays the part after it into the charts (it alarms); a change for the better learns
  on from the part after it.
* **Budget.** The charts' thresholds come from the workflow's false-alarm budget, the
  number of charts of the workflow and this signal's own observations per day
  (detectors.config), calibrated over the uncertainty of the baseline and the signal's
  day-to-day variation (detectors.stats.mixture). Recalibrated when the observation rate,
  the chart count or the variation move the target past a step of the grid (x1.41 for the
  ARL0, x1.19 for the spread), keeping the statistics.
* **Status.** UNKNOWN while learning and whenever the recent window (``window_s``, 1 h)
  holds no observation of the signal (a critical needs present evidence). CRITICAL from a
  live crossing (a bucket at most ``live_s`` old and not in the future) until the data
  shows recovery (detectors.charts); WARN above the WARN level (its own budget) with
  hysteresis; else OK.
* **Versions.** A new model/prompt version is watched against the previous version's
  baseline while its own is learned; the new baseline is adopted once learned, unless the
  chart is in alarm (a drop that came with the version is never learned as normal).

Example (an edit rate declared at 0.20 jumps to 0.45 after a day; passes every 5 minutes):
    >>> from detectors.baseline import Baseline
    >>> from detectors.config import DetectionConfig
    >>> spec, day, cfg = SignalSpec("edited", "rate", "up"), 86_400, DetectionConfig()
    >>> declared = Baseline("rate", 0.2, None, None, "declared")
    >>> def edits(minute):  # one review a minute: 1 in 5 edited, then 9 in 20
    ...     return int(minute % 5 == 0) if minute < 1440 else int(minute % 20 < 9)
    >>> state, seen = {}, []
    >>> for t in range(300, day + 4 * 3600, 300):
    ...     ups = [Rollup("wf", "edited", 60 * m, 1, edits(m)) for m in range(t // 60 - 5, t // 60)]
    ...     f, state = run_chart("wf", spec, ups, state, cfg, t, declared)
    ...     seen.append((t, f.status.value))
    >>> sorted({s for t, s in seen if t <= day})
    ['ok']
    >>> first = next(t for t, s in seen if s == "critical")
    >>> day < first < day + 3 * 3600, f.status.value, day <= f.since < first
    (True, 'critical', True)
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from detectors.baseline import (
    DOUBT_Z,
    MAX_SAMPLES,
    SPLIT_Z,
    Baseline,
    BaselineLearner,
    Direction,
    Kind,
    Learning,
)
from detectors.charts import Calibration, ChartSet, SubChart, members
from detectors.config import DetectionConfig
from detectors.dispersion import MIN_DAY_OBS
from detectors.signal_state import Budget, DayRef, Sample, SignalState, Totals, WindowBucket
from detectors.stats.dist import binom_cdf, binom_sf, norm_cdf, norm_sf
from detectors.stats.mixture import mean_chart_arl
from detectors.stats.window import (
    Alternative,
    TestResult,
    summary_from_moments,
    two_proportion_z,
    welch_t_summary,
)
from detectors.types import Finding, Rollup, Status

DETECTOR = "cusum"
DAY = 86_400
_BATCHES = (64, 32, 16, 8)
_KEEP_SIZES = 100  # recent rollup sizes kept to choose the calibration bucket size
_KEEP_DAYS = 35
_RESERVED_SHARES = 2  # budget shares kept for burn-rate and adoption rules
_MIN_SAMPLES = 50  # empirical bucket means needed before a mean chart uses them
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


def _grid_up(x: float, step: float) -> float:
    """``x`` rounded up to the grid ``step**j``: thresholds move in steps, not every pass."""
    if x <= 0:
        return 0.0
    return float(step ** math.ceil(math.log(x) / math.log(step) - 1e-9))


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


def needed_obs(kind: Kind, n: int, total: float, config: DetectionConfig) -> int:
    """Observations the learning period needs, given what it has seen so far.

    A rate needs its standard error within ``learn_rate_rel_se`` of itself: ``(1-p) /
    (p rel_se^2)`` (a 1 % error rate: 2,475 runs; with no event yet, as for a rate of
    ``1/n``), at least ``learn_rate_obs``, at most ``learn_rate_max_obs``. What is left of
    the uncertainty goes into the threshold (and the baseline is refined over days)."""
    if kind == "mean":
        return config.learn_mean_obs
    p = total / n if n and total > 0 else 1.0 / max(n, 1)
    p = min(max(p, 1e-9), 0.5)  # a high rate is as hard as its complement
    want = (1.0 - p) / (p * config.learn_rate_rel_se**2)
    return int(min(max(want, config.learn_rate_obs), config.learn_rate_max_obs))


def _spread(st: SignalState, now: float, config: DetectionConfig) -> float:
    """Uncertainty of the in-control level: the baseline's standard error (learned) and the
    day-to-day variation, on the rate scale or in sd units for a mean."""
    b = st.baseline
    assert b is not None
    tau = st.day_sd(now, config)
    # a learned baseline carries the day effects of the days it was learned on
    tau_base = tau / math.sqrt(max(st.base_days, 1)) if b.samples else 0.0
    if st.kind == "rate":
        p = min(max(b.value, 1e-6), 1 - 1e-6)
        se = math.sqrt(p * (1 - p) / b.samples) if b.samples else 0.0
        return math.sqrt(se**2 + tau**2 + tau_base**2)
    sd = b.sd or 0.0
    se = 1.0 / math.sqrt(b.samples) if b.samples else 0.0
    rel = tau / sd if sd > 0 else 0.0
    rel_base = tau_base / sd if sd > 0 else 0.0
    return math.sqrt(se**2 + rel**2 + rel_base**2)


BASE_CHECKPOINTS = (3, 7, 14)  # days after which a learned baseline is refined


def chart_budget(config: DetectionConfig, workflow: str, charts: int, per_day: float) -> Budget:
    """Per-chart in-control ARL (observations) from the workflow's monthly budget."""
    total = config.budget_for(workflow)
    share = total / (max(charts, 1) + _RESERVED_SHARES)
    arl0 = max(config.arl0, 30.0 * max(per_day, 1.0) / share)
    return Budget(total, charts, per_day, _grid_up(arl0, math.sqrt(2.0)))


def _sd_of(b: Baseline) -> float:
    return b.sd if b.sd and b.sd > 0 else max(abs(b.value) * 1e-3, 1e-9)


class _Run:
    """One pass of one signal (keeps ``run_chart`` readable)."""

    def __init__(
        self,
        spec: SignalSpec,
        st: SignalState,
        config: DetectionConfig,
        now: float,
        workflow: str,
        charts: int,
    ) -> None:
        self.spec, self.st, self.config, self.now = spec, st, config, now
        self.workflow, self.charts = workflow, charts
        self.budget: Budget | None = None
        self.late = 0  # observations of this pass too old (or too far ahead) for the charts
        self.doubted = False  # the learning period was found in doubt in this pass

    @property
    def clip(self) -> float | None:
        return self.config.clip if self.spec.robust else None

    def calibration(self) -> Calibration:
        st, cfg = self.st, self.config
        assert st.charts is not None
        per_day = st.rate_per_day(self.now)
        self.budget = budget = chart_budget(cfg, self.workflow, self.charts, per_day)
        # the day chart's ARL0 in days; rounded so a drifting rate estimate does not
        # recalibrate it every pass
        n_members = len(st.charts.members)
        each = budget.arl0 * n_members
        before = st.charts.calibrated_for
        if before and 0.5 < each / before.arl0_each < 2.0:
            each = (
                before.arl0_each
            )  # hysteresis: a rate moving around a grid step keeps its threshold
        spread = _grid_up(_spread(st, self.now, cfg), 2.0**0.25)
        scale = 1.0 if st.kind == "mean" else max(st.baseline.value if st.baseline else 0.0, 1e-6)
        if spread < 1e-3 * scale:
            spread = 0.0
        if before and before.spread / 1.42 < spread <= before.spread:
            # a little less spread keeps the old (safer) threshold: recalibrating every
            # chart each day as the estimate wobbles cost 10-30 s per workflow-day
            spread = before.spread
        # a declared mean collects its sample from live buckets: use it once complete (a
        # growing count would recalibrate every pass)
        full = st.baseline is not None and st.baseline.source == "declared"
        enough = len(st.samples) >= (MAX_SAMPLES if full else _MIN_SAMPLES)
        samples = len(st.samples) if enough else 0
        batch = 1 if samples else design_batch(st.sizes)
        day_arl0 = _grid_up(each / max(per_day, 1.0), 2.0)
        # the day chart is self-starting (signal_state.DayRef): no allowance for the
        # baseline's error (with one, a learned baseline's chart stayed infeasible, or at a
        # threshold of ~390 nats, for its first two weeks)
        return Calibration(each, spread, batch, samples, day_arl0, 0.0)

    def ensure_charts(self) -> None:
        """Charts for the baseline, calibrated for the current budget and spread.

        The calibration's inputs move with complete days (the first day: with the hour),
        so they are looked at once per day (hour) unless the baseline or the sample
        changed: working them out costs ~1.5 ms, a pass of a steady chart ~0.1 ms."""
        st = self.st
        b = st.baseline
        assert b is not None
        if st.charts is None:
            st.charts = ChartSet(members(st.kind, self.spec.direction, b.value))
        today = self.now - self.now % DAY
        young = st.first_seen is None or st.first_seen >= today - DAY
        period = int(self.now // 3600) if young else int(today)
        budget = self.config.budget_for(self.workflow)
        check = (float(period), st.base_days, len(st.samples), b.value, self.charts, budget)
        if st.charts.calibrated_for is not None and st.checked == check:
            self.budget = st.budget
            return
        st.checked = check
        cal = self.calibration()
        st.budget = self.budget
        if st.charts.calibrated_for != cal:
            samples = tuple((int(n), float(z)) for n, z in st.samples) if cal.samples else ()
            st.charts.calibrate(st.kind, b.value, cal, samples, self.clip)

    def live(self, bucket: float) -> bool:
        cfg = self.config
        return self.now - cfg.live_s <= bucket <= self.now + cfg.future_skew_s

    def feed(self, n: int, value: float, end: float, live: bool) -> None:
        st = self.st
        b, charts = st.baseline, st.charts
        assert b is not None and charts is not None
        if st.kind == "rate":
            charts.update_rate(n, int(value), b.value, end)
        else:
            charts.update_mean(n, value / n, b.value, _sd_of(b), self.clip, end)
        charts.judge(end, live, b.value)

    def learning_prior(self, learning: Learning) -> float:
        """Day-level sd two segments of a learning period may differ by without a change:
        a rate may learn over days; within one day its segments share the day's level."""
        total = learning.totals()
        days = {int(c[0]) // DAY for c in learning.chunks}
        if self.st.kind != "rate" or len(days) <= 1 or total.n == 0:
            return 0.0
        return self.config.rate_day_sd_prior * total.total / total.n

    def in_doubt(self, learning: Learning, need: int) -> bool:
        """A learning period whose best split looks like a change (|z| >= 2) but does not
        prove it goes on, up to 3x its length, until the question is settled."""
        if learning.n >= 3 * need:
            return False
        z, _ = learning.best_split(self.learning_prior(learning))
        return DOUBT_Z <= abs(z) < SPLIT_Z

    def start_from(self, learning: Learning, source: str) -> None:
        """Adopt the learning period's baseline; a change inside it is not learned."""
        st = self.st
        cut = learning.split(self.spec.direction, self.learning_prior(learning))
        chunks, replay = learning.chunks, []
        if cut is not None:
            before, after = learning.chunks[:cut], learning.chunks[cut:]
            b_tot = learning.totals(before)
            a_tot = learning.totals(after)
            worse = (a_tot.total / a_tot.n - b_tot.total / b_tot.n) * (
                -1.0 if self.spec.direction == "down" else 1.0
            )
            if worse > 0 or self.spec.direction == "both":
                chunks, replay = before, after
            else:  # better after the change: learn on from there
                st.learning = Learning(learning.kind, [list(c) for c in after], [])
                return
        st.learning = None
        base = learning.totals(chunks)
        st.baseline = base.baseline(source)
        st.base_totals = Totals(float(base.n), base.total, base.total_sq)
        st.base_days = len({int(c[0]) // DAY for c in chunks})
        st.charts, st.day_ref = None, None
        st.version = st.shadow_version or st.version
        if st.kind == "mean":
            mu, sd = st.baseline.value, _sd_of(st.baseline)
            st.samples = [Sample(int(n), (m - mu) / sd) for n, m in learning.thinned(base.n)]
        self.ensure_charts()
        # the part after a change in the learning period, chunk by chunk: it alarms now if
        # the learning period ended on live data
        live = bool(learning.chunks) and self.live(learning.chunks[-1][0] + 3599)
        for c in replay:
            self.feed(int(c[1]), c[2], min(c[0] + 900, self.now), live)


def run_chart(
    workflow: str,
    spec: SignalSpec,
    rollups: Sequence[Rollup],
    state: dict[str, Any],
    config: DetectionConfig,
    now: float,
    fixed_baseline: Baseline | None = None,
    model_version: str | None = None,
    charts: int = 1,
) -> tuple[Finding, dict[str, Any]]:
    """Feed new rollups (deltas, in write order) to the signal's charts and judge it.

    ``fixed_baseline`` (declared or from a named window) replaces learning; when it differs
    from the saved one the charts restart on it. ``charts``: how many charts the workflow
    has (its false-alarm budget is shared among them).
    """
    st = SignalState.from_dict(state, spec.kind) if state else SignalState(spec.kind)
    run = _Run(spec, st, config, now, workflow, charts)
    if fixed_baseline is not None and st.baseline != fixed_baseline:
        st.baseline, st.charts, st.learning, st.shadow = fixed_baseline, None, None, None
        st.day_ref = None
        st.version = model_version
    if (
        st.baseline is not None
        and st.baseline.source != "declared"
        and model_version is not None
        and st.version is not None
        and model_version != st.version
        and st.shadow_version != model_version
        and st.rejected_version != model_version
    ):
        st.shadow, st.shadow_version = Learning.new(spec.kind), model_version
    if st.baseline is None and st.version is None:
        st.version = model_version
    window = [w for w in st.window if w.bucket >= now - config.window_s]
    if st.baseline is not None:
        run.ensure_charts()  # once a pass: the budget and spread move slowly
    for r in rollups:
        if r.count <= 0:
            continue
        value = float(r.successes) if spec.kind == "rate" else r.sum
        st.note(r, value)
        st.sizes.append(r.count)
        if now - config.window_s <= r.bucket <= now + config.future_skew_s:
            window.append(WindowBucket(float(r.bucket), float(r.count), value, r.sumsq))
        if st.baseline is None:
            st.learning = st.learning or Learning.new(spec.kind)
            st.learning.add(r)
            lr = st.learning
            total = lr.totals()
            need = needed_obs(spec.kind, lr.n, total.total, config)
            if lr.n >= need and lr.n >= 2 and not run.doubted:
                # the split scan is O(chunks): once a pass while in doubt, not per rollup
                if run.in_doubt(lr, need):
                    run.doubted = True
                else:
                    run.start_from(lr, "learned")
            continue
        if st.shadow is not None:
            st.shadow.add(r)
        if (
            spec.kind == "mean"
            and st.baseline.source == "declared"
            and len(st.samples) < MAX_SAMPLES
            and st.charts is not None
            and st.charts.episode is None
            and not st.charts.warn
        ):  # the sample describes the in-control shape: not collected during a drift
            st.samples.append(
                Sample(r.count, (r.sum / r.count - st.baseline.value) / _sd_of(st.baseline))
            )
        if not run.live(r.bucket):
            # old (backfill, a backlog after downtime) or future-dated: it feeds the days,
            # the learning and the baseline, never the live charts (a crossing on it would
            # describe the past, and its residue would trip on the next live bucket)
            run.late += r.count
            continue
        if st.charts is None:
            run.ensure_charts()
        run.feed(r.count, value, r.bucket + 60, True)
    st.sizes = st.sizes[-_KEEP_SIZES:]
    st.window = window
    keep_from = now - now % DAY - _KEEP_DAYS * DAY
    st.days = {d: v for d, v in st.days.items() if d >= keep_from}
    st.alarm_days = [d for d in st.alarm_days if d >= keep_from]

    if st.baseline is not None:
        run.ensure_charts()
        _feed_days(run)
        _adopt_shadow(run, model_version)
    if st.charts is not None and st.charts.episode is not None:
        today = int(now - now % DAY)
        if today not in st.alarm_days:
            st.alarm_days.append(today)
    finding = _finding(run, window)
    return finding, st.to_dict()


def _feed_days(run: _Run) -> None:
    """Give each newly completed day to the day-level charts."""
    st, now = run.st, run.now
    b, charts = st.baseline, st.charts
    assert b is not None and charts is not None
    today = int(now - now % DAY)
    done = sorted(d for d, v in st.days.items() if d + DAY <= today and v.n >= MIN_DAY_OBS)
    if st.day_fed is None:
        st.day_fed = today - DAY  # days before the baseline are not compared with it
        return
    if not any(d > st.day_fed for d in done):
        st.day_fed = max(st.day_fed, today - DAY)
        return
    # the day chart's noise IS the day-to-day variation, estimated from few days (+-30 % at
    # 20 days): design for its upper range, not its point estimate (measured: with the point
    # estimate, 1 false day-chart alarm per 3 chart-months on beta-binomial days)
    days = st.complete_days(now)
    n_days = len([d for d in days if d[0] >= MIN_DAY_OBS])
    per_day = st.rate_per_day(now)
    tau = st.day_sd(now, run.config, days) * (1.0 + 1.5 * math.sqrt(2.0 / max(n_days + 1, 2)))
    for d in done:
        if d <= st.day_fed:
            continue
        n, v = st.days[d].n, st.days[d].value
        if st.kind == "rate":
            p = min(max(b.value, 1e-6), 1 - 1e-6)
            var_obs = p * (1 - p)
        else:
            var_obs = _sd_of(b) ** 2
        sd_day = math.sqrt(tau**2 + var_obs / n)
        ref = st.day_ref
        if ref is None and b.samples is not None:  # learned: start from its learning days
            ref = st.day_ref = DayRef(float(max(st.base_days, 1)), b.value * max(st.base_days, 1))
        level = ref.level if ref is not None else b.value
        # the reference's own error: a mean of ``days`` typical days (declared: none)
        ref_var = (tau**2 + var_obs / max(per_day, 1.0)) / ref.days if ref is not None else 0.0
        sd = math.sqrt(sd_day**2 + ref_var)
        charts.update_day(v / n, level, sd, d + DAY)
        charts.judge(d + DAY, run.live(d + DAY - 1), b.value)
        st.day_fed = d
        if ref is not None:
            if charts.episode is not None or d in st.alarm_days:
                ref.drop_pending()
            elif abs(v / n - level) <= _REFINE_Z * sd:
                ref.offer(d, v / n, _DAY_REF_LAG, _DAY_REF_CAP)
        if _refine(run, d):  # new charts: the days after this one start them afresh
            st.day_fed = max(d, today - DAY)
            return
    st.day_fed = max(st.day_fed, today - DAY)


def _refine(run: _Run, day: int) -> bool:
    """Fold a complete in-control day into a learned baseline until it rests on 14 days;
    rebuild the charts at 3, 7 and 14 days (True when rebuilt). A baseline learned in a
    few hours carries that day's own level (edit rates move +-10 % from day to day); the
    charts allow for it until the baseline has seen enough days."""
    st = run.st
    b = st.baseline
    if (
        b is None
        or b.samples is None
        or st.base_days >= BASE_CHECKPOINTS[-1]
        or day in st.alarm_days
        or (st.charts is not None and (st.charts.episode is not None or st.charts.warn))
        or st.base_totals is None
    ):
        return False
    t = st.days[day]
    if t.n < MIN_DAY_OBS:
        return False
    st.base_totals.add(t.n, t.value, t.sumsq)
    st.base_days += 1
    if st.base_days not in BASE_CHECKPOINTS:
        return False
    tot = st.base_totals
    learner = BaselineLearner(st.kind, int(tot.n), tot.value, tot.sumsq)
    st.baseline = learner.baseline(b.source)
    old = st.charts
    st.charts = None
    if st.kind == "mean":
        old_mu, old_sd = b.value, _sd_of(b)
        mu, sd = st.baseline.value, _sd_of(st.baseline)
        st.samples = [Sample(n_, ((old_mu + z * old_sd) - mu) / sd) for n_, z in st.samples]
    run.ensure_charts()
    if old is not None and st.charts is not None:
        # the day member watches the day reference, not this baseline: its evidence stays
        st.charts.keep_day_members(old)
    return True


# A day more than 2.5 sd off the day reference does not join it. (Days far off the
# learned BASELINE are still folded into it at the 3/7/14-day refinements: skipping them
# trapped a baseline learned at half the true rate, whose 3x chart then random-walked
# into 1 false critical a workflow-month in the 100 x 30-day bench.)
_REFINE_Z = 2.5
_DAY_REF_CAP = 28.0  # the day reference follows a slow seasonal move over about 4 weeks
_DAY_REF_LAG = 7  # days before a day joins the day reference (signal_state.DayRef)


def _worse(run: _Run, new: BaselineLearner) -> bool:
    """Is the new version's level worse than the baseline by more than noise (2 standard
    errors of the difference, with the day-to-day variation counted once)?"""
    st, spec = run.st, run.spec
    b = st.baseline
    if b is None or new.n < 2:
        return False
    level = new.total / new.n
    if st.kind == "rate":
        p = min(max(b.value, 1e-6), 1 - 1e-6)
        se2 = p * (1 - p) / new.n + (p * (1 - p) / b.samples if b.samples else 0.0)
    else:
        sd = _sd_of(b)
        se2 = sd * sd / new.n + (sd * sd / b.samples if b.samples else 0.0)
    tau = st.day_sd(run.now, run.config)
    z = (level - b.value) / math.sqrt(se2 + tau * tau)
    if spec.direction == "down":
        z = -z
    elif spec.direction == "both":
        z = abs(z)
    return z > 2.0


def _adopt_shadow(run: _Run, model_version: str | None) -> None:
    """A new version's own baseline replaces the previous version's once learned, unless
    the charts are in alarm (then the drop came with the version: keep comparing)."""
    st = run.st
    lr = st.shadow
    if lr is None or lr.n < 2 or (st.charts is not None and st.charts.episode is not None):
        return
    total = lr.totals()
    if lr.n < needed_obs(st.kind, lr.n, total.total, run.config):
        return
    if (st.charts is not None and st.charts.warn) or _worse(run, total):
        # the new version is worse than the old baseline (or the charts are on their way
        # to an alarm): it is never learned as normal; keep watching it against the old
        # baseline (measured: adopting it hid a 0.20 -> 0.30 drop in 8 of 8 runs)
        st.shadow, st.rejected_version = None, st.shadow_version or model_version
        st.shadow_version = None
        return
    st.shadow = None
    st.baseline = total.baseline("learned")
    st.base_totals = Totals(float(total.n), total.total, total.total_sq)
    st.base_days = len({int(c[0]) // DAY for c in lr.chunks})
    st.version = st.shadow_version or model_version
    st.shadow_version = None
    st.charts = None
    if st.kind == "mean":
        mu, sd = st.baseline.value, _sd_of(st.baseline)
        st.samples = [Sample(int(n), (m - mu) / sd) for n, m in lr.thinned()]
    st.day_fed, st.day_ref = None, None
    run.ensure_charts()


def _delay_at(run: _Run, m: SubChart, observed: float | None) -> float | None:
    """Expected delay (observations) of member ``m`` at the observed level, if computable."""
    b = run.st.baseline
    if observed is None or b is None or m.scale != "obs":
        return None
    try:
        if m.rate is not None:
            p = min(max(observed, 1e-6), 1 - 1e-6)
            return round(m.rate.arl(p), 1)
        if m.mean is not None:
            offset = m.sign * (observed - b.value) / _sd_of(b)
            samples = tuple((int(n), m.sign * z) for n, z in run.st.samples)
            return round(
                mean_chart_arl(m.mean, offset, samples if len(samples) >= _MIN_SAMPLES else ()), 1
            )
    except (ValueError, ArithmeticError, OverflowError):
        return None
    return None


def _finding(run: _Run, window: list[WindowBucket]) -> Finding:
    st, config, now, spec = run.st, run.config, run.now, run.spec
    n_w = int(sum(w.n for w in window))
    v_w = sum(w.value for w in window)
    sq_w = sum(w.sumsq for w in window)
    value = v_w / n_w if n_w else None
    finding = Finding(
        workflow=run.workflow,
        signal=spec.signal,
        detector=DETECTOR,
        status=Status.UNKNOWN,
        value=value,
        window=iso_window(now - config.window_s, now),
        samples=n_w,
        evidence={"recent": {"samples": n_w, "value": value, "window_s": config.window_s}},
    )
    ev = finding.evidence
    if st.version:
        ev["model_version"] = st.version
    if st.baseline is None or st.charts is None:
        lr = st.learning
        have = lr.n if lr is not None else 0
        total = lr.totals().total if lr is not None else 0.0
        ev.update(
            {
                "reason": "learning baseline",
                "learned": have,
                "needed": needed_obs(spec.kind, have, total, config),
            }
        )
        return finding
    b, charts = st.baseline, st.charts
    lead = charts.leading()
    finding.baseline = b.value
    ev.update(
        {
            "detector": "cusum_set",
            "baseline_source": "previous_version"
            if st.shadow is not None or st.rejected_version is not None
            else b.source,
            "baseline_samples": b.samples,
            "members": len(charts.members),
            "feasible": sum(1 for m in charts.members if m.ready),
        }
    )
    if b.sd is not None:
        ev["baseline_sd"] = b.sd
    if st.shadow is not None:
        ev["new_version"] = st.shadow_version
        ev["new_version_learned"] = st.shadow.n
    if run.budget is not None:
        ev["budget"] = run.budget.to_dict()
    log_ratio = math.log(config.warn_false_alarms_per_month / config.false_alarms_per_month)
    if lead is not None:
        finding.statistic = round(lead.s * lead.unit, 4)
        finding.threshold = round(lead.threshold * lead.unit, 4)
        ev["design"] = lead.label
        ev["warn_threshold"] = round(lead.warn_level(log_ratio) * lead.unit, 4)
        ev["changepoint"] = lead.zero_at
    if charts.historic_alarm is not None:
        ev["historic_alarm"] = charts.historic_alarm
    if run.late:
        ev["late_observations"] = run.late  # this pass: kept for history, not charted
    if n_w >= max(config.min_window_obs, 1):
        test = _window_test(spec, b, n_w, v_w, sq_w)
        if test is not None:
            finding.p_value = test.p_value
            ev["window_test"] = test.test
    warn = charts.update_warn(log_ratio)
    episode = charts.episode
    if n_w == 0:
        ev["reason"] = "no data in the window"  # a dead feed is not healthy
        if episode is not None:
            ev["episode_start"] = episode.start
        return finding
    if lead is None and episode is None:
        # every member is infeasible: the signal varies from day to day more than any
        # shift the set could detect within the budget, until more days pin the baseline
        # down. A blind chart is not evidence of health (measured: a 0.20 -> 0.35 ramp
        # over 7 days read "ok" for 11 days on 12 %-a-day edit rates).
        ev["reason"] = (
            f"day-to-day variation too large to detect a shift within the budget yet "
            f"(day sd {st.day_sd(now, config):.3g}; baseline on {st.base_days} days)"
        )
        return finding
    if episode is not None:
        finding.status = Status.CRITICAL
        since = episode.changepoint if episode.changepoint is not None else episode.start
        # a change point is a bucket end: the current minute's end lies ahead of the pass
        finding.since = min(since, now)
        ev["episode_start"] = episode.start
        ev["changepoint"] = finding.since
        ev["design"] = episode.label
        crossed = next((m for m in charts.members if m.label == episode.label), lead)
        if crossed is not None:
            ev["expected_delay_obs"] = _delay_at(run, crossed, value)
    elif warn:
        finding.status = Status.WARN
        if lead is not None and lead.zero_at is not None:
            finding.since = min(lead.zero_at, now)
            ev["expected_delay_obs"] = _delay_at(run, lead, value)
    else:
        finding.status = Status.OK
    return finding
