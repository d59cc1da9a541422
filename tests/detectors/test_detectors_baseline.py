"""Baselines: learning from rollups, the chart set's designs, changes inside a learning
period, versions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from detectors.baseline import (
    BaselineLearner,
    Learning,
    learn_from_rollups,
    relearn,
    version_change_finding,
)
from detectors.charts import members
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


def test_chart_set_members_cover_1_25x_to_3x_in_the_bad_direction() -> None:
    up = [m.param for m in members("rate", "up", 0.20) if m.scale == "obs"]
    assert up == pytest.approx([0.25, 0.30, 0.40, 0.60])
    # a falling approval rate: the rate of the other outcome rises 1.25x .. 3x
    down = [m.param for m in members("rate", "down", 0.80) if m.scale == "obs"]
    assert down == pytest.approx([0.75, 0.70, 0.60, 0.40])
    high = [m.param for m in members("rate", "up", 0.5) if m.scale == "obs"]
    assert max(high) < 1.0 and len(high) == len(set(high))  # capped below 1, no duplicates
    assert [m.scale for m in members("mean", "both", 1.0)].count("day") == 2


def _learn(rates: list[float], per_hour: int = 100, seed: int = 3) -> Learning:
    rng = np.random.default_rng(seed)
    lr = Learning.new("rate")
    for h, p in enumerate(rates):
        for m in range(60):
            n = per_hour // 60 + (1 if m < per_hour % 60 else 0)
            lr.add(Rollup("wf", "edited", 3600 * h + 60 * m, n, int(rng.binomial(n, p))))
    return lr


def test_a_change_inside_the_learning_period_is_found() -> None:
    lr = _learn([0.2] * 5 + [0.45] * 2)
    assert lr.split("up", prior_sd=0.0) == 5 * 4  # the first 15-minute chunk at 0.45
    # homogeneous learning data: no split (seeded; |z| stays under the 3.5 threshold)
    assert all(_learn([0.2] * 7, seed=s).split("up", 0.0) is None for s in range(20))


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
