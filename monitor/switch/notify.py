"""Webhook notifications of switch changes: a bounded queue drained by one thread.

``submit`` never blocks and never raises: when the queue is full the oldest message is
dropped (and counted), so a dead webhook can never hold up a switch change. Each message
is POSTed to every URL with retries and exponential backoff; the body is Slack-compatible
(``text``) plus structured fields for other receivers.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import structlog

from monitor.switch.service import ChangeResult, SwitchState

log = structlog.get_logger(__name__)


def change_message(result: ChangeResult) -> dict[str, Any]:
    """The JSON body for one change: ``text`` for Slack, the rest for machines."""
    b, p = result.before, result.proposed
    what = _describe(b, p)
    prefix = "[dry run] would have switched" if result.dry_run else "switched"
    at = p.updated_at or 0.0
    text = (
        f"driftwarden: workflow `{p.workflow}` {prefix} {what} "
        f"(by {result.source}, {result.actor}): {result.reason}"
    )
    return {
        "text": text,
        "workflow": p.workflow,
        "before": b.snapshot(),
        "after": p.snapshot(),
        "source": result.source,
        "actor": result.actor,
        "reason": result.reason,
        "dry_run": result.dry_run,
        "at": datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z"),
    }


def _describe(b: SwitchState, p: SwitchState) -> str:
    parts = []
    if b.mode != p.mode:
        parts.append(f"mode {b.mode} -> {p.mode}")
    off = sorted(set(p.disabled_actions) - set(b.disabled_actions))
    on = sorted(set(b.disabled_actions) - set(p.disabled_actions))
    if off:
        parts.append("disabled " + ", ".join(off))
    if on:
        parts.append("enabled " + ", ".join(on))
    return "; ".join(parts) or f"(no change, mode {p.mode})"


@dataclass
class NotifierStats:
    sent: int = 0
    failed: int = 0  # gave up after all attempts
    dropped: int = 0  # queue full


class Notifier:
    """``notifier.start()``; ``service.listeners.append(notifier.on_change)``; ``stop()``."""

    def __init__(
        self,
        urls: list[str],
        *,
        maxsize: int = 1000,
        attempts: int = 4,
        backoff_s: float = 0.5,
        timeout_s: float = 5.0,
        client: httpx.Client | None = None,
        sleep: Callable[[float], bool] | None = None,
    ) -> None:
        self.urls = list(urls)
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.stats = NotifierStats()
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=maxsize)
        self._client = client or httpx.Client(timeout=timeout_s)
        self._stop = threading.Event()
        # waiting on the stop event makes shutdown immediate even mid-backoff
        self._sleep = sleep or self._stop.wait
        self._thread: threading.Thread | None = None

    def start(self) -> Notifier:
        if self.urls and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="notify", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait(None)  # wake the worker
            self._thread.join(timeout)
            self._thread = None
        self._client.close()

    def on_change(self, result: ChangeResult) -> None:
        """A ``SwitchService`` listener: notify real changes and tripping dry runs."""
        if not result.notify or result.duplicate:
            return
        if result.changed or (result.dry_run and result.would_change):
            self.submit(change_message(result))

    def submit(self, message: dict[str, Any]) -> None:
        if not self.urls:
            return
        while True:
            try:
                self._queue.put_nowait(message)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self._queue.task_done()  # or join() would wait for it forever
                    self.stats.dropped += 1
                except queue.Empty:
                    pass

    def join(self, timeout: float = 10.0) -> bool:
        """Wait until every queued message was handled (tests, shutdown)."""
        done = threading.Event()

        def wait() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        return done.wait(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            message = self._queue.get()
            try:
                if message is not None:
                    for url in self.urls:
                        self._deliver(url, message)
            finally:
                self._queue.task_done()

    def _deliver(self, url: str, message: dict[str, Any]) -> None:
        delay = self.backoff_s
        for attempt in range(1, self.attempts + 1):
            try:
                response = self._client.post(url, json=message)
                if response.status_code < 300:
                    self.stats.sent += 1
                    return
                problem = f"HTTP {response.status_code}"
            except httpx.HTTPError as err:
                problem = f"{type(err).__name__}: {err}"
            log.warning("notification failed", url=url, attempt=attempt, problem=problem)
            if attempt < self.attempts and self._sleep(delay):
                break  # stopping
            delay *= 2
        self.stats.failed += 1
        log.error("notification given up", url=url, workflow=message.get("workflow"))
