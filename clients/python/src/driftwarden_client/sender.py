"""Send runs, reviews and costs to the daemon from a workflow, in the background.

    events = EventSender("http://driftwarden:8000", token="<ingest token>")
    events.send_run("invoices", status="ok", latency_ms=840, model="gpt-4o-mini")
    events.send_review("invoices", "edited", before=draft, after=final)
    events.send_cost("invoices", provider="openai", model="gpt-4o-mini", input_tokens=812)

A ``send_*`` call only encodes the event and puts it in a queue; one background thread
posts the queue in batches of up to ``batch_size`` events, at the latest ``flush_interval``
seconds after the oldest was queued. Nothing here raises into the workflow: an event that
cannot be sent, a daemon that is down or refuses a batch, all become a warning in the
``driftwarden_client`` logger and a count in ``stats()``.

Delivery: transport errors and 408/425/429/5xx are retried up to ``max_retries`` times,
after the answer's ``Retry-After`` when it has one (429 and 503 from the daemon do), else
after exponential backoff with full jitter. Every event has an id, so a retry of a batch
the daemon had stored (the answer was lost) only counts ``duplicates``. Events the daemon
rejects by index are not retried: they would be rejected again; each is logged with its id
and the field the daemon names.

The queue holds at most ``max_queue`` events. When it is full the OLDEST waiting event is
dropped (counted in ``stats().dropped``): the queue only fills while the daemon is away,
and what the daemon's detectors and the kill switch need when it is back is the state of
the workflow now, not the first minutes of the outage. The batch being posted is never
dropped for a newer one.

At exit (``atexit``), on ``close()`` and on leaving ``with EventSender(...)``, what is
queued is sent, for at most ``exit_timeout`` seconds; ``flush(timeout)`` sends it and waits
without closing.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Final, Literal, Unpack

import httpx

from driftwarden_client.delivery import Answer, backoff, post_batch
from driftwarden_client.events import (
    CostFields,
    Encoded,
    EventType,
    KpiFields,
    ReviewFields,
    RunFields,
    encode,
)
from driftwarden_client.timing import RunTimer

log = logging.getLogger("driftwarden_client")

DEFAULT_URL: Final = "http://127.0.0.1:8000"
USER_AGENT: Final = "driftwarden-client/0.1.0"
_DROP_WARNING_EVERY_S: Final = 10.0  # an outage drops many events: one warning per interval
_REJECTIONS_LOGGED: Final = 5  # per batch; the rest are counted


@dataclass(frozen=True, slots=True)
class SenderStats:
    """Events by what became of them, since the sender was made."""

    queued: int  # waiting in the queue now
    in_flight: int  # in the batch being posted now
    accepted: int  # stored by the daemon
    duplicates: int  # the daemon had them already (same id)
    rejected: int  # refused by the daemon as invalid; not retried
    dropped: int  # pushed out of a full queue, or sent after close()
    failed: int  # given up: retries exhausted, a non-retryable answer, or close()'s timeout
    invalid: int  # could not be encoded (not JSON, too large); never queued
    retries: int  # batch posts repeated


@dataclass(slots=True)
class _Pending:
    seq: int
    event: Encoded
    queued_at: float


@dataclass(slots=True)
class _Counts:
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    dropped: int = 0
    failed: int = 0
    invalid: int = 0
    retries: int = 0


class EventSender:
    """Batches events to ``POST /v1/events`` in a background thread; never raises."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        max_queue: int = 10_000,
        batch_size: int = 500,
        max_batch_bytes: int = 1024 * 1024,
        flush_interval: float = 1.0,
        timeout: float = 5.0,
        max_retries: int = 8,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        exit_timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``url`` defaults to ``DRIFTWARDEN_URL`` (else http://127.0.0.1:8000), ``token``
        (sent as ``Authorization: Bearer``) to ``DRIFTWARDEN_TOKEN``."""
        if max_queue < 1 or batch_size < 1 or max_retries < 0:
            raise ValueError("max_queue and batch_size must be >= 1, max_retries >= 0")
        base = url or os.environ.get("DRIFTWARDEN_URL") or DEFAULT_URL
        self.url = f"{base.rstrip('/')}/v1/events"
        token = token if token is not None else os.environ.get("DRIFTWARDEN_TOKEN") or None
        self._headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self.max_queue = max_queue
        self.batch_size = min(batch_size, 10_000)  # the daemon's limit per batch
        self.max_batch_bytes = max_batch_bytes
        self.flush_interval = flush_interval
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.exit_timeout = exit_timeout
        self._transport = transport
        self._cond = threading.Condition()
        self._queue: deque[_Pending] = deque()
        self._in_flight: list[_Pending] = []
        self._next_seq = 0
        self._flush_seq = -1  # flush() waits for every event up to this seq
        self._counts = _Counts()
        self._closed = False  # no new events
        self._deadline: float | None = None  # set by close(): give up what is left then
        self._worker: threading.Thread | None = None
        self._last_drop_warning = float("-inf")

    @classmethod
    def from_env(cls, **options: Any) -> EventSender:
        """``DRIFTWARDEN_URL`` and ``DRIFTWARDEN_TOKEN``, as ``SwitchClient.from_env``."""
        return cls(None, None, **options)

    # --- the workflow's calls: each returns the event's id, or None if it was not queued

    def send_run(self, workflow: str, **fields: Unpack[RunFields]) -> str | None:
        return self._send("run", workflow, {}, fields)

    def send_review(
        self,
        workflow: str,
        decision: Literal["approved", "edited", "rejected"],
        **fields: Unpack[ReviewFields],
    ) -> str | None:
        return self._send("review", workflow, {"decision": decision}, fields)

    def send_cost(self, workflow: str, **fields: Unpack[CostFields]) -> str | None:
        return self._send("cost", workflow, {}, fields)

    def send_kpi(
        self, workflow: str, name: str, value: float, **fields: Unpack[KpiFields]
    ) -> str | None:
        return self._send("kpi", workflow, {"name": name, "value": value}, fields)

    def run(self, workflow: str, **fields: Unpack[RunFields]) -> RunTimer:
        """Time a run: ``with events.run("invoices", model=...) as run: ...``."""
        return RunTimer(self, workflow, fields)

    def flush(self, timeout: float | None = None) -> bool:
        """Send what is queued now and wait until each of those events is stored, rejected
        or given up; False if ``timeout`` seconds passed first."""
        try:
            with self._cond:
                target = self._next_seq - 1
                self._flush_seq = max(self._flush_seq, target)
                self._cond.notify_all()
                end = None if timeout is None else time.monotonic() + timeout
                while self._oldest_pending() <= target:
                    if self._worker is None or not self._worker.is_alive():
                        return False
                    remaining = None if end is None else end - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._cond.wait(remaining)
                return True
        except Exception:
            log.warning("driftwarden: flush failed", exc_info=True)
            return False

    def close(self, timeout: float | None = None) -> bool:
        """Send what is queued (for at most ``timeout``, default ``exit_timeout`` seconds)
        and stop; True if everything was delivered. Later events are dropped."""
        try:
            return self._close(self.exit_timeout if timeout is None else timeout)
        except Exception:
            log.warning("driftwarden: close failed", exc_info=True)
            return False

    def stats(self) -> SenderStats:
        with self._cond:
            c = self._counts
            return SenderStats(
                len(self._queue),
                len(self._in_flight),
                c.accepted,
                c.duplicates,
                c.rejected,
                c.dropped,
                c.failed,
                c.invalid,
                c.retries,
            )

    def __enter__(self) -> EventSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- queue

    def _send(
        self,
        kind: EventType,
        workflow: str,
        required: dict[str, object],
        fields: RunFields | ReviewFields | CostFields | KpiFields,
    ) -> str | None:
        try:
            event = encode(kind, workflow, required, fields)
            if event is None:
                with self._cond:
                    self._counts.invalid += 1
                return None
            return self._enqueue(event)
        except Exception:
            log.warning("driftwarden: %s event not sent", kind, exc_info=True)
            with self._cond:
                self._counts.invalid += 1
            return None

    def _enqueue(self, event: Encoded) -> str | None:
        with self._cond:
            if self._closed:
                self._counts.dropped += 1
                self._warn_drop("the sender is closed")
                return None
            if len(self._queue) >= self.max_queue:
                self._queue.popleft()
                self._counts.dropped += 1
                self._warn_drop(f"the queue is full ({self.max_queue} events)")
            self._queue.append(_Pending(self._next_seq, event, time.monotonic()))
            self._next_seq += 1
            self._start_worker()
            if len(self._queue) == 1 or len(self._queue) >= self.batch_size:
                self._cond.notify_all()
        return event.id

    def _warn_drop(self, why: str) -> None:
        now = time.monotonic()
        if now - self._last_drop_warning >= _DROP_WARNING_EVERY_S:
            self._last_drop_warning = now
            log.warning(
                "driftwarden: events dropped, %s; %d dropped so far", why, self._counts.dropped
            )

    def _oldest_pending(self) -> int:
        if self._in_flight:
            return self._in_flight[0].seq
        if self._queue:
            return self._queue[0].seq
        return self._next_seq

    def _start_worker(self) -> None:
        if self._worker is not None and self._worker.is_alive():
            return
        # a daemon thread, so a workflow that never closes still exits; atexit sends first
        self._worker = threading.Thread(target=self._work, name="driftwarden-sender", daemon=True)
        self._worker.start()
        atexit.register(self._at_exit)

    def _at_exit(self) -> None:
        self.close()

    def _close(self, timeout: float) -> bool:
        with self._cond:
            failed_before = self._counts.failed
            if not self._closed:
                self._closed = True
                self._deadline = time.monotonic() + timeout
                self._cond.notify_all()
            worker = self._worker
        atexit.unregister(self._at_exit)
        if worker is not None:
            # each post's own timeout is cut to the deadline; a little slack for the rest
            worker.join(timeout + 1.0)
        with self._cond:
            left = len(self._queue) + len(self._in_flight)
            if left:
                log.warning("driftwarden: %d events not delivered at close", left)
            return left == 0 and self._counts.failed == failed_before

    # --- the background thread

    def _work(self) -> None:
        http = httpx.Client(transport=self._transport, timeout=self.timeout)
        try:
            while (batch := self._next_batch()) is not None:
                try:
                    self._deliver(http, batch)
                except Exception:  # a bug here must not stop the thread
                    log.warning("driftwarden: batch lost", exc_info=True)
                    self._settle_failed(batch)
        finally:
            http.close()

    def _next_batch(self) -> list[_Pending] | None:
        with self._cond:
            while True:
                if self._deadline is not None and time.monotonic() >= self._deadline:
                    self._counts.failed += len(self._queue)
                    self._queue.clear()
                    self._cond.notify_all()
                    return None
                if self._queue:
                    due = self._queue[0].queued_at + self.flush_interval
                    now = time.monotonic()
                    if (
                        len(self._queue) >= self.batch_size
                        or self._flush_seq >= self._queue[0].seq
                        or self._closed
                        or now >= due
                    ):
                        break
                    self._cond.wait(due - now)
                elif self._closed:
                    return None
                else:
                    self._cond.wait()
            batch: list[_Pending] = []
            size = 2  # the brackets
            while self._queue and len(batch) < self.batch_size:
                body = self._queue[0].event.body
                if batch and size + len(body) + 1 > self.max_batch_bytes:
                    break
                batch.append(self._queue.popleft())
                size += len(body) + 1
            self._in_flight = batch
            return batch

    def _deliver(self, http: httpx.Client, batch: list[_Pending]) -> None:
        body = b"[" + b",".join(p.event.body for p in batch) + b"]"
        attempt = 0
        while True:
            outcome = post_batch(http, self.url, body, self._headers, self._post_timeout())
            if outcome.answer is not None:
                self._settle(batch, outcome.answer)
                return
            attempt += 1
            if not outcome.retry or attempt > self.max_retries:
                log.warning(
                    "driftwarden: %d events not delivered after %d attempts: %s",
                    len(batch),
                    attempt,
                    outcome.error,
                )
                self._settle_failed(batch)
                return
            delay = outcome.retry_after
            if delay is None:
                delay = backoff(attempt, self.backoff_base, self.backoff_max)
            log.debug("driftwarden: retrying in %.2fs: %s", delay, outcome.error)
            if not self._sleep(delay):
                log.warning(
                    "driftwarden: %d events not delivered before close: %s",
                    len(batch),
                    outcome.error,
                )
                self._settle_failed(batch)
                return
            with self._cond:
                self._counts.retries += 1

    def _post_timeout(self) -> float:
        with self._cond:
            if self._deadline is None:
                return self.timeout
            return max(0.05, min(self.timeout, self._deadline - time.monotonic()))

    def _sleep(self, delay: float) -> bool:
        """Wait ``delay`` seconds; False at once if close()'s deadline comes first."""
        end = time.monotonic() + delay
        with self._cond:
            while True:
                if self._deadline is not None and self._deadline < end:
                    return False
                remaining = end - time.monotonic()
                if remaining <= 0:
                    return True
                self._cond.wait(remaining)

    def _settle(self, batch: list[_Pending], answer: Answer) -> None:
        for rejection in answer.rejected[:_REJECTIONS_LOGGED]:
            event_id = batch[rejection.index].event.id if rejection.index < len(batch) else "?"
            log.warning(
                "driftwarden rejected event %s (field %s): %s",
                event_id,
                rejection.field or "-",
                rejection.error,
            )
        if answer.rejected_count > _REJECTIONS_LOGGED:
            log.warning(
                "driftwarden rejected %d more events of this batch",
                answer.rejected_count - _REJECTIONS_LOGGED,
            )
        with self._cond:
            self._counts.accepted += answer.accepted
            self._counts.duplicates += answer.duplicates
            self._counts.rejected += answer.rejected_count
            self._in_flight = []
            self._cond.notify_all()

    def _settle_failed(self, batch: list[_Pending]) -> None:
        with self._cond:
            self._counts.failed += len(batch)
            self._in_flight = []
            self._cond.notify_all()
