"""Signal families: what each one reports on clear, seeded scenarios."""

from __future__ import annotations

import datetime as dt
import doctest
import importlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from detectors import adoption, cost, health, quality
from detectors.config import DeclaredBaseline, DetectionConfig
from detectors.family import WorkflowInput
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


def test_groundedness_drop_is_critical_but_a_rise_is_not() -> None:
    cfg = DetectionConfig()
    down = values("groundedness", 0, 10, 0.85, 0.1, 1) + values(
        "groundedness", 10, 40, 0.75, 0.1, 2
    )
    up = values("groundedness", 0, 10, 0.85, 0.1, 1) + values("groundedness", 10, 40, 0.95, 0.1, 2)
    f_down = one(
        quality.evaluate(WorkflowInput("wf", {"groundedness": down}, {}, cfg, 2400))[0],
        "groundedness",
    )
    f_up = one(
        quality.evaluate(WorkflowInput("wf", {"groundedness": up}, {}, cfg, 2400))[0],
        "groundedness",
    )
    assert f_down.status is Status.CRITICAL
    assert f_down.evidence["delta"] < 0
    assert f_up.status is Status.OK


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
    assert one(findings, "action_errors.crm_write").status is Status.OK
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
    assert burn.status is Status.WARN  # exactly on budget for 3 days: ticket_3d
    assert len(states[("errors", "burn_rate")]["buckets"]) <= 6 * 60 + 3 * 24


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
    assert burn_old.samples == burn_new.samples == 6000
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


def test_one_slow_latency_bucket_does_not_alarm_but_a_sustained_shift_does() -> None:
    cfg = DetectionConfig()
    base = values("latency_ms", 0, 10, 800.0, 200.0, 3)  # 100 obs: learning
    spike = [Rollup("wf", "latency_ms", 600, 1, 0, 60_000.0, 60_000.0**2)]  # one 60 s call
    calm = values("latency_ms", 11, 30, 800.0, 200.0, 4)
    f, _ = health.evaluate(WorkflowInput("wf", {"latency_ms": base + spike + calm}, {}, cfg, 1800))
    assert one(f, "latency_ms").status is Status.OK
    assert one(f, "latency_ms").evidence["clip"] == 2.5
    slow = values("latency_ms", 11, 30, 1000.0, 200.0, 4)
    f, _ = health.evaluate(WorkflowInput("wf", {"latency_ms": base + slow}, {}, cfg, 1800))
    assert one(f, "latency_ms").status is Status.CRITICAL


def test_spend_spike_in_an_hour_is_a_warn_against_its_hour_of_week() -> None:
    cfg = DetectionConfig()
    hours = 30 * 24
    rng = np.random.default_rng(5)
    spend = [
        Rollup("wf", "spend_usd", HOUR * h, 10, 0, float(rng.normal(2.0, 0.2)))
        for h in range(hours)
    ]
    spend.append(Rollup("wf", "spend_usd", HOUR * hours, 10, 0, 9.0))  # the last complete hour
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
        n = 15 if d == 1 else 45
        rollups.append(Rollup("wf", "team_runs.sales", today - d * DAY + 9 * HOUR, n, n))
    inp = WorkflowInput("wf", {"team_runs.sales": rollups}, {}, DetectionConfig(), today + HOUR)
    f = one(adoption.evaluate(inp)[0], "team_runs.sales", "daily_robust_z")
    assert f.value == 15.0
    assert f.baseline == 45.0
    assert f.status is Status.WARN
    steady = [r for r in rollups if r.bucket < today - DAY]
    inp = WorkflowInput("wf", {"team_runs.sales": steady}, {}, DetectionConfig(), today - DAY)
    assert one(adoption.evaluate(inp)[0], "team_runs.sales", "daily_robust_z").status is Status.OK


def test_adoption_with_one_week_of_history_is_unknown() -> None:
    users = {f"2026-11-{d:02d}": 30 for d in range(19, 23)}
    inp = WorkflowInput("wf", {}, {}, DetectionConfig(), 1_795_392_000 + HOUR, active_users=users)
    f = one(adoption.evaluate(inp)[0], "active_users", "daily_robust_z")
    assert f.status is Status.UNKNOWN
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
    approved = [Rollup("wf", "approved", 60 * i, 20, 10) for i in range(10)]  # 50 % vs 80 %
    kpi = values("kpi.nps", 0, 10, 50.0, 5.0, 6)  # +2 sd: a two-sided chart must see it
    fs, _ = adoption.evaluate(
        WorkflowInput("wf", {"approved": approved, "kpi.nps": kpi}, {}, cfg, 600)
    )
    assert one(fs, "approved").status is Status.CRITICAL
    kpi_f = one(fs, "kpi.nps")
    assert kpi_f.status is Status.CRITICAL
    assert kpi_f.evidence["direction"] == "up"


@pytest.mark.parametrize(
    "module",
    [
        "detectors.stats.calibration",
        "detectors.stats.cusum",
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
