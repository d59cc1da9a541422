"""Kill-switch state: per-workflow mode and disabled actions, changed by compare-and-set.

Every change is one transaction: read the row, compute the new state, write it with
``UPDATE ... WHERE version = :read_version`` (or ``INSERT ... ON CONFLICT DO NOTHING`` for
the first write) and insert the audit row, whose unique ``dedup_key`` makes re-delivered
alerts a no-op. A lost race is retried from a fresh read, so no update is ever lost; a
human's ``If-Match`` version that no longer matches is a ``VersionConflict`` (HTTP 412).

Automation only moves toward safety (``tightened``); a human may set anything, with a
reason. A workflow never written reads as its configured default mode at version 0.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Final

import structlog
from sqlalchemy import Connection, func, select, update

from detectors.signals import ACTION_ERRORS_PREFIX
from monitor.settings import FileConfig
from monitor.store import Store
from monitor.store import schema as t
from monitor.switch.metrics import SwitchMetrics
from monitor.switch.state import (
    ACTION_PATTERN,
    HUMAN,
    MODES,
    SAFETY,
    AuditEntry,
    ChangeResult,
    Mode,
    SwitchState,
    VersionConflict,
    Wanted,
    human_target,
    tightened,
)

__all__ = [
    "ACTION_PATTERN",
    "MODES",
    "SAFETY",
    "AuditEntry",
    "ChangeResult",
    "Known",
    "Mode",
    "Snapshot",
    "SwitchService",
    "SwitchState",
    "VersionConflict",
    "Wanted",
    "human_target",
    "tightened",
]

log = structlog.get_logger(__name__)
MAX_ATTEMPTS: Final = 20  # lost CAS races retried; each retry re-reads the winner's state
SOURCE_MAX_LENGTH: Final = 128  # the width of switches.source and audit.source


class _Lost(Exception):
    """Another writer committed first; retry from a fresh read."""


class _Duplicate(Exception):
    """The dedup key was committed meanwhile; roll this attempt back."""


@dataclass(frozen=True, slots=True)
class Known:
    """A switch state as read from the store (or committed) by this daemon."""

    state: SwitchState
    read_at: float  # monotonic: how fresh it is
    as_of: float  # epoch seconds: what a stale answer reports


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A full read of the switches table (plus the configured workflows)."""

    states: list[SwitchState]
    by_name: dict[str, SwitchState]
    read_at: float
    as_of: float
    fresh: bool = True  # False once a local commit made ``states`` out of date


Target = Callable[[SwitchState], tuple[Mode, tuple[str, ...]]]
Listener = Callable[[ChangeResult], None]


