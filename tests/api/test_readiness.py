"""/readyz answers 503 while the store refuses writes, and 200 again once it takes them.

The refusals are real ones from the database: SQLite's "database or disk is full" (its
``max_page_count`` limit reached) and PostgreSQL's read-only transactions (a database set
read-only, as a standby after a failover is). Reads keep working in both, which is why a
``SELECT 1`` alone answered 200 while every write got a 503.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from fastapi.testclient import TestClient
from sqlalchemy import event, text
from sqlalchemy.engine import make_url

from monitor.store import Store
from tests.support.otlp import make_app


def batch(start: int, n: int = 200) -> list[dict[str, Any]]:
    return [
        {"id": f"e{i}", "type": "run", "workflow": "wf", "model": "m" * 100}
        for i in range(start, start + n)
    ]


@contextmanager
def writes_refused(store: Store) -> Iterator[None]:
    if store.dialect == "sqlite":
        with store.read() as conn:
            pages = int(conn.execute(text("PRAGMA page_count")).scalar_one())

        def cap(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.execute(f"PRAGMA max_page_count={pages}")

        event.listen(store.engine, "connect", cap)
        store.engine.dispose()  # every connection from now on has the cap
        try:
            yield
        finally:
            event.remove(store.engine, "connect", cap)
            store.engine.dispose()
        return
    url = make_url(store.url)
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("SET default_transaction_read_only = off")
        admin.execute(f'ALTER DATABASE "{url.database}" SET default_transaction_read_only = on')
        store.engine.dispose()  # new sessions start read-only
        try:
            yield
        finally:
            admin.execute(f'ALTER DATABASE "{url.database}" RESET default_transaction_read_only')
            store.engine.dispose()


def test_readyz_is_503_while_writes_fail_and_200_once_they_work(store: Store) -> None:
    with TestClient(make_app(store)) as client:
        assert client.get("/readyz").status_code == 200
        assert client.post("/v1/events", json=batch(0)).status_code == 200
        with writes_refused(store):
            refused = client.post("/v1/events", json=batch(1000))
            assert refused.status_code == 503, refused.text
            ready = client.get("/readyz")
            assert ready.status_code == 503, ready.text
            assert ready.headers["Retry-After"]
            assert client.get("/readyz").status_code == 503  # not just once
            assert client.get("/healthz").status_code == 200  # alive, only not ready
        assert client.get("/readyz").status_code == 200, client.get("/readyz").text
        assert client.post("/v1/events", json=batch(1000)).status_code == 200
    assert store.count_events() == 400
