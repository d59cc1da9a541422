"""``driftwarden backtest``: replay event files through detection and policies, offline.

The replay is the daemon with a simulated clock. Events are sorted by ``ts``; the clock
starts at the first event and moves in ``step`` increments to the last one. At every step
the events with ``ts <= t`` not yet stored are ingested through the daemon's own ingest
path (``IngestService.ingest``, received at ``t``: each event arrives as if sent live),
then one detection pass runs at ``now = t`` (``Detection.run_once``), then the finding
policies (the body of ``run_policies``), then rollup compaction when due, in the order
``DetectionLoop.tick`` runs them. Every step is one detection pass, so the settings'
``detect_interval`` is set to the step: rules that look at "the last detect intervals"
see the replay's pace, not the daemon's 30 s.

Everything is written to a throw-away SQLite file in a temporary directory, removed at
the end: no live database and no live switch is read or written, and the switch service
has no listeners, so no webhook is called. Policies really move the throw-away switch, so
a workflow that tripped to ``review`` stays there for the rest of the replay (as it would
until a person restored it), and a later policy asking for the same finds nothing to do
(``switch_changed`` false).

Wall-clock use checked: ``Store.prepare`` and the collectors stamp ``time.time()`` only
when no time is given (we always give one), ``SwitchService`` takes a ``clock`` (given),
``Detection.run_once`` and the policies take ``now``; the detectors read no clock.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import orjson

from collectors.costlogs import parse_costlog
from collectors.events import Event
from collectors.native import split_json, validate_items
from detectors.types import Finding, Status
from monitor.detection.scheduler import Detection, build_config
from monitor.ingest.service import IngestService
from monitor.settings import FileConfig, PolicyConfig, Settings
from monitor.store import Store
from monitor.store.migrate import upgrade
from monitor.switch.policies import (
    apply_actions,
    evaluate_policies,
    finding_matches,
    load_policy_state,
    save_policy_state,
)
from monitor.switch.service import SwitchService
from monitor.telemetry.metrics import Metrics

FORMATS: Final = ("native", "openai", "anthropic", "litellm", "csv")
MAX_FUTURE_S: Final = 86_400.0  # the ingest rule: no event more than a day ahead of now
MAX_PROBLEMS: Final = 10  # input errors listed before giving up
FindingKey = tuple[str, str, str]  # workflow, signal, detector


class BacktestInputError(ValueError):
    """Input that cannot be replayed; ``problems`` are (file, where, message), ``where``
    being e.g. "line 12" (JSONL, CSV), "element $[3]" (a JSON document) or None."""

    def __init__(self, problems: list[tuple[str, str | None, str]], total: int) -> None:
        self.problems = problems
        self.total = total
        lines = [": ".join(p for p in problem if p is not None) for problem in problems]
        if total > len(problems):
            lines.append(f"... and {total - len(problems)} more")
        super().__init__("\n".join(lines))


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A finding whose status differs from the one it had at the previous pass (or that
    appeared for the first time: ``previous`` None)."""

    at: float  # the pass's simulated time, epoch seconds
    workflow: str
    signal: str
    detector: str
    status: str
    previous: str | None
    summary: str
    since: float | None
    value: float | None
    baseline: float | None
    samples: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "ts": rfc3339(self.at),
            "epoch": self.at,
            "workflow": self.workflow,
            "signal": self.signal,
            "detector": self.detector,
            "status": self.status,
            "previous": self.previous,
            "summary": self.summary,
            "since": rfc3339(self.since),
            "since_epoch": _finite(self.since),
            "value": _finite(self.value),
            "baseline": _finite(self.baseline),
            "samples": self.samples,
        }


@dataclass(frozen=True, slots=True)
class Trip:
    """A policy that fired: what it asked for, and whether the switch moved."""

    at: float
    workflow: str
    policy: str
    mode: str | None  # the mode the policy asks for (None: it only disables actions)
    disabled_actions: tuple[str, ...]
    dry_run: bool
    switch_changed: bool  # False for dry runs and when the switch was already as safe
    signals: tuple[str, ...]  # the signals whose findings matched
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "ts": rfc3339(self.at),
            "epoch": self.at,
            "workflow": self.workflow,
            "policy": self.policy,
            "mode": self.mode,
            "disabled_actions": list(self.disabled_actions),
            "dry_run": self.dry_run,
            "switch_changed": self.switch_changed,
            "signals": list(self.signals),
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Budget:
    """The false-alarm budget in force (``DetectionConfig``), per workflow and month."""

    false_alarms_per_month: float
    warn_false_alarms_per_month: float
    by_workflow: dict[str, float]
    arl0_floor: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "false_alarms_per_month": self.false_alarms_per_month,
            "warn_false_alarms_per_month": self.warn_false_alarms_per_month,
            "by_workflow": dict(sorted(self.by_workflow.items())),
            "arl0_floor": self.arl0_floor,
        }


