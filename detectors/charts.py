"""A chart set: several one-sided CUSUMs with different design shifts on one signal, and a
day-level chart, judged together with alarm episodes.

Why several designs: a CUSUM is optimal for the shift it is designed for and slow for
others (designed for 0.20 -> 0.30 it needs 1.5x the optimum for 0.25 and reacts late to
0.60). Rates get designs at 1.25x, 1.5x, 2x and 3x the baseline (the odds of the other
outcome for a falling rate); means at 0.7, 1.4 and 2.8 sd. The day-level chart (one
observation per complete day, in day-level standard deviations, so overdispersion is its
noise) catches the small persistent shifts and slow ramps (cost creeping 2 %/day) that the
per-observation charts must leave alone because they are inside the signal's normal
day-to-day variation. Each member gets the set's false-alarm budget divided by the number
of members (Bonferroni; the members are positively correlated, so the set's real rate is
lower: measured in bench/false_alarms.py).

Episodes: when a member crosses its threshold the set is in alarm until the data shows
recovery: a reverse CUSUM of "back at the baseline" against "still at the level seen since
the change" (estimated from the crossing member's data since its last reset) reaches
``RECOVERY_NATS`` (a premature all-clear while the drift lasts has probability about
``exp(-RECOVERY_NATS)`` = 1e-4; back at 0.20 from 0.30 it takes ~360 observations). Then
all members restart from 0. One crossing is one episode: the finding does not flap between
warn and critical while the drift lasts, so a policy trips once. Members are capped at
``CAP`` times their threshold during an episode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from detectors.stats.mixture import MeanDesign, RateDesign, calibrate_mean, calibrate_rate

Kind = Literal["rate", "mean"]
Direction = Literal["up", "down", "both"]
Scale = Literal["obs", "day"]

RATE_MULTIPLIERS = (1.25, 1.5, 2.0, 3.0)
MEAN_SHIFTS_SD = (0.7, 1.4, 2.8)
DAILY_SHIFT_SD = 2.0
RECOVERY_NATS = 9.2
CAP = 1.5
_RATE_FLOOR = 1e-6


@dataclass(slots=True)
class SubChart:
    """One one-sided CUSUM of the set. ``s`` is on the member's own scale: lattice units for
    a rate, standard deviations for a mean or a day chart."""

    label: str
    scale: Scale
    sign: int  # +1: a rise is bad; -1: a fall is bad
    param: float  # rate: p1; mean/day: the design shift in sd
    s: float = 0.0
    zero_at: float | None = None  # end of the last bucket (or day) after which s was 0
    rate: RateDesign | None = None
    mean: MeanDesign | None = None
    n_since: float = 0.0  # observations (days for a day chart) since s was last 0
    v_since: float = 0.0  # their events (rate) or sum of values (mean, day)

    @property
    def ready(self) -> bool:
        return self.rate is not None or self.mean is not None

    @property
    def threshold(self) -> float:
        """Alarm level on the member's own scale (inf when not calibrated or infeasible)."""
        if self.rate is not None:
            return float(self.rate.threshold_units)
        if self.mean is not None:
            return self.mean.h_std
        return math.inf

    @property
    def unit(self) -> float:
        """Nats per unit of ``s``."""
        if self.rate is not None:
            return self.rate.unit
        if self.mean is not None:
            return self.mean.shift_sd
        return 1.0

    def warn_level(self, log_ratio: float) -> float:
        """WARN threshold: an ARL0 about ``exp(log_ratio)`` times shorter. A CUSUM's ARL0
        grows like ``exp(h)`` in nats, so ``h - log_ratio`` (floored at 30 % of ``h``)."""
        h = self.threshold
        return max(0.3 * h, h - log_ratio / self.unit) if math.isfinite(h) else math.inf

    def add(self, increment: float, end: float, n: float, value: float) -> None:
        self.s = max(0.0, self.s + increment)
        if self.s == 0.0:
            self.zero_at, self.n_since, self.v_since = end, 0.0, 0.0
        else:
            self.n_since += n
            self.v_since += value

    def to_dict(self) -> dict[str, Any]:
        keys = ("label", "scale", "sign", "param", "s", "zero_at", "n_since", "v_since")
        out = {k: getattr(self, k) for k in keys}
        out["rate"] = _plain(self.rate) if self.rate is not None else None
        out["mean"] = _plain(self.mean) if self.mean is not None else None
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SubChart:
        rate = RateDesign(**data["rate"]) if data.get("rate") else None
        mean = MeanDesign(**data["mean"]) if data.get("mean") else None
        return cls(
            data["label"],
            data["scale"],
            int(data["sign"]),
            float(data["param"]),
            float(data["s"]),
            data.get("zero_at"),
            rate,
            mean,
            float(data.get("n_since", 0.0)),
            float(data.get("v_since", 0.0)),
        )


