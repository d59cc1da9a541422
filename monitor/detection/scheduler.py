"""The detection scheduler: one leader runs a pass every ``detect_interval`` seconds.

A pass = load new rollups and saved states -> ``detectors.engine.run_pass`` -> persist
findings, states and watermark atomically -> policies (which may trip switches).

Leadership: on PostgreSQL a session-level advisory lock held on a dedicated connection;
when the leader dies its session ends, the lock is released and another daemon takes over
at its next tick (within two intervals). On SQLite an exclusive ``flock`` on a file next to
the database plays the same role for several processes on one host.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Final

import structlog
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.engine import make_url

from detectors.config import DeclaredBaseline, DetectionConfig
from detectors.engine import run_pass
from detectors.types import Finding, Rollup
from monitor.detection import store as ds
from monitor.detection.pass_logs import critical_log_listener, status_counts
from monitor.settings import FileConfig, PolicyConfig, Settings
from monitor.store import Store, StoreUnavailable
from monitor.store.retention import compact_rollups
from monitor.switch.policies import run_policies
from monitor.switch.service import SwitchService

log = structlog.get_logger(__name__)
ADVISORY_KEY: Final = 0x64726966  # "drif": one detection leader per database
MAX_ROWS_PER_CHUNK: Final = 200_000
COMPACT_EVERY: Final = 20  # passes
# friendly names accepted in the config file for the rollup signal names
SIGNAL_ALIASES: Final = {
    "edit_rate": "edited",
    "rejection_rate": "rejected",
    "approval_rate": "approved",
    "error_rate": "errors",
    "timeout_rate": "timeouts",
    "retry_rate": "retries",
    "validation_failure_rate": "validation_failed",
    "escalation_rate": "escalated",
}


def build_config(settings: Settings, file_config: FileConfig) -> DetectionConfig:
    declared: dict[tuple[str, str], DeclaredBaseline] = {}
    budgets: dict[str, float] = {}
    workflows = file_config.workflows
    for wf, cfg in workflows.items():
        for name, value in cfg.baseline.items():
            signal = SIGNAL_ALIASES.get(name, name)
            sd = cfg.baseline_sd.get(name, cfg.baseline_sd.get(signal))
            declared[(wf, signal)] = DeclaredBaseline(value, sd)
        if cfg.monthly_budget_usd:
            budgets[wf] = cfg.monthly_budget_usd
    return DetectionConfig(
        false_alarms_per_month=settings.false_alarms_per_workflow_month,
        warn_false_alarms_per_month=settings.warn_false_alarms_per_workflow_month,
        budget_by_workflow={
            wf: cfg.false_alarms_per_month
            for wf, cfg in workflows.items()
            if cfg.false_alarms_per_month is not None
        },
        arl0=settings.arl0,
        # "the present" is the last few detection intervals, at least 15 minutes
        live_s=int(max(900.0, 3.0 * settings.detect_interval)),
        declared=declared,
        budgets_usd=budgets,
        slo_by_workflow={wf: cfg.slo_success for wf, cfg in workflows.items()},
        relearn_on_version_change=frozenset(
            wf for wf, cfg in workflows.items() if cfg.relearn_on_version_change
        ),
    )


def _window(spec: str) -> tuple[float, float]:
    start, end = (dt.datetime.fromisoformat(part.strip()) for part in spec.split("/"))
    start, end = (p if p.tzinfo else p.replace(tzinfo=dt.UTC) for p in (start, end))
    return start.timestamp(), end.timestamp()


@dataclass(slots=True)
class PassResult:
    findings: list[Finding]
    rollups_read: int
    watermark: int
    seconds: float


@dataclass
class Detection:
    """Runs passes against a store. Not thread-safe: one pass at a time."""

    store: Store
    settings: Settings
    file_config: FileConfig
    listeners: list[Callable[[list[Finding], float], None]] = field(default_factory=list)
    rows_per_chunk: int = MAX_ROWS_PER_CHUNK  # bounds memory while a pass reads a backlog
    passes: int = 0
    compacted_passes: int = 0
    _watermark: int = 0
    _windows: dict[str, dict[str, list[Rollup]]] = field(default_factory=dict)
    _kept: tuple[int, int, ds.States] | None = None  # (epoch, watermark, states) last saved

    def __post_init__(self) -> None:
        self.config = build_config(self.settings, self.file_config)

    def _baseline_windows(self) -> dict[tuple[str, str], list[Rollup]]:
        out: dict[tuple[str, str], list[Rollup]] = {}
        for wf, cfg in self.file_config.workflows.items():
            if cfg.baseline_window is None:
                continue
            if wf not in self._windows:
                start, end = _window(cfg.baseline_window)
                self._windows[wf] = ds.load_window(self.store, wf, start, end)
            for signal, rows in self._windows[wf].items():
                out[(wf, signal)] = rows
        return out

    def run_once(self, now: float | None = None, persist: bool = True) -> PassResult:
        started = time.perf_counter()
        now = time.time() if now is None else now
        states, watermark = self._states()
        versions = ds.load_versions(self.store)
        users = ds.load_active_users(self.store, now)
        windows = self._baseline_windows()
        read = 0
        findings: list[Finding] = []
        while True:
            chunk = ds.load_new_rollups(self.store, watermark, self.rows_per_chunk)
            read += sum(len(v) for v in chunk.rollups.values())
            findings, states = run_pass(
                chunk.rollups,
                states,
                self.config,
                now,
                model_versions=versions,
                active_users=users,
                baseline_rollups=windows,
            )
            watermark = chunk.watermark
            if not chunk.more:
                break
            # a backlog after downtime or a bulk import: say why this pass takes long
            log.info("detection reading backlog", rollups_read=read, watermark=watermark)
        if persist:
            epoch = secrets.randbits(62)
            ds.save_pass(self.store, findings, states, watermark, now, epoch)
            self._kept = (epoch, watermark, states)
            self.passes += 1
            self._watermark = watermark
            for listener in self.listeners:
                listener(findings, now)
        return PassResult(findings, read, watermark, time.perf_counter() - started)

    def _states(self) -> tuple[ds.States, int]:
        """The detector states and their watermark: the ones this object saved last if the
        store still holds them (same epoch token), else read from the store.

        Reading and parsing every state is most of a steady pass's fixed cost; the epoch
        changes whenever anyone else (another daemon that led for a while, ``driftwarden
        check``) saves a pass, and a pass that fails half-way drops what was kept.
        """
        kept, self._kept = self._kept, None
        if kept is not None and ds.load_epoch(self.store) == kept[0]:
            return kept[2], kept[1]
        return ds.load_states(self.store)

    def compact_if_due(self) -> float | None:
        """Fold rollup deltas every COMPACT_EVERY passes; the seconds it took, or None.

        Called after a pass and its policies, never inside one, so folding a large backlog
        delays neither findings nor a switch trip.
        """
        if self.passes - self.compacted_passes < COMPACT_EVERY:
            return None
        started = time.perf_counter()
        folded = compact_rollups(self.store, self._watermark)
        self.compacted_passes = self.passes
        seconds = time.perf_counter() - started
        log.info("rollups compacted", rows_removed=folded, ms=round(seconds * 1000, 1))
        return seconds


class Leadership:
    """Who may run detection: the holder of a PostgreSQL advisory lock or a file lock."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._conn: Any = None
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None or self._fd is not None

    def acquire(self) -> bool:
        try:
            return (
                self._acquire_pg() if self.store.dialect == "postgresql" else self._acquire_file()
            )
        except Exception as err:
            log.warning("leadership check failed", error=str(err))
            self.release()
            return False

    def _acquire_pg(self) -> bool:
        if self._conn is not None:
            try:  # still alive? the lock lives exactly as long as this session
                self._conn.exec_driver_sql("SELECT 1")
                return True
            except Exception:
                self.release()
        conn = self.store.engine.connect()
        got = conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({ADVISORY_KEY})").scalar()
        conn.commit()
        if got:
            self._conn = conn
            log.info("became detection leader", store="postgresql")
            return True
        conn.close()
        return False

    def _acquire_file(self) -> bool:
        if self._fd is not None:
            return True
        database = make_url(self.store.url).database or "memory"
        path = f"{database}.leader" if database not in ("", ":memory:", "memory") else None
        if path is None:
            self._fd = -1  # an in-memory database belongs to this process alone
            return True
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        log.info("became detection leader", store="sqlite", lock=path)
        return True

    def release(self) -> None:
        if self._conn is not None:
            # invalidate, not close: closing would return the session (and its lock) to the
            # pool; a dead connection has released the lock already
            with suppress(Exception):
                self._conn.invalidate()
            self._conn = None
        if self._fd is not None:
            if self._fd >= 0:
                os.close(self._fd)
            self._fd = None


