"""Silence: a workflow whose events stop is a finding, judged against its own usual rate.

One finding per workflow: signal ``events``, detector ``no_data``. Events are runs plus
reviews (the trials of the ``runs`` and ``edited`` rollups); a workflow that has only ever
sent cost records counts those (``spend_usd`` records) instead.

The rule:

1. **Profile.** Events per hour over the last 14 days before the last event, as a rate per
   *slot*: hour of week once 14 days are learned, else hour of day with weekdays and
   weekends apart (UTC). A slot never seen expects nothing, so a first weekend, a night
   never seen yet or a business-hours workflow's evenings cannot raise a warning.
2. **Silence.** ``silent_s`` = now minus the end of the last minute with an event. The
   expected number of events over the silent span, ``E``, sums each slot's rate times the
   silent time that falls in it.
3. **Chance of such a silence.** Under a Poisson rate it is ``exp(-E)``. Three things
   make real traffic quieter than that now and then, and each widens the rate into a
   gamma (so the chance becomes the negative-binomial zero ``(1 + E/k) ** -k``): today's
   volume varies (gamma shape ``r``: ``DISPERSION`` = 10 by hour of week, a day at +-30 %
   of usual is ordinary; ``DISPERSION_DAY`` = 5 by hour of day, which cannot know which
   weekdays are quiet); the profile's days varied too (it averages ``n`` past days per
   slot, the fewest among the silence's slots); and the profile is estimated from few
   events (``C``, the effective number of learned events behind ``E``).
   ``1/k = (1 + 1/n)/r + 1/C``. A plain Poisson test at the same level warned 3 times in
   one healthy workflow-month of the simulation.
4. **Verdict.** WARN (``no_data``) when that chance is below ``ALPHA`` = 1e-6, else OK;
   UNKNOWN while less than one day lies between the first and the last event (evidence
   ``reason: learning baseline``, ``learned``/``needed`` in hours). By hour of week
   (k ~ 6) the warning needs about 50 expected events: at 1,000 events a day ~30 minutes
   at the busiest hour, hours in a nightly lull; at 50 a day most of a day. By hour of day
   (k ~ 3) it needs a few hundred: a stop in the first two weeks is found later.

``ALPHA`` is per silence: every gap between events is a chance to warn, so a workflow with
N events a month could at most see N x 1e-6 false warnings from pure chance (0.03 at
1,000 a day); the simulation in ``tests/test_silence.py`` measures the real figure.
Events dated in the future count only up to the pass that read them, so they cannot hide
a silence; late (backfilled) events feed the profile and end a silence only if newer.

Example:
    >>> from detectors.config import DetectionConfig
    >>> from detectors.family import WorkflowInput
    >>> from detectors.types import Rollup
    >>> monday = 4 * 86_400  # 1970-01-05
    >>> weeks = [Rollup("wf", "runs", monday + 60 * m, 1, 1) for m in range(15 * 1440)]
    >>> now = monday + 15 * 86_400.0  # one event a minute for 15 days, then silence
    >>> fs, st = evaluate(WorkflowInput("wf", {"runs": weeks}, {}, DetectionConfig(), now))
    >>> [(f.signal, f.detector, f.status.value, f.samples) for f in fs]
    [('events', 'no_data', 'ok', 60)]
    >>> for minutes in (10, 45, 60):
    ...     [f], st = evaluate(WorkflowInput("wf", {}, st, DetectionConfig(), now + 60 * minutes))
    ...     print(minutes, f.status.value, round(f.evidence["expected_events"]), f.samples)
    10 ok 10 50
    45 ok 45 15
    60 warn 60 0
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from detectors import signals as sig
from detectors.family import States, WorkflowInput
from detectors.types import Finding, Rollup, Status

SIGNAL: Final = "events"
DETECTOR: Final = "no_data"
KEY: Final = (SIGNAL, DETECTOR)
EVENT_SIGNALS: Final = (sig.RUNS, sig.EDITED)  # runs + reviews
COST_SIGNAL: Final = sig.SPEND_USD  # counted only while a workflow sends nothing else
ALPHA: Final = 1e-6  # chance of the silence, per silence, below which it is a finding
# Gamma shape r of the day-to-day volume multiplier: CV 1/sqrt(10) ~ 0.32. Real volumes vary
# more than Poisson; a smaller value warns later, a larger one risks a quiet day warning.
DISPERSION: Final = 10.0
# Before two weeks the profile is by hour of day and cannot know which weekdays are quiet
# (a Friday/Saturday weekend, a weekend off UTC): allow a day at ~40 % of the usual.
DISPERSION_DAY: Final = 5.0
LEARN_S: Final = 86_400  # UNKNOWN until the events span one day
PROFILE_S: Final = 14 * 86_400  # the profile learns from the last 14 days
RECENT_S: Final = 3600
HOUR: Final = 3600
WEEK_HOURS: Final = 168
# A longer silence is scored on its last 14 days: that window holds every slot of the
# profile (twice by hour of week), so E no longer grows and a warning stays one; and a
# dead workflow costs a bounded loop per pass.
MAX_SPAN_HOURS: Final = PROFILE_S // HOUR


@dataclass(slots=True)
class Counts:
    """Event counts in consecutive bins of ``step`` seconds from ``start`` (a dense list:
    saved and restored at C speed, where a dict of pairs cost most of a pass)."""

    step: int
    start: int = 0
    counts: list[int] = field(default_factory=list)

    def at(self, t: int) -> int:
        i = (t - self.start) // self.step
        return self.counts[i] if 0 <= i < len(self.counts) else 0

    def add(self, t: int, n: int) -> None:
        t -= t % self.step
        if not self.counts:
            self.start, self.counts = t, [n]
            return
        i = (t - self.start) // self.step
        if i < 0:
            self.counts[:0] = [0] * -i
            self.start, i = t, 0
        elif i >= len(self.counts):
            self.counts.extend([0] * (i + 1 - len(self.counts)))
        self.counts[i] += n

    def keep(self, lo: float, hi: float) -> None:
        """Drop the bins before ``lo`` and from ``hi`` on."""
        first = max(0, -int((self.start - lo) // self.step))
        last = max(0, -int((self.start - hi) // self.step))
        self.counts = self.counts[first:last]
        self.start += first * self.step
        while self.counts and self.counts[-1] == 0:
            self.counts.pop()
        if not self.counts:
            self.start = 0

    def total(self, lo: float, hi: float) -> int:
        """Events in the bins that start in ``[lo, hi)``."""
        first = max(0, -int((self.start - lo) // self.step))
        last = max(0, -int((self.start - hi) // self.step))
        return sum(self.counts[first:last])

    def to_list(self) -> list[int]:
        return [self.start, *self.counts]

    @classmethod
    def from_list(cls, step: int, data: Any, name: str) -> Counts:
        # the list is ours (written by to_list): checking its head keeps a restore cheap
        if not isinstance(data, list) or (data and not isinstance(data[0], int)):
            raise ValueError(f"silence state: {name} must be [start epoch, count, count, ...]")
        return cls(step, data[0], data[1:]) if data else cls(step)


@dataclass(slots=True)
class SilenceState:
    """What the detector keeps between passes (JSON-safe through ``to_dict``).

    ``hours``: events per hour, only the 14 days before ``last_event`` and at most a day
    ahead (ingest refuses later timestamps). ``recent``: events per minute, the last hour.
    """

    hours: Counts = field(default_factory=lambda: Counts(HOUR))
    recent: Counts = field(default_factory=lambda: Counts(60))
    first_event: float | None = None  # start of the earliest minute with an event
    last_event: float | None = None  # end of the newest, capped at the pass that read it
    cost_only: bool = True  # no run or review seen yet: cost records are the events

    def to_dict(self) -> dict[str, Any]:
        return {
            "hours": self.hours.to_list(),
            "recent": self.recent.to_list(),
            "first_event": self.first_event,
            "last_event": self.last_event,
            "cost_only": self.cost_only,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SilenceState:
        """The saved state; an empty mapping is a fresh one. Other keys (the engine's
        ``_status``/``_since``) are ignored here and carried over by ``evaluate``."""

        def epoch(name: str) -> float | None:
            value = data.get(name)
            if value is not None and not isinstance(value, int | float):
                raise ValueError(f"silence state: {name} must be an epoch, got {value!r}")
            return None if value is None else float(value)

        return cls(
            Counts.from_list(HOUR, data.get("hours", []), "hours"),
            Counts.from_list(60, data.get("recent", []), "recent"),
            epoch("first_event"),
            epoch("last_event"),
            bool(data.get("cost_only", True)),
        )

    def add(self, minutes: Mapping[int, int], now: float) -> None:
        """Count events per minute bucket read in the pass at ``now``; drop what is too old."""
        for bucket, n in minutes.items():
            if n <= 0:
                continue
            self.hours.add(bucket, n)
            if now - RECENT_S <= bucket <= now:
                self.recent.add(bucket, n)
            if self.first_event is None or bucket < self.first_event:
                self.first_event = float(bucket)
            # a future-dated event says the workflow was alive when it was read, no later
            end = min(bucket + 60.0, now)
            if self.last_event is None or end > self.last_event:
                self.last_event = end
        self.recent.keep(now - RECENT_S, now + 60)
        if self.last_event is not None:  # the profile reads 14 days before the last event
            self.hours.keep(_hour(self.last_event) - PROFILE_S - HOUR, now + 2 * 86_400)


def _hour(t: float) -> int:
    return int(t - t % HOUR)


def _weekend(hour: int) -> bool:
    return (hour // 86_400 + 3) % 7 >= 5  # 1970-01-01 was a Thursday (Monday = 0)


@dataclass(frozen=True, slots=True)
class Expectation:
    """Events expected over a silent span and how surely (see the module docstring)."""

    expected: float  # E
    learned: float  # C, the effective number of learned events behind E
    by_week: bool  # hour-of-week slots (else hour of day, weekdays and weekends apart)
    days: int  # n: fewest past days (weeks) behind any slot of the span

    @property
    def dispersion(self) -> float:
        return DISPERSION if self.by_week else DISPERSION_DAY

    @property
    def shape(self) -> float:
        """k of the negative binomial: 1/k = (1 + 1/n)/r + 1/C."""
        if self.learned <= 0 or self.days <= 0:
            return 0.0
        return 1.0 / ((1.0 + 1.0 / self.days) / self.dispersion + 1.0 / self.learned)

    @property
    def log_chance(self) -> float:
        """log P(no event over the span)."""
        k = self.shape
        return 0.0 if k <= 0 or self.expected <= 0 else -k * math.log1p(self.expected / k)

    def warn_at(self, alpha: float = ALPHA) -> float | None:
        """The expected count at which this evidence would warn (None: it never would)."""
        k = self.shape
        return None if k <= 0 else k * math.expm1(-math.log(alpha) / k)


def expect(hours: Counts, start: float, end: float, lo: float, hi: float) -> Expectation:
    """Events expected in ``[lo, hi)`` from the profile learned over ``[start, end)``."""
    ws = max(start, -((PROFILE_S - end) // HOUR) * HOUR)  # whole hours, 14 days back
    by_week = end - ws >= PROFILE_S - HOUR
    period = WEEK_HOURS * HOUR if by_week else 86_400

    def overlap(hour: int, a: float, b: float) -> float:  # hours of [a, b) in this hour
        return max(0.0, min(hour + HOUR, b) - max(hour, a)) / HOUR

    # silent hours per slot; a slot is an hour of the week, or of the day with weekdays
    # and weekends apart: (hour start mod period, weekend or not)
    lo = max(lo, hi - MAX_SPAN_HOURS * HOUR)
    silent: dict[tuple[int, bool], float] = {}
    for hour in range(_hour(lo), _hour(hi) + HOUR, HOUR):
        t = overlap(hour, lo, hi)
        if t > 0:
            key = (hour % period, not by_week and _weekend(hour))
            silent[key] = silent.get(key, 0.0) + t
    # each slot's rate from the learning window's hours in that slot only (a silence
    # touches a few slots: far cheaper than profiling all 168 every pass)
    first_hour = _hour(ws)
    expected = spread = 0.0
    days = 0
    for (phase, weekend), t in silent.items():
        exposure = events = 0.0
        seen = 0
        hour = first_hour + (phase - first_hour) % period
        while hour < end:
            if by_week or _weekend(hour) == weekend:
                exposure += overlap(hour, ws, end)
                events += hours.at(hour)
                seen += 1
            hour += period
        if exposure <= 0 or events <= 0:
            continue  # never seen busy: expects nothing
        w = t / exposure
        expected += events * w
        spread += events * w * w
        days = seen if not days else min(days, seen)
    # C = E^2 / Var(E): the estimate of E is as sure as C Poisson events would make it
    learned = expected * expected / spread if spread else 0.0
    return Expectation(expected, learned, by_week, days)


def _minutes(inp: WorkflowInput, cost_only: bool) -> dict[int, int]:
    names: Iterable[str] = (COST_SIGNAL,) if cost_only else EVENT_SIGNALS
    out: dict[int, int] = {}
    for name in names:
        rows: Sequence[Rollup] = inp.rollups.get(name, ())
        for r in rows:
            if r.count > 0:
                out[r.bucket] = out.get(r.bucket, 0) + r.count
    return out


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, tz=dt.UTC).strftime("%Y-%m-%dT%H:%MZ")


def judge(workflow: str, state: SilenceState, now: float) -> Finding:
    """The ``no_data`` finding for ``state`` at ``now`` (pure)."""
    recent = state.recent.total(now - RECENT_S, now + 1)  # buckets in [now - 1 h, now]
    f = Finding(
        workflow,
        SIGNAL,
        DETECTOR,
        Status.UNKNOWN,
        value=float(recent),
        samples=recent,
        evidence={"detector": DETECTOR, "recent": {"samples": recent, "window_s": RECENT_S}},
    )
    if state.last_event is None or state.first_event is None:
        f.evidence["reason"] = "no data"
        return f
    last, first = state.last_event, state.first_event
    silent_s = max(0.0, now - last)
    f.window = f"{_iso(last)}/{_iso(now)}"
    f.evidence.update({"silent_s": silent_s, "last_event": last})
    if last - first < LEARN_S:
        f.evidence.update(
            reason="learning baseline",
            learned=int((last - first) // HOUR),
            needed=LEARN_S // HOUR,
            unit="hours",
            expected_events=None,
        )
        return f
    e = expect(state.hours, first, last, last, now)
    usual = expect(state.hours, first, last, now - RECENT_S, now)  # to compare with recent
    warn_at = e.warn_at()
    chance = math.exp(e.log_chance)
    f.baseline = usual.expected
    f.statistic, f.threshold, f.p_value = e.expected, warn_at, chance
    f.evidence.update(
        expected_events=e.expected,
        learned_events=e.learned,
        chance=chance,
        alpha=ALPHA,
        dispersion=e.dispersion,
        profile_days=e.days,
        profile="hour_of_week" if e.by_week else "hour_of_day_weekday_weekend",
    )
    # the sentence is detectors.summary's (the engine writes it from this evidence)
    f.status = Status.WARN if e.log_chance < math.log(ALPHA) else Status.OK
    return f


def evaluate(inp: WorkflowInput) -> tuple[list[Finding], States]:
    """The silence finding of one workflow, and its new state."""
    saved = inp.states.get(KEY)
    watched = (*EVENT_SIGNALS, COST_SIGNAL)
    if saved is None and not any(r.count > 0 for s in watched for r in inp.rollups.get(s, ())):
        return [], {}  # never sent an event: nothing to be silent about
    state = SilenceState.from_dict(saved or {})
    if any(r.count > 0 for s in EVENT_SIGNALS for r in inp.rollups.get(s, ())):
        state.cost_only = False
    state.add(_minutes(inp, state.cost_only), inp.now)
    kept = {k: v for k, v in (saved or {}).items() if k.startswith("_")}  # engine's keys
    return [judge(inp.workflow, state, inp.now)], {KEY: {**kept, **state.to_dict()}}
