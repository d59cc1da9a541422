"""The silence finding (``events``/``no_data``): the rule, its edges and a seeded simulation.

Measured with ``python bench/silence.py`` (seeded; 200 workflows x 30 days per row, a pass
every 5 simulated minutes; traffic: Poisson per minute around a daily profile with a
nightly lull at 10 % of the mean, weekends at 30 %, a gamma day-to-day multiplier with
CV 0.2, and a random hour-of-week phase per workflow, so lulls and weekends fall at any
UTC hour):

    per day  healthy: false no_data warns per workflow-month (95 %)   stop -> WARN
    1000     0 in 200 workflow-months: 0 (0-0.018)                    after day 15: median 2.3 h,
                                                                      p90 6.8 h, max 11.5 h
                                                                      days 2-13: median 5.9 h,
                                                                      p90 23.5 h, max 65 h
    50       0 in 200 workflow-months: 0 (0-0.018)                    after day 15: median 22 h,
                                                                      p90 50 h, max 64 h (4 of
                                                                      200 not yet by day 30)
                                                                      days 2-13: median 107 h,
                                                                      p90 292 h (18 not yet)

A plain Poisson test at the same level (WARN once ``exp(-E)`` < 1e-6, i.e. E > 14) warns
3 times in one healthy 1000/day workflow-month of the same traffic.

The simulation test below runs a few of the same workflows (``@pytest.mark.slow``).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from bench.silence import T0, minute_counts, replay
from detectors.config import DetectionConfig
from detectors.engine import run_pass
from detectors.family import WorkflowInput
from detectors.silence import (
    ALPHA,
    DISPERSION,
    KEY,
    PROFILE_S,
    SilenceState,
    evaluate,
)
from detectors.types import Finding, Rollup, Status

CFG = DetectionConfig()
DAY = 86_400


def runs(minutes: range, per_minute: int = 1, signal: str = "runs") -> list[Rollup]:
    return [Rollup("wf", signal, T0 + 60 * m, per_minute, per_minute) for m in minutes]


def step(
    state: dict[tuple[str, str], dict[str, object]],
    now: float,
    rollups: dict[str, list[Rollup]] | None = None,
) -> tuple[Finding, dict[tuple[str, str], dict[str, object]]]:
    [f], new = evaluate(WorkflowInput("wf", rollups or {}, state, CFG, now))
    return f, new


def first_warn(
    state: dict[tuple[str, str], dict[str, object]], start: float, hours: float
) -> tuple[int, Finding] | tuple[None, None]:
    """Minutes after ``start`` of the first WARN (passes every minute), or None."""
    for m in range(1, int(hours * 60) + 1):
        f, _ = step(state, start + 60 * m)
        if f.status is Status.WARN:
            return m, f
    return None, None


def test_a_steady_workflow_warns_once_the_silence_is_that_improbable() -> None:
    # 15 days (hour-of-week profile, 2 weeks per slot) of one event a minute, then nothing
    end = 15 * 1440
    _, state = step({}, T0 + 60 * end, {"runs": runs(range(end))})
    minutes, f = first_warn(state, T0 + 60.0 * end, 3)
    assert f is not None and minutes is not None
    # the rule as the module states it: 1/k = (1 + 1/n)/r + 1/C, n = 2 weeks, C = events
    # learned in the slot (120: 60 an hour, two weeks), chance (1 + E/k)^-k with E = minutes
    k = 1 / ((1 + 1 / 2) / DISPERSION + 1 / 120)
    warn_at = k * math.expm1(-math.log(ALPHA) / k)
    assert minutes == math.ceil(warn_at)
    assert f.evidence["expected_events"] == pytest.approx(minutes)
    assert f.evidence["chance"] < ALPHA
    assert f.evidence["silent_s"] == 60 * minutes
    assert f.evidence["last_event"] == T0 + 60 * end
    assert f.evidence["recent"] == {"samples": 60 - minutes, "window_s": 3600}
    assert f.evidence["profile"] == "hour_of_week"
    ok, _ = step(state, T0 + 60.0 * (end + minutes - 1))
    assert ok.status is Status.OK and ok.evidence["chance"] >= ALPHA


def business_hours(days: int, per_hour: int = 120) -> list[Rollup]:
    """Weekdays 09:00-17:00 UTC only: quiet nights and empty weekends."""
    out = []
    for d in range(days):
        if (d % 7) >= 5:  # T0 is a Monday
            continue
        for m in range(9 * 60, 17 * 60):
            out.append(Rollup("wf", "runs", T0 + d * DAY + 60 * m, per_hour // 60, 0))
    return out


def test_nights_and_empty_weekends_never_warn_but_a_stop_in_office_hours_does() -> None:
    ups = business_hours(21)
    state: dict[tuple[str, str], dict[str, object]] = {}
    statuses = []
    for now in range(T0 + 10 * 3600, T0 + 21 * DAY, 1800):  # a pass every half hour
        fresh = [r for r in ups if now - 1800 <= r.bucket + 60 <= now]
        f, state = step(state, float(now), {"runs": fresh})
        statuses.append(f.status)
    assert Status.WARN not in statuses
    assert statuses.count(Status.OK) > 0.9 * len(statuses)
    # week 4, Tuesday: it stops at 11:00
    tuesday = T0 + 22 * DAY
    _, state = step(
        state,
        tuesday + 11 * 3600.0,
        {
            "runs": [
                r for r in business_hours(23) if T0 + 21 * DAY <= r.bucket < tuesday + 11 * 3600
            ]
        },
    )
    minutes, _ = first_warn(state, tuesday + 11 * 3600.0, 6)
    assert minutes is not None and minutes <= 60  # 2 events a minute: E reaches ~50 in 25 min


def test_a_workflow_learns_for_a_day_and_says_how_far_it_is() -> None:
    f, state = step({}, T0 + 6 * 3600.0, {"runs": runs(range(6 * 60))})
    assert f.status is Status.UNKNOWN
    assert f.evidence["reason"] == "learning baseline"
    assert (f.evidence["learned"], f.evidence["needed"]) == (6, 24)
    f, state = step(state, T0 + DAY + 60.0, {"runs": runs(range(6 * 60, 1441))})
    assert f.status is Status.OK and "reason" not in f.evidence
    # hour of day, weekdays and weekends apart, while less than two weeks are learned
    assert f.evidence["profile"] == "hour_of_day_weekday_weekend"


def test_events_dated_ahead_do_not_hide_a_silence() -> None:
    end = 3 * 1440
    ahead = [Rollup("wf", "runs", T0 + 60 * end + 23 * 3600, 5, 5)]  # 23 h in the future
    _, state = step({}, T0 + 60.0 * end, {"runs": runs(range(end)) + ahead})
    f, _ = step(state, T0 + 60.0 * end + 12 * 3600)
    assert f.evidence["last_event"] == T0 + 60 * end  # the pass that read them, no later
    assert f.status is Status.WARN


def test_late_events_feed_the_profile_but_end_a_silence_only_if_newer() -> None:
    end = 3 * 1440
    _, state = step({}, T0 + 60.0 * end, {"runs": runs(range(end))})
    late = [Rollup("wf", "runs", T0 + 60 * (end - 600), 7, 7)]  # 10 h old, sent now
    f, state = step(state, T0 + 60.0 * end + 4 * 3600, {"runs": late})
    assert f.evidence["last_event"] == T0 + 60 * end
    assert f.status is Status.WARN
    hours = SilenceState.from_dict(state[KEY]).hours
    hour = T0 + 60 * (end - 600)
    assert hours.at(hour - hour % 3600) == 60 + 7


def test_runs_and_reviews_count_cost_records_only_for_a_cost_only_workflow() -> None:
    mins = range(30)
    both = {
        "runs": runs(mins),
        "edited": runs(mins, 2, "edited"),
        "spend_usd": runs(mins, 1, "spend_usd"),
    }
    f, _ = step({}, T0 + 1800.0, both)
    assert f.samples == 30 * (1 + 2)  # runs + reviews; the runs' cost records not again
    cost_only, state = step({}, T0 + 1800.0, {"spend_usd": runs(mins, 4, "spend_usd")})
    assert cost_only.samples == 30 * 4
    f, _ = step(
        state,
        T0 + 3600.0,
        {"runs": runs(range(30, 60)), "spend_usd": runs(range(30, 60), 4, "spend_usd")},
    )
    assert f.samples == 30 * 4 + 30  # once runs come, cost records stop counting


def test_state_round_trips_through_json_and_stays_bounded() -> None:
    rng = np.random.default_rng(5)
    counts = rng.poisson(0.5, 30 * 1440)
    a: dict[tuple[str, str], dict[str, object]] = {}
    b: dict[tuple[str, str], dict[str, object]] = {}
    for day in range(30):
        lo = day * 1440
        ups = [
            Rollup("wf", "runs", T0 + 60 * m, int(counts[m]), 0)
            for m in range(lo, lo + 1440)
            if counts[m]
        ]
        now = T0 + 60.0 * (lo + 1440)
        fa, a = step(a, now, {"runs": ups})
        fb, b = step({KEY: json.loads(json.dumps(b[KEY]))} if b else {}, now, {"runs": ups})
        assert (fa.status, fa.evidence) == (fb.status, fb.evidence)
    assert len(SilenceState.from_dict(a[KEY]).hours.counts) <= PROFILE_S // 3600 + 2
    with pytest.raises(ValueError, match="hours"):
        SilenceState.from_dict({"hours": {"1": 2}})


def test_through_the_engine_the_warning_keeps_the_time_it_began() -> None:
    end = 3 * 1440
    ups = {("wf", "runs"): runs(range(end))}
    findings, states = run_pass(ups, {}, CFG, T0 + 60.0 * end)
    times = []
    for hours in (10, 11, 12):
        findings, states = run_pass({}, states, CFG, T0 + 60.0 * end + hours * 3600)
        [f] = [f for f in findings if (f.signal, f.detector) == KEY]
        times.append((f.status, f.since))
    assert times == [(Status.WARN, T0 + 60.0 * end + 10 * 3600)] * 3


def test_a_workflow_that_never_sent_an_event_has_no_silence_finding() -> None:
    assert evaluate(WorkflowInput("wf", {"runs": [Rollup("wf", "runs", T0, 0)]}, {}, CFG, T0)) == (
        [],
        {},
    )


@pytest.mark.slow
@pytest.mark.parametrize(("per_day", "within_h"), [(1000.0, 8.0), (50.0, 72.0)])
def test_seeded_traffic_never_warns_while_healthy_and_warns_after_a_stop(
    per_day: float, within_h: float
) -> None:
    for seed in range(2):
        counts = minute_counts(np.random.default_rng(seed), per_day, 30)
        assert replay(counts, 300, None).warns == 0
        stop = float(T0 + 16 * DAY + 7919 * seed)
        stopped = replay(counts, 300, stop)
        assert stopped.warns == 1 and stopped.first_warn is not None
        assert 0 < stopped.first_warn - stop <= within_h * 3600
