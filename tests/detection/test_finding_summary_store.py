"""findings.summary: migration 0002 from a database at 0001, storage, and GET /v1/findings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from monitor.detection import store as ds
from monitor.detection.scheduler import Detection
from monitor.settings import FileConfig, Settings, WorkflowConfig
from monitor.store import Store
from monitor.store import schema as t
from monitor.store.migrate import current_revision, head_revision, upgrade
from tests.detection.test_scheduler import feed, reviews
from tests.support.switches import READ_AUTH, make_app

CONFIG = FileConfig(workflows={"invoices": WorkflowConfig(baseline={"edit_rate": 0.2})})
# a row as a 0001 daemon wrote it: a chart still learning, no summary column yet
OLD_ROW = {
    "workflow": "invoices",
    "signal": "edited",
    "detector": "cusum",
    "status": "unknown",
    "samples": 40,
    "evidence": orjson.dumps(
        {"reason": "learning baseline", "learned": 40, "needed": 500}
    ).decode(),
    "created_at": 1_789_999_000.0,
    "current": 1,
}


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty database with no schema at all (the shared fixtures are at head)."""
    if request.param == "sqlite":
        s = Store(f"sqlite:///{tmp_path / 'old.db'}")
        yield s
        s.dispose()
        return
    import psycopg

    url = make_url(request.getfixturevalue("pg_url"))
    name = f"{url.database}_mig"
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    s = Store(url.set(database=name).render_as_string(hide_password=False))
    yield s
    s.dispose()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_upgrading_from_0001_keeps_old_findings_and_the_next_pass_stores_their_summary(
    fresh_store: Store,
) -> None:
    upgrade(fresh_store, "0001")
    columns = ", ".join(OLD_ROW)
    marks = ", ".join(f":{k}" for k in OLD_ROW)
    with fresh_store.write() as conn:
        conn.execute(text(f"INSERT INTO findings ({columns}) VALUES ({marks})"), OLD_ROW)
    upgrade(fresh_store)
    assert current_revision(fresh_store) == head_revision() == "0002"

    [old] = ds.current_findings(fresh_store)
    with fresh_store.read() as conn:
        assert conn.execute(select(t.findings.c.summary)).scalar_one() == ""
    # worded on read until a pass stores a sentence
    assert old["summary"] == "edit rate: learning the baseline: 40 of 500 reviews"

    detection = Detection(fresh_store, Settings(database_url=fresh_store.url), FileConfig())
    feed(fresh_store, detection, reviews("invoices", [(100, 0.2)], seed=3))
    [row] = [
        r for r in ds.current_findings(fresh_store, "invoices", signal="edited")
        if r["detector"] == "cusum"
    ]  # fmt: skip
    assert row["id"] == old["id"]  # the same status: updated in place, not a new row
    with fresh_store.read() as conn:
        query = select(t.findings.c.summary).where(t.findings.c.id == row["id"])
        stored = conn.execute(query).scalar_one()
    assert stored == row["summary"]
    assert stored.startswith("edit rate: learning the baseline: 100 of")


def test_the_migrated_schema_is_exactly_schema_py(fresh_store: Store) -> None:
    upgrade(fresh_store)
    with fresh_store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), t.metadata)
    assert diff == []


def test_a_pass_stores_each_findings_summary_and_the_api_returns_it_with_since(
    store: Store,
) -> None:
    detection = Detection(store, Settings(database_url=store.url), CONFIG)
    # declared 0.20, then 0.50: the chart goes critical
    feed(store, detection, reviews("invoices", [(400, 0.2), (400, 0.5)], seed=1))
    written = {(f.signal, f.detector): f for f in detection.run_once(now=1_790_000_900.0).findings}
    with TestClient(make_app(store, CONFIG)) as client:
        resp = client.get("/v1/findings", params={"workflow": "invoices"}, headers=READ_AUTH)
    assert resp.status_code == 200
    rows = {(r["signal"], r["detector"]): r for r in resp.json()["findings"]}
    assert rows.keys() == written.keys()
    for key, row in rows.items():
        assert row["summary"] == written[key].summary != ""
        assert row["since"] == written[key].since
    chart = rows[("edited", "cusum")]
    assert chart["status"] == "critical"
    assert chart["summary"].startswith("edit rate 0.")
    assert "vs baseline 0.20 (declared); CUSUM" in chart["summary"]
    assert ds.finding_from_row(chart).summary == chart["summary"]
