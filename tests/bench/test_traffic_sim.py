"""The benchmark traffic simulator (bench/traffic.py): seeded, realistic, store-shaped.

The rollups it emits must be the ones the store would write for the same events (checked
against ``monitor.batch.rollups.rollup`` on the simulator's own events), its volume must follow
the daily/weekly profile, and its rates must really be overdispersed day to day: a
benchmark of false alarms on binomial data would flatter the charts.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from bench.traffic import (
    DAY,
    START,
    Change,
    TrafficSim,
    WorkflowProfile,
    healthy_fleet,
)
from detectors import signals as sig
from monitor.batch.rollups import Agg, rollup

WF = WorkflowProfile("wf-a", seed=1)


def test_same_seed_same_rollups_and_each_workflow_has_its_own_stream() -> None:
    window = (START + 9 * 3600, START + 11 * 3600)
    first = TrafficSim([WF], seed=5).rollups(*window)
    again = TrafficSim([WF], seed=5).rollups(*window)
    assert first == again
    assert TrafficSim([WF], seed=6).rollups(*window) != first
    twin = TrafficSim([WF, replace(WF, name="wf-twin", seed=2)], seed=5).rollups(*window)
    assert twin[("wf-twin", sig.EDITED)] != [
        replace(r, workflow="wf-twin") for r in first[("wf-a", sig.EDITED)]
    ]
    # adding a workflow (or sharding a fleet) does not change another workflow's traffic
    other = WorkflowProfile("wf-b", seed=2)
    both = TrafficSim([other, WF], seed=5).rollups(*window)
    assert {k: v for k, v in both.items() if k[0] == "wf-a"} == first


def test_rollups_equal_what_the_store_computes_from_the_same_events() -> None:
    sim = TrafficSim([WF], seed=3)
    lo, hi = START + DAY + 8 * 3600, START + DAY + 12 * 3600
    events = sim.events("wf-a", 1, lo, hi)
    assert len(events) > 500
    stored = rollup(events)
    ours = sim.rollups(lo, hi)
    theirs: dict[tuple[str, str], dict[int, Agg]] = {}
    for (wf, s, bucket), agg in stored.aggs.items():
        theirs.setdefault((wf, s), {})[bucket] = agg
    assert set(ours) == set(theirs)
    for key, rows in ours.items():
        assert [r.bucket for r in rows] == sorted(theirs[key]), key
        for r in rows:
            agg = theirs[key][r.bucket]
            assert (r.count, r.successes) == (agg.count, agg.successes), (key, r.bucket)
            assert r.sum == pytest.approx(agg.sum, rel=1e-9, abs=1e-12), key
            assert r.sumsq == pytest.approx(agg.sumsq, rel=1e-9, abs=1e-12), key
            assert (r.min, r.max) == pytest.approx((agg.min, agg.max)), key
    # runs, reviews, teams and the version label are all there
    assert {sig.RUNS, sig.EDITED, sig.RETRIES, sig.GROUNDEDNESS, sig.SPEND_USD} <= {
        s for _, s in ours
    }
    assert {s for _, s in ours if s.startswith(sig.TEAM_RUNS_PREFIX)} == {
        sig.TEAM_RUNS_PREFIX + t for t in WF.teams
    }
    assert {f"{m}@{v}/{p}" for _, m, v, p in stored.versions} == set(sim.model_versions(hi)["wf-a"])


def test_active_users_are_the_distinct_users_the_store_would_record() -> None:
    sim = TrafficSim([WF], seed=3)
    day_start = START + 2 * DAY
    events = sim.events("wf-a", 2, day_start, day_start + DAY)
    stored = rollup(events)
    assert sim.active_users(day_start + DAY)["wf-a"]["2026-11-07"] == len(stored.actors)
    # during the day: the users with an event before ``now`` (a pass sees today so far)
    for now in np.arange(day_start + 60, day_start + DAY, 7 * 60):
        users = {e.user for e in events if e.epoch < now}
        assert sim.active_users(float(now))["wf-a"].get("2026-11-07", 0) == len(users), now


def test_volume_follows_business_hours_and_weekends() -> None:
    wf = replace(WF, volume_day_cv=0.0)
    sim = TrafficSim([wf], seed=11)
    weekday: list[float] = []
    weekend: list[float] = []
    hours = np.zeros(24)
    for day in range(28):
        d = sim.draws("wf-a", day)
        is_weekend = (int(d.day_start // DAY) + 3) % 7 >= 5
        (weekend if is_weekend else weekday).append(d.run_minute.size)
        if not is_weekend:
            hours += np.bincount(d.run_minute // 60, minlength=24)
    assert len(weekend) == 8
    assert np.mean(weekday) == pytest.approx(wf.runs_per_day, rel=0.03)
    assert np.mean(weekend) / np.mean(weekday) == pytest.approx(wf.weekend_factor, abs=0.03)
    assert hours[10:16].mean() > 10 * hours[0:5].mean()  # night lull at ~5 % of the peak
    # a workflow eight hours ahead of UTC peaks eight hours earlier in UTC
    east = TrafficSim([replace(wf, utc_offset_h=8.0)], seed=11).draws("wf-a", 0)
    peak = np.bincount(east.run_minute // 60, minlength=24)
    assert peak[2:8].mean() > 10 * peak[14:20].mean()


def _dispersion(profile: WorkflowProfile, days: int) -> float:
    """Pearson chi-square / df of the daily edit counts against one common rate (1 if binomial)."""
    sim = TrafficSim([profile], seed=21)
    n, k = [], []
    for day in range(days):
        d = sim.draws(profile.name, day)
        n.append(d.review_minute.size)
        k.append(int((d.review_decision != 0).sum()))
    nn, kk = np.array(n, float), np.array(k, float)
    p = kk.sum() / nn.sum()
    return float(((kk - nn * p) ** 2 / (nn * p * (1 - p))).sum() / (days - 1))


def test_daily_rates_are_overdispersed_and_binomial_without_the_day_factor() -> None:
    # rel sd 0.12 of a 0.20 rate with ~1,000 reviews a day: extra variance ~3.6x binomial
    assert _dispersion(WF, 60) > 2.0
    assert _dispersion(replace(WF, rate_day_rel_sd=0.0), 60) < 1.6


def test_scores_are_beta_and_edit_ratios_zero_inflated() -> None:
    wf = replace(WF, score_day_sd=0.0)
    d = TrafficSim([wf], seed=4).draws("wf-a", 1)
    g = d.run_grounded[~np.isnan(d.run_grounded)]
    assert g.min() >= 0.0 and g.max() <= 1.0
    assert g.mean() == pytest.approx(wf.groundedness, abs=0.01)
    assert g.std() == pytest.approx(wf.groundedness_sd, abs=0.01)
    assert np.isnan(d.run_grounded).sum() == (d.run_status != 0).sum()  # ok runs are scored
    approved = d.review_decision == 0
    assert (d.review_edit_ratio[approved] == 0.0).all()
    edited = d.review_decision == 1
    assert d.review_edit_ratio[edited].mean() == pytest.approx(wf.edit_ratio, abs=0.03)
    assert np.isnan(d.review_edit_ratio[d.review_decision == 2]).all()
    # costs: log-normal per run, priced from the tokens
    assert np.log(d.run_latency[d.run_status != 2]).std() == pytest.approx(
        wf.latency_sigma, abs=0.06
    )
    assert d.run_cost == pytest.approx(
        d.run_input_tokens * wf.usd_per_input_token + d.run_output_tokens * wf.usd_per_output_token
    )


def test_a_step_change_moves_the_rate_and_brings_its_version_label() -> None:
    at = START + DAY + 12 * 3600
    wf = replace(
        WF,
        rate_day_rel_sd=0.0,
        changes=(Change(at, "edit_rate", 0.5, model_version="gpt-4o@2024-11-20/v3"),),
    )
    sim = TrafficSim([wf], seed=8)
    d = sim.draws("wf-a", 1)
    t = d.day_start + 60 * d.review_minute
    before = (d.review_decision[t < at] != 0).mean()
    after = (d.review_decision[t >= at] != 0).mean()
    assert before == pytest.approx(0.20, abs=0.05)
    assert after == pytest.approx(0.50, abs=0.05)
    assert sim.model_versions(at) == {"wf-a": [WF.model_label]}
    assert sim.model_versions(at + 60) == {"wf-a": sorted([WF.model_label, "gpt-4o@2024-11-20/v3"])}
    # a ramp reaches the new level only at its end
    ramp = replace(wf, changes=(Change(at, "edit_rate", 0.5, ramp_s=DAY),))
    level = ramp.level("edit_rate", np.array([at - 60, at + DAY / 2, at + DAY]))
    assert level == pytest.approx([0.20, 0.35, 0.50])


def test_counts_and_signal_filter_agree_with_the_full_rollups() -> None:
    lo, hi = START + 10 * 3600, START + DAY + 10 * 3600
    full = TrafficSim([WF], seed=9).rollups(lo, hi)
    only = TrafficSim([WF], seed=9, signals=frozenset({sig.GROUNDEDNESS}))
    assert only.rollups(lo, hi) == {("wf-a", sig.GROUNDEDNESS): full[("wf-a", sig.GROUNDEDNESS)]}
    assert only.count("wf-a", sig.GROUNDEDNESS, lo, hi) == sum(
        r.count for r in full[("wf-a", sig.GROUNDEDNESS)]
    )


def test_healthy_fleet_is_varied_and_valid() -> None:
    fleet = healthy_fleet(30, seed=1)
    assert len({p.name for p in fleet}) == 30
    assert len({p.utc_offset_h for p in fleet}) > 2
    assert {len(p.teams) for p in fleet} >= {2, 3}
    rates = [p.edit_rate for p in fleet]
    assert min(rates) >= 0.12 and max(rates) <= 0.28 and np.std(rates) > 0.02
    assert healthy_fleet(30, seed=1) == fleet
    assert not math.isclose(healthy_fleet(30, seed=2)[0].edit_rate, fleet[0].edit_rate)
