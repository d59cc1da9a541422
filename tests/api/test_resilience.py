"""The daemon keeps its promises when things break: kill -9, and a database that goes away."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.engine import make_url

from monitor.api.app import create_app
from monitor.settings import Settings
from monitor.store import Store
from monitor.store import schema as t
from monitor.telemetry.metrics import Metrics
from tests.support.daemon import Daemon
from tests.support.proxy import TcpProxy


def stored_ids(store: Store) -> set[str]:
    with store.read() as conn:
        return {row[0] for row in conn.execute(select(t.events.c.id))}


def _send_until_killed(url: str, acked: list[str], stop: threading.Event) -> None:
    batch_no = 0
    with httpx.Client(base_url=url, timeout=5) as client:
        while not stop.is_set():
            ids = [f"b{batch_no}-{i}" for i in range(200)]
            batch_no += 1
            body = [{"id": i, "type": "run", "workflow": "wf", "latency_ms": 5} for i in ids]
            try:
                resp = client.post("/v1/events", json=body)
            except httpx.HTTPError:
                continue  # in flight when killed: not acknowledged, may or may not be stored
            if resp.status_code == 200:
                acked.extend(ids)


@pytest.mark.slow
def test_every_acknowledged_event_survives_sigkill(store: Store, tmp_path: Path) -> None:
    daemon = Daemon(store.url, log_path=tmp_path / "daemon.log").start()
    acked: list[str] = []
    stop = threading.Event()
    sender = threading.Thread(target=_send_until_killed, args=(daemon.url, acked, stop))
    sender.start()
    time.sleep(2.0)
    daemon.kill()
    stop.set()
    sender.join()
    assert len(acked) >= 1000, "the sender should have been acknowledged many batches"
    restarted = Daemon(store.url, port=daemon.port, log_path=tmp_path / "daemon.log").start()
    try:
        missing = set(acked) - stored_ids(store)
        assert not missing, f"{len(missing)} acknowledged events lost"
        again = httpx.post(
            restarted.url + "/v1/events", json=[{"id": acked[0], "type": "run", "workflow": "wf"}]
        )
        assert again.json()["duplicates"] == 1
    finally:
        restarted.stop()


def test_store_outage_gives_503_then_recovers_without_restart(
    pg_url: str, _pg_store: Store
) -> None:
    target = make_url(pg_url)
    proxy = TcpProxy(target.port or 5432).start()
    url = target.set(port=proxy.port).render_as_string(hide_password=False)
    store = Store(url)
    app = create_app(Settings(database_url=url), store, Metrics(CollectorRegistry()))
    event = {"id": "o1", "type": "run", "workflow": "wf"}
    with TestClient(app) as client:
        assert client.post("/v1/events", json=[event]).status_code == 200
        proxy.stop()
        down = client.post("/v1/events", json=[{**event, "id": "o2"}])
        assert down.status_code == 503
        assert down.headers["retry-after"].isdigit()
        assert down.json()["error"] == "store_unavailable"
        assert client.get("/readyz").status_code == 503
        assert client.get("/healthz").status_code == 200
        proxy.start()
        assert client.get("/readyz").status_code == 200
        back = client.post("/v1/events", json=[{**event, "id": "o2"}])
        assert back.status_code == 200 and back.json()["accepted"] == 1
    proxy.stop()
    store.dispose()
