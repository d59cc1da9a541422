"""Engine creation with the per-database settings that make ingest safe and fast."""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import QueuePool, StaticPool

# libpq options (psycopg passes them through) so that no thread waits on a dead
# connection for long: a connect gives up after 2 s (libpq's minimum); keepalives find a
# silent peer of an idle connection in 5 + 3 x 1 s; unacknowledged data gives up after 5 s
# (a real partition); the server cancels a statement after 30 s (a detection pass reads
# at most 200k rows a statement, far less) and ends a transaction left idle for 60 s. A
# peer that acknowledges but never answers (a hung server, a proxy) is the StoreGuard's.
PG_CONNECT_ARGS: Final[dict[str, Any]] = {
    "connect_timeout": 2,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 1,
    "keepalives_count": 3,
    "tcp_user_timeout": 5000,
    "options": "-c statement_timeout=30000 -c idle_in_transaction_session_timeout=60000",
}
POOL_TIMEOUT_S: Final = 3


class StoreUnavailable(Exception):
    """The database cannot be reached or is locked; the caller should retry later."""


# PostgreSQL's read_only_sql_transaction: a standby after a failover, or a database set
# read-only; psycopg raises it as an InternalError, but it means "retry later" (503)
_READ_ONLY_SQLSTATE = "25006"


class DriverMissing(Exception):
    """The URL names a database whose driver is not installed (an optional extra)."""


def is_unavailable(err: BaseException) -> bool:
    """True for errors that mean "the store is down", not "the statement is wrong"."""
    if isinstance(err, OperationalError):
        return True  # SQLite's "database or disk is full" and PostgreSQL's DiskFull among them
    if not isinstance(err, DBAPIError):
        return False
    return bool(err.connection_invalidated) or (
        getattr(err.orig, "sqlstate", None) == _READ_ONLY_SQLSTATE
    )


def make_engine(
    url: str, *, sqlite_synchronous: str = "NORMAL", sqlite_autocheckpoint: int = 1000
) -> Engine:
    """An engine for ``url``.

    SQLite: WAL journal (readers never block the writer) and ``BEGIN IMMEDIATE`` so a write
    transaction takes the lock up front instead of failing half-way. With WAL,
    ``synchronous=NORMAL`` (the default) keeps every committed batch through any crash or
    ``kill -9`` of the process; ``FULL`` also survives a power cut, at one fsync per batch
    (``DRIFTWARDEN_SQLITE_SYNCHRONOUS=FULL``). ``sqlite_autocheckpoint``: WAL pages after
    which a committing writer copies the WAL into the database file (SQLite's default 1000).
    PostgreSQL: pre-ping, so a restarted server is noticed without restarting us.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, sqlite_synchronous, sqlite_autocheckpoint)
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            url = str(parsed.set(drivername="postgresql+psycopg").render_as_string(False))
        connect_args = dict(PG_CONNECT_ARGS)
    try:
        engine = create_engine(
            url,
            pool_pre_ping=True,
            pool_size=8,
            max_overflow=8,
            # a write waits at most this long for a connection, so it answers 503 within
            # the 5 s a switch change promises even when every connection is stuck
            pool_timeout=POOL_TIMEOUT_S,
            connect_args=connect_args,
        )
    except ModuleNotFoundError as err:  # psycopg is the `postgres` extra, not a dependency
        raise DriverMissing(
            f"{parsed.get_backend_name()} needs the {err.name} module: "
            "pip install 'driftwarden[postgres]'"
        ) from None
    return engine


def make_probe_engine(url: URL) -> Engine:
    """One connection of its own for the store guard's probe (``monitor.store.guard``): a
    probe queued behind a busy pool would read "down" for "busy"."""
    return create_engine(
        url, pool_size=1, max_overflow=0, pool_timeout=1, connect_args=dict(PG_CONNECT_ARGS)
    )


def _sqlite_engine(url: str, synchronous: str, autocheckpoint: int) -> Engine:
    memory = url in ("sqlite://", "sqlite:///:memory:")
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 30},
        # one shared connection for :memory:, or every checkout would see an empty database
        poolclass=StaticPool if memory else QueuePool,
        # last in, first out: the writer keeps reusing one connection and its warm page
        # cache, instead of rotating through the pool and filling one cache per connection
        **({} if memory else {"pool_use_lifo": True}),
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        if not memory:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute(f"PRAGMA wal_autocheckpoint={int(autocheckpoint)}")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # writers take the lock up front (no deadlock-prone lock upgrade); readers don't
        write = conn.get_execution_options().get("dw_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine
