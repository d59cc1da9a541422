"""GET/PUT /v1/switches and GET /v1/audit over HTTP (tokens, ETag, If-Match, errors)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from monitor.settings import FileConfig, WorkflowConfig
from monitor.store import Store
from tests.support.switches import AUTH, READ_AUTH, make_app, sample


@pytest.fixture
def client(sqlite_store: Store) -> Iterator[TestClient]:
    config = FileConfig(workflows={"crm": WorkflowConfig(default_mode="review")})
    with TestClient(make_app(sqlite_store, config)) as c:
        yield c


def put(client: TestClient, workflow: str, body: dict[str, object], **headers: str) -> object:
    return client.put(f"/v1/switches/{workflow}", json=body, headers={**AUTH, **headers})


def test_unknown_workflow_reads_default_with_version_zero_etag(client: TestClient) -> None:
    r = client.get("/v1/switches/invoices", headers=READ_AUTH)
    assert r.status_code == 200
    assert (r.json()["mode"], r.json()["version"], r.headers["etag"]) == ("auto", 0, '"0"')
    listed = client.get("/v1/switches", headers=READ_AUTH).json()["switches"]
    assert [(s["workflow"], s["mode"]) for s in listed] == [("crm", "review")]


def test_put_sets_the_switch_and_get_answers_304_while_unchanged(client: TestClient) -> None:
    r = client.put(
        "/v1/switches/invoices",
        headers={**AUTH, "If-Match": '"0"'},
        json={"mode": "review", "disable": ["send_email"], "reason": "edits up"},
    )
    assert r.status_code == 200 and r.headers["etag"] == '"1"'
    assert (r.json()["mode"], r.json()["disabled_actions"], r.json()["changed"]) == (
        "review",
        ["send_email"],
        True,
    )
    assert (
        client.get(
            "/v1/switches/invoices", headers={**READ_AUTH, "If-None-Match": '"1"'}
        ).status_code
        == 304
    )
    assert (
        client.get("/v1/switches/invoices", headers={**READ_AUTH, "If-None-Match": '"0"'}).json()[
            "version"
        ]
        == 1
    )


def test_stale_if_match_is_412_with_the_current_state(client: TestClient) -> None:
    client.put("/v1/switches/invoices", headers=AUTH, json={"mode": "manual", "reason": "r"})
    r = client.put(
        "/v1/switches/invoices",
        headers={**AUTH, "If-Match": '"0"'},
        json={"mode": "auto", "reason": "r"},
    )
    assert r.status_code == 412 and r.headers["etag"] == '"1"'
    assert r.json()["error"] == "precondition_failed"
    assert r.json()["detail"]["current"]["mode"] == "manual"
    assert client.get("/v1/switches/invoices", headers=AUTH).json()["mode"] == "manual"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"mode": "review"}, "reason"),
        ({"mode": "review", "reason": "   "}, "reason"),
        ({"mode": "off", "reason": "r"}, "mode"),
        ({"disable": ["bad action!"], "reason": "r"}, "disable"),
        ({"reason": "r"}, "body"),
        ({"mode": "review", "reason": "r", "colour": "red"}, "colour"),
    ],
)
def test_bad_put_is_400_naming_the_field(
    client: TestClient, body: dict[str, object], field: str
) -> None:
    r = client.put("/v1/switches/invoices", headers=AUTH, json=body)
    assert r.status_code == 400
    assert field in [p["field"] for p in r.json()["detail"]]


def test_bad_workflow_name_and_if_match_are_400(client: TestClient) -> None:
    r = client.get("/v1/switches/Bad Name", headers=AUTH)
    assert r.status_code == 400 and r.json()["detail"][0]["field"] == "workflow"
    r = client.put(
        "/v1/switches/wf",
        headers={**AUTH, "If-Match": "yesterday"},
        json={"mode": "review", "reason": "r"},
    )
    assert r.status_code == 400 and r.json()["detail"][0]["field"] == "If-Match"


def test_changes_need_the_control_token(client: TestClient) -> None:
    body = {"mode": "manual", "reason": "r"}
    assert client.put("/v1/switches/wf", json=body).status_code == 401
    assert client.put("/v1/switches/wf", json=body, headers=READ_AUTH).status_code == 403
    assert client.get("/v1/switches/wf").status_code == 401
    assert client.get("/v1/audit").status_code == 401
    assert client.get("/v1/switches/wf", headers=READ_AUTH).json()["version"] == 0


def test_human_loosening_is_audited_with_before_and_after(client: TestClient) -> None:
    client.put("/v1/switches/wf", headers=AUTH, json={"mode": "manual", "reason": "incident"})
    client.put("/v1/switches/wf", headers=AUTH, json={"mode": "auto", "reason": "resolved"})
    entries = client.get("/v1/audit", params={"workflow": "wf"}, headers=READ_AUTH).json()["audit"]
    assert [(e["before"]["mode"], e["after"]["mode"], e["reason"]) for e in entries] == [
        ("manual", "auto", "resolved"),
        ("auto", "manual", "incident"),
    ]
    assert all(e["source"] == "human" and e["actor"].startswith("token:") for e in entries)


def test_audit_filters_by_time_and_rejects_bad_times(client: TestClient) -> None:
    client.put("/v1/switches/wf", headers=AUTH, json={"mode": "review", "reason": "r"})
    at = client.get("/v1/audit", headers=AUTH).json()["audit"][0]["at"]
    assert len(client.get("/v1/audit", params={"since": at + 1}, headers=AUTH).json()["audit"]) == 0
    assert (
        len(
            client.get("/v1/audit", params={"until": "2100-01-01T00:00:00Z"}, headers=AUTH).json()[
                "audit"
            ]
        )
        == 1
    )
    r = client.get("/v1/audit", params={"since": "last tuesday"}, headers=AUTH)
    assert r.status_code == 400 and r.json()["detail"][0]["field"] == "since"
    assert client.get("/v1/audit", params={"limit": 0}, headers=AUTH).status_code == 400


def test_metrics_follow_switch_changes(client: TestClient) -> None:
    put(client, "wf", {"mode": "review", "disable": ["crm_write"], "reason": "r"})
    put(client, "wf", {"enable": ["crm_write"], "reason": "r"})
    app = client.app
    assert sample(app, "driftwarden_switch_mode", {"workflow": "wf", "mode": "review"}) == 1
    assert sample(app, "driftwarden_switch_mode", {"workflow": "wf", "mode": "auto"}) == 0
    assert (
        sample(app, "driftwarden_action_disabled", {"workflow": "wf", "action": "crm_write"}) == 0
    )
    assert (
        sample(app, "driftwarden_switch_changes_total", {"workflow": "wf", "source": "human"}) == 2
    )
    assert "driftwarden_switch_mode{" in client.get("/metrics").text


def test_store_down_is_503_with_retry_after() -> None:
    down = Store("postgresql+psycopg://postgres@127.0.0.1:1/nothing")
    with TestClient(make_app(down)) as c:
        r = c.put("/v1/switches/wf", headers=AUTH, json={"mode": "review", "reason": "r"})
        assert r.status_code == 503 and r.headers["retry-after"]
        assert c.get("/v1/switches/wf", headers=AUTH).status_code == 503
