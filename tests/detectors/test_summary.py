"""Finding.summary: one sentence per finding, for every detector the engine produces.

The findings below carry the evidence each detector writes (detectors/*.py, and the CUSUM
contract: baseline_source, baseline_samples, recent, changepoint, warn_threshold, ...);
the property test feeds arbitrary findings to the unguarded composer.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.config import DeclaredBaseline, DetectionConfig
from detectors.engine import run_pass
from detectors.summary import COMPOSERS, MAX_LEN, NAMES, compose, summarize
from detectors.types import Finding, Rollup, Status


def at(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()


NOW = at("2026-11-23T10:00")


def cusum(signal: str, status: Status, **kw: Any) -> Finding:
    evidence = kw.pop("evidence", {})
    return Finding("invoices", signal, "cusum", status, evidence=evidence, **kw)


# --- CUSUM ---------------------------------------------------------------------------


def test_a_critical_rate_names_value_sample_baseline_source_chart_and_change_point() -> None:
    f = cusum(
        "edited",
        Status.CRITICAL,
        value=0.2,  # the recent window's own figures win over the finding's
        baseline=0.2,
        statistic=6.12,
        threshold=5.4,
        samples=10,
        since=at("2026-11-23T09:55"),
        evidence={
            "baseline_source": "declared",
            "baseline_samples": None,
            "recent": {"samples": 412, "value": 0.3101, "window_s": 3600},
            "changepoint": at("2026-11-23T09:10"),
            "episode_start": at("2026-11-23T09:55"),
        },
    )
    assert summarize(f, NOW) == (
        "edit rate 0.31 over the last 412 reviews vs baseline 0.20 (declared); "
        "CUSUM 6.1 >= threshold 5.4; started about 09:10 UTC"
    )


def test_a_learned_baseline_says_how_many_observations_it_rests_on() -> None:
    f = cusum(
        "errors",
        Status.WARN,
        value=0.018,
        baseline=0.01,
        statistic=3.3,
        threshold=12.0,
        samples=2400,
        evidence={
            "baseline_source": "learned",
            "baseline_samples": 20_000,
            "warn_threshold": 3.1,
            "expected_delay_obs": 949.6,
        },
    )
    text = summarize(f, NOW)
    assert text.startswith("error rate 0.018 over the last 2,400 runs vs baseline 0.01")
    assert "(learned from 20,000 runs)" in text
    assert "CUSUM 3.3, warn at 3.1, alarm at 12.0" in text
    assert text.endswith("; expected delay ~950 runs")


def test_a_baseline_carried_over_from_the_previous_version_says_so() -> None:
    f = cusum(
        "groundedness",
        Status.CRITICAL,
        value=0.781,
        baseline=0.85,
        statistic=14.0,
        threshold=13.2,
        samples=640,
        since=at("2026-11-23T08:42"),
        evidence={"baseline_source": "previous_version", "baseline_samples": 3000},
    )
    text = summarize(f, NOW)
    assert "groundedness 0.78 over the last 640 runs vs baseline 0.85" in text
    assert "(previous model version, 3,000 runs)" in text
    assert "started about 08:42 UTC" in text


def test_means_carry_their_unit_and_cost_is_in_dollars_per_priced_call() -> None:
    latency = cusum(
        "latency_ms", Status.OK, value=812.4, baseline=790.0, statistic=0.4, threshold=9.0,
        samples=300, evidence={"baseline_source": "window", "baseline_samples": 5000},
    )  # fmt: skip
    assert summarize(latency, NOW) == (
        "mean latency (ms) 812 over the last 300 runs vs baseline 790 "
        "(from the baseline window, 5,000 runs); CUSUM 0.4, alarm at 9.0"
    )
    spend = cusum(
        "spend_usd", Status.WARN, value=0.0042, baseline=0.0031, statistic=5.0, threshold=9.0,
        samples=1, evidence={"baseline_source": "declared"},
    )  # fmt: skip
    assert summarize(spend, NOW).startswith(
        "cost per priced call $0.0042 over the last 1 priced call vs baseline $0.0031 (declared)"
    )


def test_an_unknown_chart_says_why_in_the_signals_unit() -> None:
    learning = cusum(
        "edited", Status.UNKNOWN, samples=120,
        evidence={"reason": "learning baseline", "learned": 120, "needed": 500},
    )  # fmt: skip
    assert summarize(learning, NOW) == "edit rate: learning the baseline: 120 of 500 reviews"
    silent = cusum(
        "errors", Status.UNKNOWN, baseline=0.01, statistic=0.0, threshold=9.0,
        evidence={"reason": "no data in the window", "baseline_source": "learned",
                  "recent": {"samples": 0, "value": None, "window_s": 3600}},
    )  # fmt: skip
    assert summarize(silent, NOW).startswith("error rate: no runs in the last hour")
    other = cusum("kpi.handle_time", Status.UNKNOWN, evidence={"reason": "data is in the past"})
    assert summarize(other, NOW) == "KPI handle_time: data is in the past"


def test_a_time_on_another_day_carries_its_date() -> None:
    f = cusum(
        "edited", Status.CRITICAL, value=0.3, baseline=0.2, statistic=6.0, threshold=5.0,
        samples=500, since=at("2026-11-21T23:05"), evidence={"baseline_source": "declared"},
    )  # fmt: skip
    assert summarize(f, NOW).endswith("started about 2026-11-21 23:05 UTC")
    assert summarize(f).endswith("started about 2026-11-21 23:05 UTC")  # no "now": dated


# --- the other detectors ---------------------------------------------------------------


def test_burn_rate_says_the_error_rate_the_burn_and_the_rules_that_fired() -> None:
    f = Finding(
        "crm", "errors", "burn_rate", Status.CRITICAL, value=20.0, statistic=21.3,
        threshold=14.4, samples=4321,
        evidence={"slo": 0.99, "burn_rates": {"1h": 20.0, "5m": 21.3},
                  "fired": ["page_1h", "page_6h"], "rule": "page_1h"},
    )  # fmt: skip
    assert summarize(f, NOW) == (
        "error rate 0.20 over the last hour burns the 99% SLO's error budget 20.0x; "
        "fired: page_1h, page_6h; 4,321 runs in that window"
    )
    # the verdict names the window of the rule it rests on
    ticket = Finding(
        "crm", "errors", "burn_rate", Status.WARN, value=3.5, threshold=3.0, samples=900,
        evidence={"slo": 0.99, "fired": ["ticket_1d"], "rule": "ticket_1d"},
    )  # fmt: skip
    assert summarize(ticket, NOW).startswith("error rate 0.035 over the last day burns")
    quiet = Finding("crm", "timeouts", "burn_rate", Status.UNKNOWN, evidence={"slo": 0.995})
    assert (
        summarize(quiet, NOW) == "timeout rate: no runs in the last 3 days to judge the 99.5% SLO"
    )


def test_hourly_spend_compares_the_hour_with_the_same_hour_of_week() -> None:
    f = Finding(
        "crm", "spend_usd", "robust_z", Status.WARN, value=12.3, baseline=4.1, statistic=5.23,
        threshold=3.5, window="2026-11-23T08:00Z/2026-11-23T09:00Z", samples=600,
        evidence={"detector": "seasonal_robust_z", "seasonal": True, "scale": 1.2},
    )  # fmt: skip
    assert summarize(f, NOW) == (
        "hourly spend $12.30 in 08:00-09:00 vs usual $4.10 (same hour of week); robust z 5.2 >= 3.5"
    )
    young = Finding(
        "crm", "spend_usd", "robust_z", Status.UNKNOWN,
        evidence={"reason": "need 24 past hours, have 3"},
    )  # fmt: skip
    assert summarize(young, NOW) == "hourly spend: need 24 past hours, have 3"


def test_the_monthly_budget_says_spent_projected_and_budget() -> None:
    over = Finding(
        "crm", "spend_usd", "projection", Status.CRITICAL, value=1480.0, baseline=1000.0,
        evidence={"spent": 1050.5, "budget": 1000.0},
    )  # fmt: skip
    assert summarize(over, NOW) == (
        "monthly spend $1,050 is over the $1,000 budget; projected $1,480 by month end"
    )
    heading = Finding(
        "crm", "spend_usd", "projection", Status.WARN, value=1200.0, baseline=1000.0,
        evidence={"spent": 610.0, "budget": 1000.0},
    )  # fmt: skip
    assert summarize(heading, NOW) == (
        "monthly spend projected $1,200, over the budget $1,000; $610 spent so far"
    )


def test_cost_per_run_states_its_learned_baseline_and_the_warn_line() -> None:
    f = Finding(
        "crm", "cost_per_run", "ratio", Status.WARN, value=0.0131, baseline=0.008,
        threshold=0.012, statistic=0.0131, samples=412, evidence={"rel_shift": 0.5},
    )  # fmt: skip
    assert summarize(f, NOW) == (
        "cost per run $0.013 over the last 412 runs vs baseline $0.0080 (learned); "
        "warn above $0.012"
    )
    empty = Finding("crm", "cost_per_run", "ratio", Status.UNKNOWN, evidence={
        "reason": "no runs in window"})  # fmt: skip
    assert summarize(empty, NOW) == "cost per run: no runs in the last hour"


def test_adoption_names_the_team_the_day_and_the_usual_level() -> None:
    team = Finding(
        "crm", "team_runs.finance", "daily_robust_z", Status.WARN, value=12.0, baseline=340.0,
        statistic=-8.14, threshold=-3.0, window="2026-11-22T00:00Z/2026-11-23T00:00Z",
        samples=21, evidence={"same_weekday": True},
    )  # fmt: skip
    assert summarize(team, NOW) == (
        "runs of team finance 12 on 2026-11-22 vs usual 340 (same weekday); robust z -8.1 <= -3.0"
    )
    users = Finding(
        "crm", "active_users", "daily_robust_z", Status.UNKNOWN,
        evidence={"reason": "need 7 past days, have 2"},
    )  # fmt: skip
    assert summarize(users, NOW) == "active users: need 7 past days, have 2"


def test_a_version_change_names_the_new_and_the_previous_version() -> None:
    f = Finding(
        "crm", "model_version", "version_change", Status.WARN, since=at("2026-11-23T07:30"),
        evidence={"previous": ["gpt-4o@2024-05-13/v3"],
                  "current": ["gpt-4o@2024-05-13/v3", "gpt-4o@2024-08-06/v3"],
                  "new": ["gpt-4o@2024-08-06/v3"]},
    )  # fmt: skip
    assert summarize(f, NOW) == (
        "new model/prompt version gpt-4o@2024-08-06/v3, before: gpt-4o@2024-05-13/v3; "
        "seen since 07:30 UTC"
    )


def test_silence_says_how_long_how_much_was_expected_and_the_last_event() -> None:
    f = Finding(
        "crm", "events", "no_data", Status.WARN,
        evidence={"silent_s": 7800.0, "expected_events": 130.4, "last_event": at(
            "2026-11-23T07:50")},
    )  # fmt: skip
    assert summarize(f, NOW) == (
        "no events for 2 h 10 min, about 130 expected at the usual rate; last one at 07:50 UTC"
    )
    young = Finding("crm", "events", "no_data", Status.UNKNOWN, evidence={
        "reason": "learning baseline", "learned": 12, "needed": 50})  # fmt: skip
    assert summarize(young, NOW) == "events: learning the usual rate: 12 of 50"


# --- through the engine, and for any finding at all -------------------------------------


def test_every_finding_of_a_pass_leaves_the_engine_with_its_sentence() -> None:
    minute = [Rollup("wf", "edited", 60 * i, 20, 4 if i < 20 else 9) for i in range(60)]
    errors = [Rollup("wf", "errors", 60 * i, 100, 30) for i in range(60)]
    config = DetectionConfig(declared={("wf", "edited"): DeclaredBaseline(0.2)})
    findings, _ = run_pass(
        {("wf", "edited"): minute, ("wf", "errors"): errors}, {}, config, now=3600.0
    )
    by_key = {(f.signal, f.detector): f for f in findings}
    assert set(by_key) >= {("edited", "cusum"), ("errors", "burn_rate"), ("errors", "cusum")}
    for f in findings:
        assert f.summary == summarize(f, 3600.0)
        assert f.summary.startswith(NAMES[f.signal])
    assert "(declared)" in by_key[("edited", "cusum")].summary
    assert "99% SLO" in by_key[("errors", "burn_rate")].summary


KNOWN_KEYS = [
    "baseline_source", "baseline_samples", "recent", "samples", "value", "window_s",
    "changepoint", "episode_start", "warn_threshold", "expected_delay_obs", "historic_alarm",
    "reason", "learned", "needed", "window_significant", "slo", "burn_rates", "1h", "fired",
    "seasonal", "spent", "budget", "same_weekday", "previous", "current", "new", "silent_s",
    "expected_events", "last_event",
]  # fmt: skip
numbers = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**400), max_value=10**400),
)
scalars = st.one_of(numbers, st.booleans(), st.text(max_size=300))
keys = st.one_of(st.sampled_from(KNOWN_KEYS), st.text(max_size=10))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=12,
)
signals = st.one_of(
    st.sampled_from(sorted(NAMES)),
    st.sampled_from(["team_runs.", "action_errors.", "kpi."]).flatmap(
        lambda p: st.text(max_size=200).map(lambda s: p + s)
    ),
    st.text(max_size=200),
)
maybe_float = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True))
# evidence as detectors write it (known keys, any values), and anything at all
recent = st.fixed_dictionaries(
    {}, optional={"samples": numbers, "value": numbers, "window_s": numbers}
)
known_evidence = st.fixed_dictionaries(
    {}, optional={k: st.one_of(values, recent) if k == "recent" else values for k in KNOWN_KEYS}
)
findings = st.builds(
    Finding,
    workflow=st.text(max_size=70),
    signal=signals,
    detector=st.one_of(st.sampled_from(sorted(COMPOSERS)), st.text(max_size=40)),
    status=st.sampled_from(list(Status)),
    value=maybe_float,
    baseline=maybe_float,
    statistic=maybe_float,
    threshold=maybe_float,
    p_value=maybe_float,
    window=st.one_of(
        st.none(),
        st.text(max_size=60),
        st.just("2026-11-22T00:00Z/2026-11-23T00:00Z"),
        st.just("9999-12-31T23:00Z/9999-12-31T23:59Z"),
    ),
    since=maybe_float,
    samples=st.integers(min_value=-5, max_value=10**15),
    evidence=st.one_of(known_evidence, st.dictionaries(keys, values, max_size=12)),
)


@settings(max_examples=400, deadline=None)
@given(findings, maybe_float)
def test_any_finding_gets_one_bounded_line_and_nothing_raises(
    f: Finding, now: float | None
) -> None:
    text = compose(f, now)  # unguarded: a raise here is a bug, not a fallback
    assert text and len(text) <= MAX_LEN
    assert "\n" not in text and text == text.strip()
    assert summarize(f, now) == text


def test_the_longest_names_and_figures_still_fit_one_line() -> None:
    f = Finding(
        "wf", "kpi." + "k" * 90, "cusum", Status.CRITICAL, value=-1.5e300, baseline=-2.5e300,
        statistic=-1e300, threshold=1e300, since=1e300, samples=10**15,
        evidence={"baseline_source": "s" * 90, "baseline_samples": 10**14, "learned": 1,
                  "historic_alarm": -1e300},
    )  # fmt: skip
    text = compose(f, NOW)  # times beyond datetime's range are left out, not raised on
    assert len(text) == MAX_LEN and text.endswith("…")
    assert text.startswith(
        "KPI " + "k" * 39 + "… -1.5e+300 over the last 1,000,000,000,000,000 values"
    )


def test_nan_and_missing_figures_read_n_a_instead_of_failing() -> None:
    f = cusum(
        "edited", Status.CRITICAL, value=0.3, baseline=0.2, statistic=math.nan, threshold=None
    )
    assert summarize(f, NOW) == (
        "edit rate 0.30 over the last 0 reviews vs baseline 0.20; CUSUM n/a >= threshold n/a"
    )


def test_a_judged_chart_whose_window_emptied_says_so_instead_of_a_value() -> None:
    f = cusum(
        "edited", Status.CRITICAL, baseline=0.2, statistic=8.0, threshold=5.0, samples=0,
        since=at("2026-11-23T06:00"),
        evidence={"baseline_source": "declared", "recent": {"samples": 0, "window_s": 3600}},
    )  # fmt: skip
    assert summarize(f, NOW) == (
        "edit rate: no reviews in the last hour vs baseline 0.20 (declared); "
        "CUSUM 8.0 >= threshold 5.0; started about 06:00 UTC"
    )
