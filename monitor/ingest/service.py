"""The one path every collector uses to store events: store, then count in metrics."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import anyio
import structlog
from sqlalchemy import Connection

from collectors.events import Event
from monitor.batch.prepare import Prepared
from monitor.ingest.parse_pool import Parse, ParsePool
from monitor.ingest.parse_worker import HasEvents
from monitor.store import InsertResult, Store, StoreUnavailable
from monitor.telemetry.metrics import Metrics

log = structlog.get_logger(__name__)


class IngestService:
    def __init__(self, store: Store, metrics: Metrics, parse_pool: ParsePool | None = None) -> None:
        self.store = store
        self.metrics = metrics
        self.parse_pool = parse_pool or ParsePool(0)

    async def ingest_body(
        self, limiter: anyio.CapacityLimiter, received: float, parse: Parse, *args: Any
    ) -> tuple[HasEvents, InsertResult]:
        """``parse(*args)`` (in a parse process when there are some), then store what is valid.

        One trip to a worker thread for both: each trip back to the event loop can wait
        milliseconds for the GIL.
        """
        return await anyio.to_thread.run_sync(
            self._parse_and_store, received, parse, args, limiter=limiter
        )

    def _parse_and_store(
        self, received: float, parse: Parse, args: tuple[Any, ...]
    ) -> tuple[HasEvents, InsertResult]:
        parsed, batch = self.parse_pool.call(received, parse, args, self.store.takes_copy)
        if parsed.rejected:
            self.reject("validation", len(parsed.rejected))
        return parsed, self.store_prepared(batch)

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
        return self.store_prepared(self.store.prepare(events, received_at), also)

    def store_prepared(
        self, batch: Prepared, also: Callable[[Connection], None] | None = None
    ) -> InsertResult:
        """``ingest`` for a batch prepared elsewhere (a parse process)."""
        started = time.perf_counter()
        try:
            result = self.store.insert_prepared(batch, also)
        except StoreUnavailable as err:
            self.metrics.store_errors.labels("ingest").inc()
            log.warning(
                "store unavailable, batch not stored", events=len(batch.rows), error=str(err)
            )
            raise
        self.metrics.add(result.tally)
        log.debug(
            "batch stored",
            accepted=result.accepted,
            duplicates=result.duplicates,
            ms=round((time.perf_counter() - started) * 1000, 2),
        )
        return result

    def reject(self, reason: str, count: int = 1) -> None:
        self.metrics.events_rejected.labels(reason).inc(count)
