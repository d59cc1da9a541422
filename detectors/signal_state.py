"""What one signal's chart set keeps between passes, typed (JSON-safe via ``to_dict``).

One :class:`SignalState` per (workflow, signal, "cusum"); ``detectors.sequential`` runs it.
The saved form is version 2 (``"v": 2``); a state saved by the single-chart version keeps
its baseline and rebuilds its charts. Rows are saved as plain lists (``[bucket, n, value,
sumsq]`` and so on), so states written before these types existed load unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from detectors.baseline import Baseline, Kind, Learning
from detectors.charts import ChartSet
from detectors.config import DetectionConfig
from detectors.dispersion import MIN_DAY_OBS, between_day_sd, blended_sd, obs_per_day
from detectors.types import Rollup

DAY = 86_400
_DAYS_FOR_RATE = 7


class WindowBucket(NamedTuple):
    """One rollup of the recent window (``window_s``): what a finding's sample rests on."""

    bucket: float
    n: float
    value: float  # events (rates) or the sum (means)
    sumsq: float


class Sample(NamedTuple):
    """One bucket's mean, standardised against the baseline: the in-control shape."""

    n: int
    z: float


@dataclass(slots=True)
class Totals:
    """Observations, their value (events or sum) and sum of squares."""

    n: float = 0.0
    value: float = 0.0
    sumsq: float = 0.0

    def add(self, n: float, value: float, sumsq: float) -> None:
        self.n += n
        self.value += value
        self.sumsq += sumsq

    def to_list(self) -> list[float]:
        return [self.n, self.value, self.sumsq]

    @classmethod
    def from_list(cls, data: list[float]) -> Totals:
        return cls(float(data[0]), float(data[1]), float(data[2]))


