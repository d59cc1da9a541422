"""Window tests, Benjamini-Hochberg, burn rates, robust z and projection: exact numbers."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.stats.burn_rate import DEFAULT_RULES, evaluate_burn_rates, window_label
from detectors.stats.robust import (
    hour_of_week,
    median_mad,
    month_bounds,
    project_monthly_spend,
    robust_z,
    seasonal_robust_z,
)
from detectors.stats.window import (
    benjamini_hochberg,
    fisher_exact,
    ks_two_sample,
    mann_whitney,
    summary_from_moments,
    two_proportion_z,
    welch_t_summary,
)


def test_two_proportion_z_matches_hand_computation() -> None:
    # pooled p = 0.23, se = sqrt(0.23 * 0.77 * (2 / 1000)) = 0.0188202
    r = two_proportion_z(200, 1000, 260, 1000, alternative="greater")
    assert r.statistic == pytest.approx(0.06 / math.sqrt(0.23 * 0.77 * 0.002))
    assert r.p_value == pytest.approx(0.000716, abs=2e-6)


def test_two_proportion_z_on_identical_all_zero_samples_is_not_significant() -> None:
    assert two_proportion_z(0, 50, 0, 80).p_value == 1.0


def test_fisher_exact_greater_means_second_sample_has_more_events() -> None:
    # Classic tea-tasting table [[3, 1], [1, 3]]: one-sided p = 17/70.
    r = fisher_exact(1, 4, 3, 4, alternative="greater")
    assert r.p_value == pytest.approx(17 / 70)
    assert r.statistic == pytest.approx(9.0)


def test_welch_t_from_summaries_matches_textbook() -> None:
    # t = (12 - 10) / sqrt(4/10 + 9/12) = 1.865; Welch-Satterthwaite df = 19.19.
    r = welch_t_summary(10, 10.0, 2.0, 12, 12.0, 3.0)
    assert r.statistic == pytest.approx(2 / math.sqrt(0.4 + 0.75))
    df = 1.15**2 / (0.4**2 / 9 + 0.75**2 / 11)
    assert df == pytest.approx(19.19, abs=0.01)
    assert r.p_value == pytest.approx(0.0775, abs=5e-4)


def test_summary_from_moments_gives_sample_sd() -> None:
    values = [1.0, 2.0, 4.0, 7.0]
    mean, sd = summary_from_moments(4, sum(values), sum(v * v for v in values))
    assert mean == 3.5
    assert sd == pytest.approx(2.6457513)


def test_raw_sample_tests_detect_a_clear_shift() -> None:
    a = [float(i) for i in range(20)]
    b = [float(i) + 15 for i in range(20)]
    assert ks_two_sample(a, b).statistic == pytest.approx(0.75)
    mw = mann_whitney(a, b, alternative="greater")
    assert mw.p_value < 1e-4
    assert mann_whitney(a, b, alternative="less").p_value > 0.99


def test_benjamini_hochberg_step_up_rejects_all_below_largest_passing_rank() -> None:
    # sorted: 0.01 <= .0125 (rank1), 0.02 <= .025, 0.035 <= .0375, 0.045 > 0.05? no: 0.045<=0.05
    p = [0.045, 0.01, 0.035, 0.02]
    assert benjamini_hochberg(p, q=0.05) == [True, True, True, True]
    assert benjamini_hochberg([0.045, 0.01, 0.04, 0.5], q=0.05) == [False, True, False, False]


def test_benjamini_hochberg_rejects_bad_p_values() -> None:
    with pytest.raises(ValueError, match=r"p_values\[1\]"):
        benjamini_hochberg([0.1, 1.5])


def _minutes(start_min: int, end_min: int, trials: int, errors: int) -> list[tuple[int, int, int]]:
    return [(m * 60, trials, errors) for m in range(start_min, end_min)]


def test_fast_burn_pages_only_when_short_window_also_burns() -> None:
    now = 6 * 3600
    # 6 h of 0.5 % errors, then the last hour at 20 %; SLO 99 % -> budget 1 %.
    base = _minutes(0, 300, 100, 0) + [(m * 60, 200, 1) for m in range(0, 300)]
    bad_hour = _minutes(300, 360, 100, 20)
    r = evaluate_burn_rates(bad_hour + _minutes(0, 300, 100, 0), slo=0.99, now=now)
    assert r.burn_rates["1h"] == pytest.approx(20.0)
    assert r.burn_rates["5m"] == pytest.approx(20.0)
    assert r.status == "critical"
    assert "page_1h" in r.fired
    # same bad hour but errors stopped 5 minutes ago: the short window resets the page
    recovered = _minutes(300, 355, 100, 20) + _minutes(355, 360, 100, 0)
    r2 = evaluate_burn_rates(recovered + base, slo=0.99, now=now)
    assert r2.burn_rates["5m"] == 0.0
    assert "page_1h" not in r2.fired


def test_slow_burn_opens_a_ticket_not_a_page() -> None:
    now = 3 * 86400
    rows = _minutes(0, 3 * 1440, 10, 0)
    rows = [(b, t, 1 if i % 5 == 0 else 0) for i, (b, t, _) in enumerate(rows)]  # 2 % errors
    r = evaluate_burn_rates(rows, slo=0.99, now=now)
    assert r.burn_rates["3d"] == pytest.approx(2.0)
    assert r.status == "warn"
    assert r.fired == ["ticket_3d"]


def test_burn_rates_with_no_traffic_are_unknown() -> None:
    assert evaluate_burn_rates([], slo=0.99, now=1e6).status == "unknown"
    with pytest.raises(ValueError, match="slo"):
        evaluate_burn_rates([], slo=99, now=1e6)


_bucket = st.tuples(
    st.integers(0, 4 * 86_400).map(lambda s: s - s % 60),
    st.integers(0, 50),
    st.integers(0, 50),
).map(lambda b: (b[0], b[1], min(b[1], b[2])))


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(_bucket, max_size=300), now=st.integers(0, 4 * 86_400))
def test_burn_rate_windows_sum_exactly_the_buckets_that_start_inside_them(
    rows: list[tuple[int, int, int]], now: int
) -> None:
    got = evaluate_burn_rates(rows, slo=0.99, now=now)
    for w in {s for r in DEFAULT_RULES for s in (r.long_s, r.short_s)}:
        inside = [(t, e) for b, t, e in rows if now - w <= b < now]
        n = sum(t for t, _ in inside)
        assert got.trials[window_label(w)] == n
        if n:
            bad = sum(e for _, e in inside)
            assert got.burn_rates[window_label(w)] == pytest.approx(bad / n / 0.01)


def test_robust_z_ignores_a_past_spike() -> None:
    history = [10.0, 11.0, 9.0, 10.0, 12.0, 10.0, 8.0, 500.0]
    med, mad = median_mad(history)
    assert med == 10.0
    assert mad == pytest.approx(1.4826)
    assert robust_z(13.0, history) == pytest.approx(3 / 1.4826)


def test_robust_z_on_flat_history_uses_min_scale() -> None:
    assert robust_z(5.0, [5.0, 5.0]) == 0.0
    assert robust_z(6.0, [5.0, 5.0]) == math.inf
    assert robust_z(6.0, [5.0, 5.0], min_scale=0.5) == 2.0


def test_seasonal_baseline_uses_same_hour_of_week() -> None:
    monday_9 = 4 * 86400 + 9 * 3600  # 1970-01-05 was a Monday
    assert hour_of_week(monday_9) == 9
    week = 7 * 86400
    # Monday 9:00 is busy (100), other hours quiet (10)
    history = [(monday_9 - w * week, 100.0 + w) for w in range(1, 5)]
    history += [(monday_9 - w * week + 3600, 10.0) for w in range(1, 5)]
    score = seasonal_robust_z(monday_9, 103.0, history)
    assert score.seasonal
    assert score.baseline == 102.5
    assert score.samples == 4
    assert score.z == pytest.approx(0.5 / (1.0 * 1.4826))


def test_monthly_projection_and_month_bounds() -> None:
    start, end = month_bounds(1_795_000_000)  # 2026-11-17
    assert (end - start) / 86400 == 30
    assert project_monthly_spend(120.0, 2.0, 100.0) == 320.0
    with pytest.raises(ValueError, match="hourly_rate"):
        project_monthly_spend(1.0, -1.0, 1.0)
