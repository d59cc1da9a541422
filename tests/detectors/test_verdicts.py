"""The verdict rules of a chart set (issue 13), each on seeded simulated traffic:
one episode per alarm, recovery, old and future-dated data, no critical without present
evidence, version changes compared with the previous baseline, a change inside the
learning period, and the budget turned into a per-chart ARL0.

Traffic: one review per minute bucket of ``per_min`` reviews, passes every 10 minutes, as
the scheduler would feed ``run_chart`` (only the new rollups of each pass).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from detectors.baseline import Baseline
from detectors.config import DetectionConfig
from detectors.engine import run_pass
from detectors.sequential import SignalSpec, chart_budget, run_chart
from detectors.types import Finding, Rollup, Status

DAY = 86_400
PASS = 600
SPEC = SignalSpec("edited", "rate", "up")
DECLARED = Baseline("rate", 0.2, None, None, "declared")


def feed(
    rate: Callable[[float], float],
    start: float,
    end: float,
    state: dict[str, object] | None = None,
    *,
    per_min: int = 2,
    seed: int = 1,
    baseline: Baseline | None = DECLARED,
    version: Callable[[float], str] | None = None,
    config: DetectionConfig | None = None,
) -> tuple[list[tuple[float, Finding]], dict[str, object]]:
    """Run passes every PASS seconds from ``start`` to ``end``; the edit rate at time t is
    ``rate(t)``; returns (pass time, finding) per pass and the final state."""
    rng = np.random.default_rng(seed)
    cfg = config or DetectionConfig()
    st: dict[str, object] = dict(state or {})
    out = []
    for t in range(int(start) + PASS, int(end) + 1, PASS):
        ups = []
        for m in range((t - PASS) // 60, t // 60):
            k = int(rng.binomial(per_min, rate(m * 60.0)))
            ups.append(Rollup("wf", "edited", m * 60, per_min, k))
        v = version(float(t)) if version else None
        f, st = run_chart("wf", SPEC, ups, st, cfg, float(t), baseline, v, charts=8)
        out.append((float(t), f))
    return out, st


def statuses(passes: list[tuple[float, Finding]]) -> list[str]:
    return [f.status.value for _, f in passes]


def episodes(passes: list[tuple[float, Finding]]) -> int:
    s = statuses(passes)
    return sum(
        1 for a, b in zip(["ok", *s], s, strict=False) if b == "critical" and a != "critical"
    )


def test_a_lasting_drift_is_one_episode_that_stays_critical() -> None:
    calm, _ = feed(lambda t: 0.2, 0, DAY)
    assert "critical" not in statuses(calm)
    drift, _ = feed(lambda t: 0.2 if t < DAY else 0.33, 0, 4 * DAY)
    after = [f for t, f in drift if t >= DAY]
    first = next(i for i, f in enumerate(after) if f.status is Status.CRITICAL)
    # once critical, it stays critical while the drift lasts (3 days): no flapping
    assert {f.status for f in after[first:]} == {Status.CRITICAL}
    assert episodes(drift) == 1
    f = after[-1]
    assert f.since is not None and DAY - 3600 <= f.since <= after[first].evidence["episode_start"]
    assert f.evidence["recent"]["samples"] > 0


def test_recovery_ends_the_episode_and_a_new_drift_is_a_new_one() -> None:
    def rate(t: float) -> float:
        return 0.45 if DAY <= t < DAY + 6 * 3600 or 3 * DAY <= t < 3 * DAY + 6 * 3600 else 0.2

    passes, _ = feed(rate, 0, 4 * DAY)
    assert episodes(passes) == 2
    back = [f for t, f in passes if 2 * DAY <= t < 3 * DAY]
    assert back[-1].status is Status.OK  # recovered before the second drift


def test_backfilled_old_data_feeds_history_but_does_not_trip_now() -> None:
    _, state = feed(lambda t: 0.2, 0, 3 * DAY)
    now = 6 * DAY
    rng = np.random.default_rng(5)
    # 3,000 reviews from three days ago at 60 % edits, sent in one batch now
    old = [
        Rollup("wf", "edited", 3 * DAY + 60 * i, 10, int(rng.binomial(10, 0.6))) for i in range(300)
    ]
    live = [
        Rollup("wf", "edited", now - 600 + 60 * i, 2, int(rng.binomial(2, 0.2))) for i in range(10)
    ]
    f, state = run_chart(
        "wf", SPEC, [*old, *live], state, DetectionConfig(), now, DECLARED, charts=8
    )
    assert f.status is not Status.CRITICAL
    assert f.evidence["late_observations"] == 3000
    # the same batch dated now does trip: the rule is about time, not about the data
    fresh = [
        Rollup("wf", "edited", now - 3000 + 10 * i, 10, r.successes) for i, r in enumerate(old)
    ]
    _, state2 = feed(lambda t: 0.2, 0, 3 * DAY)
    g, _ = run_chart(
        "wf",
        SPEC,
        [r for r in fresh if r.bucket % 60 == 0],
        state2,
        DetectionConfig(),
        now,
        DECLARED,
        charts=8,
    )
    assert g.status is Status.CRITICAL


def test_future_dated_data_does_not_trip() -> None:
    _, state = feed(lambda t: 0.2, 0, DAY)
    now = DAY + 600.0
    ahead = [Rollup("wf", "edited", int(now) + 23 * 3600 + 60 * i, 10, 8) for i in range(100)]
    f, _ = run_chart("wf", SPEC, ahead, state, DetectionConfig(), now, DECLARED, charts=8)
    assert f.status is not Status.CRITICAL


def test_no_recent_observation_is_unknown_even_during_an_episode() -> None:
    passes, state = feed(lambda t: 0.2 if t < DAY else 0.45, 0, DAY + 6 * 3600)
    assert passes[-1][1].status is Status.CRITICAL
    f, _ = run_chart("wf", SPEC, [], state, DetectionConfig(), DAY + 9 * 3600, DECLARED, charts=8)
    assert f.status is Status.UNKNOWN and f.samples == 0
    assert f.evidence["reason"] == "no data in the window"


def _versioned(after: float) -> Callable[[float], str]:
    return lambda t: "m@v1/-" if t < after else "m@v1/-,m@v2/-"


def test_a_drop_that_comes_with_a_new_version_is_caught_against_the_old_baseline() -> None:
    change = 2 * DAY

    def rate(t: float) -> float:
        return 0.2 if t < change else 0.4

    passes, _ = feed(rate, 0, change + DAY, baseline=None, version=_versioned(change))
    during = [f for t, f in passes if t > change]
    assert during[0].evidence["baseline_source"] == "previous_version"
    assert any(f.status is Status.CRITICAL for f in during)
    crit = next(f for f in during if f.status is Status.CRITICAL)
    assert crit.baseline == pytest.approx(0.2, abs=0.03)  # the old version's level
    # the worse version is never adopted as normal while the alarm lasts
    assert during[-1].status is Status.CRITICAL
    assert during[-1].evidence["baseline_source"] == "previous_version"


def test_a_neutral_version_change_is_silent_and_its_baseline_is_adopted() -> None:
    change = 2 * DAY
    passes, _ = feed(lambda t: 0.2, 0, change + 2 * DAY, baseline=None, version=_versioned(change))
    after = [f for t, f in passes if t > change]
    assert Status.CRITICAL not in {f.status for f in after}
    assert after[-1].evidence["baseline_source"] == "learned"  # the new version's own
    assert after[-1].evidence["model_version"] == "m@v1/-,m@v2/-"


def test_a_change_inside_the_learning_period_is_not_learned_as_normal() -> None:
    # the drift starts 90 minutes in, before the 400 reviews a 20 % rate needs
    passes, _ = feed(lambda t: 0.2 if t < 5400 else 0.45, 0, DAY, baseline=None)
    learned = next(f for _, f in passes if f.baseline is not None)
    assert learned.baseline is not None
    assert learned.baseline < 0.24  # learned on the part before the drift
    assert passes[-1][1].status is Status.CRITICAL


def test_the_budget_sets_each_charts_arl0_from_its_rate_and_the_chart_count() -> None:
    cfg = DetectionConfig(false_alarms_per_month=0.1)
    base = chart_budget(cfg, "wf", charts=8, per_day=1_000)
    # 30 days x 1,000 obs / (0.1 / (8 + 2)) = 3.0M, on the x1.41 grid
    assert 3.0e6 <= base.arl0 < 3.0e6 * 1.42
    assert chart_budget(cfg, "wf", charts=8, per_day=4_000).arl0 == pytest.approx(4 * base.arl0)
    assert chart_budget(cfg, "wf", charts=18, per_day=1_000).arl0 > 1.9 * base.arl0
    loose = DetectionConfig(false_alarms_per_month=1.0, budget_by_workflow={"strict": 0.01})
    assert chart_budget(loose, "wf", 8, 1_000).arl0 < base.arl0
    assert chart_budget(loose, "strict", 8, 1_000).arl0 > base.arl0
    # the pass reports it on every chart finding, from the rate it sees (2 reviews a minute)
    states: dict[tuple[str, str, str], dict[str, object]] = {}
    for hour in range(1, 11):
        ups = {
            ("wf", "edited"): [
                Rollup("wf", "edited", 60 * i, 2, int(i % 5 == 0))
                for i in range(60 * (hour - 1), 60 * hour)
            ]
        }
        findings, states = run_pass(ups, states, DetectionConfig(), now=3600.0 * hour)
    f = next(f for f in findings if f.signal == "edited")
    assert f.evidence["budget"]["charts"] == 1
    # the rate as of the start of the pass (its own rollups are not in yet)
    assert f.evidence["budget"]["obs_per_day"] == pytest.approx(2880, rel=0.15)
    assert f.evidence["budget"]["arl0"] >= 30 * 2500 / (0.1 / 3)


def _overdispersed(
    base: float, seed: int, ramp: tuple[float, float, float] | None = None
) -> Callable[[float], float]:
    """An edit rate whose level moves +-12 % from day to day (as real ones do), optionally
    ramping to ``to`` from ``start`` over ``length`` seconds: ``ramp = (start, length, to)``."""
    factors = 1.0 + 0.12 * np.random.default_rng([seed, 99]).standard_normal(64)

    def rate(t: float) -> float:
        level = base
        if ramp is not None:
            start, length, to = ramp
            level = base + (to - base) * min(max((t - start) / length, 0.0), 1.0)
        return float(min(max(level * factors[int(t // DAY)], 0.0), 1.0))

    return rate


@pytest.mark.parametrize("seed", [1, 2])
def test_a_slow_ramp_on_day_to_day_variation_is_caught_within_its_length(seed: int) -> None:
    """0.20 -> 0.35 over 7 days on a learned baseline, days varying +-12 %: before the day
    chart was self-starting and its reference lagged, every member was infeasible or at a
    ~390-nat threshold, the baseline absorbed the ramp and the chart read "ok" (then
    "unknown") for 11 days."""
    start = 4 * DAY + 10 * 3600
    rate = _overdispersed(0.20, seed, (start, 7 * DAY, 0.35))
    passes, _ = feed(rate, 0, start + 9 * DAY, per_min=1, seed=seed, baseline=None)
    first = next((t for t, f in passes if f.status is Status.CRITICAL), None)
    assert first is not None and start < first <= start + 8 * DAY, (
        (first - start) / DAY if first else None
    )
