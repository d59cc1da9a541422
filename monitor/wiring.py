"""Where the daemon is put together: every service is built once here and handed down.

``build_services`` makes the store, the metrics, the ingest service, the switch service
(with its metrics and notifier) and the detection gauges, each once, from the settings and
the config file. The HTTP app (``monitor.api.app.create_app``) and the CLI receive them
from here; nothing builds a service on first use or finds one through a global.
``background_tasks`` lists what ``serve`` runs beside the HTTP server (WAL checkpoints,
tailers, detection, the demo feeder), each built from the same services.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import structlog

from monitor.detection.alarm_budget import false_alarm_budgets
from monitor.detection.metrics import FindingsCollector
from monitor.ingest.parse_pool import ParsePool
from monitor.ingest.service import IngestService
from monitor.ingest.tail import Tailer
from monitor.runtime import Task, demo_feeder
from monitor.settings import FileConfig, Settings
from monitor.store import Store, StoreUnavailable
from monitor.store.wal import WalCheckpointer
from monitor.switch.metrics import SwitchMetrics
from monitor.switch.notify import Notifier
from monitor.switch.reads import SwitchReader
from monitor.switch.service import SwitchService
from monitor.telemetry.metrics import Metrics

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Services:
    """The daemon's services, one of each."""

    settings: Settings
    file_config: FileConfig
    store: Store
    metrics: Metrics
    ingest: IngestService
    switches: SwitchService
    switch_reads: SwitchReader  # switch reads with a deadline (the HTTP routes use it)
    notifier: Notifier

    @contextmanager
    def running(self) -> Iterator[None]:
        """Start the parse processes, the notifier and the store guard's probe, export the
        persisted switch state (so a restart shows the truth at once, and switch reads have
        a last known state to answer from if the store goes away); stop them on exit."""
        self.ingest.parse_pool.start()
        try:
            self.notifier.start()
            try:
                self.switches.load_gauges()
            except StoreUnavailable:
                log.warning("switch gauges not loaded: store unavailable")
            try:
                with _guarded(self.store):
                    yield
            finally:
                self.switch_reads.close()
                self.notifier.stop()
        finally:
            self.ingest.parse_pool.close()


@contextmanager
def _guarded(store: Store) -> Iterator[None]:
    """Run the store guard's probe (a network store only) while the block runs."""
    guard = store.guard
    if guard is None:
        yield
        return
    stop = threading.Event()
    thread = threading.Thread(target=guard.run, args=(stop,), name="store-guard", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=2 * guard.probe_timeout + guard.probe_every)


# a background task run for the app's lifetime, given the services
BackgroundTask = Callable[[Services], AbstractAsyncContextManager[Any]]


def build_services(
    settings: Settings,
    store: Store | None = None,
    metrics: Metrics | None = None,
    file_config: FileConfig | None = None,
) -> Services:
    """Every service, once. ``store``, ``metrics`` and ``file_config`` default to what the
    settings name (tests pass their own)."""
    store = store or Store.from_settings(settings)
    metrics = metrics or Metrics(max_workflows=settings.max_workflows)
    file_config = settings.load_file() if file_config is None else file_config
    notifier = Notifier(file_config.notify_webhooks)
    switches = SwitchService(store, file_config, SwitchMetrics(metrics))
    switches.listeners.append(notifier.on_change)
    budgets = {
        wf: cfg.monthly_budget_usd
        for wf, cfg in file_config.workflows.items()
        if cfg.monthly_budget_usd
    }
    metrics.registry.register(
        FindingsCollector(
            store, budgets, lambda seen: false_alarm_budgets(settings, file_config, seen)
        )
    )
    return Services(
        settings=settings,
        file_config=file_config,
        store=store,
        metrics=metrics,
        ingest=IngestService(store, metrics, ParsePool(settings.parse_processes)),
        switches=switches,
        switch_reads=SwitchReader(switches),
        notifier=notifier,
    )


def in_thread(name: str, make_task: Callable[[Services], Task]) -> BackgroundTask:
    """A background task that runs ``make_task(services)(stop_event)`` in a thread."""

    @asynccontextmanager
    async def running(services: Services) -> AsyncIterator[None]:
        stop = threading.Event()
        thread = threading.Thread(target=make_task(services), args=(stop,), name=name, daemon=True)
        thread.start()
        log.info("background task started", task=name)
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=10)

    return running


def _tailer(path: str) -> Callable[[Services], Task]:
    return lambda services: Tailer(path, services.ingest).run


def background_tasks(
    settings: Settings, file_config: FileConfig, demo_drift_after: float | None = None
) -> list[BackgroundTask]:
    """What ``serve`` runs beside the HTTP server: WAL checkpoints (SQLite), tailers from the
    config, the demo feeder (when ``demo_drift_after`` is given), then detection (unless
    ``DRIFTWARDEN_DETECTION=false``)."""
    tasks: list[BackgroundTask] = []
    if settings.is_sqlite:
        tasks.append(in_thread("wal-checkpoint", lambda s: WalCheckpointer(s.store).run))
    for spec in file_config.tail:
        tasks.append(in_thread(f"tail:{spec.path}", _tailer(spec.path)))
    if demo_drift_after is not None:
        after = demo_drift_after
        tasks.append(in_thread("demo", lambda s: demo_feeder(s.ingest, 0, after)))
    if settings.detection:
        # Imported here, not at the top: detection brings numpy and scipy (about 40 MB),
        # which an ingest-only daemon (DRIFTWARDEN_DETECTION=false) must not load.
        from monitor.detection.scheduler import scheduled_detection

        tasks.append(lambda s: scheduled_detection(s.store, s.settings, s.file_config, s.switches))
    return tasks
