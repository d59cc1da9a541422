"""Every chart class passes the same hard cases: bad parameters, round trip, empty input, reset."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from detectors.stats.bernoulli_cusum import BernoulliCusum
from detectors.stats.gaussian_cusum import GaussianCusum, WinsorisedGaussianCusum
from detectors.stats.protocol import SequentialDetector
from detectors.stats.two_sided import TwoSidedCusum, detector_from_dict

Factory = Callable[[], SequentialDetector]

# (factory, bucket generator producing (n, value) with a change half way)
CHARTS: dict[str, tuple[Factory, Callable[[np.random.Generator, bool], tuple[int, float]]]] = {
    "bernoulli_up": (
        lambda: BernoulliCusum(0.2, 0.3),
        lambda rng, after: (20, float(rng.binomial(20, 0.35 if after else 0.2))),
    ),
    "bernoulli_down": (
        lambda: BernoulliCusum(0.2, 0.12),
        lambda rng, after: (20, float(rng.binomial(20, 0.08 if after else 0.2))),
    ),
    "gaussian": (
        lambda: GaussianCusum(0.85, 0.1, -0.07),
        lambda rng, after: (5, float(rng.normal(0.75 if after else 0.85, 0.1, 5).sum())),
    ),
    "winsorised": (
        lambda: WinsorisedGaussianCusum(300.0, 50.0, 35.0),
        lambda rng, after: (5, float(rng.normal(360 if after else 300, 50, 5).sum())),
    ),
    "two_sided_bernoulli": (
        lambda: TwoSidedCusum.bernoulli(0.2, 0.3, 0.13),
        lambda rng, after: (20, float(rng.binomial(20, 0.35 if after else 0.2))),
    ),
    "bernoulli_batched": (
        lambda: BernoulliCusum(0.2, 0.3, batch=16),
        lambda rng, after: (20, float(rng.binomial(20, 0.35 if after else 0.2))),
    ),
    "two_sided_gaussian": (
        lambda: TwoSidedCusum.gaussian(0.85, 0.1, 0.07, clip=3.0),
        lambda rng, after: (5, float(rng.normal(0.95 if after else 0.85, 0.1, 5).sum())),
    ),
}

BAD_PARAMETERS: list[tuple[Callable[[], Any], str]] = [
    (lambda: BernoulliCusum(0.0, 0.3), "p0"),
    (lambda: BernoulliCusum(0.2, 1.0), "p1"),
    (lambda: BernoulliCusum(0.2, 0.2), "p1"),
    (lambda: BernoulliCusum(0.2, 0.3, arl0=1.0), "arl0"),
    (lambda: BernoulliCusum(0.2, 0.3, arl0=float("nan")), "arl0"),
    (lambda: GaussianCusum(0.85, 0.0, 0.07), "sigma"),
    (lambda: GaussianCusum(0.85, 0.1, 0.0), "delta"),
    (lambda: GaussianCusum(float("inf"), 0.1, 0.07), "mu0"),
    (lambda: GaussianCusum(0.85, 0.1, 0.07, clip=0.2), "clip"),
    (lambda: WinsorisedGaussianCusum(0.85, 0.1, 0.07, clip=None), "clip"),
    (lambda: TwoSidedCusum.bernoulli(0.2, 0.1, 0.3), "p_down"),
    (lambda: BernoulliCusum(0.2, 0.3, batch=0), "batch"),
    (lambda: GaussianCusum(0.85, 0.1, 0.07, batch=2.5), "batch"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("make", "field"), BAD_PARAMETERS)
def test_invalid_parameters_raise_value_error_naming_the_field(
    make: Callable[[], Any], field: str
) -> None:
    with pytest.raises(ValueError, match=field):
        make()


@pytest.mark.parametrize("name", sorted(CHARTS))
def test_bad_bucket_input_raises_value_error(name: str) -> None:
    chart = CHARTS[name][0]()
    with pytest.raises(ValueError, match="n "):
        chart.update(-1, 0.0)
    if "bernoulli" in name:
        with pytest.raises(ValueError, match="events"):
            chart.update(5, 6)
    else:
        with pytest.raises(ValueError, match="sum"):
            chart.update(5, float("nan"))


@pytest.mark.parametrize("name", sorted(CHARTS))
def test_empty_input_never_alarms(name: str) -> None:
    chart = CHARTS[name][0]()
    for _ in range(1000):
        assert chart.update(0, 0.0) is False
    assert chart.statistic == 0.0
    assert chart.n_obs == 0
    assert chart.alarm_at is None


@pytest.mark.parametrize("name", sorted(CHARTS))
def test_round_trip_mid_stream_continues_identically(name: str) -> None:
    make, gen = CHARTS[name]
    rng = np.random.default_rng(3)
    buckets = [gen(rng, i >= 60) for i in range(200)]
    original = make()
    for n, v in buckets[:80]:
        original.update(n, v)
    saved = json.loads(json.dumps(original.to_dict()))  # must be JSON-safe
    restored = detector_from_dict(saved)
    trace_a, trace_b = [], []
    for n, v in buckets[80:]:
        trace_a.append((original.update(n, v), original.statistic))
        trace_b.append((restored.update(n, v), restored.statistic))
    assert trace_a == trace_b
    assert original.alarm_at == restored.alarm_at
    assert original.alarm_at is not None  # the change was detected, so the trace is non-trivial


@pytest.mark.parametrize("name", sorted(CHARTS))
def test_reset_returns_to_fresh_state(name: str) -> None:
    make, gen = CHARTS[name]
    rng = np.random.default_rng(4)
    chart = make()
    for _ in range(300):
        chart.update(*gen(rng, True))
    assert chart.alarmed
    chart.reset()
    fresh = make()
    assert chart.to_dict() == fresh.to_dict()
    assert not chart.alarmed


@pytest.mark.parametrize("name", sorted(CHARTS))
def test_evidence_carries_threshold_and_achieved_arl0(name: str) -> None:
    chart = CHARTS[name][0]()
    ev = chart.evidence()
    assert ev["detector"] == chart.name
    assert ev["h"] == pytest.approx(chart.threshold)
    assert 9_000 < ev["arl0_achieved"] < 11_000


def test_saved_calibration_is_reused_only_for_the_same_parameters() -> None:
    saved = BernoulliCusum(0.2, 0.3, batch=16).to_dict()
    saved["calibration"]["threshold_units"] += 7  # marks the saved copy
    restored = detector_from_dict(saved)
    assert isinstance(restored, BernoulliCusum)
    assert (
        restored.lattice.threshold_units
        == BernoulliCusum(0.2, 0.3, batch=16).lattice.threshold_units + 7
    )
    saved["p1"] = 0.35  # parameters changed: the saved calibration no longer applies
    fresh = detector_from_dict(saved)
    assert fresh.threshold == BernoulliCusum(0.2, 0.35, batch=16).threshold
    g = GaussianCusum(0.85, 0.1, -0.07, batch=8).to_dict()
    g["calibration"]["h_std"] = 1.0
    assert detector_from_dict(g).threshold == pytest.approx(0.7)  # h_std x shift_sd


def test_unknown_saved_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown chart kind"):
        detector_from_dict({"detector": "nope"})
