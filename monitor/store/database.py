"""The write side of the store: idempotent batch insert with rollups in one transaction."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import (
    Connection,
    Engine,
    Float,
    String,
    bindparam,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from collectors.events import Event
from monitor.batch.prepare import EVENT_COLUMNS, EventRow, Prepared, prepare, restrict
from monitor.batch.tally import Tally
from monitor.store import schema as t
from monitor.store.engine import StoreUnavailable, is_unavailable, make_engine, make_probe_engine
from monitor.store.guard import StoreGuard

if TYPE_CHECKING:
    from monitor.settings import Settings

ROLLUP_SEQ = "rollups"
WRITE_PROBE = "write_probe"  # a ``sequences`` row only readiness writes
ROLLUP_COLUMNS = (
    "workflow",
    "signal",
    "bucket",
    "count",
    "successes",
    "sum",
    "sumsq",
    "min",
    "max",
    "seq",
)
VERSION_COLUMNS = tuple(c.name for c in t.versions.c)
ACTOR_COLUMNS = tuple(c.name for c in t.actors.c)


@dataclass(slots=True)
class InsertResult:
    accepted: int
    duplicates: int
    tally: Tally  # what the stored events add to the ingest metrics


class Store:
    """Owns the engine. Thread-safe; on SQLite, writers are serialised in-process so they
    queue on a lock instead of spinning on SQLITE_BUSY."""

    def __init__(
        self, url: str, *, sqlite_synchronous: str = "NORMAL", sqlite_autocheckpoint: int = 1000
    ) -> None:
        self.url = url
        self.engine: Engine = make_engine(
            url, sqlite_synchronous=sqlite_synchronous, sqlite_autocheckpoint=sqlite_autocheckpoint
        )
        self.dialect = self.engine.dialect.name
        self._write_lock = threading.Lock() if self.dialect == "sqlite" else None
        self._max_variables: int | None = None
        self._statements = _Statements.build(self)
        # why the last write transaction failed, until one succeeds (readiness reads it:
        # reads may work while every write fails, e.g. a full disk or a read-only standby)
        self.write_failure: str | None = None
        # a network database can vanish mid-query; a SQLite file cannot
        self.guard: StoreGuard | None = None
        self._probe_engine: Engine | None = None
        if self.dialect == "postgresql":
            self._probe_engine = make_probe_engine(self.engine.url)
            self.guard = StoreGuard(self._probe)
            self.guard.watch(self.engine)
            self.guard.refuse_connects(self.engine)
            self.guard.watch(self._probe_engine)

    @property
    def takes_copy(self) -> bool:
        """Whether batches should come with COPY input (``prepare(..., for_copy=True)``)."""
        return self.dialect == "postgresql"

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        return cls(
            settings.database_url,
            sqlite_synchronous=settings.sqlite_synchronous,
            sqlite_autocheckpoint=settings.sqlite_autocheckpoint,
        )

    # -- plumbing --------------------------------------------------------------------
    def insert(self, table: Any) -> Any:
        """A dialect INSERT that supports ``on_conflict_*``."""
        return (sqlite if self.dialect == "sqlite" else postgresql).insert(table)

    def least(self, a: Any, b: Any) -> Any:
        # SQLite's two-argument min() is scalar; PostgreSQL spells it LEAST
        return func.min(a, b) if self.dialect == "sqlite" else func.least(a, b)

    def greatest(self, a: Any, b: Any) -> Any:
        return func.max(a, b) if self.dialect == "sqlite" else func.greatest(a, b)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction (``with store.write() as conn:``); raises StoreUnavailable."""
        if self.guard is not None:
            self.guard.admit()
        if self._write_lock is not None:
            self._write_lock.acquire()
        try:
            with self.engine.execution_options(dw_write=True).begin() as conn:
                yield conn
        except SQLAlchemyError as err:
            if is_unavailable(err):
                self.write_failure = str(err).splitlines()[0]
            self._failed(err)
            raise
        else:
            self.write_failure = None
        finally:
            if self._write_lock is not None:
                self._write_lock.release()
        if self.guard is not None:
            self.guard.succeeded()

    def room_left(self) -> int | None:
        """Bytes a SQLite database file can still grow by: its filesystem's free space, or
        less under ``PRAGMA max_page_count``. None for PostgreSQL, whose disk is not ours
        to see (its failures reach ``write_failure``)."""
        path = self.engine.url.database
        if self.dialect != "sqlite" or not path or path == ":memory:":
            return None
        with self.read() as conn:
            size, used, most = (
                int(conn.exec_driver_sql(f"PRAGMA {name}").scalar() or 0)
                for name in ("page_size", "page_count", "max_page_count")
            )
        free = shutil.disk_usage(Path(path).resolve().parent).free
        return min(free, max(0, most - used) * size)

    def probe_write(self) -> None:
        """A write that really writes (a page on SQLite), to learn whether writes work
        again; raises StoreUnavailable while they do not."""
        with self.write() as conn:
            self.set_counter(conn, WRITE_PROBE, time.time_ns())

    @contextmanager
    def writers_paused(self) -> Iterator[None]:
        """No write transaction of this process starts or runs inside the block (SQLite)."""
        if self._write_lock is None:
            yield
            return
        with self._write_lock:
            yield

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only connection; raises StoreUnavailable."""
        if self.guard is not None:
            self.guard.admit()
        try:
            with self.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as err:
            self._failed(err)
            raise
        if self.guard is not None:
            self.guard.succeeded()

    def _failed(self, err: SQLAlchemyError) -> None:
        """Raise StoreUnavailable (and open the breaker) when ``err`` means the store is down."""
        if self.guard is not None and is_unavailable(err):
            self.guard.failed(str(err).splitlines()[0])
        _unavailable(err)

    def _probe(self) -> None:
        assert self._probe_engine is not None
        with self._probe_engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    def ping(self) -> None:
        """One round trip; raises StoreUnavailable. On a guarded store it is a probe: it
        asks the database even while the breaker is open, and its answer closes it."""
        if self.guard is None:
            with self.read() as conn:
                conn.execute(text("SELECT 1"))
            return
        try:
            self._probe()
        except SQLAlchemyError as err:  # a pool timeout too: the probe's connection is stuck
            reason = str(err).splitlines()[0]
            self.guard.failed(reason)
            raise StoreUnavailable(reason) from err
        self.guard.succeeded()

    def dispose(self) -> None:
        self.engine.dispose()
        if self._probe_engine is not None:
            self._probe_engine.dispose()

    # -- ingest ----------------------------------------------------------------------
    def insert_events(
        self,
        batch: Sequence[Event],
        received_at: float | None = None,
        also: Callable[[Connection], None] | None = None,
    ) -> InsertResult:
        """Store events once each (by ``id``) and their rollups, atomically.

        ``also`` runs inside the same transaction (the file tailer saves its read position
        there, so a crash can never separate "lines stored" from "offset advanced").
        """
        return self.insert_prepared(self.prepare(batch, received_at), also)

    def prepare(self, batch: Sequence[Event], received_at: float | None = None) -> Prepared:
        """``monitor.batch.prepare.prepare`` for this store (received now unless given)."""
        received = time.time() if received_at is None else received_at
        return prepare(batch, received, for_copy=self.takes_copy)

    def insert_prepared(
        self, batch: Prepared, also: Callable[[Connection], None] | None = None
    ) -> InsertResult:
        """``insert_events`` for a batch already turned into rows (``monitor.batch.prepare``)."""
        offered = len(batch.rows) + batch.in_batch_duplicates
        if not batch.rows and also is None:
            return InsertResult(0, offered, Tally())
        with self.write() as conn:
            stored_ids = self._insert_new(conn, batch) if batch.rows else set()
            if len(stored_ids) < len(batch.rows):
                batch = restrict(batch, stored_ids)
            if batch.rows:
                self._write_rollups(conn, batch)
            if also is not None:
                also(conn)
        return InsertResult(len(batch.rows), offered - len(batch.rows), batch.tally)

    def _insert_new(self, conn: Connection, batch: Prepared) -> set[str]:
        """Insert rows whose id is new; return the ids inserted."""
        rows = batch.rows
        if self.dialect == "sqlite":
            return self._insert_new_sqlite(conn, rows)
        if self.dialect == "postgresql":
            if batch.copy is not None and self._copied(conn, batch.copy):
                return {r[0] for r in rows}
            return self._insert_new_postgres(conn, rows)
        stmt = (
            self.insert(t.events)
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(t.events.c.id)
        )
        return {
            r[0]
            for r in conn.execute(stmt, [dict(zip(EVENT_COLUMNS, r, strict=True)) for r in rows])
        }

    def _copied(self, conn: Connection, data: bytes) -> bool:
        """COPY the batch in under a savepoint; False (nothing written) if an id exists.

        Like SQLite's insert-first: fresh batches are the rule, and COPY writes them at
        1.6x the speed of the INSERT ... ON CONFLICT below, which a resent batch then pays.
        The input was formatted in the parse process, so this costs the server no per-row
        Python at all.
        """
        import psycopg  # only the PostgreSQL store needs it

        sql = f"COPY events ({', '.join(EVENT_COLUMNS)}) FROM STDIN"
        raw: Any = conn.connection.dbapi_connection  # psycopg's own connection
        try:
            with conn.begin_nested(), raw.cursor() as cursor, cursor.copy(sql) as copy:
                copy.write(data)
        except psycopg.errors.UniqueViolation:
            return False
        except psycopg.Error as err:
            # the driver's own error, past SQLAlchemy: wrap it as SQLAlchemy would, so that
            # a lost connection or a read-only database is a 503 like on every other path
            raise DBAPIError.instance(sql, None, err, psycopg.Error) from err
        return True

    def _insert_new_postgres(self, conn: Connection, rows: list[EventRow]) -> set[str]:
        sql, arrays = self._unnest_insert("events", EVENT_COLUMNS, rows)
        found = conn.exec_driver_sql(f"{sql} ON CONFLICT (id) DO NOTHING RETURNING id", arrays)
        return {r[0] for r in found}

    def _insert_new_sqlite(self, conn: Connection, rows: list[EventRow]) -> set[str]:
        if len(rows) * len(EVENT_COLUMNS) <= self._sqlite_variables(conn):
            # Fresh batches are the rule, retries the exception: insert in one statement
            # and let the primary key find a duplicate at no extra cost. A duplicate undoes
            # exactly that statement (SQLite's ABORT; the transaction stays open), and only
            # then the batch pays for the look-up below (~25 % of the insert's time).
            try:
                self._insert_rows(conn, "events", EVENT_COLUMNS, rows)
                return {r[0] for r in rows}
            except IntegrityError:
                pass
        # Under BEGIN IMMEDIATE and the in-process write lock nobody else can insert between
        # the look-up and the insert, so this equals ON CONFLICT DO NOTHING RETURNING, at a
        # third of the cost of SQLAlchemy's generated statements for it.
        found = conn.exec_driver_sql(
            "SELECT id FROM events WHERE id IN (SELECT value FROM json_each(?))",
            (orjson.dumps([r[0] for r in rows]),),
        )
        existing = {r[0] for r in found}
        new = [r for r in rows if r[0] not in existing] if existing else rows
        if new:
            self._insert_rows(conn, "events", EVENT_COLUMNS, new)
        return {r[0] for r in new}

    def _insert_rows(
        self,
        conn: Connection,
        table: str,
        columns: tuple[str, ...],
        rows: Sequence[tuple[Any, ...]],
    ) -> None:
        """A plain multi-row INSERT at driver level (SQLAlchemy's per-row parameter handling
        cost more than the insert itself).

        SQLite gets ``INSERT ... VALUES (...), (...), ...`` with as many rows as its
        variable limit allows: one statement, one release of the GIL for the whole chunk.
        ``executemany`` re-takes the GIL after every row, so a thread parsing the next
        request stalled the insert row by row; unpacking a JSON array with ``json_each``
        also avoided that but parsed every value again (60k against 90k rows/s).
        """
        names = ", ".join(columns)
        if self.dialect == "sqlite":
            per_statement = max(1, self._sqlite_variables(conn) // len(columns))
            row = "(" + ", ".join("?" * len(columns)) + ")"
            for start in range(0, len(rows), per_statement):
                chunk = rows[start : start + per_statement]
                sql = f"INSERT INTO {table} ({names}) VALUES " + ", ".join([row] * len(chunk))
                conn.exec_driver_sql(sql, tuple(chain.from_iterable(chunk)))
        elif rows:
            conn.exec_driver_sql(*self._unnest_insert(table, columns, rows))

    def _unnest_insert(
        self, table: str, columns: tuple[str, ...], rows: Sequence[tuple[Any, ...]]
    ) -> tuple[str, tuple[list[Any], ...]]:
        """PostgreSQL: one INSERT over one array per column, sent in binary (``%b``).

        The server does the per-row work: ``executemany`` ran the INSERT once per row (180
        rollup rows took 6 ms), and psycopg's text array format escaped every quote of
        every JSON payload with a regex (80 % of the ingest time, once).
        """
        cols = [t.metadata.tables[table].c[name] for name in columns]
        dialect = self.engine.dialect
        casts = ", ".join(f"%b::{_pg_array_element(c, dialect)}[]" for c in cols)
        arrays = tuple(
            _array(c, values) for c, values in zip(cols, zip(*rows, strict=True), strict=True)
        )
        sql = f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM unnest({casts})"
        return sql, arrays

    def _sqlite_variables(self, conn: Connection) -> int:
        """``?`` per statement: SQLite's limit (999 before 3.32, 32,766 since; builds such as
        Debian's raise it), capped at 32,766 so every build splits batches the same way."""
        if self._max_variables is None:
            getlimit = getattr(conn.connection.dbapi_connection, "getlimit", None)
            limit = getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) if getlimit else 999
            self._max_variables = min(int(limit), 32_766)
        return self._max_variables

    def counter(self, conn: Connection, name: str) -> int:
        """A named value of the ``sequences`` table (0 when never set)."""
        got = conn.execute(select(t.sequences.c.value).where(t.sequences.c.name == name)).scalar()
        return int(got or 0)

    def set_counter(self, conn: Connection, name: str, value: int) -> None:
        ins = self.insert(t.sequences)
        conn.execute(
            ins.on_conflict_do_update(index_elements=["name"], set_={"value": value}),
            {"name": name, "value": value},
        )

    def next_seq(self, conn: Connection, name: str) -> int:
        # The row lock taken by this UPDATE is held to commit, so on PostgreSQL concurrent
        # batches commit in seq order and a reader never skips a seq that commits later.
        stmt = self._statements.next_seq
        got = conn.execute(stmt, {"seq_name": name}).scalar()
        if got is None:
            conn.execute(
                self.insert(t.sequences).on_conflict_do_nothing(), {"name": name, "value": 0}
            )
            got = conn.execute(stmt, {"seq_name": name}).scalar_one()
        return int(got)

    def _write_rollups(self, conn: Connection, batch: Prepared) -> None:
        seq = self.next_seq(conn, ROLLUP_SEQ)
        self._insert_rows(conn, "rollups", ROLLUP_COLUMNS, [(*r, seq) for r in batch.rollups])
        if batch.versions:
            conn.execute(
                self._statements.versions_upsert,
                [dict(zip(VERSION_COLUMNS, r, strict=True)) for r in batch.versions],
            )
        if batch.actors:
            conn.execute(
                self._statements.actors_insert,
                [dict(zip(ACTOR_COLUMNS, r, strict=True)) for r in batch.actors],
            )

    def count_events(self) -> int:
        with self.read() as conn:
            return int(conn.execute(select(func.count()).select_from(t.events)).scalar_one())