class DetectionLoop:
    """Ties Detection, Leadership and policies together for one daemon."""

    def __init__(self, detection: Detection, leadership: Leadership) -> None:
        self.detection = detection
        self.leadership = leadership
        self._lock = threading.Lock()
        self.last: PassResult | None = None

    def tick(self) -> PassResult | None:
        if not self._lock.acquire(blocking=False):
            return None  # the previous pass is still running
        try:
            if not self.leadership.acquire():
                return None
            result = self.detection.run_once()
            self.last = result
            log.info(
                "detection pass",
                **status_counts(result.findings),
                rollups=result.rollups_read,
                ms=round(result.seconds * 1000, 1),
            )
            self.detection.compact_if_due()
            return result
        except StoreUnavailable as err:
            log.warning("detection pass skipped: store unavailable", error=str(err))
            return None
        except Exception:
            log.exception("detection pass failed")
            return None
        finally:
            self._lock.release()


def policy_listener(
    switches: SwitchService, policies: Sequence[PolicyConfig]
) -> Callable[[list[Finding], float], None]:
    """After each pass: the policies, which may trip switches."""

    def listen(findings: list[Finding], now: float) -> None:
        if policies:
            run_policies(switches, findings, policies, now)

    return listen


@asynccontextmanager
async def scheduled_detection(
    store: Store, settings: Settings, file_config: FileConfig, switches: SwitchService
) -> AsyncIterator[DetectionLoop]:
    """The detection loop, run every ``detect_interval`` in a background scheduler while
    the context is open."""
    detection = Detection(store, settings, file_config)
    # logged before the policies run, so the log reads "critical" then "switch changed"
    detection.listeners.append(critical_log_listener(store))
    detection.listeners.append(policy_listener(switches, file_config.policies))
    loop = DetectionLoop(detection, Leadership(store))
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(
        loop.tick,
        "interval",
        seconds=settings.detect_interval,
        max_instances=1,
        coalesce=True,
        id="detection",
        next_run_time=dt.datetime.now(dt.UTC),
    )
    scheduler.start()
    try:
        yield loop
    finally:
        scheduler.shutdown(wait=True)
        loop.leadership.release()
