"""Adoption signals: runs per team, active users, approval rate, time saved, KPIs.

* Runs per team (``team_runs.<team>``): every pass compares the runs of the trailing 24 h
  (rolling, not the last calendar day; up to the last complete hour) with what the
  team's own history predicts for the same 24 h span: the same span on past same
  weekdays once two of them exist, else the past days whose span covers the same kind of
  days (weekday/weekend at both ends, so a team that never works on Saturdays is never
  compared with a Friday on a Saturday).
  The state keeps hourly counts for 35 days (``TeamRunsState``).

  - critical: observed <= 10 % of expected AND ``P(X <= observed) < 1e-6`` under a
    negative binomial with the team's own day-to-day variation (detectors.stats.counts);
    until two past same weekdays exist, only for a span of weekdays with two or more
    past weekday spans to compare (weekends split at 00:00 UTC mislead for other zones);
    the same test on the trailing 6 h decides faster when the evidence is overwhelming
    (a team of 2,000 runs a day silent for 6 h). The episode stays critical until the
    data shows recovery: the trailing 6 h or 24 h back at >= 50 % of expected.
  - warn: the 24 h span's z <= ``-config.adoption_z_warn``, z the normal quantile of the
    same lower-tail probability (median expectation, MAD-based variation: robust).
  - first verdict after ``MIN_PAST_DAYS = 2`` complete past 24 h spans (the team's first
    run on a day that began at least 72 h ago); before that ``unknown`` with reason
    "learning (n/2 days)"; ``unknown`` too when no past span is comparable yet (the
    team's first weekend).
* Active users (``"YYYY-MM-DD" -> users``, from the store, daily only): the last complete
  day against the same weekday (two or more) or the same kind of day, the same test, but
  WARN at most (who logs in is a weaker signal than what runs).
* Approval rate: Bernoulli CUSUM, falling is bad. Time saved per review: winsorised
  Gaussian CUSUM, falling is bad. ``kpi.<name>``: two-sided winsorised CUSUM (we do not
  know which way is good for a business KPI).

Example:
    >>> from detectors.config import DetectionConfig
    >>> from detectors.family import WorkflowInput
    >>> users = {f"2026-11-{d:02d}": 40 for d in range(1, 22)} | {"2026-11-22": 12}
    >>> now = 1_795_392_000.0 + 3600  # 2026-11-23 01:00 UTC
    >>> inp = WorkflowInput("wf", {}, {}, DetectionConfig(), now, active_users=users)
    >>> [(f.signal, f.status.value, f.value) for f in evaluate(inp)[0]]
    [('active_users', 'warn', 12.0)]
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from detectors import signals as sig
from detectors.family import States, WorkflowInput, run_specs
from detectors.sequential import SignalSpec, iso_window
from detectors.stats.counts import CRITICAL_RATIO, CV_FLOOR, DropVerdict, drop_test
from detectors.types import Finding, Rollup, Status

SPECS: Final = (
    SignalSpec(sig.APPROVED, "rate", "down"),
    SignalSpec(sig.TIME_SAVED_S, "mean", "down", robust=True),
)
ACTIVE_USERS: Final = "active_users"
SIGNALS: Final = frozenset(s.signal for s in SPECS)
DETECTOR: Final = "daily_robust_z"  # kept: saved states and policies name it
HOUR: Final = 3600
DAY: Final = 86_400
WEEK: Final = 7 * DAY
KEEP_DAYS: Final = 35
MIN_PAST_DAYS: Final = 2
# The 24 h span decides; the 6 h one only speeds up a critical, so it assumes a burstier
# rate (CV >= 0.5: hours vary more than days, and a team's few reference afternoons may look
# alike by chance): it then takes near silence where ~120 or more runs were expected.
SPANS: Final = ((DAY, CV_FLOOR), (6 * HOUR, 0.5))
_SAME_WEEKDAY_MIN: Final = 2
_RECOVERED: Final = 0.5  # a critical episode ends when a span is back at this share
_FUTURE_S: Final = DAY  # runs dated further ahead than this are dropped (clock errors)


def _weekend(t: float) -> bool:
    return (int(t // DAY) + 3) % 7 >= 5  # 1970-01-01 was a Thursday (weekday 3)


def _day_kinds(start: float, end: float) -> tuple[bool, bool]:
    """Weekend or not at both ends of ``[start, end)``: what makes two spans comparable."""
    return _weekend(start), _weekend(end - 1)


@dataclass(slots=True)
class TeamRunsState:
    """Runs per hour of one team: ``counts[i]`` covers ``[start + i h, start + (i + 1) h)``.

    ``first`` is the start (00:00 UTC) of the day of the first run ever seen: it survives
    pruning and says how much history the team has (a team first seen at 08:00 has been
    around that day; counting from 08:00 would push a weekday-only team's first verdict
    to the fourth morning). ``critical_since`` is the start of the current critical
    episode, if any.
    """

    start: int
    counts: list[int] = field(default_factory=list)
    first: int = 0
    critical_since: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "counts": list(self.counts),
            "first": self.first,
            "critical_since": self.critical_since,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TeamRunsState | None:
        """The saved state, or None when there is none (or only the old per-day format,
        which has no hours: the team learns again, for ``MIN_PAST_DAYS``)."""
        if "counts" not in d:
            return None
        start, counts, first = d.get("start"), d["counts"], d.get("first")
        if not isinstance(start, int) or start % HOUR:
            raise ValueError(f"team runs state: start must be an hour in epoch s, got {start!r}")
        if not isinstance(counts, list) or not all(isinstance(c, int) for c in counts):
            raise ValueError("team runs state: counts must be a list of integers")
        if not isinstance(first, int):
            raise ValueError(f"team runs state: first must be an epoch hour, got {first!r}")
        since = d.get("critical_since")
        if since is not None and not isinstance(since, int | float):
            raise ValueError(f"team runs state: critical_since must be a number, got {since!r}")
        return cls(start, list(counts), first, None if since is None else float(since))

    def add(self, rollups: Iterable[Rollup], now: float) -> None:
        """Add new (or late) minute rollups; keep ``KEEP_DAYS`` of hours up to now + 1 day.

        Costs O(new rollups + hours kept)."""
        lo = int(now // HOUR) * HOUR - KEEP_DAYS * DAY
        hi = int(now + _FUTURE_S)
        for r in rollups:
            if r.count <= 0 or not lo <= r.bucket < hi:
                continue
            hour = r.bucket - r.bucket % HOUR
            day = hour - hour % DAY
            if not self.counts:
                self.start, self.counts = hour, [0]
                self.first = day if self.first == 0 else min(self.first, day)
            if hour < self.start:
                self.counts[:0] = [0] * ((self.start - hour) // HOUR)
                self.start = hour
            i = (hour - self.start) // HOUR
            if i >= len(self.counts):
                self.counts.extend([0] * (i + 1 - len(self.counts)))
            self.counts[i] += r.count
            self.first = min(self.first, day)
        if self.counts and self.start < lo:
            drop = min((lo - self.start) // HOUR, len(self.counts))
            del self.counts[:drop]
            self.start += drop * HOUR


@dataclass(frozen=True, slots=True)
class SpanScore:
    seconds: int
    verdict: DropVerdict | None  # None: no comparable past span
    same_weekday: bool

    def to_dict(self) -> dict[str, Any]:
        v = self.verdict
        return {
            "window_s": self.seconds,
            "samples": None if v is None else round(v.observed, 1),
            "expected": None if v is None else round(v.expected, 1),
            "ratio": None if v is None or v.ratio is None else round(v.ratio, 4),
            "p_low": None if v is None else v.p_low,
            "cv": None if v is None else round(v.cv, 3),
            "references": 0 if v is None else v.references,
            "same_weekday": self.same_weekday,
            "status": None if v is None else v.status,
        }


def past_days(state: TeamRunsState, now: float) -> int:
    """Complete past 24 h spans before the trailing one that lie in the team's history."""
    # hours pruned (older than KEEP_DAYS) are never read: the oldest span starts after them
    end = int(now // HOUR) * HOUR
    return max(0, min((end - DAY - state.first) // DAY, KEEP_DAYS - 1))


def score_spans(state: TeamRunsState, now: float, z_warn: float) -> list[SpanScore]:
    """Score each of ``SPANS`` ending at the last complete hour before ``now`` against the
    same span on comparable past days.

    Spans end on the hour: the hour in progress is left out of both sides, because its
    runs are still arriving (rollups land a minute or more late) while a past hour's are
    all in, and the first minutes of a team's working day would read as a drop.
    """
    cum = np.concatenate([[0], np.cumsum(np.asarray(state.counts, dtype=np.int64))])
    end = int(now // HOUR) * HOUR
    oldest = state.first

    def total(start: int, stop: int) -> int:
        """Runs in ``[start, stop)`` (hours); hours outside the kept range hold none."""
        lo = min(max((start - state.start) // HOUR, 0), len(cum) - 1)
        hi = min(max((stop - state.start) // HOUR, 0), len(cum) - 1)
        return int(cum[hi] - cum[lo])

    scores = []
    for seconds, cv_floor in SPANS:
        observed = total(end - seconds, end)
        kinds = _day_kinds(end - seconds, end)
        same: list[float] = []
        alike: list[float] = []
        for d in range(1, KEEP_DAYS):
            start, stop = end - seconds - d * DAY, end - d * DAY
            if start < oldest:
                break
            if _day_kinds(start, stop) == kinds:
                alike.append(float(total(start, stop)))
                if d % 7 == 0:
                    same.append(alike[-1])
        same_weekday = len(same) >= _SAME_WEEKDAY_MIN
        refs = same if same_weekday else alike
        # Before two past same weekdays exist, only a span of weekdays may be critical,
        # against two or more past ones: weekends are split at 00:00 UTC, so a team west
        # of UTC has Friday's last hours in "Saturday" and an empty "Sunday".
        allow = same_weekday or (kinds == (False, False) and len(alike) >= 2)
        # a team that has been near zero on a comparable span before (small teams skip
        # weekends: 249, 17, 0 runs on three Saturdays in the bench) is not critical for
        # being near zero again: the robust spread ignores exactly those spans (measured:
        # 10 false criticals in 40 workflow-months, all on weekend spans, without this)
        if alike and allow:
            typical = sorted(alike)[len(alike) // 2]
            allow = not any(v <= CRITICAL_RATIO * typical for v in alike)
        # weekend activity is bursty (a team's first empty Saturday after two busy ones is
        # not an outage): a span touching a weekend pages only against 4 past same weekdays
        if kinds != (False, False):
            allow = allow and len(same) >= 4
        # the day-to-day variation comes from every span of the same kind: a few same
        # weekdays alone may look alike by chance
        verdict = (
            drop_test(
                observed,
                refs,
                spread=alike,
                cv_floor=cv_floor,
                z_warn=z_warn,
                allow_critical=allow,
            )
            if refs
            else None
        )
        scores.append(SpanScore(seconds, verdict, same_weekday))
    return scores


def _recovered(scores: list[SpanScore]) -> bool:
    return any(
        s.verdict is not None
        and s.verdict.expected >= 1.0
        and s.verdict.observed >= _RECOVERED * s.verdict.expected
        for s in scores
    )


def team_runs_finding(inp: WorkflowInput, signal: str) -> tuple[Finding, dict[str, Any]]:
    """Score a team's trailing 24 h (and 6 h) of runs; the new state is JSON-safe."""
    saved = inp.states.get((signal, DETECTOR), {})
    state = TeamRunsState.from_dict(saved) or TeamRunsState(0)
    state.add(inp.rollups.get(signal, ()), inp.now)
    f = Finding(
        inp.workflow,
        signal,
        DETECTOR,
        Status.UNKNOWN,
        window=iso_window(int(inp.now // HOUR) * HOUR - DAY, int(inp.now // HOUR) * HOUR),
        threshold=-inp.config.adoption_z_warn,
        evidence={"detector": DETECTOR, "z_warn": -inp.config.adoption_z_warn},
    )
    engine_keys = {k: v for k, v in saved.items() if k.startswith("_")}  # _status, _since
    have = past_days(state, inp.now) if state.counts else 0
    if have < MIN_PAST_DAYS:
        state.critical_since = None
        f.evidence |= {
            "reason": f"learning ({have}/{MIN_PAST_DAYS} days)",
            "learned": have,
            "needed": MIN_PAST_DAYS,
        }
        return f, engine_keys | state.to_dict()
    scores = score_spans(state, inp.now, inp.config.adoption_z_warn)
    day = scores[0]
    f.evidence["spans"] = {f"{s.seconds // HOUR}h": s.to_dict() for s in scores}
    if day.verdict is None:
        state.critical_since = None
        kind = "weekend" if _weekend(inp.now) else "weekday"
        f.evidence["reason"] = f"no past day like this one ({kind}) yet"
        return f, engine_keys | state.to_dict()
    critical = [s for s in scores if s.verdict is not None and s.verdict.status == "critical"]
    ongoing = state.critical_since is not None and not _recovered(scores)
    if critical or ongoing:
        if state.critical_since is None:
            state.critical_since = inp.now
        f.status = Status.CRITICAL
        f.evidence["episode_start"] = state.critical_since
    else:
        state.critical_since = None
        f.status = Status.WARN if day.verdict.status == "warn" else Status.OK
    decided = critical[0] if critical and critical[0] is not day else day
    v = decided.verdict
    assert v is not None  # day.verdict is not None, critical ones have one
    f.value, f.baseline, f.statistic = day.verdict.observed, day.verdict.expected, day.verdict.z
    f.p_value, f.samples = v.p_low, round(day.verdict.observed)
    f.evidence["recent"] = {
        "samples": round(v.observed),
        "expected": round(v.expected, 1),
        "window_s": decided.seconds,
    }
    f.evidence["same_weekday"] = day.same_weekday
    return f, engine_keys | state.to_dict()


def _parse_day(key: str) -> int:
    try:
        day = dt.date.fromisoformat(key)
    except ValueError as exc:
        raise ValueError(f"active_users: day must be YYYY-MM-DD, got {key!r}") from exc
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())


def active_users_finding(inp: WorkflowInput, days: Mapping[int, float]) -> Finding:
    """Score the last complete day of ``days`` (day start epoch -> users); WARN at most."""
    today = int(inp.now - inp.now % DAY)
    last = today - DAY
    f = Finding(
        inp.workflow,
        ACTIVE_USERS,
        DETECTOR,
        Status.UNKNOWN,
        window=iso_window(last, today),
        threshold=-inp.config.adoption_z_warn,
        evidence={"detector": DETECTOR, "z_warn": -inp.config.adoption_z_warn},
    )
    if not days:
        f.evidence["reason"] = "no data"
        return f
    first = max(min(days), last - (KEEP_DAYS - 1) * DAY)
    history = {d: days.get(d, 0.0) for d in range(first, last, DAY)}
    f.value = float(days.get(last, 0.0))
    if len(history) < MIN_PAST_DAYS:
        f.evidence |= {
            "reason": f"learning ({len(history)}/{MIN_PAST_DAYS} days)",
            "learned": len(history),
            "needed": MIN_PAST_DAYS,
        }
        return f
    same = [v for d, v in history.items() if (last - d) % WEEK == 0]
    same_weekday = len(same) >= _SAME_WEEKDAY_MIN
    refs = (
        same if same_weekday else [v for d, v in history.items() if _weekend(d) == _weekend(last)]
    )
    f.evidence["same_weekday"] = same_weekday
    if not refs:
        f.evidence["reason"] = (
            f"no past day like this one ({'weekend' if _weekend(last) else 'weekday'}) yet"
        )
        return f
    v = drop_test(f.value, refs, z_warn=inp.config.adoption_z_warn)
    f.baseline, f.statistic, f.p_value, f.samples = v.expected, v.z, v.p_low, len(refs)
    f.status = Status.OK if v.status == "ok" else Status.WARN
    f.evidence["recent"] = {"samples": round(v.observed), "expected": v.expected, "window_s": DAY}
    return f


def evaluate(inp: WorkflowInput) -> tuple[list[Finding], States]:
    kpis = [SignalSpec(s, "mean", "both", robust=True) for s in inp.signals(prefix=sig.KPI_PREFIX)]
    findings, states = run_specs(inp, (*SPECS, *kpis))
    for signal in inp.signals(prefix=sig.TEAM_RUNS_PREFIX):
        f, s = team_runs_finding(inp, signal)
        findings.append(f)
        states[(signal, DETECTOR)] = s
    if inp.active_users:
        days = {_parse_day(k): float(v) for k, v in inp.active_users.items()}
        findings.append(active_users_finding(inp, days))
    return findings, states
