"""Baselines: learning from rollups, design shifts, the learned-baseline guard, versions."""

from __future__ import annotations

import math

import pytest

from detectors.baseline import (
    Baseline,
    BaselineLearner,
    guarded_level,
    learn_from_rollups,
    rate_design,
    relearn,
    version_change_finding,
)
from detectors.types import Rollup, Status


def test_mean_baseline_uses_pooled_per_observation_sd() -> None:
    # two buckets: values {1, 3} and {5, 7}: mean 4, sample sd sqrt(20/3)
    ups = [Rollup("wf", "g", 0, 2, 0, 4.0, 10.0), Rollup("wf", "g", 60, 2, 0, 12.0, 74.0)]
    b = learn_from_rollups(ups, "mean")
    assert b.value == 4.0
    assert b.sd == pytest.approx(math.sqrt(20 / 3))
    assert b.samples == 4
    assert b.source == "window"


def test_learner_needs_two_observations() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        BaselineLearner("rate").baseline("learned")


def test_rate_design_applies_relative_shift_with_absolute_floor() -> None:
    assert rate_design(0.20, "up", 0.5, 0.01) == pytest.approx(0.30)
    assert rate_design(0.004, "up", 0.5, 0.01) == pytest.approx(0.014)  # floor wins
    assert rate_design(0.80, "down", 0.5, 0.01) == pytest.approx(0.40)
    assert rate_design(0.90, "up", 0.5, 0.01) == pytest.approx(0.975)  # stays below 1


def test_guard_moves_learned_level_toward_the_alarm_side_only() -> None:
    learned = Baseline("rate", 0.20, None, 500, "learned")
    se = math.sqrt(((100.5 / 501) * (1 - 100.5 / 501)) / 500)
    assert guarded_level(learned, "up", 1.0) == pytest.approx(100.5 / 501 + se)
    assert guarded_level(learned, "down", 1.0) == pytest.approx(100.5 / 501 - se)
    declared = Baseline("rate", 0.20, None, None, "declared")
    assert guarded_level(declared, "up", 1.0) == 0.20
    zero = Baseline("rate", 0.0, None, 500, "learned")
    assert guarded_level(zero, "up", 1.0) > 0  # a learned 0 % error rate stays watchable
    mean = Baseline("mean", 0.85, 0.1, 100, "learned")
    assert guarded_level(mean, "down", 1.0) == pytest.approx(0.84)


def test_relearn_keeps_only_status_bookkeeping() -> None:
    state = {"baseline": {}, "chart": {}, "window": [], "_status": "ok", "_since": 5.0}
    assert relearn(state) == {"_status": "ok", "_since": 5.0}


def test_version_change_finding_only_for_new_versions_after_a_known_one() -> None:
    assert version_change_finding("wf", [], ["v1"], 0.0) is None  # first sighting
    assert version_change_finding("wf", ["v1", "v2"], ["v2"], 0.0) is None  # rollback of canary
    f = version_change_finding("wf", ["v1"], ["v1", "v2"], 10.0)
    assert f is not None
    assert (f.signal, f.detector, f.status) == ("model_version", "version_change", Status.WARN)
    assert f.evidence["new"] == ["v2"]
