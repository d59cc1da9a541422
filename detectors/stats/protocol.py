"""The protocol every single chart follows, and the bookkeeping the one-sided charts share.

The charts, one per module: :mod:`detectors.stats.bernoulli_cusum` (rates),
:mod:`detectors.stats.gaussian_cusum` (means, plain and winsorised),
:mod:`detectors.stats.two_sided` (an upper and a lower chart, and ``detector_from_dict``).
They are the single-chart building blocks for offline use (bench/detection.py, the ARL
tests); the daemon runs :class:`detectors.charts.ChartSet`, several one-sided CUSUMs per
signal calibrated together to a false-alarm budget.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

DEFAULT_ARL0 = 10_000.0


class SequentialDetector(Protocol):
    """One chart that updates from bucketed observations (a rollup at a time)."""

    name: str  # the chart's kind, saved with it (``detector_from_dict`` dispatches on it)

    def update(self, n: int, value: float) -> bool:
        """Add a bucket of ``n`` observations (``value``: events for a rate, the sum for a
        mean); True when the statistic is at or above the threshold after it."""
        ...

    def reset(self) -> None:
        """Back to the in-control start (statistic 0, no alarm, observation count 0)."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe state, calibration included (reloading skips the Markov-chain solve)."""
        ...

    def evidence(self) -> dict[str, Any]:
        """What a finding shows of the chart: design, statistic, threshold, ARL0."""
        ...

    @property
    def statistic(self) -> float:
        """Current CUSUM statistic, in nats."""
        ...

    @property
    def threshold(self) -> float:
        """Alarm threshold in nats, calibrated for the chart's ARL0."""
        ...

    @property
    def alarmed(self) -> bool:
        """The statistic is at or above the threshold."""
        ...

    @property
    def n_obs(self) -> int:
        """Observations since the last reset."""
        ...

    @property
    def alarm_at(self) -> int | None:
        """Observation count at the first alarm since the last reset (None: no alarm)."""
        ...


def check_batch(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n (observations in the bucket) must be an int >= 0, got {n!r}")


def check_arl0(arl0: float) -> float:
    if not isinstance(arl0, int | float) or not math.isfinite(arl0) or arl0 <= 1:
        raise ValueError(f"arl0 must be a finite number > 1, got {arl0!r}")
    return float(arl0)


class Counted:
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