@dataclass
class SwitchService:
    store: Store
    config: FileConfig = field(default_factory=FileConfig)
    metrics: SwitchMetrics | None = None
    listeners: list[Listener] = field(default_factory=list)  # called after commit
    clock: Callable[[], float] = time.time
    # Reads are served from memory for this long. This daemon's own changes update the
    # cache at commit, so only another replica's change can be this late; writes always
    # read the row inside their transaction, so the cache never weakens compare-and-set.
    read_ttl: float = 1.0
    # Every state read is also kept as the last known one, which the switch reader answers
    # from (marked stale) while the store cannot be reached. Names come from requests, so
    # the per-workflow cache is bounded (least recently used out); the full-table snapshot
    # covers every written switch and is bounded by the table.
    max_cached: int = 10_000
    _cache: OrderedDict[str, Known] = field(default_factory=OrderedDict, repr=False)
    _all: Snapshot | None = field(default=None, repr=False)
    _generation: int = field(default=0, repr=False)  # bumped by every local commit
    _used: UsedActions = field(default_factory=lambda: UsedActions(), repr=False)
    _cache_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # -- reads -------------------------------------------------------------------------
    def cached(self, workflow: str) -> SwitchState | None:
        """The state if read within ``read_ttl`` (no I/O: safe on the event loop)."""
        hit = self._cache.get(workflow)
        if hit is not None and time.monotonic() - hit.read_at < self.read_ttl:
            return hit.state
        return None

    def cached_all(self) -> list[SwitchState] | None:
        hit = self._all
        if hit is not None and hit.fresh and time.monotonic() - hit.read_at < self.read_ttl:
            return hit.states
        return None

    def last_known(self, workflow: str) -> Known | None:
        """The newest state this daemon has seen, however old (no I/O)."""
        hit = self._cache.get(workflow)
        snapshot = self._all
        if snapshot is not None and (hit is None or snapshot.read_at > hit.read_at):
            # absent from a full read of the table: at its default, as of that read
            state = snapshot.by_name.get(workflow) or self._default(workflow)
            return Known(state, snapshot.read_at, snapshot.as_of)
        return hit

    def last_known_all(self) -> Snapshot | None:
        """The last full read, with this daemon's later reads and commits laid over it."""
        snapshot = self._all
        if snapshot is None:
            return None
        with self._cache_lock:
            known = list(self._cache.values())
        newer = {k.state.workflow: k.state for k in known if k.read_at > snapshot.read_at}
        if not newer:
            return snapshot
        by_name = {**snapshot.by_name, **newer}
        states = [by_name[k] for k in sorted(by_name)]
        return Snapshot(states, by_name, snapshot.read_at, snapshot.as_of, fresh=False)

    def _remember(self, state: SwitchState, read_at: float, as_of: float) -> None:
        with self._cache_lock:
            known = self._cache.get(state.workflow)
            if known is not None and known.state.version > state.version:
                # racing commits report in any order: a slower thread's older state must
                # not replace a newer one (measured: 12 racing writers, the cache kept
                # version 11 of 12, and a read said an action was enabled that was not)
                return
            self._cache[state.workflow] = Known(state, read_at, as_of)
            self._cache.move_to_end(state.workflow)
            while len(self._cache) > self.max_cached:
                self._cache.popitem(last=False)

    def default_mode(self, workflow: str) -> Mode:
        wf = self.config.workflows.get(workflow)
        return wf.default_mode if wf and wf.default_mode else self.config.default_mode

    def get(self, workflow: str) -> SwitchState:
        found = self.cached(workflow)
        if found is not None:
            return found
        read_at, as_of, generation = time.monotonic(), self.clock(), self._generation
        with self.store.read() as conn:
            state = self._read(conn, workflow)
        if generation == self._generation:  # else a commit raced this read: don't cache it
            self._remember(state, read_at, as_of)
        return state

    def all(self) -> list[SwitchState]:
        """Every written switch plus every configured workflow (at its default)."""
        found_all = self.cached_all()
        if found_all is not None:
            return found_all
        read_at, as_of, generation = time.monotonic(), self.clock(), self._generation
        with self.store.read() as conn:
            rows = conn.execute(select(t.switches).order_by(t.switches.c.workflow)).mappings()
            found = {r["workflow"]: SwitchState.from_row(r) for r in rows}
        for wf in self.config.workflows:
            found.setdefault(wf, self._default(wf))
        states = [found[k] for k in sorted(found)]
        if generation == self._generation:
            self._all = Snapshot(states, found, read_at, as_of)
        return states

    def used_actions(self) -> dict[str, set[str]]:
        """The switchable actions each workflow's runs have named (from the rollups)."""
        return self._used.read(self.store, self.read_ttl)

    def known_used_actions(self) -> dict[str, set[str]]:
        """The used actions as last read (no I/O: for answers while the store is away)."""
        return self._used.known()

    def audit(
        self,
        workflow: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Newest first."""
        a = t.audit.c
        q = select(t.audit).order_by(a.at.desc(), a.id.desc()).limit(limit)
        if workflow is not None:
            q = q.where(a.workflow == workflow)
        if since is not None:
            q = q.where(a.at >= since)
        if until is not None:
            q = q.where(a.at < until)
        with self.store.read() as conn:
            return [AuditEntry.from_row(r) for r in conn.execute(q).mappings()]

    def load_gauges(self) -> None:
        """Export the persisted state (on startup, so a restart shows the truth)."""
        if self.metrics is None:
            return
        for state in self.all():
            self.metrics.show(state.workflow, state.mode, state.disabled_actions)

    # -- writes ------------------------------------------------------------------------
    def set_by_human(
        self,
        workflow: str,
        wanted: Wanted,
        *,
        actor: str,
        reason: str,
        expected_version: int | None = None,
    ) -> ChangeResult:
        """Any change, by a person with the control token; ``reason`` is mandatory."""
        if not reason.strip():
            raise ValueError("reason is required")
        return self._change(
            workflow,
            lambda s: human_target(s, wanted),
            actor=actor,
            source=HUMAN,
            reason=reason,
            expected_version=expected_version,
        )

    def tighten(
        self,
        workflow: str,
        *,
        mode: Mode | None = None,
        disable: frozenset[str] = frozenset(),
        actor: str,
        source: str,
        reason: str,
        dedup_key: str | None = None,
        dry_run: bool = False,
        always_audit: bool = False,
        notify: bool = True,
    ) -> ChangeResult:
        """Automation (policies, alerts): toward safety only."""
        return self._change(
            workflow,
            lambda s: tightened(s, mode, disable),
            actor=actor,
            source=source,
            reason=reason,
            dedup_key=dedup_key,
            dry_run=dry_run,
            always_audit=always_audit,
            notify=notify,
        )

    def record(
        self, workflow: str, *, actor: str, source: str, reason: str, dedup_key: str | None = None
    ) -> ChangeResult:
        """An audit row with no state change (e.g. a resolved alert)."""
        return self._change(
            workflow,
            lambda s: (s.mode, s.disabled_actions),
            actor=actor,
            source=source,
            reason=reason,
            dedup_key=dedup_key,
            always_audit=True,
        )

    def _change(
        self,
        workflow: str,
        target: Target,
        *,
        actor: str,
        source: str,
        reason: str,
        expected_version: int | None = None,
        dedup_key: str | None = None,
        dry_run: bool = False,
        always_audit: bool = False,
        notify: bool = True,
    ) -> ChangeResult:
        # a long alert or policy name must not overflow the column (a 500 on PostgreSQL)
        source = source[:SOURCE_MAX_LENGTH]
        for _ in range(MAX_ATTEMPTS):
            try:
                with self.store.write() as conn:
                    result = self._attempt(
                        conn,
                        workflow,
                        target,
                        actor,
                        source,
                        reason,
                        expected_version,
                        dedup_key,
                        dry_run,
                        always_audit,
                    )
                result = replace(result, notify=notify)
            except _Lost:
                continue
            except _Duplicate:
                return self._duplicate(workflow, actor, source, reason)
            self._committed(result)
            return result
        raise RuntimeError(f"{workflow}: switch change lost {MAX_ATTEMPTS} races in a row")

    def _attempt(
        self,
        conn: Connection,
        workflow: str,
        target: Target,
        actor: str,
        source: str,
        reason: str,
        expected_version: int | None,
        dedup_key: str | None,
        dry_run: bool,
        always_audit: bool,
    ) -> ChangeResult:
        if dedup_key is not None and _seen(conn, dedup_key):
            raise _Duplicate
        before = self._read(conn, workflow)
        if expected_version is not None and expected_version != before.version:
            raise VersionConflict(workflow, expected_version, before)
        mode, disabled = target(before)
        changed = (mode, disabled) != (before.mode, before.disabled_actions)
        proposed = replace(
            before,
            mode=mode,
            disabled_actions=disabled,
            version=before.version + (1 if changed else 0),
            reason=reason,
            updated_by=actor,
            updated_at=self.clock(),
            source=source,
        )
        base = ChangeResult(before, before, proposed, False, actor, source, reason, dry_run)
        if not changed and not always_audit and not dry_run:
            return base
        after = before
        if changed and not dry_run:
            self._write(conn, before, proposed)
            after = proposed
        audit_id = self._insert_audit(conn, proposed, before, dedup_key, dry_run)
        return replace(base, after=after, changed=after is proposed, audit_id=audit_id)

    def _write(self, conn: Connection, before: SwitchState, after: SwitchState) -> None:
        values = {
            "mode": after.mode,
            "disabled_actions": json.dumps(list(after.disabled_actions)),
            "version": after.version,
            "reason": after.reason,
            "updated_by": after.updated_by,
            "updated_at": after.updated_at,
            "source": after.source,
        }
        if before.version == 0:
            stmt = (
                self.store.insert(t.switches)
                .values(workflow=after.workflow, **values)
                .on_conflict_do_nothing(index_elements=["workflow"])
                .returning(t.switches.c.workflow)
            )
            if conn.execute(stmt).first() is None:
                raise _Lost
            return
        res = conn.execute(
            update(t.switches)
            .where(t.switches.c.workflow == after.workflow, t.switches.c.version == before.version)
            .values(**values)
        )
        if res.rowcount != 1:
            raise _Lost

    def _insert_audit(
        self,
        conn: Connection,
        proposed: SwitchState,
        before: SwitchState,
        dedup_key: str | None,
        dry_run: bool,
    ) -> int:
        row = {
            "workflow": proposed.workflow,
            "at": proposed.updated_at,
            "actor": proposed.updated_by,
            "source": proposed.source,
            "reason": proposed.reason,
            "before": json.dumps(before.snapshot()),
            "after": json.dumps(proposed.snapshot()),
            "dedup_key": dedup_key,
            "dry_run": 1 if dry_run else 0,
        }
        stmt = (
            self.store.insert(t.audit)
            .values(**row)
            .on_conflict_do_nothing(index_elements=["dedup_key"])
            .returning(t.audit.c.id)
        )
        got = conn.execute(stmt).scalar()
        if got is None:  # a concurrent delivery of the same alert committed first
            raise _Duplicate
        return int(got)

    def _duplicate(self, workflow: str, actor: str, source: str, reason: str) -> ChangeResult:
        now = self.get(workflow)
        return ChangeResult(now, now, now, False, actor, source, reason, duplicate=True)

    def _committed(self, result: ChangeResult) -> None:
        if result.changed:
            self._generation += 1
            if self._all is not None:  # still the last known table, with this change over it
                self._all = replace(self._all, fresh=False)
            self._remember(result.after, time.monotonic(), self.clock())
        if self.metrics is not None and result.changed:
            a = result.after
            self.metrics.changed(a.workflow, result.source)
            self.metrics.show(
                a.workflow, a.mode, a.disabled_actions, known=result.before.disabled_actions
            )
        _log_change(result)
        for listener in self.listeners:
            listener(result)

    # -- rows --------------------------------------------------------------------------
    def _read(self, conn: Connection, workflow: str) -> SwitchState:
        row = (
            conn.execute(select(t.switches).where(t.switches.c.workflow == workflow))
            .mappings()
            .first()
        )
        return SwitchState.from_row(row) if row is not None else self._default(workflow)

    def default_state(self, workflow: str) -> SwitchState:
        """The state of a workflow with no switch row: its default mode, nothing disabled."""
        return self._default(workflow)

    def _default(self, workflow: str) -> SwitchState:
        return SwitchState(workflow, self.default_mode(workflow))


def _log_change(result: ChangeResult) -> None:
    """One INFO line per switch change, and per dry run that would have changed it: the
    line an operator looks for first when a workflow went to review in the night."""
    if not (result.changed or (result.dry_run and result.would_change)):
        return
    before, after = result.before, result.proposed
    log.info(
        "switch dry run: would change" if result.dry_run else "switch changed",
        workflow=after.workflow,
        mode=f"{before.mode} -> {after.mode}",
        disabled_actions=list(after.disabled_actions),
        disabled_before=list(before.disabled_actions),
        actor=result.actor,
        source=result.source,
        reason=result.reason,
        version=result.after.version,
    )


def _seen(conn: Connection, dedup_key: str) -> bool:
    return (
        conn.execute(select(t.audit.c.id).where(t.audit.c.dedup_key == dedup_key)).first()
        is not None
    )


class UsedActions:
    """(workflow, action) pairs seen in the ``action_errors.<action>`` rollups.

    Rollup rows carry increasing ``seq`` numbers: after one full read, each refresh reads
    only rows newer than the last one seen (the ``seq`` index), so it stays cheap however
    large the table grows, and sees what other replicas ingested. Names a switch cannot
    address (``ACTION_PATTERN``) are left out. Compaction rewrites rows but keeps their
    names, and pruning may drop an action unused for the retention period: a set that only
    grows is the safe side.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, set[str]] = {}
        self._seq = 0
        self._read_at: float | None = None
        # a copy replaced whole after each refresh: read without the lock, which a refresh
        # stuck on a dead connection holds (the event loop must never wait for it)
        self._published: dict[str, frozenset[str]] = {}

    def known(self) -> dict[str, set[str]]:
        """The pairs as of the last refresh; no I/O and no lock."""
        return {wf: set(actions) for wf, actions in self._published.items()}

    def read(self, store: Store, ttl: float) -> dict[str, set[str]]:
        with self._lock:
            if self._read_at is None or time.monotonic() - self._read_at >= ttl:
                self._refresh(store)
            return {wf: set(actions) for wf, actions in self._seen.items()}

    def _refresh(self, store: Store) -> None:
        r = t.rollups.c
        read_at = time.monotonic()
        with store.read() as conn:
            top = conn.execute(select(func.max(r.seq))).scalar()
            if top is None or int(top) <= self._seq:
                self._read_at = read_at
                return
            rows = conn.execute(
                select(r.workflow, r.signal)
                .where(r.seq > self._seq, r.seq <= top)
                .where(r.signal.startswith(ACTION_ERRORS_PREFIX, autoescape=True))
                .distinct()
            )
            for workflow, signal in rows:
                action = signal[len(ACTION_ERRORS_PREFIX) :]
                if ACTION_PATTERN.match(action):
                    self._seen.setdefault(workflow, set()).add(action)
        self._seq, self._read_at = int(top), read_at
        self._published = {wf: frozenset(a) for wf, a in self._seen.items()}
