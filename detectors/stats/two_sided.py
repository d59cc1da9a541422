"""Two-sided CUSUM: an upper and a lower chart, each calibrated to ``2 x ARL0`` so the
combined false-alarm rate matches the target (detection-limits.md section 1.5), and
:func:`detector_from_dict` to rebuild any saved chart.

Example (a KPI that moves up by 2 sd after observation 300):
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> x = np.concatenate([rng.normal(40, 5, 300), rng.normal(50, 5, 100)])
    >>> chart = TwoSidedCusum.gaussian(mu0=40, sigma=5, delta=3.5, arl0=10_000)
    >>> for xi in x:
    ...     _ = chart.update(1, float(xi))
    >>> chart.alarm_at, chart.direction
    (307, 'up')
"""

from __future__ import annotations

from typing import Any

from detectors.stats.bernoulli_cusum import BernoulliCusum
from detectors.stats.gaussian_cusum import GaussianCusum, WinsorisedGaussianCusum
from detectors.stats.protocol import DEFAULT_ARL0, SequentialDetector, check_arl0


class TwoSidedCusum:
    """An upper and a lower one-sided chart; alarms when either does.

    Build with :meth:`bernoulli` or :meth:`gaussian`, which calibrate each side to
    ``2 x arl0``. ``statistic``/``threshold`` are those of the side closer to its threshold.
    """

    name = "two_sided_cusum"

    def __init__(self, upper: SequentialDetector, lower: SequentialDetector, arl0: float) -> None:
        self.upper, self.lower, self.arl0 = upper, lower, check_arl0(arl0)

    @classmethod
    def bernoulli(
        cls, p0: float, p_up: float, p_down: float, arl0: float = DEFAULT_ARL0, batch: int = 1
    ) -> TwoSidedCusum:
        if not p_down < p0 < p_up:
            raise ValueError(f"need p_down < p0 < p_up, got {p_down!r}, {p0!r}, {p_up!r}")
        side = 2.0 * check_arl0(arl0)
        return cls(
            BernoulliCusum(p0, p_up, side, batch), BernoulliCusum(p0, p_down, side, batch), arl0
        )

    @classmethod
    def gaussian(
        cls,
        mu0: float,
        sigma: float,
        delta: float,
        arl0: float = DEFAULT_ARL0,
        clip: float | None = None,
        batch: int = 1,
    ) -> TwoSidedCusum:
        side = 2.0 * check_arl0(arl0)
        d = abs(delta)
        return cls(
            GaussianCusum(mu0, sigma, d, side, clip, batch),
            GaussianCusum(mu0, sigma, -d, side, clip, batch),
            arl0,
        )

    def _leading(self) -> SequentialDetector:
        up, lo = self.upper, self.lower
        return up if up.statistic / up.threshold >= lo.statistic / lo.threshold else lo

    def update(self, n: int, value: float) -> bool:
        self.upper.update(n, value)
        self.lower.update(n, value)
        return self.alarmed

    def reset(self) -> None:
        self.upper.reset()
        self.lower.reset()

    @property
    def statistic(self) -> float:
        return self._leading().statistic

    @property
    def threshold(self) -> float:
        return self._leading().threshold

    @property
    def alarmed(self) -> bool:
        return self.upper.alarmed or self.lower.alarmed

    @property
    def n_obs(self) -> int:
        return self.upper.n_obs

    @property
    def alarm_at(self) -> int | None:
        hits = [a for a in (self.upper.alarm_at, self.lower.alarm_at) if a is not None]
        return min(hits) if hits else None

    @property
    def direction(self) -> str:
        """Which side leads: ``"up"`` or ``"down"``."""
        return "up" if self._leading() is self.upper else "down"

    def evidence(self) -> dict[str, Any]:
        return {
            "detector": self.name,
            "direction": self.direction,
            "arl0_target": self.arl0,
            "upper": self.upper.evidence(),
            "lower": self.lower.evidence(),
            "h": self.threshold,
            "arl0_achieved": 1.0
            / (
                1.0 / self.upper.evidence()["arl0_achieved"]
                + 1.0 / self.lower.evidence()["arl0_achieved"]
            ),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "detector": self.name,
            "arl0": self.arl0,
            "upper": self.upper.to_dict(),
            "lower": self.lower.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TwoSidedCusum:
        return cls(
            detector_from_dict(data["upper"]), detector_from_dict(data["lower"]), data["arl0"]
        )


_REGISTRY: dict[str, Any] = {
    BernoulliCusum.name: BernoulliCusum,
    GaussianCusum.name: GaussianCusum,
    WinsorisedGaussianCusum.name: WinsorisedGaussianCusum,
    TwoSidedCusum.name: TwoSidedCusum,
}


def detector_from_dict(data: dict[str, Any]) -> SequentialDetector:
    """Rebuild any chart saved with ``to_dict()``."""
    kind = data.get("detector") if isinstance(data, dict) else None
    if kind not in _REGISTRY:
        raise ValueError(f"detector: unknown chart kind {kind!r}")
    chart: SequentialDetector = _REGISTRY[kind].from_dict(data)
    return chart