@dataclass(slots=True)
class Episode:
    """An alarm: from the crossing until recovery."""

    start: float  # when the crossing was seen (end of the bucket that crossed)
    changepoint: float | None  # the crossing member's last reset: where the change began
    label: str  # the member that crossed
    bad_level: float  # the level seen since the change (rate, or mean on the value scale)
    recovery: float = 0.0  # reverse CUSUM (nats): "back at the baseline" vs "still bad"

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "changepoint": self.changepoint,
            "label": self.label,
            "bad_level": self.bad_level,
            "recovery": self.recovery,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Episode:
        return cls(
            float(data["start"]),
            data.get("changepoint"),
            str(data["label"]),
            float(data.get("bad_level", 0.0)),
            float(data.get("recovery", 0.0)),
        )


def _plain(obj: RateDesign | MeanDesign) -> dict[str, Any]:
    """A flat dataclass as a dict (``asdict`` deep-copies: states are saved every pass)."""
    return {k: getattr(obj, k) for k in obj.__slots__}


def _fmt(p: float) -> str:
    return f"{p:.3g}"


def members(kind: Kind, direction: Direction, level: float) -> list[SubChart]:
    """The members for a baseline ``level`` (uncalibrated)."""
    signs = {"up": (1,), "down": (-1,), "both": (1, -1)}[direction]
    out: list[SubChart] = []
    for sign in signs:
        if kind == "rate":
            p0 = min(max(level, _RATE_FLOOR), 1 - _RATE_FLOOR)
            # a rising rate: p1 = p0 x m; a falling one: the other outcome's rate x m
            seen: set[float] = set()
            for m in RATE_MULTIPLIERS:
                if sign > 0:
                    p1 = min(p0 * m, 1.0 - (1.0 - p0) / 4.0)
                else:
                    p1 = max(1.0 - (1.0 - p0) * m, p0 / 4.0)
                p1 = round(p1, 12)
                if p1 in seen or p1 == p0:
                    continue
                seen.add(p1)
                out.append(SubChart(f"{_fmt(p0)}->{_fmt(p1)}", "obs", sign, p1))
        else:
            for shift in MEAN_SHIFTS_SD:
                out.append(SubChart(f"{'+' if sign > 0 else '-'}{shift:g} sd", "obs", sign, shift))
        out.append(
            SubChart(f"daily {'+' if sign > 0 else '-'}{DAILY_SHIFT_SD:g} sd", "day", sign, 1.0)
        )
    return out


@dataclass(frozen=True, slots=True)
class Calibration:
    """What the thresholds were calibrated for; a new key recalibrates."""

    arl0_each: float  # per member, observations
    spread: float  # rate scale (rates) or sd units (means)
    batch: int
    samples: int  # empirical bucket means used (means), 0 = Gaussian
    day_arl0: float  # per day-chart, days
    day_spread: float  # the baseline's error in day-level sd (inf: no day chart yet)

    def to_list(self) -> list[float]:
        return [
            self.arl0_each,
            self.spread,
            self.batch,
            self.samples,
            self.day_arl0,
            self.day_spread,
        ]

    @classmethod
    def from_list(cls, data: list[float]) -> Calibration | None:
        """The saved list (None for an unreadable one: the charts then recalibrate)."""
        if len(data) != 6:
            return None
        a, spread, batch, samples, day_arl0, day_spread = data
        return cls(
            float(a), float(spread), int(batch), int(samples), float(day_arl0), float(day_spread)
        )


