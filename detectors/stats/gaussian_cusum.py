"""Gaussian CUSUM for means, updated from bucketed sums so it runs directly on rollups.

* :class:`GaussianCusum` (means): a bucket of ``n`` values with mean ``m`` adds
  ``n (delta/sigma^2)(m - mu0 - delta/2)``. ``clip`` winsorises the standardised bucket
  mean at ``+-clip`` sd (:class:`WinsorisedGaussianCusum`, default 2.5): with ``n = 1``
  this is per-observation winsorising, with larger buckets it bounds what one outlying
  bucket can add.

All statistics and thresholds are in nats (LLR scale); buckets as in
:mod:`detectors.stats.bernoulli_cusum`.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

from detectors.stats.calibration import GaussianCalibration, gaussian_threshold
from detectors.stats.protocol import DEFAULT_ARL0, Counted, check_arl0, check_batch

DEFAULT_CLIP = 2.5


class GaussianCusum(Counted):
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
        check_batch(n)
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
