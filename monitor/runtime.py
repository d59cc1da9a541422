"""Starting the daemon: the bind and store checks, and the demo feeder."""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable

import structlog

from collectors.events import EventError, convert_event
from monitor.demo import Simulator
from monitor.ingest.service import IngestService
from monitor.settings import Settings
from monitor.store import Store, StoreUnavailable
from monitor.store.migrate import current_revision, head_revision, upgrade

log = structlog.get_logger(__name__)


class StartupError(Exception):
    """The daemon must not start; the message says what to do."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # "" among them: the server would listen on every interface


def check_bind(settings: Settings, insecure: bool) -> None:
    if not settings.host.strip():
        # uvicorn (asyncio) binds an empty host on 0.0.0.0 and [::]: an empty variable
        # must not quietly open the daemon to the network, tokens or not
        raise StartupError(
            "the listen address is empty (DRIFTWARDEN_HOST= or --host ''), which would "
            "listen on every interface: give one, e.g. 127.0.0.1 (this machine only) or "
            "0.0.0.0 (every interface; needs tokens or --insecure)"
        )
    if settings.has_tokens or is_loopback(settings.host) or insecure:
        return
    raise StartupError(
        f"refusing to listen on {settings.host} with no tokens configured: anyone who can "
        "reach it could ingest data and flip kill switches. Set DRIFTWARDEN_INGEST_TOKENS, "
        "DRIFTWARDEN_READ_TOKENS and DRIFTWARDEN_CONTROL_TOKENS, or pass --insecure."
    )


def access_note(settings: Settings) -> str:
    """How callers are let in, as the start-up log line says it."""
    if settings.has_tokens:
        return "tokens"
    return "open (loopback)" if is_loopback(settings.host) else "open (--insecure: no tokens)"


def prepare_store(store: Store, migrate: bool | None) -> None:
    """Migrate (default on SQLite) or check that the schema is current."""
    try:
        if migrate if migrate is not None else store.dialect == "sqlite":
            upgrade(store)
            return
        current, head = current_revision(store), head_revision()
    except StoreUnavailable as err:
        raise StartupError(f"cannot reach the database: {err}") from None
    if current != head:
        raise StartupError(
            f"database schema is at {current or 'nothing'}, this version needs {head}: "
            "run `driftwarden db upgrade` (or start with --migrate)"
        )


# a background job: runs until the event is set
Task = Callable[[threading.Event], None]


def demo_feeder(ingest: IngestService, seed: int = 0, drift_after_s: float = 600.0) -> Task:
    """Feed simulated traffic straight into the ingest service, once a second."""

    def run(stop: threading.Event) -> None:
        sim = Simulator(seed=seed, drift_after_s=drift_after_s)
        last = time.time()
        while not stop.wait(1.0):
            now = time.time()
            events = []
            for raw in sim.events_between(last, now):
                try:
                    events.append(convert_event(raw))
                except EventError as err:  # pragma: no cover - the simulator emits valid events
                    log.error("demo produced an invalid event", error=str(err))
            last = now
            try:
                ingest.ingest(events)
            except StoreUnavailable:
                log.warning("demo: store unavailable, dropping one second of demo traffic")

    return run
