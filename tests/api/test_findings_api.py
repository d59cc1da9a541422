"""GET /v1/findings and /v1/workflows over findings written by a real detection pass."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from monitor.detection.scheduler import Detection
from monitor.settings import FileConfig, Settings, WorkflowConfig
from monitor.store import Store
from tests.detection.test_scheduler import feed, reviews
from tests.support.switches import AUTH, READ_AUTH, make_app

CONFIG = FileConfig(workflows={"invoices": WorkflowConfig(baseline={"edit_rate": 0.2})})


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    detection = Detection(store, Settings(database_url=store.url), CONFIG)
    # invoices: declared 0.20, drifts to 0.50; newbie: 40 reviews, still learning
    feed(store, detection, reviews("invoices", [(400, 0.2), (400, 0.5)], seed=1))
    feed(store, detection, reviews("newbie", [(40, 0.2)], seed=2, t0=1_790_000_900.0))
    with TestClient(make_app(store, CONFIG)) as c:
        yield c


def test_findings_filter_by_status_and_signal(client: TestClient) -> None:
    resp = client.get("/v1/findings", params={"status": "critical"}, headers=READ_AUTH)
    assert resp.status_code == 200
    critical = resp.json()["findings"]
    assert ("invoices", "edited", "cusum") in {
        (f["workflow"], f["signal"], f["detector"]) for f in critical
    }
    assert all(f["status"] == "critical" for f in critical)
    edited = client.get(
        "/v1/findings", params={"workflow": "invoices", "signal": "edited"}, headers=READ_AUTH
    ).json()["findings"]
    assert {f["signal"] for f in edited} == {"edited"}
    [chart] = [f for f in edited if f["detector"] == "cusum"]
    assert chart["baseline"] == pytest.approx(0.2)
    assert chart["statistic"] >= chart["threshold"]


def test_a_bad_status_filter_is_a_400_naming_the_parameter(client: TestClient) -> None:
    resp = client.get("/v1/findings", params={"status": "bad"}, headers=READ_AUTH)
    assert resp.status_code == 400
    assert "status" in resp.text


def test_findings_need_a_read_token(client: TestClient) -> None:
    assert client.get("/v1/findings").status_code == 401


def test_workflows_list_critical_and_learning_signals(client: TestClient) -> None:
    resp = client.get("/v1/workflows", headers=READ_AUTH)
    assert resp.status_code == 200
    by_name = {w["workflow"]: w for w in resp.json()["workflows"]}
    assert by_name["invoices"]["status"] == "critical"
    assert "edited/cusum" in by_name["invoices"]["critical"]
    assert "edited/cusum" in by_name["newbie"]["unknown"]
    assert by_name["newbie"]["critical"] == []


def test_workflows_show_each_switch_mode_and_disabled_actions(client: TestClient) -> None:
    """The README promised the switch mode in /v1/workflows; it was missing."""
    put = client.put(
        "/v1/switches/invoices",
        json={"mode": "review", "disabled_actions": ["send_email"], "reason": "drift"},
        headers=AUTH,
    )
    assert put.status_code == 200, put.text
    by_name = {
        w["workflow"]: w for w in client.get("/v1/workflows", headers=READ_AUTH).json()["workflows"]
    }
    assert by_name["invoices"]["mode"] == "review"
    assert by_name["invoices"]["disabled_actions"] == ["send_email"]
    assert by_name["newbie"]["mode"] == "auto"  # never switched: the default mode
    assert by_name["newbie"]["disabled_actions"] == []
