"""A circuit breaker and watchdog for a network database: no thread waits on a dead one.

libpq's timeouts (``monitor.store.engine.PG_CONNECT_ARGS``) end a connect that gets no
answer and a connection whose peer vanished, but not a connection whose peer acknowledges
every byte and never answers (a hung server, a stalled proxy or load balancer): a query
sent there waits forever. So the daemon probes the database (``run``, a background
thread) with ``SELECT 1`` on a connection of its own; a probe that gets no answer within
``probe_timeout`` opens the breaker and severs every open connection (a socket
``shutdown``: the waiting thread gets "server closed the connection" at once, its request
a 503). While the breaker is open, ``admit`` refuses every store operation at once with
``StoreUnavailable`` rather than letting it queue behind the dead connections; the first
probe that succeeds closes it again, so the daemon recovers without a restart.

A store error that means "unavailable" also opens the breaker (``failed``). Without the
probe thread (the CLI, tests) the breaker lets one operation through every
``retry_every`` seconds, and its success closes the breaker.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import structlog
from sqlalchemy import Engine, event

from monitor.store.engine import StoreUnavailable

log = structlog.get_logger(__name__)
PROBE_EVERY_S: Final = 0.5
# a probe is one round trip plus the pool's rollback: 2 s is four times the 500 ms added
# latency the reliability suite injects, and leaves the 5 s a write may take for the rest
PROBE_TIMEOUT_S: Final = 2.0


class Refused(StoreUnavailable):
    """The breaker is open: the store was found unreachable and has not answered since."""


@dataclass
class StoreGuard:
    probe: Callable[[], None]  # one round trip on a connection of the probe's own
    probe_every: float = PROBE_EVERY_S
    probe_timeout: float = PROBE_TIMEOUT_S
    retry_every: float = 1.0  # without the probe thread: one operation let through this often
    clock: Callable[[], float] = time.monotonic
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _down_since: float | None = field(default=None, repr=False)
    _reason: str = field(default="", repr=False)
    _last_try: float = field(default=0.0, repr=False)
    _probing: bool = field(default=False, repr=False)
    _open: dict[int, Any] = field(default_factory=dict, repr=False)  # id -> DBAPI connection

    # -- the breaker --------------------------------------------------------------------
    @property
    def down_for(self) -> float | None:
        """Seconds since the store was found unreachable, None while it answers."""
        since = self._down_since
        return None if since is None else self.clock() - since

    def admit(self) -> None:
        """Raise ``Refused`` while the breaker is open (no I/O: safe anywhere)."""
        with self._lock:
            if self._down_since is None:
                return
            now = self.clock()
            if not self._probing and now - self._last_try >= self.retry_every:
                self._last_try = now  # half open: this one operation finds out
                return
            reason = self._reason
        raise Refused(f"store unreachable for {self.down_for or 0:.1f} s ({reason})")

    def failed(self, reason: str) -> None:
        with self._lock:
            if self._down_since is None:
                self._down_since = self.clock()
                self._last_try = self._down_since
                log.warning("store unreachable: refusing store operations", reason=reason)
            self._reason = reason

    def succeeded(self) -> None:
        with self._lock:
            if self._down_since is None:
                return
            down = self.clock() - self._down_since
            self._down_since = None
        log.info("store reachable again", down_s=round(down, 2))

    # -- connections ----------------------------------------------------------------------
    def watch(self, engine: Engine) -> None:
        """Track ``engine``'s open connections, so ``sever`` can reach them. Every open one,
        not only those checked out: the pool's pre-ping runs before the checkout event, and
        an idle connection to a vanished server is as dead as a busy one."""
        event.listen(engine, "connect", self._opened)
        event.listen(engine, "close", self._closed)
        event.listen(engine, "close_detached", self._closed_detached)

    def refuse_connects(self, engine: Engine) -> None:
        """While the probe finds the store down, ``engine`` opens no connection: the pool
        reconnects after a failed pre-ping, and that connect would wait out its timeout."""
        error = engine.dialect.loaded_dbapi.OperationalError

        def connect(_dialect: Any, _record: Any, _args: Any, _params: Any) -> None:
            if self._probing and self._down_since is not None:
                raise error(f"store unreachable ({self._reason}): not connecting")

        event.listen(engine, "do_connect", connect)

    def _opened(self, dbapi_conn: Any, _record: Any) -> None:
        with self._lock:
            self._open[id(dbapi_conn)] = dbapi_conn

    def _closed(self, dbapi_conn: Any, _record: Any) -> None:
        self._closed_detached(dbapi_conn)

    def _closed_detached(self, dbapi_conn: Any) -> None:
        with self._lock:
            self._open.pop(id(dbapi_conn), None)

    def sever(self) -> int:
        """Shut down the socket of every open connection; how many were cut."""
        cut = 0
        with self._lock:
            for conn in list(self._open.values()):
                if _shutdown(conn):
                    cut += 1
                else:  # closed without the pool knowing (it will find out): forget it
                    self._open.pop(id(conn), None)
        return cut

    # -- the probe ----------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Probe every ``probe_every`` seconds until ``stop`` is set."""
        with self._lock:
            self._probing = True
        try:
            while not stop.wait(self.probe_every):
                self.probe_once()
        finally:
            with self._lock:
                self._probing = False

    def probe_once(self) -> bool:
        """One probe, bounded by ``probe_timeout``; True when the store answered."""
        outcome: list[BaseException | None] = []

        def attempt() -> None:
            try:
                self.probe()
                outcome.append(None)
            except Exception as err:  # any failure of the probe is the store's
                outcome.append(err)

        worker = threading.Thread(target=attempt, name="store-probe", daemon=True)
        worker.start()
        worker.join(self.probe_timeout)
        if not outcome:
            self.failed(f"no answer in {self.probe_timeout:g} s")
            cut = self.sever()
            if cut:
                log.warning("severed connections waiting on the store", connections=cut)
            worker.join(self.probe_timeout)  # severed too, or its connect timed out
            return False
        error = outcome[0]
        if error is not None:
            self.failed(str(error).splitlines()[0] if str(error) else type(error).__name__)
            return False
        self.succeeded()
        return True


def _shutdown(conn: Any) -> bool:
    """Shut down a psycopg connection's socket; the thread waiting on it wakes with an
    error and SQLAlchemy discards the connection."""
    with contextlib.suppress(Exception):
        if conn.closed:
            return False
        fd = conn.pgconn.socket
        with socket.socket(fileno=_dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
        return True
    return False


def _dup(fd: int) -> int:
    # a socket object made on the connection's own descriptor would close it on exit;
    # shutdown acts on the socket, so shutting down a duplicate cuts the original
    return os.dup(fd)
