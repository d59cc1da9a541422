"""The one path every collector uses to store events: store, then count in metrics."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import structlog
from sqlalchemy import Connection

from monitor.events import Event
from monitor.metrics import Metrics
from monitor.store import InsertResult, Store, StoreUnavailable

log = structlog.get_logger(__name__)


class IngestService:
    def __init__(self, store: Store, metrics: Metrics) -> None:
        self.store = store
        self.metrics = metrics

    def ingest(
        self,
        events: Sequence[Event],
        received_at: float | None = None,
        also: Callable[[Connection], None] | None = None,
    ) -> InsertResult:
        """Commit ``events`` (idempotent by id) and only then count them.

        Raises ``StoreUnavailable`` when the database is down: nothing was stored and the
        caller must not acknowledge the batch.
        """
        if not events and also is None:
            return InsertResult(0, 0)
        started = time.perf_counter()
        try:
            result = self.store.insert_events(events, received_at, also)
        except StoreUnavailable as err:
            self.metrics.http_errors.labels("ingest").inc()
            log.warning("store unavailable, batch not stored", events=len(events), error=str(err))
            raise
        self.metrics.observe_stored(result.inserted)
        log.debug(
            "batch stored",
            accepted=result.accepted,
            duplicates=result.duplicates,
            ms=round((time.perf_counter() - started) * 1000, 2),
        )
        return result

    def reject(self, reason: str, count: int = 1) -> None:
        self.metrics.events_rejected.labels(reason).inc(count)
