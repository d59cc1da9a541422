"""OFREP bulk evaluation lists a flag per action each workflow has used, so a bulk reader
(``@openfeature/ofrep-web-provider`` reads all flags in one call) never falls back to its
default "allowed" for an action in manual mode. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from monitor.settings import FileConfig
from monitor.store import Store
from tests.support.switches import AUTH, READ_AUTH, make_app

BULK = "/ofrep/v1/evaluate/flags"


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    with TestClient(make_app(store, FileConfig())) as c:
        runs = [
            {"id": f"i{i}", "type": "run", "workflow": "invoices", "action": action}
            for i, action in enumerate(
                ["crm_write", "send_email", "crm_write", "not a switch name"]
            )
        ] + [{"id": "b1", "type": "run", "workflow": "billing", "action": "refund"}]
        assert c.post("/v1/events", json=runs, headers=AUTH).json()["accepted"] == 5
        yield c


def flags(client: TestClient, context: dict[str, Any] | None = None) -> dict[str, Any]:
    r = client.post(BULK, json={"context": context or {}}, headers=READ_AUTH)
    assert r.status_code == 200, r.text
    return {f["key"]: f["value"] for f in r.json()["flags"]}


def put(client: TestClient, workflow: str, **change: Any) -> None:
    r = client.put(f"/v1/switches/{workflow}", json={"reason": "test", **change}, headers=AUTH)
    assert r.status_code == 200, r.text


def test_manual_mode_reads_false_for_every_action_used(client: TestClient) -> None:
    assert flags(client) == {
        "billing.mode": "auto",
        "billing.action.refund": True,
        "invoices.mode": "auto",
        "invoices.action.crm_write": True,
        "invoices.action.send_email": True,
    }
    put(client, "invoices", mode="manual")
    found = flags(client)
    assert found["invoices.mode"] == "manual"
    assert found["invoices.action.crm_write"] is False
    assert found["invoices.action.send_email"] is False
    assert found["billing.action.refund"] is True
    put(client, "invoices", mode="auto", disable=["send_email"])
    found = flags(client, {"workflow": "invoices"})
    assert found == {
        "invoices.mode": "auto",
        "invoices.action.crm_write": True,
        "invoices.action.send_email": False,
    }


def test_an_action_first_used_after_the_first_read_is_listed(client: TestClient) -> None:
    put(client, "invoices", mode="manual")
    assert "invoices.action.archive" not in flags(client)
    client.post(
        "/v1/events",
        json=[{"id": "new", "type": "run", "workflow": "invoices", "action": "archive"}],
        headers=AUTH,
    )
    client.app.state.services.switches.read_ttl = 0.0  # type: ignore[attr-defined]
    assert flags(client)["invoices.action.archive"] is False


def test_a_workflow_never_switched_gets_its_default_mode_per_action(store: Store) -> None:
    with TestClient(make_app(store, FileConfig(default_mode="manual"))) as c:
        run = {"id": "r", "type": "run", "workflow": "triage", "action": "reply"}
        c.post("/v1/events", json=[run], headers=AUTH)
        assert flags(c) == {"triage.mode": "manual", "triage.action.reply": False}