@dataclass(slots=True)
class SignalSummary:
    workflow: str
    signal: str
    criticals: int = 0  # changes to critical (episodes), all detectors of the signal
    warns: int = 0  # changes to warn
    trips: int = 0  # policy firings whose matching findings include this signal
    first_alarm: float | None = None  # first change to critical

    def to_dict(self) -> dict[str, Any]:
        return {
            "workflow": self.workflow,
            "signal": self.signal,
            "criticals": self.criticals,
            "warns": self.warns,
            "trips": self.trips,
            "first_alarm": rfc3339(self.first_alarm),
            "first_alarm_epoch": self.first_alarm,
        }


@dataclass(slots=True)
class BacktestResult:
    files: list[str]
    events: int
    start: float
    end: float
    step_s: float
    passes: int
    budget: Budget
    findings: list[StatusChange] = field(default_factory=list)
    trips: list[Trip] = field(default_factory=list)
    summary: list[SignalSummary] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # where the replay may differ from a daemon

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: times as RFC 3339 UTC strings (``ts``, ``since``, ``first_alarm``)
        beside epoch seconds (``epoch``, ``since_epoch``, ``first_alarm_epoch``)."""
        return {
            "replay": {
                "files": self.files,
                "events": self.events,
                "start": rfc3339(self.start),
                "end": rfc3339(self.end),
                "step_s": self.step_s,
                "passes": self.passes,
                "notes": self.notes,
            },
            "findings": [c.to_dict() for c in self.findings],
            "trips": [t.to_dict() for t in self.trips],
            "budget": self.budget.to_dict(),
            "summary": [s.to_dict() for s in self.summary],
        }


def rfc3339(epoch: float | None) -> str | None:
    """``2026-11-23T09:10:00Z`` (UTC, whole seconds), or None."""
    if epoch is None or not math.isfinite(epoch):
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


# -- reading -----------------------------------------------------------------------------


def load_events(
    paths: Sequence[Path],
    fmt: str = "native",
    options: Mapping[str, Any] | None = None,
    wall_now: float | None = None,
) -> list[Event]:
    """Every event of ``paths``, validated as ``driftwarden ingest`` does, sorted by ``ts``
    (stable: equal times keep file order).

    Raises ``BacktestInputError`` naming the file and line (JSONL, CSV) or element (JSON
    document) of each bad event; a replay of part of a file would mislead, so nothing is
    skipped. Every event needs a ``ts``: on ingest an event without one is stamped with
    its receive time, which has no meaning in a replay.
    """
    if fmt not in FORMATS:
        raise BacktestInputError([("--format", None, f"use one of {', '.join(FORMATS)}")], 1)
    wall = time.time() if wall_now is None else wall_now
    events: list[Event] = []
    problems: list[tuple[str, str | None, str]] = []
    total = 0
    for path in paths:
        try:
            data = path.read_bytes()
            parsed = _parse(data, fmt, options or {})
        except OSError as exc:
            raise BacktestInputError([(str(path), None, exc.strerror or str(exc))], 1) from None
        except ValueError as exc:  # BatchError: the file as a whole is unusable
            raise BacktestInputError([(str(path), None, str(exc))], 1) from None
        bad = list(parsed.rejected)
        for where, event in parsed.events:
            problem = _time_problem(event.epoch, wall)
            if problem is None:
                events.append(event)
            else:
                bad.append((where, problem))
        total += len(bad)
        for where, message in bad[: MAX_PROBLEMS - len(problems)]:
            problems.append((str(path), _place(where, fmt, data), message))
    if total:
        raise BacktestInputError(problems, total)
    events.sort(key=lambda e: e.epoch)
    return events


@dataclass(slots=True)
class _Parsed:
    # (where, ...): the collectors' index (line number, or position in a JSON document);
    # a cost-log record that was accepted has none, so it is named by its event id
    events: list[tuple[int | str, Event]]
    rejected: list[tuple[int | str, str]]


# Validation runs with a NaN receive time: an event without ``ts`` then gets NaN as its
# time (the ingest path would stamp the wall clock, meaningless in a replay), and the
# "more than a day ahead" check, which compares with the receive time, is skipped;
# ``_time_problem`` applies both rules instead.
_NO_RECEIVE_TIME: Final = math.nan


def _time_problem(epoch: float, wall: float) -> str | None:
    if math.isnan(epoch):
        return "ts: required in a backtest (an event without one is stamped on receipt)"
    if epoch > wall + MAX_FUTURE_S:
        return "ts: more than a day in the future"
    return None


def _parse(data: bytes, fmt: str, options: Mapping[str, Any]) -> _Parsed:
    if fmt != "native":
        costs, bad = parse_costlog(fmt, data, options, _NO_RECEIVE_TIME)
        return _Parsed([(f"event {e.id}", e) for e in costs], [(r.index, r.error) for r in bad])
    if data.lstrip()[:1] == b"[":  # a JSON array file rather than JSON lines
        items = [(i, bytes(raw)) for i, raw in enumerate(split_json(data))]
    else:
        items = [(n, line) for n, line in enumerate(data.split(b"\n"), 1) if line.strip()]
    out = _Parsed([], [])
    for index, raw in items:
        got = validate_items([(index, raw)], _NO_RECEIVE_TIME)
        out.events.extend((index, ev) for ev in got.events)
        out.rejected.extend((r.index, r.error) for r in got.rejected)
    return out


def _place(where: int | str, fmt: str, data: bytes) -> str:
    """ "line 12" or "element $[3]": the collectors number JSONL and CSV records by line
    (1-based) and the records of a JSON document by position (0-based)."""
    if isinstance(where, str):
        return where
    if fmt == "csv" or not _is_json_document(data, fmt):
        return f"line {where}"
    return f"element $[{where}]"


def _is_json_document(data: bytes, fmt: str) -> bool:
    """Whether the file was read as one JSON document (else as JSON lines), as the
    collectors decide it; only asked on errors."""
    if data.lstrip()[:1] == b"[" or fmt == "native":
        return data.lstrip()[:1] == b"["
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return True


# -- replaying ---------------------------------------------------------------------------


def pass_times(first: float, last: float, step_s: float) -> list[float]:
    """Pass times on the grid of ``step_s`` multiples (whole hours for 1h, so the timeline
    reads 09:00, not 09:13:25), from the first at or after ``first`` to the first at or
    after ``last``: every event is fed by the pass at the next grid point.

    >>> pass_times(0.0, 25.0, 10.0)
    [0.0, 10.0, 20.0, 30.0]
    >>> pass_times(5.0, 5.0, 60.0)
    [60.0]
    >>> pass_times(61.0, 150.0, 60.0)
    [120.0, 180.0]
    """
    if not step_s > 0:
        raise ValueError(f"step must be positive, got {step_s}")
    start = math.ceil(first / step_s)
    stop = max(start, math.ceil(last / step_s))
    return [k * step_s for k in range(start, stop + 1)]


def budget_of(settings: Settings, file_config: FileConfig) -> Budget:
    cfg = build_config(settings, file_config)
    return Budget(
        cfg.false_alarms_per_month,
        cfg.warn_false_alarms_per_month,
        dict(cfg.budget_by_workflow),
        cfg.arl0,
    )


@dataclass(slots=True)
class _Tracker:
    """Status changes from pass to pass. A finding absent from a pass keeps its last
    status, as the store's current row does."""

    last: dict[FindingKey, str] = field(default_factory=dict)
    changes: list[StatusChange] = field(default_factory=list)

    def observe(self, findings: Iterable[Finding], now: float) -> None:
        for f in findings:
            key = (f.workflow, f.signal, f.detector)
            before = self.last.get(key)
            if before == f.status.value:
                continue
            self.last[key] = f.status.value
            self.changes.append(
                StatusChange(
                    now,
                    f.workflow,
                    f.signal,
                    f.detector,
                    f.status.value,
                    before,
                    f.summary,
                    f.since,
                    f.value,
                    f.baseline,
                    f.samples,
                )
            )


