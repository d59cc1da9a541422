"""POST /v1/alertmanager: v4 payloads trip switches once, never loosen, need control."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from monitor.settings import FileConfig, PolicyConfig
from monitor.store import Store
from tests.support.switches import AUTH, READ_AUTH, make_app, sample

# as posted by Alertmanager 0.25, plus fields newer versions add (parsed leniently)
PAYLOAD: dict[str, Any] = {
    "receiver": "driftwarden",
    "status": "firing",
    "version": "4",
    "groupKey": '{}:{alertname="LLMEditRateDrift"}',
    "truncatedAlerts": 0,
    "notification_reason": "new_alert",
    "routeLabels": {"team": "ops"},
    "groupLabels": {"alertname": "LLMEditRateDrift"},
    "commonLabels": {"alertname": "LLMEditRateDrift"},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": {
                "alertname": "LLMEditRateDrift",
                "severity": "critical",
                "workflow": "invoices",
                "driftwarden_action": "review",
            },
            "annotations": {"summary": "edit rate 0.35 vs 0.20"},
            "startsAt": "2026-11-23T00:20:36.898829988Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": "196ce08eda902344",
        }
    ],
}
POLICIES = [
    PolicyConfig(name="budget", alertname="LLMCostBudgetBurn", disable=["crm_write"]),
    PolicyConfig(name="shadow", alertname="LLMLatencyHigh", mode="manual", dry_run=True),
]


@pytest.fixture
def client(sqlite_store: Store) -> Iterator[TestClient]:
    with TestClient(make_app(sqlite_store, FileConfig(policies=POLICIES))) as c:
        yield c


def alert(**labels: str) -> dict[str, Any]:
    payload = copy.deepcopy(PAYLOAD)
    payload["alerts"][0]["labels"].update(labels)
    for key, value in labels.items():
        if value == "":
            del payload["alerts"][0]["labels"][key]
    return payload


def post(client: TestClient, payload: dict[str, Any], headers: dict[str, str] = AUTH) -> Any:
    return client.post("/v1/alertmanager", json=payload, headers=headers)


def audit(client: TestClient) -> list[dict[str, Any]]:
    return list(client.get("/v1/audit", headers=AUTH).json()["audit"])


def test_same_payload_delivered_five_times_changes_once_with_one_audit_row(
    client: TestClient,
) -> None:
    answers = [post(client, PAYLOAD) for _ in range(5)]
    assert [r.status_code for r in answers] == [200] * 5
    assert [r.json()["applied"][0]["duplicate"] for r in answers] == [False] + [True] * 4
    state = client.get("/v1/switches/invoices", headers=AUTH).json()
    assert (state["mode"], state["version"], state["source"]) == (
        "review",
        1,
        "alert:LLMEditRateDrift",
    )
    [entry] = audit(client)
    assert entry["reason"] == "alert LLMEditRateDrift firing: edit rate 0.35 vs 0.20"
    assert (
        sample(
            client.app,
            "driftwarden_switch_changes_total",
            {"workflow": "invoices", "source": "alert:LLMEditRateDrift"},
        )
        == 1
    )


def test_disable_label_disables_the_named_actions(client: TestClient) -> None:
    assert post(client, alert(driftwarden_action="disable:send_email,crm_write")).status_code == 200
    state = client.get("/v1/switches/invoices", headers=AUTH).json()
    assert (state["mode"], state["disabled_actions"]) == ("auto", ["crm_write", "send_email"])


def test_resolved_alert_is_recorded_but_never_loosens(client: TestClient) -> None:
    post(client, alert(driftwarden_action="manual"))
    resolved = copy.deepcopy(alert(driftwarden_action="manual"))
    resolved["status"] = resolved["alerts"][0]["status"] = "resolved"
    for _ in range(2):
        assert post(client, resolved).status_code == 200
    assert client.get("/v1/switches/invoices", headers=AUTH).json()["mode"] == "manual"
    entries = audit(client)
    assert len(entries) == 2  # firing once, resolved once
    assert entries[0]["before"] == entries[0]["after"]
    assert "resolved" in entries[0]["reason"] and "human" in entries[0]["reason"]


def test_a_new_firing_of_the_same_alert_is_a_new_event(client: TestClient) -> None:
    post(client, PAYLOAD)
    again = copy.deepcopy(PAYLOAD)
    again["alerts"][0]["startsAt"] = "2026-11-24T08:00:00Z"
    assert post(client, again).json()["applied"][0]["duplicate"] is False
    assert len(audit(client)) == 2


def test_missing_workflow_label_is_400_naming_it(client: TestClient) -> None:
    r = post(client, alert(workflow=""))
    assert r.status_code == 400
    assert r.json()["detail"] == [
        {
            "field": "alerts[0].labels.workflow",
            "error": "missing: an alert that acts on a switch must carry a workflow label",
        }
    ]
    assert audit(client) == []


def test_bad_action_label_is_400_naming_it(client: TestClient) -> None:
    r = post(client, alert(driftwarden_action="off"))
    assert r.status_code == 400
    assert r.json()["detail"][0]["field"] == "alerts[0].labels.driftwarden_action"


def test_alerts_without_an_action_or_policy_are_ignored(client: TestClient) -> None:
    r = post(client, alert(driftwarden_action="", alertname="SomethingElse"))
    assert r.status_code == 200 and r.json() == {"applied": [], "ignored": 1}


def test_policy_named_by_alertname_acts_and_dry_run_policy_only_records(
    client: TestClient,
) -> None:
    post(client, alert(driftwarden_action="", alertname="LLMCostBudgetBurn"))
    state = client.get("/v1/switches/invoices", headers=AUTH).json()
    assert (state["mode"], state["disabled_actions"]) == ("auto", ["crm_write"])
    shadow = alert(driftwarden_action="", alertname="LLMLatencyHigh")
    shadow["alerts"][0]["fingerprint"] = "aaaa"
    post(client, shadow)
    post(client, shadow)
    assert client.get("/v1/switches/invoices", headers=AUTH).json()["mode"] == "auto"
    dry = [e for e in audit(client) if e["dry_run"]]
    assert [(e["source"], e["after"]["mode"]) for e in dry] == [("policy:shadow", "manual")]
    assert sample(client.app, "driftwarden_policy_would_trip_total", {"policy": "shadow"}) == 1


def test_control_token_is_required(client: TestClient) -> None:
    assert client.post("/v1/alertmanager", json=PAYLOAD).status_code == 401
    assert post(client, PAYLOAD, READ_AUTH).status_code == 403
    assert audit(client) == []


def test_not_an_alertmanager_payload_is_400(client: TestClient) -> None:
    r = client.post("/v1/alertmanager", content=b"[1,2]", headers=AUTH)
    assert r.status_code == 400 and r.json()["detail"][0]["field"] == "alerts"
    r = client.post("/v1/alertmanager", content=b"{oops", headers=AUTH)
    assert r.status_code == 400 and r.json()["detail"][0]["field"] == "body"


def test_store_down_is_503_so_alertmanager_retries() -> None:
    down = Store("postgresql+psycopg://postgres@127.0.0.1:1/nothing")
    with TestClient(make_app(down)) as c:
        r = post(c, PAYLOAD)
    assert r.status_code == 503 and r.headers["retry-after"]
