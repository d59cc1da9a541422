"""Bernoulli CUSUM for rates, updated from bucketed counts so it runs directly on rollups.

* :class:`BernoulliCusum` (rates): a bucket of ``n`` trials with ``k`` events adds
  ``k ln(p1/p0) + (n-k) ln((1-p1)/(1-p0))`` to the LLR statistic, floored at 0
  (with ``n = 1`` this is the exact per-observation CUSUM). The increments are the lattice
  values of :func:`~detectors.stats.calibration.bernoulli_lattice`, so the calibrated ARL0
  is the chart's exact ARL0 (per observation).

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
from typing import Any

from detectors.stats.calibration import BernoulliLattice, bernoulli_batch_lattice
from detectors.stats.protocol import DEFAULT_ARL0, Counted, check_arl0, check_batch


class BernoulliCusum(Counted):
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
        check_batch(n)
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
