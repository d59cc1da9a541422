"""Per-minute rollup deltas computed from a batch of newly stored events (pure).

Each (workflow, signal, minute) key gets one aggregate per batch: count, successes,
sum, sum of squares, min, max. The writer stores them in the same transaction as the
events, so a duplicate event (never inserted) is never counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from detectors import signals as sig
from monitor.events import Cost, Event, Kpi, Review, Run

Key = tuple[str, str, int]  # workflow, signal, bucket start


@dataclass(slots=True)
class Agg:
    count: int = 0
    successes: int = 0
    sum: float = 0.0
    sumsq: float = 0.0
    min: float | None = None
    max: float | None = None

    def rate(self, success: bool) -> None:
        self.count += 1
        self.successes += success

    def value(self, v: float, success: bool = False) -> None:
        self.count += 1
        self.successes += success
        self.sum += v
        self.sumsq += v * v
        if self.min is None or v < self.min:
            self.min = v
        if self.max is None or v > self.max:
            self.max = v

    def merge(self, other: Agg) -> None:
        self.count += other.count
        self.successes += other.successes
        self.sum += other.sum
        self.sumsq += other.sumsq
        if other.min is not None and (self.min is None or other.min < self.min):
            self.min = other.min
        if other.max is not None and (self.max is None or other.max > self.max):
            self.max = other.max


@dataclass(slots=True)
class VersionSeen:
    first: float
    last: float
    count: int = 0


@dataclass(slots=True)
class BatchRollup:
    """Everything a batch adds to the derived tables."""

    aggs: dict[Key, Agg] = field(default_factory=dict)
    versions: dict[tuple[str, str, str, str], VersionSeen] = field(default_factory=dict)
    actors: dict[tuple[str, int, str], str] = field(default_factory=dict)

    def agg(self, workflow: str, signal: str, bucket: int) -> Agg:
        key = (workflow, signal, bucket)
        found = self.aggs.get(key)
        if found is None:
            found = self.aggs[key] = Agg()
        return found


def bucket_of(epoch: float) -> int:
    return int(epoch // 60) * 60


def rollup(events: Iterable[Event]) -> BatchRollup:
    out = BatchRollup()
    runs: dict[tuple[str, int], _RunAcc] = {}
    for ev in events:
        bucket = bucket_of(ev.epoch)
        if isinstance(ev, Run):
            key = (ev.workflow, bucket)
            acc = runs.get(key)
            if acc is None:
                acc = runs[key] = _RunAcc()
            acc.add(ev)
            if ev.model or ev.model_version or ev.prompt_version:
                _version(out, ev)
        elif isinstance(ev, Review):
            _review(out, ev, bucket)
        elif isinstance(ev, Cost):
            _spend(out, ev.workflow, bucket, ev.cost_usd, ev.input_tokens, ev.output_tokens)
            if ev.cost_usd is None:
                out.agg(ev.workflow, sig.UNPRICED, bucket).rate(True)
        elif isinstance(ev, Kpi):
            out.agg(ev.workflow, sig.KPI_PREFIX + ev.name, bucket).value(ev.value)
        if ev.user:
            out.actors[(ev.workflow, bucket // 86_400, ev.user)] = ev.team or ""
    for (wf, bucket), acc in runs.items():
        acc.emit(out, wf, bucket)
    return out


class _RunAcc:
    """All run signals of one (workflow, minute), accumulated with one dict lookup per
    event instead of one per signal: the hot loop of ingest."""

    __slots__ = (
        "actions",
        "errors",
        "escalated",
        "n",
        "ok",
        "retried",
        "teams",
        "timeouts",
        "validated",
        "values",
    )

    def __init__(self) -> None:
        self.n = self.ok = self.errors = self.timeouts = self.retried = 0
        self.validated = [0, 0]  # reported, failed
        self.escalated = [0, 0]  # reported, escalated
        self.values: dict[str, Agg] = {}
        self.actions: dict[str, list[int]] = {}  # action -> [runs, failed]
        self.teams: dict[str, list[int]] = {}  # team -> [runs, ok]

    def _value(self, signal: str, v: float) -> None:
        agg = self.values.get(signal)
        if agg is None:
            agg = self.values[signal] = Agg()
        agg.value(v)

    def add(self, ev: Run) -> None:
        status = ev.status
        self.n += 1
        self.ok += status == "ok"
        self.errors += status == "error"
        self.timeouts += status == "timeout"
        self.retried += ev.retries > 0
        self._value(sig.RETRIES, float(ev.retries))
        if ev.latency_ms is not None:
            self._value(sig.LATENCY_MS, ev.latency_ms)
        if ev.groundedness is not None:
            self._value(sig.GROUNDEDNESS, ev.groundedness)
        if ev.confidence is not None:
            self._value(sig.CONFIDENCE, ev.confidence)
        if ev.validation is not None:
            self.validated[0] += 1
            self.validated[1] += ev.validation == "failed"
        if ev.escalated is not None:
            self.escalated[0] += 1
            self.escalated[1] += ev.escalated
        if ev.action is not None:
            counts = self.actions.setdefault(ev.action, [0, 0])
            counts[0] += 1
            counts[1] += status != "ok"
        if ev.team:
            counts = self.teams.setdefault(ev.team, [0, 0])
            counts[0] += 1
            counts[1] += status == "ok"
        if ev.cost_usd is not None:
            self._value(sig.SPEND_USD, ev.cost_usd)
        if ev.input_tokens is not None or ev.output_tokens is not None:
            self._value(sig.TOKENS, float((ev.input_tokens or 0) + (ev.output_tokens or 0)))

    def emit(self, out: BatchRollup, wf: str, bucket: int) -> None:
        rates = {
            sig.RUNS: (self.n, self.ok),
            sig.ERRORS: (self.n, self.errors),
            sig.TIMEOUTS: (self.n, self.timeouts),
        }
        if self.validated[0]:
            rates[sig.VALIDATION_FAILED] = (self.validated[0], self.validated[1])
        if self.escalated[0]:
            rates[sig.ESCALATED] = (self.escalated[0], self.escalated[1])
        for action, (n, failed) in self.actions.items():
            rates[sig.ACTION_ERRORS_PREFIX + action] = (n, failed)
        for team, (n, ok) in self.teams.items():
            rates[sig.TEAM_RUNS_PREFIX + team] = (n, ok)
        for signal, (n, k) in rates.items():
            agg = out.agg(wf, signal, bucket)
            agg.count += n
            agg.successes += k
        for signal, part in self.values.items():
            agg = out.agg(wf, signal, bucket)
            agg.merge(part)
        out.agg(wf, sig.RETRIES, bucket).successes += self.retried


def _version(out: BatchRollup, ev: Run) -> None:
    key = (ev.workflow, ev.model or "", ev.model_version or "", ev.prompt_version or "")
    seen = out.versions.get(key)
    if seen is None:
        seen = out.versions[key] = VersionSeen(ev.epoch, ev.epoch)
    seen.first = min(seen.first, ev.epoch)
    seen.last = max(seen.last, ev.epoch)
    seen.count += 1


def _review(out: BatchRollup, ev: Review, bucket: int) -> None:
    wf = ev.workflow
    out.agg(wf, sig.EDITED, bucket).rate(ev.decision != "approved")
    out.agg(wf, sig.REJECTED, bucket).rate(ev.decision == "rejected")
    out.agg(wf, sig.APPROVED, bucket).rate(ev.decision == "approved")
    if ev.edit_ratio is not None:
        out.agg(wf, sig.EDIT_RATIO, bucket).value(ev.edit_ratio)
    if ev.review_ms is not None:
        out.agg(wf, sig.REVIEW_MS, bucket).value(ev.review_ms)
    if ev.time_saved_s is not None:
        out.agg(wf, sig.TIME_SAVED_S, bucket).value(ev.time_saved_s)


def _spend(
    out: BatchRollup,
    wf: str,
    bucket: int,
    cost: float | None,
    tokens_in: int | None,
    tokens_out: int | None,
) -> None:
    if cost is not None:
        out.agg(wf, sig.SPEND_USD, bucket).value(cost)
    if tokens_in is not None or tokens_out is not None:
        out.agg(wf, sig.TOKENS, bucket).value(float((tokens_in or 0) + (tokens_out or 0)))
