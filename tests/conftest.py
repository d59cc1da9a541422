"""Shared fixtures: stores on a real SQLite file and on the real PostgreSQL.

Also ``daemon``: the real app on the SQLite store, served over HTTP on a free loopback
port (tokens required: ``tests.support.switches``).

PostgreSQL comes from ``DRIFTWARDEN_TEST_POSTGRES_URL`` (e.g.
``postgresql+psycopg://postgres@127.0.0.1:5432/test``). Each xdist worker gets its own
database, created here and dropped at the end. Without the variable the PostgreSQL cases
are skipped, unless ``DRIFTWARDEN_REQUIRE_POSTGRES=1`` (set by .ci/run), which turns the
skip into a failure so CI can never pass without them.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as monitor.cli.main does, before numpy

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from monitor.store import Store
from monitor.store import schema as t
from monitor.store.migrate import upgrade
from tests.support.switches import make_app, serving

PG_ENV = "DRIFTWARDEN_TEST_POSTGRES_URL"


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test worker."""
    base = os.environ.get(PG_ENV)
    if not base:
        if os.environ.get("DRIFTWARDEN_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{PG_ENV} is not set but PostgreSQL tests are required")
        pytest.skip(f"set {PG_ENV} to run the PostgreSQL cases")
    import psycopg

    url = make_url(base).set(drivername="postgresql+psycopg")
    name = f"dw_test_{_worker()}_{os.getpid()}"
    admin_dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield url.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def _pg_store(pg_url: str) -> Iterator[Store]:
    store = Store(pg_url)
    upgrade(store)
    yield store
    store.dispose()


def _truncate(store: Store) -> None:
    names = ", ".join(table.name for table in t.metadata.sorted_tables)
    with store.write() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY"))


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated, empty store: a SQLite file, then the real PostgreSQL."""
    if request.param == "sqlite":
        s = Store(f"sqlite:///{tmp_path / 'dw.db'}")
        upgrade(s)
        yield s
        s.dispose()
    else:
        pg: Store = request.getfixturevalue("_pg_store")
        _truncate(pg)
        yield pg


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'dw.db'}")
    upgrade(s)
    yield s
    s.dispose()


@pytest.fixture
def daemon(sqlite_store: Store) -> Iterator[str]:
    """The base URL of the real app on ``sqlite_store``, served in a thread."""
    with serving(make_app(sqlite_store)) as url:
        yield url