def _pg_array_element(column: Any, dialect: Any) -> str:
    # text, not VARCHAR(n): an explicit cast to VARCHAR(n) silently truncates, where the
    # insert into the VARCHAR(n) column refuses a value that is too long
    if isinstance(column.type, String):
        return "text"
    return str(column.type.compile(dialect=dialect))


def _array(column: Any, values: tuple[Any, ...]) -> list[Any]:
    # psycopg types an array by its first element: 3 in a FLOAT column would make it int[]
    if isinstance(column.type, Float):
        return [None if v is None else float(v) for v in values]
    return list(values)


def _unavailable(err: SQLAlchemyError) -> None:
    if is_unavailable(err):
        raise StoreUnavailable(str(err).splitlines()[0]) from err


@dataclass(frozen=True, slots=True)
class _Statements:
    """The write path's statements, built once (building one took longer than running it)."""

    next_seq: Any
    versions_upsert: Any
    actors_insert: Any

    @classmethod
    def build(cls, store: Store) -> _Statements:
        seq = t.sequences.c
        versions = store.insert(t.versions)
        v = t.versions.c
        return cls(
            next_seq=update(t.sequences)
            .where(seq.name == bindparam("seq_name"))
            .values(value=seq.value + 1)
            .returning(seq.value),
            versions_upsert=versions.on_conflict_do_update(
                index_elements=["workflow", "model", "model_version", "prompt_version"],
                set_={
                    "first_seen": store.least(v.first_seen, versions.excluded.first_seen),
                    "last_seen": store.greatest(v.last_seen, versions.excluded.last_seen),
                    "count": v.count + versions.excluded.count,
                },
            ),
            actors_insert=store.insert(t.actors).on_conflict_do_nothing(),
        )