def replay(
    events: Sequence[Event],
    settings: Settings,
    file_config: FileConfig,
    step_s: float,
    *,
    files: Sequence[str] = (),
    on_pass: Callable[[int, int], None] = lambda _done, _total: None,
    workdir: Path | None = None,
) -> BacktestResult:
    """Replay ``events`` (sorted by ``ts``) into a throw-away store; see the module doc.

    ``settings`` are used for detection only: their database is never opened (the
    replay's store is a SQLite file in ``workdir``, default a new temporary directory).
    ``on_pass(done, total)`` is called after each pass (a progress bar).
    """
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="driftwarden-backtest-") as tmp:
            return replay(
                events,
                settings,
                file_config,
                step_s,
                files=files,
                on_pass=on_pass,
                workdir=Path(tmp),
            )
    url = f"sqlite:///{workdir / 'backtest.db'}"
    sim = settings.model_copy(update={"database_url": url, "detect_interval": step_s})
    # a throw-away file: no fsync (durability is all synchronous changes, not behaviour)
    store = Store(url, sqlite_synchronous="OFF")
    try:
        upgrade(store)
        clock = _Clock()
        ingest = IngestService(store, Metrics(max_workflows=sim.max_workflows))
        switches = SwitchService(store, file_config, clock=clock)
        detection = Detection(store, sim, file_config)
        policies = [p for p in file_config.policies if p.alertname is None]
        times = pass_times(events[0].epoch, events[-1].epoch, step_s) if events else []
        result = BacktestResult(
            list(files),
            len(events),
            times[0] if times else math.nan,
            times[-1] if times else math.nan,
            step_s,
            len(times),
            budget_of(sim, file_config),
        )
        if times:
            result.notes.extend(window_notes(file_config, times[0]))
        tracker = _Tracker()
        fed = 0
        for done, now in enumerate(times, 1):
            clock.now = now
            upto = fed
            while upto < len(events) and events[upto].epoch <= now:
                upto += 1
            if upto > fed:
                ingest.ingest(events[fed:upto], received_at=now)
                fed = upto
            found = detection.run_once(now=now).findings
            tracker.observe(found, now)
            if policies:
                # run_policies, with the actions kept for the report
                decided = evaluate_policies(found, policies, load_policy_state(switches), now)
                applied = apply_actions(switches, decided.actions)
                save_policy_state(switches, decided.state, now)
                by_name = {p.name: p for p in policies}
                for action, change in zip(decided.actions, applied, strict=True):
                    matched = _matched_signals(by_name[action.policy], action.workflow, found)
                    result.trips.append(
                        Trip(
                            now,
                            action.workflow,
                            action.policy,
                            action.mode,
                            action.disable,
                            action.dry_run,
                            change.changed,
                            matched,
                            action.reason,
                        )
                    )
            detection.compact_if_due()
            on_pass(done, len(times))
        result.findings = tracker.changes
        result.summary = summarize(tracker.changes, result.trips)
        return result
    finally:
        store.dispose()