@dataclass(slots=True)
class ChartSet:
    members: list[SubChart]
    calibrated_for: Calibration | None = None
    episode: Episode | None = None
    warn: bool = False
    last_recovery: float | None = None
    historic_alarm: float | None = None  # an old/backfilled bucket crossed (not live)

    # -- calibration -------------------------------------------------------------------
    def calibrate(
        self,
        kind: Kind,
        level: float,
        cal: Calibration,
        samples: tuple[tuple[int, float], ...] = (),
        clip: float | None = None,
    ) -> None:
        """(Re)compute every member's threshold for ``cal``; statistics are kept (a rate
        member's statistic is carried over in nats when its lattice changes).

        A rate is calibrated at its baseline rounded to a 1 % grid, with the rounding added
        to the spread: calibrations are then shared by workflows with similar rates (a
        calibration costs 20-200 ms) at no cost to the budget."""
        p0 = min(max(level, _RATE_FLOOR), 1 - _RATE_FLOOR)
        p_grid = float(1.01 ** round(math.log(p0) / math.log(1.01)))
        p_grid = min(max(p_grid, _RATE_FLOOR), 1 - _RATE_FLOOR)
        rate_spread = math.hypot(cal.spread, p_grid - p0) if cal.spread else abs(p_grid - p0)
        rate_spread = float(f"{rate_spread:.2g}") if rate_spread > 1e-9 else 0.0
        for m in self.members:
            self._calibrate_one(m, kind, p0, p_grid, rate_spread, cal, samples, clip, 4.0)
        # never a chart with no member: the largest design shift of each direction is kept
        # whatever threshold the spread needs (slow, but a 3x jump is still caught)
        for sign in {m.sign for m in self.members}:
            side = [m for m in self.members if m.sign == sign and m.scale == "obs"]
            if side and not any(m.ready for m in side):
                big = max(side, key=lambda m: abs(m.param - level) if kind == "rate" else m.param)
                self._calibrate_one(big, kind, p0, p_grid, rate_spread, cal, samples, clip, 50.0)
        self.calibrated_for = cal

    @staticmethod
    def _calibrate_one(
        m: SubChart,
        kind: Kind,
        p0: float,
        p_grid: float,
        rate_spread: float,
        cal: Calibration,
        samples: tuple[tuple[int, float], ...],
        clip: float | None,
        max_h_factor: float,
    ) -> None:
        """Calibrate one member (None when the spread makes it infeasible).

        The day member is kept at any threshold up to 50x the known-baseline one, as the
        largest shift is: with real day-to-day variation (edit rates +-12 % a day) it is the
        only member that can see a lasting moderate shift, and a learned baseline's error
        keeps it from the tight threshold for two weeks (measured: infeasible at 2.5x, a
        0.20 -> 0.35 ramp read "ok" for 11 days)."""
        nats = m.s * m.unit if m.ready else 0.0
        if m.scale == "day":
            m.rate = None
            m.mean = (
                calibrate_mean(
                    m.param, max(cal.day_arl0, 2.0), cal.day_spread, batch=1, max_h_factor=50.0
                )
                if math.isfinite(cal.day_spread)
                else None
            )
        elif kind == "rate":
            m.mean = None
            p1 = (
                m.param * p_grid / p0 if m.sign > 0 else 1 - (1 - m.param) * (1 - p_grid) / (1 - p0)
            )
            p1 = min(max(p1, _RATE_FLOOR), 1 - _RATE_FLOOR)
            m.rate = calibrate_rate(p_grid, p1, cal.arl0_each, rate_spread, cal.batch, max_h_factor)
        else:
            oriented = tuple((n, m.sign * z) for n, z in samples)
            m.rate = None
            m.mean = calibrate_mean(
                m.param, cal.arl0_each, cal.spread, clip, oriented, cal.batch, max_h_factor
            )
        if m.ready:
            m.s = round(nats / m.unit) if m.rate is not None else nats / m.unit
        else:
            m.s = 0.0

    def keep_day_members(self, old: ChartSet) -> None:
        """Carry the day members' statistics over from ``old`` (same design labels)."""
        saved = {m.label: m for m in old.members if m.scale == "day"}
        for m in self.members:
            prev = saved.get(m.label)
            if prev is not None and m.scale == "day" and m.ready and prev.ready:
                m.s, m.zero_at = prev.s, prev.zero_at
                m.n_since, m.v_since = prev.n_since, prev.v_since

    # -- updates -------------------------------------------------------------------------
    def update_rate(self, n: int, k: int, level: float, end: float) -> None:
        for m in self.members:
            if m.rate is not None and m.scale == "obs":
                d = m.rate
                m.add(k * d.step_event + (n - k) * d.step_nonevent, end, n, k)
        ep = self.episode
        if ep is not None:
            p0 = min(max(level, _RATE_FLOOR), 1 - _RATE_FLOOR)
            p1 = min(max(ep.bad_level, _RATE_FLOOR), 1 - _RATE_FLOOR)
            if p1 != p0:
                llr = k * math.log(p0 / p1) + (n - k) * math.log((1 - p0) / (1 - p1))
                ep.recovery = max(0.0, ep.recovery + llr)

    def update_mean(
        self, n: int, mean: float, level: float, sd: float, clip: float | None, end: float
    ) -> None:
        for m in self.members:
            if m.mean is not None and m.scale == "obs":
                z = m.sign * (mean - level) / sd
                if clip is not None:
                    z = min(max(z, -clip), clip)
                m.add(n * (z - m.mean.shift_sd / 2.0), end, n, n * mean)
        ep = self.episode
        if ep is not None and sd > 0:
            # Gaussian LLR of N(level) against N(bad_level), per observation, winsorised
            d = (ep.bad_level - level) / sd
            z = (mean - level) / sd
            if clip is not None:
                z = min(max(z, -clip), clip)
            ep.recovery = max(0.0, ep.recovery + n * d * (d / 2.0 - z))

    def update_day(self, value: float, level: float, sd_day: float, end: float) -> None:
        for m in self.members:
            if m.mean is not None and m.scale == "day":
                z = m.sign * (value - level) / sd_day
                m.add(z - m.mean.shift_sd / 2.0, end, 1.0, value)

    def crossing(self) -> SubChart | None:
        """The member furthest past its threshold, if any."""
        over = [m for m in self.members if m.ready and m.s >= m.threshold]
        return max(over, key=lambda m: m.s / m.threshold) if over else None

    def judge(self, end: float, live: bool, level: float) -> None:
        """After an update: open an episode on a live crossing, reset on a historic one,
        cap and check recovery during an episode."""
        if self.episode is None:
            hit = self.crossing()
            if hit is None:
                return
            if not live:
                # old or future-dated data crossed: it feeds history, it does not alarm now
                self.historic_alarm = end
                self.reset(end)
                return
            seen = hit.v_since / hit.n_since if hit.n_since > 0 else level
            # halfway to the level seen since the change: a member crosses on a high run of
            # data, so ``seen`` overstates the drift, and recovery against it would come
            # while the drift lasts (measured: 1 premature all-clear in 4 drifts)
            self.episode = Episode(end, hit.zero_at, hit.label, level + 0.5 * (seen - level))
            self.warn = False
        for m in self.members:
            if m.ready:
                m.s = min(m.s, CAP * m.threshold)
        if self.episode.recovery >= RECOVERY_NATS:
            self.episode = None
            self.last_recovery = end
            self.reset(end)

    def reset(self, end: float) -> None:
        for m in self.members:
            m.s, m.zero_at, m.n_since, m.v_since = 0.0, end, 0.0, 0.0

    def leading(self) -> SubChart | None:
        """The member closest to (or furthest past) its threshold."""
        ready = [m for m in self.members if m.ready]
        return max(ready, key=lambda m: m.s / m.threshold) if ready else None

    def update_warn(self, log_ratio: float) -> bool:
        """WARN with hysteresis: on at the warn level, off under half of it."""
        levels = [(m.s, m.warn_level(log_ratio)) for m in self.members if m.ready]
        if any(s >= w for s, w in levels):
            self.warn = True
        elif all(s < 0.5 * w for s, w in levels):
            self.warn = False
        return self.warn

    # -- persistence ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "members": [m.to_dict() for m in self.members],
            "calibrated_for": self.calibrated_for.to_list() if self.calibrated_for else None,
            "episode": self.episode.to_dict() if self.episode else None,
            "warn": self.warn,
            "last_recovery": self.last_recovery,
            "historic_alarm": self.historic_alarm,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChartSet:
        episode, cal = data.get("episode"), data.get("calibrated_for")
        return cls(
            [SubChart.from_dict(m) for m in data["members"]],
            Calibration.from_list(cal) if cal else None,
            Episode.from_dict(episode) if episode else None,
            bool(data.get("warn", False)),
            data.get("last_recovery"),
            data.get("historic_alarm"),
        )
