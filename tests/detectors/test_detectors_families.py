"""Signal families: what each one reports on clear, seeded scenarios."""

from __future__ import annotations

import datetime as dt
import doctest
import importlib
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from detectors import adoption, cost, health, quality
from detectors.baseline import MAX_SAMPLES
from detectors.config import DeclaredBaseline, DetectionConfig
from detectors.family import States, WorkflowInput
from detectors.types import Finding, Rollup, Status

HOUR = 3600
DAY = 86_400


def one(findings: list[Finding], signal: str, detector: str = "cusum") -> Finding:
    [f] = [f for f in findings if f.signal == signal and f.detector == detector]
    return f


def values(signal: str, start: int, stop: int, mu: float, sd: float, seed: int) -> list[Rollup]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(start, stop):
        x = rng.normal(mu, sd, 10)
        out.append(Rollup("wf", signal, 60 * i, 10, 0, float(x.sum()), float((x * x).sum())))
    return out


Family = Callable[[WorkflowInput], tuple[list[Finding], States]]


def stream(
    family: Family, rollups: list[Rollup], cfg: DetectionConfig, every: int = 10
) -> list[tuple[float, list[Finding]]]:
    """Passes every ``every`` minutes, each with the rollups of its minutes (the charts see
    only buckets at most ``live_s`` old, as from a daemon); ``(pass time, findings)``."""
    by_minute: dict[int, list[Rollup]] = {}
    for r in rollups:
        by_minute.setdefault(r.bucket // 60, []).append(r)
    states: States = {}
    out = []
    for start in range(0, max(by_minute) + 1, every):
        batch: dict[str, list[Rollup]] = {}
        for m in range(start, start + every):
            for r in by_minute.get(m, []):
                batch.setdefault(r.signal, []).append(r)
        now = 60.0 * (start + every)
        findings, states = family(WorkflowInput("wf", batch, states, cfg, now))
        out.append((now, findings))
    return out


def first_critical(passes: list[tuple[float, list[Finding]]], signal: str) -> float | None:
    return next((t for t, fs in passes if one(fs, signal).status is Status.CRITICAL), None)


# Chart tests below declare their baselines: a learned one is conservative for its first
# days (see test_detectors_engine for learning). A declared value chart calibrates on the
# shape of its first MAX_SAMPLES live buckets, so the changes come after those.
CALM = MAX_SAMPLES + 20  # minutes (one bucket a minute)


def test_groundedness_drop_is_critical_but_a_rise_is_not() -> None:
    # 10 answers a minute, declared 0.85 +- 0.10; after CALM minutes the mean moves 2.5 sd
    # down (0.85 -> 0.60) or 1 sd up (0.85 -> 0.95, which a two-sided chart would flag)
    cfg = DetectionConfig(declared={("*", "groundedness"): DeclaredBaseline(0.85, sd=0.1)})
    change = CALM * 60.0
    calm = values("groundedness", 0, CALM, 0.85, 0.1, 1)
    after = (CALM, CALM + 120)
    down = stream(quality.evaluate, calm + values("groundedness", *after, 0.6, 0.1, 2), cfg)
    up = stream(quality.evaluate, calm + values("groundedness", *after, 0.95, 0.1, 2), cfg)
    assert {one(fs, "groundedness").status for t, fs in down if t <= change} == {Status.OK}
    t_down = first_critical(down, "groundedness")
    assert t_down is not None and change < t_down <= change + 1800
    f_down = one(down[-1][1], "groundedness")
    assert f_down.status is Status.CRITICAL  # and it stays so while the drop lasts
    assert str(f_down.evidence["design"]).startswith("-")  # a falling-side chart crossed
    assert f_down.value is not None and f_down.value < 0.85
    assert {one(fs, "groundedness").status for _, fs in up} == {Status.OK}


def test_error_budget_burn_pages_and_each_action_gets_its_own_chart() -> None:
    cfg = DetectionConfig(slo=0.99)
    errors = [Rollup("wf", "errors", 60 * i, 50, 10) for i in range(60)]  # 20 % errors
    crm = [Rollup("wf", "action_errors.crm_write", 60 * i, 20, 0) for i in range(60)]
    findings, states = health.evaluate(
        WorkflowInput("wf", {"errors": errors, "action_errors.crm_write": crm}, {}, cfg, HOUR)
    )
    burn = one(findings, "errors", "burn_rate")
    assert burn.status is Status.CRITICAL
    assert burn.value == pytest.approx(20.0)
    assert "page_1h" in burn.evidence["fired"]
    # an action that never failed learns until its rate is pinned down: not yet "ok"
    crm_finding = one(findings, "action_errors.crm_write")
    assert crm_finding.status is Status.UNKNOWN
    assert crm_finding.evidence["reason"] == "learning baseline"
    assert ("action_errors.crm_write", "cusum") in states


def test_a_workflow_slo_overrides_the_default_in_burn_rates() -> None:
    # 2 % errors burn a 99 % SLO at 2x (a ticket, no page) but a 99.9 % SLO at 20x (page)
    errors = [Rollup("wf", "errors", 60 * i, 50, 1) for i in range(60)]
    cfg = DetectionConfig(slo=0.99, slo_by_workflow={"wf": 0.999})
    [burn] = [
        f
        for f in health.evaluate(WorkflowInput("wf", {"errors": errors}, {}, cfg, HOUR))[0]
        if f.detector == "burn_rate"
    ]
    assert burn.evidence["slo"] == 0.999
    assert burn.value == pytest.approx(20.0)
    assert burn.status is Status.CRITICAL
    relaxed = DetectionConfig(slo=0.99)
    [burn] = [
        f
        for f in health.evaluate(WorkflowInput("wf", {"errors": errors}, {}, relaxed, HOUR))[0]
        if f.detector == "burn_rate"
    ]
    assert burn.value == pytest.approx(2.0)
    assert burn.status is Status.WARN  # only the slow 3-day ticket rule (1x) fires
    assert burn.evidence["fired"] == ["ticket_3d"]


def test_burn_rate_state_stays_small_over_three_days_and_long_windows_stay_right() -> None:
    cfg = DetectionConfig(slo=0.99)
    minutes = 3 * 1440
    errors = [Rollup("wf", "errors", 60 * i, 10, 1 if i % 10 == 0 else 0) for i in range(minutes)]
    states: dict[tuple[str, str], dict[str, object]] = {}
    for day in range(3):  # three passes, one per day of data
        chunk = errors[day * 1440 : (day + 1) * 1440]
        inp = WorkflowInput("wf", {"errors": chunk}, states, cfg, 60.0 * (day + 1) * 1440)
        findings, states = health.evaluate(inp)
    burn = one(findings, "errors", "burn_rate")
    assert burn.evidence["burn_rates"]["3d"] == pytest.approx(1.0)  # 1 % errors, 1 % budget
    assert burn.evidence["burn_rates"]["1d"] == pytest.approx(1.0)
    assert burn.evidence["burn_rates"]["6h"] == pytest.approx(1.0)
    # exactly on budget for 3 days is not significantly over it: no ticket (the evidence
    # rule in detectors.stats.burn_rate; the workbook's point estimate alone fired ticket_3d)
    assert burn.status is Status.OK
    assert burn.evidence["decisions"]["ticket_3d"] == "quiet"
    buckets = states[("errors", "burn_rate")]["buckets"]
    assert isinstance(buckets, list) and len(buckets) <= 6 * 60 + 3 * 24


def test_burn_rate_state_saved_by_an_older_version_is_read_the_same() -> None:
    cfg = DetectionConfig(slo=0.99)
    errors = [Rollup("wf", "errors", 60 * i, 10, i % 3) for i in range(600)]
    _, states = health.evaluate(WorkflowInput("wf", {"errors": errors[:500]}, {}, cfg, 30_000.0))
    rows = states[("errors", "burn_rate")]["buckets"]
    old = {("errors", "burn_rate"): {"buckets": {str(b): [n, k] for b, n, k in rows}}}
    tail = {"errors": errors[500:]}
    new_fs, new_states = health.evaluate(WorkflowInput("wf", tail, states, cfg, 36_000.0))
    old_fs, old_states = health.evaluate(WorkflowInput("wf", tail, old, cfg, 36_000.0))
    burn_new, burn_old = one(new_fs, "errors", "burn_rate"), one(old_fs, "errors", "burn_rate")
    assert burn_old.evidence["burn_rates"] == burn_new.evidence["burn_rates"]
    # 10 % errors page on the 6 h rule: the finding rests on its 6 h window (3,600 runs)
    assert burn_new.evidence["rule"] == "page_6h"
    assert burn_old.samples == burn_new.samples == 3600
    assert old_states[("errors", "burn_rate")] == new_states[("errors", "burn_rate")]


def _reference_burn_buckets(
    saved: dict[int, list[int]], rollups: list[Rollup], now: float
) -> dict[int, list[int]]:
    """The plain per-bucket merge and hour folding the incremental one must equal."""
    merged = {b: list(v) for b, v in saved.items()}
    for r in rollups:
        acc = merged.setdefault(r.bucket, [0, 0])
        acc[0] += r.count
        acc[1] += r.successes
    cut = int(now - 6 * HOUR)
    cut -= cut % HOUR
    out: dict[int, list[int]] = {}
    for b, (n, k) in merged.items():
        if b >= now - 3 * DAY:
            acc = out.setdefault(b if b >= cut else b - b % HOUR, [0, 0])
            acc[0] += n
            acc[1] += k
    return out


@hyp_settings(max_examples=60, deadline=None)
@given(
    length=st.integers(1, 5 * 1440),
    late=st.lists(st.tuples(st.integers(0, 5 * 1440), st.integers(0, 5 * 1440)), max_size=20),
    passes=st.lists(st.integers(1, 2000), min_size=1, max_size=12),
)
def test_burn_rate_buckets_merge_like_a_plain_per_bucket_sum(
    length: int, late: list[tuple[int, int]], passes: list[int]
) -> None:
    cfg = DetectionConfig(slo=0.99)
    # two deltas a minute (a pass may fall between them), and some rollups arriving late
    minutes = [m for m in range(length) for _ in range(2)]
    for at, m in late:
        minutes.insert(at, m)
    stream = [Rollup("wf", "errors", 60 * m, 1 + m % 7, m % 2) for m in minutes]
    states: dict[tuple[str, str], dict[str, object]] = {}
    reference: dict[int, list[int]] = {}
    now, i = 0.0, 0
    for step in passes:  # late buckets too: the stream is not sorted
        batch, i = stream[i : i + step], i + step
        now = max([now, *(r.bucket + 60.0 for r in batch)])
        _, states = health.evaluate(WorkflowInput("wf", {"errors": batch}, states, cfg, now))
        reference = _reference_burn_buckets(reference, batch, now)
        rows = states[("errors", "burn_rate")]["buckets"]
        assert {b: [n, k] for b, n, k in rows} == reference  # type: ignore[attr-defined]
        assert [b for b, _, _ in rows] == sorted(reference)  # type: ignore[attr-defined]


def test_each_action_gets_its_own_error_chart() -> None:
    # 20 calls a minute per action at 5 % failures (declared for every action); at 6 h the
    # CRM write starts failing 1 in 5, the ticket action stays as it was
    rng = np.random.default_rng(7)
    cfg = DetectionConfig(
        declared={
            ("*", "action_errors.crm_write"): DeclaredBaseline(0.05),
            ("*", "action_errors.ticket"): DeclaredBaseline(0.05),
        }
    )
    change = 360

    def calls(action: str, bad_after: bool) -> list[Rollup]:
        return [
            Rollup(
                "wf",
                f"action_errors.{action}",
                60 * i,
                20,
                int(rng.binomial(20, 0.2 if bad_after and i >= change else 0.05)),
            )
            for i in range(480)
        ]

    passes = stream(health.evaluate, calls("crm_write", True) + calls("ticket", False), cfg)
    t = first_critical(passes, "action_errors.crm_write")
    assert t is not None and change * 60 < t <= change * 60 + 3600
    assert one(passes[-1][1], "action_errors.crm_write").status is Status.CRITICAL
    assert {one(fs, "action_errors.crm_write").status for t, fs in passes if t <= change * 60} == {
        Status.OK
    }
    assert {one(fs, "action_errors.ticket").status for _, fs in passes} == {Status.OK}


def test_one_slow_latency_bucket_does_not_alarm_but_a_sustained_shift_does() -> None:
    # 10 calls a minute, declared 800 +- 200 ms; the last bucket before the pass at CALM + 10
    # minutes holds a single 60 s call (296 sd: the winsorising keeps it from alarming
    # alone; unclipped, it opens an episode that pass would report)
    cfg = DetectionConfig(declared={("*", "latency_ms"): DeclaredBaseline(800.0, sd=200.0)})
    at = CALM + 9
    base = values("latency_ms", 0, at, 800.0, 200.0, 3)
    spike = [Rollup("wf", "latency_ms", at * 60, 1, 0, 60_000.0, 60_000.0**2)]
    calm = values("latency_ms", at + 1, at + 120, 800.0, 200.0, 4)
    passes = stream(health.evaluate, base + spike + calm, cfg)
    assert {one(fs, "latency_ms").status for _, fs in passes} == {Status.OK}
    slow = values("latency_ms", at, at + 120, 1600.0, 200.0, 4)  # twice as slow
    passes = stream(health.evaluate, base + slow, cfg)
    t = first_critical(passes, "latency_ms")
    assert t is not None and at * 60 < t <= at * 60 + 1800
    assert one(passes[-1][1], "latency_ms").status is Status.CRITICAL


def test_spend_and_tokens_per_record_doubling_is_critical() -> None:
    # 10 priced records a minute, 0.02 USD and 900 tokens each, log-normal (sd 30 %, so the
    # charts winsorise), declared; after CALM minutes both double (a pricier model, longer
    # prompts)
    rng = np.random.default_rng(8)
    change = CALM
    cfg = DetectionConfig(
        declared={
            ("*", "spend_usd"): DeclaredBaseline(0.02, sd=0.006),
            ("*", "tokens"): DeclaredBaseline(900.0, sd=270.0),
        }
    )

    def records(signal: str, mu: float) -> list[Rollup]:
        out = []
        for i in range(change + 120):
            x = rng.lognormal(np.log(mu * (2.0 if i >= change else 1.0)), 0.3, 10)
            out.append(Rollup("wf", signal, 60 * i, 10, 0, float(x.sum()), float(x @ x)))
        return out

    passes = stream(cost.evaluate, records("spend_usd", 0.02) + records("tokens", 900.0), cfg)
    for signal in ("spend_usd", "tokens"):
        before = {one(fs, signal).status for t, fs in passes if t <= change * 60}
        assert before == {Status.OK}, signal
        t = first_critical(passes, signal)
        assert t is not None and change * 60 < t <= change * 60 + 1800, signal
        assert one(passes[-1][1], signal).status is Status.CRITICAL


def test_spend_spike_in_an_hour_is_a_warn_against_its_hour_of_week() -> None:
    cfg = DetectionConfig()
    hours = 30 * 24
    rng = np.random.default_rng(5)
    spend = []
    for h in range(hours):  # 10 priced records an hour at 0.20 +- 0.06 USD
        x = rng.normal(0.2, 0.06, 10)
        spend.append(Rollup("wf", "spend_usd", HOUR * h, 10, 0, float(x.sum()), float(x @ x)))
    # the last complete hour: 10 records at about 0.90 USD
    spend.append(Rollup("wf", "spend_usd", HOUR * hours, 10, 0, 9.0, 8.5))
    now = HOUR * (hours + 1) + 60
    f = one(
        cost.evaluate(WorkflowInput("wf", {"spend_usd": spend}, {}, cfg, now))[0],
        "spend_usd",
        "robust_z",
    )
    assert f.status is Status.WARN
    assert f.value == 9.0
    assert f.evidence["seasonal"] is True
    assert f.statistic is not None and f.statistic > 10


def _seasonal_spend_warns(hours: int, seed: int) -> tuple[int, int]:
    """Hourly spend as a busy workflow's: a business-hours profile, a day-level log-normal
    factor (sd 0.25: some days are busier), a log-normal cost per run; one pass an hour.
    Returns (WARN hours in the last 30 days, hours scored)."""
    rng = np.random.default_rng(seed)
    profile = 0.2 + np.exp(-0.5 * ((np.arange(24) - 13) / 3.0) ** 2)  # runs an hour, shape
    day_factor = rng.lognormal(0.0, 0.25, hours // 24 + 1)
    states: States = {}
    warns = scored = 0
    for h in range(hours):
        runs = int(rng.poisson(40 * profile[h % 24] * day_factor[h // 24]))
        usd = float(rng.lognormal(np.log(0.02), 0.8, runs).sum()) if runs else 0.0
        roll = [Rollup("wf", "spend_usd", HOUR * h, max(runs, 1), 0, usd)] if runs else []
        inp = WorkflowInput("wf", {"spend_usd": roll}, states, DetectionConfig(), HOUR * (h + 1))
        findings, states = cost.evaluate(inp)
        if h >= hours - 30 * 24:
            f = one(findings, "spend_usd", "robust_z")
            scored += f.status is not Status.UNKNOWN
            warns += f.status is Status.WARN
    return warns, scored


def test_hourly_spend_warns_stay_within_their_share_of_the_warn_budget() -> None:
    """Its share is 10 % of 2 WARN a month: 0.2 a month. On seasonal, overdispersed
    spend the same-slot MAD made 36 a month; pooled log residuals: within a few a month
    even on this short history (three workflow-months here)."""
    results = [_seasonal_spend_warns(45 * 24, seed) for seed in (1, 2, 3)]
    assert all(scored == 30 * 24 for _, scored in results)
    assert sum(w for w, _ in results) <= 3, results


def test_budget_projection_warns_before_the_budget_is_spent() -> None:
    now = dt.datetime(2026, 11, 11, tzinfo=dt.UTC).timestamp()  # 20 days left
    spend = [Rollup("wf", "spend_usd", int(now) - HOUR * h, 1, 0, 1.0) for h in range(1, 25)]
    cfg = DetectionConfig(budgets_usd={"wf": 400.0})
    f = one(
        cost.evaluate(WorkflowInput("wf", {"spend_usd": spend}, {}, cfg, now))[0],
        "spend_usd",
        "projection",
    )
    # 24 USD spent + 1 USD/h x 480 h left = 504 > 400
    assert f.value == pytest.approx(24.0 + 480.0)
    assert f.status is Status.WARN
    f2 = one(
        cost.evaluate(
            WorkflowInput(
                "wf", {"spend_usd": spend}, {}, DetectionConfig(budgets_usd={"wf": 1000.0}), now
            )
        )[0],
        "spend_usd",
        "projection",
    )
    assert f2.status is Status.OK


def test_cost_per_run_is_spend_over_runs_against_learned_ratio() -> None:
    cfg = DetectionConfig(learn_mean_obs=100)
    runs = [Rollup("wf", "runs", 60 * i, 10, 10) for i in range(20)]
    spend = [Rollup("wf", "spend_usd", 60 * i, 10, 0, 0.5 if i < 10 else 1.5) for i in range(20)]
    f = one(
        cost.evaluate(WorkflowInput("wf", {"runs": runs, "spend_usd": spend}, {}, cfg, 1200))[0],
        "cost_per_run",
        "ratio",
    )
    assert f.baseline == pytest.approx(0.05)
    assert f.value == pytest.approx(0.15)
    assert f.status is Status.WARN


def test_team_runs_dropping_to_a_third_is_a_finding() -> None:
    today = 1_795_392_000  # 2026-11-23 00:00 UTC
    rollups = []
    for d in range(28, 0, -1):
        n = 150 if d == 1 else 450
        rollups.append(Rollup("wf", "team_runs.sales", today - d * DAY + 9 * HOUR, n, n))
    inp = WorkflowInput("wf", {"team_runs.sales": rollups}, {}, DetectionConfig(), today + HOUR)
    f = one(adoption.evaluate(inp)[0], "team_runs.sales", "daily_robust_z")
    assert f.value == 150.0
    assert f.baseline == 450.0
    assert f.status is Status.WARN  # a third: a drop, not a stop (critical is <= 10 %)
    steady = [r for r in rollups if r.bucket < today - DAY]
    inp = WorkflowInput("wf", {"team_runs.sales": steady}, {}, DetectionConfig(), today - DAY)
    assert one(adoption.evaluate(inp)[0], "team_runs.sales", "daily_robust_z").status is Status.OK


def test_adoption_with_one_past_day_is_unknown() -> None:
    users = {f"2026-11-{d:02d}": 30 for d in range(21, 23)}
    inp = WorkflowInput("wf", {}, {}, DetectionConfig(), 1_795_392_000 + HOUR, active_users=users)
    f = one(adoption.evaluate(inp)[0], "active_users", "daily_robust_z")
    assert f.status is Status.UNKNOWN
    assert f.evidence["reason"] == "learning (1/2 days)"
    users |= {"2026-11-20": 30}  # two past days: a verdict (no 7-day wait)
    inp = WorkflowInput("wf", {}, {}, DetectionConfig(), 1_795_392_000 + HOUR, active_users=users)
    assert one(adoption.evaluate(inp)[0], "active_users", "daily_robust_z").status is Status.OK
    bad = WorkflowInput("wf", {}, {}, DetectionConfig(), 1_795_392_000, active_users={"23/11": 1})
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        adoption.evaluate(bad)


def test_approval_rate_drop_and_kpi_move_either_way_are_detected() -> None:
    cfg = DetectionConfig(
        declared={
            ("*", "approved"): DeclaredBaseline(0.8),
            ("*", "kpi.nps"): DeclaredBaseline(40.0, sd=5.0),
        }
    )
    # declared baselines: charted from the first pass, no learning
    approved = [Rollup("wf", "approved", 60 * i, 20, 10) for i in range(10)]  # 50 % vs 80 %
    seen: dict[str, Finding] = {}
    for label, mu in (("up", 50.0), ("down", 30.0), ("calm", 40.0)):  # +-2 sd, or none
        kpi = values("kpi.nps", 0, 10, mu, 5.0, 6)
        fs, _ = adoption.evaluate(
            WorkflowInput("wf", {"approved": approved, "kpi.nps": kpi}, {}, cfg, 600)
        )
        assert one(fs, "approved").status is Status.CRITICAL
        design = str(one(fs, "approved").evidence["design"])  # "p0->p1": a falling side
        assert float(design.split("->")[1]) < 0.8
        seen[label] = one(fs, "kpi.nps")
    assert seen["up"].status is Status.CRITICAL
    assert str(seen["up"].evidence["design"]).startswith("+")  # the rising side crossed
    assert seen["down"].status is Status.CRITICAL
    assert str(seen["down"].evidence["design"]).startswith("-")
    assert seen["calm"].status is Status.OK


@pytest.mark.parametrize(
    "module",
    [
        "detectors.stats.calibration",
        "detectors.stats.bernoulli_cusum",
        "detectors.stats.gaussian_cusum",
        "detectors.stats.two_sided",
        "detectors.stats.window",
        "detectors.stats.burn_rate",
        "detectors.stats.robust",
        "detectors.baseline",
        "detectors.sequential",
        "detectors.quality",
        "detectors.health",
        "detectors.cost",
        "detectors.adoption",
        "detectors.engine",
    ],
)
def test_docstring_examples_run(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0
    assert result.failed == 0