def window_notes(file_config: FileConfig, first_pass: float) -> list[str]:
    """A ``baseline_window`` is read once, at the first pass; one that ends after the
    replay's first pass is learned from what had arrived by then (as by a daemon started
    before the window ended), not from the whole window."""
    notes = []
    for wf, cfg in sorted(file_config.workflows.items()):
        if cfg.baseline_window is None:
            continue
        end = datetime.fromisoformat(cfg.baseline_window.split("/")[1].strip())
        end = end if end.tzinfo else end.replace(tzinfo=UTC)
        if end.timestamp() > first_pass:
            notes.append(
                f"{wf}: baseline_window {cfg.baseline_window} ends after the first pass "
                f"({rfc3339(first_pass)}); it is read at that pass, so it holds only the "
                "events before it; to replay with that baseline, declare it (baseline = {...})."
            )
    return notes


def _matched_signals(
    policy: PolicyConfig, workflow: str, findings: Iterable[Finding]
) -> tuple[str, ...]:
    return tuple(
        sorted(
            {f.signal for f in findings if f.workflow == workflow and finding_matches(policy, f)}
        )
    )


@dataclass(slots=True)
class _Clock:
    """The simulated wall clock handed to the switch service (audit and ``updated_at``)."""

    now: float = 0.0

    def __call__(self) -> float:
        return self.now


def summarize(changes: Iterable[StatusChange], trips: Iterable[Trip]) -> list[SignalSummary]:
    """Per workflow and signal (every one that had a finding), sorted by name."""
    rows: dict[tuple[str, str], SignalSummary] = {}

    def row(workflow: str, signal: str) -> SignalSummary:
        return rows.setdefault((workflow, signal), SignalSummary(workflow, signal))

    for c in changes:
        r = row(c.workflow, c.signal)
        if c.status == Status.CRITICAL.value:
            r.criticals += 1
            if r.first_alarm is None or c.at < r.first_alarm:
                r.first_alarm = c.at
        elif c.status == Status.WARN.value:
            r.warns += 1
    for t in trips:
        for signal in t.signals:
            row(t.workflow, signal).trips += 1
    return [rows[k] for k in sorted(rows)]