@dataclass(frozen=True, slots=True)
class Budget:
    """The false-alarm budget one chart set was calibrated for."""

    false_alarms_per_month: float
    charts: int
    obs_per_day: float
    arl0: float  # per chart (the whole set), observations

    def to_dict(self) -> dict[str, Any]:
        return {
            "false_alarms_per_month": self.false_alarms_per_month,
            "charts": self.charts,
            "obs_per_day": round(self.obs_per_day, 1),
            "arl0": self.arl0,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Budget:
        return cls(
            float(data["false_alarms_per_month"]),
            int(data["charts"]),
            float(data["obs_per_day"]),
            float(data["arl0"]),
        )


@dataclass(slots=True)
class DayRef:
    """The day chart's reference: the mean level of in-control days (the learning days,
    then each complete day that is neither in alarm nor far off). A day is compared with
    the mean of earlier days, that mean's own error in the sd (a self-starting chart: it
    needs no allowance for the error of a baseline learned in a day or two).

    A day joins the reference only ``lag`` days later, if no alarm came in between: a
    slow ramp's early days would otherwise become the reference for its later ones
    (measured: a 0.20 -> 0.35 ramp over 7 days was followed and never alarmed)."""

    days: float
    level_sum: float
    pending: list[tuple[int, float]] = field(default_factory=list)  # (day, level)

    @property
    def level(self) -> float:
        return self.level_sum / self.days

    def offer(self, day: int, level: float, lag_days: int, cap: float) -> None:
        """Queue a day; move the days at least ``lag_days`` old into the reference. Beyond
        ``cap`` days the oldest weigh less (a slow seasonal move is followed)."""
        self.pending.append((day, level))
        while self.pending and self.pending[0][0] <= day - lag_days * DAY:
            _, old = self.pending.pop(0)
            if self.days >= cap:
                self.level_sum *= (cap - 1.0) / self.days
                self.days = cap - 1.0
            self.days += 1.0
            self.level_sum += old

    def drop_pending(self) -> None:
        """An alarm: the queued days may be part of the change."""
        self.pending.clear()

    def to_list(self) -> list[Any]:
        return [self.days, self.level_sum, [list(p) for p in self.pending]]

    @classmethod
    def from_list(cls, data: list[Any]) -> DayRef:
        pending = [(int(d), float(v)) for d, v in data[2]] if len(data) > 2 else []
        return cls(float(data[0]), float(data[1]), pending)


# when the calibration was last looked at: (period, baseline days, sample size, baseline,
# charts of the workflow, its budget); the same key skips the look
CheckKey = tuple[float, ...]


@dataclass(slots=True)
class SignalState:
    """Everything one signal's chart keeps between passes."""

    kind: Kind
    learning: Learning | None = None
    baseline: Baseline | None = None
    charts: ChartSet | None = None
    window: list[WindowBucket] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    days: dict[int, Totals] = field(default_factory=dict)  # day start -> its totals
    first_seen: float | None = None
    samples: list[Sample] = field(default_factory=list)
    version: str | None = None  # the versions the baseline was learned on
    shadow: Learning | None = None  # the new version's own baseline, being learned
    shadow_version: str | None = None
    rejected_version: str | None = None  # a new version found worse: watched vs the old one
    day_fed: int | None = None  # last complete day given to the day-level chart
    alarm_days: list[int] = field(default_factory=list)  # days in an episode (not for tau)
    day_ref: DayRef | None = None  # the day chart's reference (learned baselines)
    base_totals: Totals | None = None  # what the learned baseline rests on
    base_days: int = 0  # distinct days the learned baseline rests on
    checked: CheckKey | None = None
    budget: Budget | None = None  # the budget of that check
    private: dict[str, Any] = field(default_factory=dict)  # engine keys ("_status", ...)

    # -- persistence ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "v": 2,
            "kind": self.kind,
            "learning": self.learning.to_dict() if self.learning else None,
            "baseline": self.baseline.to_dict() if self.baseline else None,
            "charts": self.charts.to_dict() if self.charts else None,
            "window": [list(w) for w in self.window],
            "sizes": self.sizes,
            "days": {str(d): v.to_list() for d, v in self.days.items()},
            "first_seen": self.first_seen,
            "samples": [list(s) for s in self.samples],
            "version": self.version,
            "shadow": self.shadow.to_dict() if self.shadow else None,
            "shadow_version": self.shadow_version,
            "rejected_version": self.rejected_version,
            "day_fed": self.day_fed,
            "alarm_days": self.alarm_days,
            "day_ref": self.day_ref.to_list() if self.day_ref else None,
            "base_totals": self.base_totals.to_list() if self.base_totals else [],
            "base_days": self.base_days,
            "checked": list(self.checked) if self.checked is not None else [],
            "budget": self.budget.to_dict() if self.budget else None,
            **self.private,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], kind: Kind) -> SignalState:
        private = {k: v for k, v in data.items() if k.startswith("_")}
        if data.get("v") != 2:
            # saved by the single-chart version: keep the baseline, rebuild the charts
            old = data.get("baseline")
            base = Baseline.from_dict(old) if old else None
            return cls(kind, baseline=base, private=private)
        base_totals = data.get("base_totals") or None
        checked = data.get("checked") or None
        return cls(
            kind,
            Learning.from_dict(data["learning"]) if data.get("learning") else None,
            Baseline.from_dict(data["baseline"]) if data.get("baseline") else None,
            ChartSet.from_dict(data["charts"]) if data.get("charts") else None,
            [WindowBucket(*map(float, w)) for w in data.get("window", [])],
            [int(x) for x in data.get("sizes", [])],
            {int(d): Totals.from_list(v) for d, v in data.get("days", {}).items()},
            data.get("first_seen"),
            [Sample(int(n), float(z)) for n, z in data.get("samples", [])],
            data.get("version"),
            Learning.from_dict(data["shadow"]) if data.get("shadow") else None,
            data.get("shadow_version"),
            data.get("rejected_version"),
            data.get("day_fed"),
            [int(d) for d in data.get("alarm_days", [])],
            DayRef.from_list(data["day_ref"]) if data.get("day_ref") else None,
            Totals.from_list(base_totals) if base_totals else None,
            int(data.get("base_days", 0)),
            tuple(float(x) for x in checked) if checked else None,
            Budget.from_dict(data["budget"]) if data.get("budget") else None,
            private,
        )

    # -- facts about the signal ----------------------------------------------------------
    def note(self, r: Rollup, value: float) -> None:
        day = r.bucket - r.bucket % DAY
        self.days.setdefault(day, Totals()).add(r.count, value, r.sumsq)
        if self.first_seen is None or r.bucket < self.first_seen:
            self.first_seen = float(r.bucket)

    def rate_per_day(self, now: float) -> float:
        """Observations a day: the mean of the last (up to 7) complete days once one exists
        (so it moves once a day, not with the hour of the day), else the rate so far."""
        today = now - now % DAY
        full = [v.n for d, v in sorted(self.days.items()) if d + DAY <= today]
        full = full[-_DAYS_FOR_RATE:]
        if self.first_seen is not None and self.first_seen < today - DAY and full:
            return sum(full) / len(full)
        counts = [v.n for v in self.days.values()]
        first = self.first_seen if self.first_seen is not None else now
        return obs_per_day(counts, now - first)

    def complete_days(self, now: float) -> list[tuple[float, float, float]]:
        """Complete in-control days: not the current one, not those with an alarm or still
        waiting to join the day reference."""
        today = now - now % DAY
        skip = set(self.alarm_days)
        if self.day_ref is not None:
            # days not yet past the day reference's lag: a ramp's early days must not
            # pass for day-to-day variation (measured: they doubled it, and the day chart
            # then took 11 days to see a 0.20 -> 0.35 ramp)
            skip |= {d for d, _ in self.day_ref.pending}
        return [
            (v.n, v.value, v.sumsq)
            for d, v in sorted(self.days.items())
            if d + DAY <= today and d not in skip
        ]

    def day_sd(
        self,
        now: float,
        config: DetectionConfig,
        days: list[tuple[float, float, float]] | None = None,
    ) -> float:
        """Day-level sd of the signal's true value (rate scale, or the value's scale);
        ``days``: ``complete_days(now)`` when the caller has them already."""
        b = self.baseline
        assert b is not None
        used = [
            d for d in (self.complete_days(now) if days is None else days) if d[0] >= MIN_DAY_OBS
        ]
        if self.kind == "rate":
            prior = config.rate_day_sd_prior * min(b.value, 1.0 - b.value)
        else:
            prior = config.mean_day_sd_prior * (b.sd or 0.0)
        return blended_sd(between_day_sd(used, self.kind), len(used), prior)
