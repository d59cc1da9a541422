"""Validation accepts exactly what both stores hold: the same answer on SQLite and PostgreSQL.

PostgreSQL refuses U+0000 in text and enforces VARCHAR widths; SQLite does neither. Each
case here once answered 500 on PostgreSQL (losing the good events of the batch) and 200
on SQLite.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from collectors.events import MAX_ACTION_LENGTH
from monitor.settings import FileConfig
from monitor.store import Store
from monitor.store import schema as t
from tests.api.test_alertmanager import PAYLOAD
from tests.support.switches import AUTH, make_app

NUL = "\x00"


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    with TestClient(make_app(store, FileConfig())) as c:
        yield c


def run(i: int, **extra: object) -> dict[str, object]:
    return {"id": f"r{i}", "type": "run", "workflow": "wf", "status": "error", **extra}


def test_bad_text_is_rejected_by_field_and_the_good_events_are_stored(
    client: TestClient, store: Store
) -> None:
    longest = "a" * MAX_ACTION_LENGTH
    batch: list[dict[str, Any]] = [
        run(0),
        run(1, id=f"bad{NUL}id"),
        run(2, model=f"gpt{NUL}"),
        run(3, user=f"u{NUL}"),
        run(4, team=f"t{NUL}"),
        run(5, action="a" * (MAX_ACTION_LENGTH + 1)),
        run(6, attributes={"k": [1, {"deep": f"x{NUL}"}]}),
        run(7, failed_checks=["ok", f"no{NUL}"]),
        {"id": "v8", "type": "review", "workflow": "wf", "decision": "approved", "reviewer": NUL},
        {"id": "c9", "type": "cost", "workflow": "wf", "request_id": f"q{NUL}", "cost_usd": 1},
        {"id": "k10", "type": "kpi", "workflow": "wf", "name": "n", "value": 1, "unit": NUL},
        run(11, action=longest),
        run(12, model_version="v1", prompt_version="p1", model="m"),
    ]
    for body in (json.dumps(batch), "\n".join(json.dumps(e) for e in batch)):
        kind = "application/json" if body.startswith("[") else "application/x-ndjson"
        resp = client.post("/v1/events", content=body, headers={"content-type": kind, **AUTH})
        assert resp.status_code == 200, resp.text
        rejected = {
            r["index"] - (kind != "application/json"): r["field"] for r in resp.json()["rejected"]
        }
        assert rejected == {
            1: "id",
            2: "model",
            3: "user",
            4: "team",
            5: "action",
            6: "attributes.k[1].deep",
            7: "failed_checks[1]",
            8: "reviewer",
            9: "request_id",
            10: "unit",
        }
    assert store.count_events() == 3
    with store.engine.connect() as conn:
        signals = set(conn.execute(select(t.rollups.c.signal)).scalars())
    assert "action_errors." + longest in signals


def test_nul_in_query_parameters_is_a_400_naming_the_parameter(client: TestClient) -> None:
    for query, field in (
        ("workflow=a%00", "workflow"),
        ("signal=errors%00", "signal"),
        ("status=ok&workflow=wf&signal=%00x", "signal"),
    ):
        resp = client.get(f"/v1/findings?{query}", headers=AUTH)
        assert resp.status_code == 400, (query, resp.text)
        assert resp.json()["detail"][0]["field"] == field
    assert client.get("/v1/findings?workflow=wf", headers=AUTH).status_code == 200


def test_nul_in_a_switch_reason_is_a_400(client: TestClient) -> None:
    resp = client.put(
        "/v1/switches/wf", json={"mode": "review", "reason": f"night{NUL}shift"}, headers=AUTH
    )
    assert resp.status_code == 400, resp.text
    assert resp.json()["detail"][0]["field"] == "reason"
    assert client.get("/v1/switches/wf", headers=AUTH).json()["mode"] == "auto"


def _alert(**changes: Any) -> dict[str, Any]:
    payload = copy.deepcopy(PAYLOAD)
    first = payload["alerts"][0]
    first["labels"].update(changes.pop("labels", {}))
    first.update(changes)
    out: dict[str, Any] = payload
    return out


def test_nul_in_an_alert_is_a_400_and_a_long_alertname_still_acts(client: TestClient) -> None:
    for payload, field in (
        (_alert(labels={"alertname": f"Edit{NUL}Rate"}), "alerts[0].labels.alertname"),
        (_alert(fingerprint=f"abc{NUL}"), "alerts[0].fingerprint"),
        (_alert(annotations={"summary": NUL}), "alerts[0].annotations.summary"),
    ):
        resp = client.post("/v1/alertmanager", json=payload, headers=AUTH)
        assert resp.status_code == 400, resp.text
        assert resp.json()["detail"][0]["field"] == field
    long_name = _alert(labels={"alertname": "A" * 300})
    resp = client.post("/v1/alertmanager", json=long_name, headers=AUTH)
    assert resp.status_code == 200, resp.text
    assert client.get("/v1/switches/invoices", headers=AUTH).json()["mode"] == "review"
