"""CUSUM charts that update from bucketed counts, so they run directly on rollups.

* :class:`BernoulliCusum` (rates): a bucket of ``n`` trials with ``k`` events adds
  ``k ln(p1/p0) + (n-k) ln((1-p1)/(1-p0))`` to the LLR statistic, floored at 0
  (with ``n = 1`` this is the exact per-observation CUSUM). The increments are the lattice
  values of :func:`~detectors.stats.calibration.bernoulli_lattice`, so the calibrated ARL0
  is the chart's exact ARL0 (per observation).
* :class:`GaussianCusum` (means): a bucket of ``n`` values with mean ``m`` adds
  ``n (delta/sigma^2)(m - mu0 - delta/2)``. ``clip`` winsorises the standardised bucket
  mean at ``+-clip`` sd (:class:`WinsorisedGaussianCusum`, default 2.5): with ``n = 1``
  this is per-observation winsorising, with larger buckets it bounds what one outlying
  bucket can add.
* Two-sided monitoring: :class:`detectors.stats.two_sided.TwoSidedCusum`.

With buckets of ``n > 1`` the floor and the alarm check apply at bucket ends only, which
never raises the statistic above the per-observation chart, so a chart calibrated per
observation (``batch = 1``) is conservative on buckets (ARL0 ~2.6x the target at 20 obs per
bucket for 0.20 -> 0.30). ``batch = n`` calibrates the threshold for buckets of ``n``
(detectors.stats.calibration); larger real buckets stay conservative, smaller ones spend
the budget faster.

All statistics and thresholds are in nats (LLR scale), so one threshold rule fits all.

Example (edit rate 0.20 -> 0.30 at observation 500, one observation per update):
    >>> import numpy as np
    >>> rng = np.random.default_rng(7)
    >>> x = np.concatenate([rng.random(500) < 0.20, rng.random(2000) < 0.30])
    >>> chart = BernoulliCusum(p0=0.20, p1=0.30, arl0=10_000)
    >>> for xi in x:
    ...     _ = chart.update(1, int(xi))
    >>> chart.alarm_at, round(chart.threshold, 3)
    (621, 5.356)
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any, Protocol

from detectors.stats.calibration import (
    BernoulliLattice,
    GaussianCalibration,
    bernoulli_batch_lattice,
    gaussian_threshold,
)

DEFAULT_ARL0 = 10_000.0
DEFAULT_CLIP = 2.5


class SequentialDetector(Protocol):
    """What the signal families need from a chart."""

    name: str

    def update(self, n: int, value: float) -> bool: ...
    def reset(self) -> None: ...
    def to_dict(self) -> dict[str, Any]: ...
    def evidence(self) -> dict[str, Any]: ...
    @property
    def statistic(self) -> float: ...
    @property
    def threshold(self) -> float: ...
    @property
    def alarmed(self) -> bool: ...
    @property
    def n_obs(self) -> int: ...
    @property
    def alarm_at(self) -> int | None: ...


def _check_batch(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n (observations in the bucket) must be an int >= 0, got {n!r}")


def check_arl0(arl0: float) -> float:
    if not isinstance(arl0, int | float) or not math.isfinite(arl0) or arl0 <= 1:
        raise ValueError(f"arl0 must be a finite number > 1, got {arl0!r}")
    return float(arl0)


class _Counted:
    """Observation count and first-alarm bookkeeping shared by the one-sided charts."""

    _n: int
    _alarm_at: int | None

    @property
    def alarmed(self) -> bool:
        raise NotImplementedError

    def _counted(self, n: int) -> bool:
        self._n += n
        if self._alarm_at is None and self.alarmed:
            self._alarm_at = self._n
        return self.alarmed

    @property
    def n_obs(self) -> int:
        return self._n

    @property
    def alarm_at(self) -> int | None:
        """Observation count at the first alarm since the last reset."""
        return self._alarm_at


class BernoulliCusum(_Counted):
    """One-sided Bernoulli CUSUM for a rate; ``p1 > p0`` watches a rise, ``p1 < p0`` a fall.

    ``update(n, k)`` takes a bucket of ``n`` trials with ``k`` events and returns whether the
    statistic is at or above the threshold after it.
    """

    name = "bernoulli_cusum"

    def __init__(
        self,
        p0: float,
        p1: float,
        arl0: float = DEFAULT_ARL0,
        batch: int = 1,
        calibration: BernoulliLattice | None = None,
    ) -> None:
        self.arl0 = check_arl0(arl0)
        # A saved calibration (from to_dict) spares the Markov-chain solve on every reload;
        # it is used only if it was made for exactly these parameters.
        key = (float(p0), float(p1), self.arl0, batch)
        saved = calibration
        if saved is None or (saved.p0, saved.p1, saved.target_arl0, saved.batch) != key:
            saved = bernoulli_batch_lattice(*key)
        self.lattice = saved
        self.batch = batch
        self.p0, self.p1 = float(p0), float(p1)
        self._units = 0
        self._n = 0
        self._alarm_at: int | None = None

    def update(self, n: int, value: float) -> bool:
        """Add a bucket of ``n`` trials with ``value`` (= k) events."""
        _check_batch(n)
        k = value
        if isinstance(k, bool) or not math.isfinite(k) or k != int(k) or not 0 <= k <= n:
            raise ValueError(f"events must be an int in [0, n={n}], got {value!r}")
        lat = self.lattice
        self._units = max(
            0, self._units + int(k) * lat.step_event + (n - int(k)) * lat.step_nonevent
        )
        return self._counted(n)

    def reset(self) -> None:
        self._units, self._n, self._alarm_at = 0, 0, None

    @property
    def statistic(self) -> float:
        return self._units * self.lattice.unit

    @property
    def threshold(self) -> float:
        return self.lattice.h

    @property
    def alarmed(self) -> bool:
        return self._units >= self.lattice.threshold_units

    def evidence(self) -> dict[str, Any]:
        lat = self.lattice
        return {
            "detector": self.name,
            "p0": self.p0,
            "p1": self.p1,
            "h": lat.h,
            "arl0_target": self.arl0,
            "arl0_achieved": lat.arl0,
            "expected_delay": lat.arl1,
            "batch": self.batch,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "detector": self.name,
            "p0": self.p0,
            "p1": self.p1,
            "arl0": self.arl0,
            "batch": self.batch,
            "calibration": asdict(self.lattice),
            "s": self._units,
            "n": self._n,
            "alarm_at": self._alarm_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BernoulliCusum:
        saved = BernoulliLattice(**data["calibration"]) if "calibration" in data else None
        chart = cls(data["p0"], data["p1"], data["arl0"], data.get("batch", 1), saved)
        chart._units, chart._n, chart._alarm_at = int(data["s"]), int(data["n"]), data["alarm_at"]
        return chart


class GaussianCusum(_Counted):
    """One-sided Gaussian CUSUM for a mean; ``delta > 0`` watches a rise, ``< 0`` a fall.

    ``update(n, total)`` takes a bucket of ``n`` values summing to ``total``.

    Example (groundedness 0.85 -> 0.78, sd 0.10, change after 1,000 scores):
        >>> import numpy as np
        >>> rng = np.random.default_rng(3)
        >>> x = np.concatenate([rng.normal(0.85, 0.1, 1000), rng.normal(0.78, 0.1, 200)])
        >>> chart = GaussianCusum(mu0=0.85, sigma=0.10, delta=-0.07)
        >>> for xi in x:
        ...     _ = chart.update(1, float(xi))
        >>> chart.alarm_at, round(chart.threshold, 2)
        (1011, 6.99)
    """

    name = "gaussian_cusum"

    def __init__(
        self,
        mu0: float,
        sigma: float,
        delta: float,
        arl0: float = DEFAULT_ARL0,
        clip: float | None = None,
        batch: int = 1,
        calibration: GaussianCalibration | None = None,
    ) -> None:
        for field, v in (("mu0", mu0), ("sigma", sigma), ("delta", delta)):
            if not isinstance(v, int | float) or not math.isfinite(v):
                raise ValueError(f"{field} must be a finite number, got {v!r}")
        if sigma <= 0:
            raise ValueError(f"sigma must be > 0, got {sigma!r}")
        if delta == 0:
            raise ValueError("delta (design shift) must be non-zero")
        self.arl0 = check_arl0(arl0)
        self.mu0, self.sigma, self.delta = float(mu0), float(sigma), float(delta)
        self.clip = None if clip is None else float(clip)
        # Rounding the design shift lets the calibration cache serve similar baselines.
        self.shift_sd = round(abs(self.delta) / self.sigma, 4)
        key = (self.shift_sd, self.arl0, self.clip, batch)
        saved = calibration
        if saved is None or (saved.shift_sd, saved.target_arl0, saved.clip, saved.batch) != key:
            saved = gaussian_threshold(*key)
        self.calibration = saved
        self.batch = batch
        self._s = 0.0  # standardised scale
        self._n = 0
        self._alarm_at: int | None = None

    def update(self, n: int, value: float) -> bool:
        """Add a bucket of ``n`` observations whose sum is ``value``."""
        _check_batch(n)
        if not math.isfinite(value):
            raise ValueError(f"sum must be finite, got {value!r}")
        if n == 0:
            return self.alarmed
        z = math.copysign(1.0, self.delta) * (value / n - self.mu0) / self.sigma
        if self.clip is not None:
            z = min(max(z, -self.clip), self.clip)
        self._s = max(0.0, self._s + n * (z - self.shift_sd / 2.0))
        return self._counted(n)

    def reset(self) -> None:
        self._s, self._n, self._alarm_at = 0.0, 0, None

    @property
    def statistic(self) -> float:
        return self._s * self.shift_sd

    @property
    def threshold(self) -> float:
        return self.calibration.h

    @property
    def alarmed(self) -> bool:
        return self._s >= self.calibration.h_std

    def evidence(self) -> dict[str, Any]:
        return {
            "detector": self.name,
            "mu0": self.mu0,
            "delta": self.delta,
            "sigma": self.sigma,
            "clip": self.clip,
            "h": self.calibration.h,
            "arl0_target": self.arl0,
            "arl0_achieved": self.calibration.arl0,
            "batch": self.batch,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "detector": self.name,
            "mu0": self.mu0,
            "sigma": self.sigma,
            "delta": self.delta,
            "arl0": self.arl0,
            "clip": self.clip,
            "batch": self.batch,
            "calibration": asdict(self.calibration),
            "s": self._s,
            "n": self._n,
            "alarm_at": self._alarm_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GaussianCusum:
        saved = GaussianCalibration(**data["calibration"]) if "calibration" in data else None
        chart = cls(
            data["mu0"],
            data["sigma"],
            data["delta"],
            data["arl0"],
            data["clip"],
            data.get("batch", 1),
            saved,
        )
        chart._s, chart._n, chart._alarm_at = float(data["s"]), int(data["n"]), data["alarm_at"]
        return chart


class WinsorisedGaussianCusum(GaussianCusum):
    """Gaussian CUSUM with standardised values winsorised at ``+-clip`` sd (robust).

    Example (latency 800 ms, sd 200: one 60 s outlier does not alarm, +30 % does):
        >>> import numpy as np
        >>> rng = np.random.default_rng(4)
        >>> chart = WinsorisedGaussianCusum(mu0=800.0, sigma=200.0, delta=140.0)
        >>> chart.update(1, 60_000.0)
        False
        >>> for xi in rng.normal(1040.0, 200.0, 300):
        ...     _ = chart.update(1, float(xi))
        >>> chart.alarm_at
        13
    """

    name = "winsorised_gaussian_cusum"

    def __init__(
        self,
        mu0: float,
        sigma: float,
        delta: float,
        arl0: float = DEFAULT_ARL0,
        clip: float | None = DEFAULT_CLIP,
        batch: int = 1,
        calibration: GaussianCalibration | None = None,
    ) -> None:
        if clip is None:
            raise ValueError("clip is required for the winsorised CUSUM")
        super().__init__(mu0, sigma, delta, arl0, clip, batch, calibration)
