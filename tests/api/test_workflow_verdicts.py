"""GET /v1/workflows says why a workflow is not ok: a silence, charts still learning, and the
false-alarm budget in force (also exported as ``driftwarden_false_alarm_budget``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from collectors.events import Event, convert_event
from detectors.types import Status
from monitor.api.findings import status_reason
from monitor.detection.alarm_budget import chart_budgets
from monitor.detection.scheduler import Detection
from monitor.settings import FileConfig, Settings, WorkflowConfig
from monitor.store import Store
from tests.detection.test_scheduler import T0, reviews
from tests.support.switches import READ_AUTH, make_app

CONFIG = FileConfig(
    workflows={
        "stopped": WorkflowConfig(false_alarms_per_month=0.5),
        "configured-only": WorkflowConfig(),
    }
)
DAY = 86_400


def run_events(workflow: str, start: float, end: float, every: float = 300.0) -> list[Event]:
    """One ok run every ``every`` seconds in ``[start, end)``."""
    count = int((end - start) // every)
    return [
        convert_event(
            {
                "id": f"{workflow}-{start + every * i}",
                "type": "run",
                "workflow": workflow,
                "ts": start + every * i,
            },
            start + every * i + 1,
        )
        for i in range(count)
    ]


SILENCE_END = T0 + 3 * DAY + 60  # the last pass: a day after the last run of "stopped"


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    detection = Detection(store, Settings(database_url=store.url), CONFIG)
    # stopped: a run every 5 minutes for two days, then nothing; live: the same, still
    # sending; newbie: 40 reviews, every chart still learning
    batches = [
        run_events("stopped", T0, T0 + 2 * DAY),
        run_events("live", T0, T0 + 2 * DAY),
        reviews("newbie", [(40, 0.2)], seed=2, t0=T0 + 2 * DAY + 5 * 3600),
    ]
    for batch in batches:
        store.insert_events(batch, T0 + 2 * DAY)  # backdated: sent in one go
    detection.run_once(now=T0 + 2 * DAY)
    more = run_events("live", T0 + 2 * DAY, SILENCE_END)
    store.insert_events(more, SILENCE_END)
    detection.run_once(now=SILENCE_END)
    with TestClient(make_app(store, CONFIG)) as c:
        yield c


def workflows(client: TestClient) -> dict[str, dict[str, object]]:
    resp = client.get("/v1/workflows", headers=READ_AUTH)
    assert resp.status_code == 200
    return {w["workflow"]: w for w in resp.json()["workflows"]}


def test_a_workflow_that_stopped_sending_is_not_ok(client: TestClient) -> None:
    by_name = workflows(client)
    stopped, live = by_name["stopped"], by_name["live"]
    assert stopped["status"] == "warn"
    assert isinstance(stopped["warn"], list) and "events/no_data" in stopped["warn"]
    assert isinstance(live["warn"], list) and isinstance(live["unknown"], list)
    assert "events/no_data" not in live["warn"] + live["unknown"]
    [finding] = client.get(
        "/v1/findings", params={"workflow": "stopped", "signal": "events"}, headers=READ_AUTH
    ).json()["findings"]
    ts = T0 + 2 * DAY - 300  # the last run
    last = ts - ts % 60 + 60  # the end of its minute
    assert finding["evidence"]["last_event"] == last
    assert finding["evidence"]["silent_s"] == pytest.approx(SILENCE_END - last)
    hours = (SILENCE_END - last) / 3600
    expected = finding["evidence"]["expected_events"]
    assert stopped["status_reason"] == f"no data for {hours:.1f} h ({expected:.0f} events expected)"
    assert finding["evidence"]["recent"] == {"samples": 0, "window_s": 3600}


def test_a_sparse_workflow_lists_what_it_is_still_learning(client: TestClient) -> None:
    newbie = workflows(client)["newbie"]
    assert newbie["status"] == "unknown"
    learning = newbie["learning"]
    assert isinstance(learning, list)
    charts = {(c["signal"], c["detector"]): c for c in learning}
    assert ("events", "no_data") in charts  # 40 s of history: the silence rule learns too
    assert all(c["needed"] is not None and c["learned"] < c["needed"] for c in learning)
    slowest = min(learning, key=lambda c: c["learned"] / c["needed"])
    assert newbie["status_reason"] == f"learning ({slowest['learned']}/{slowest['needed']})"
    assert workflows(client)["configured-only"]["status_reason"] == "no data"


def test_the_budget_in_force_is_reported_with_its_source(client: TestClient) -> None:
    by_name = workflows(client)
    own = by_name["stopped"]["budget"]
    default = by_name["live"]["budget"]
    assert isinstance(own, dict) and isinstance(default, dict)
    assert (own["false_alarms_per_month"], own["source"]) == (0.5, "workflow")
    settings = Settings()
    assert (default["false_alarms_per_month"], default["source"]) == (
        settings.false_alarms_per_workflow_month,
        "default",
    )
    assert own["warn_false_alarms_per_month"] == settings.warn_false_alarms_per_workflow_month


def test_the_budget_gauge_is_exported_per_workflow(client: TestClient) -> None:
    text = client.get("/metrics").text
    assert 'driftwarden_false_alarm_budget{workflow="stopped"} 0.5' in text
    assert 'driftwarden_false_alarm_budget{workflow="configured-only"} 0.1' in text
    assert 'driftwarden_false_alarm_budget{workflow="newbie"} 0.1' in text  # seen in findings


def test_chart_count_and_arl0_come_from_the_cusum_evidence() -> None:
    rows = [
        {
            "signal": "edited",
            "detector": "cusum",
            "evidence": {"budget": {"charts": 9, "arl0": 52_000.0, "obs_per_day": 1000.0}},
        },
        {"signal": "errors", "detector": "cusum", "evidence": {"budget": {"charts": 9}}},
        {"signal": "errors", "detector": "burn_rate", "evidence": {"budget": {"charts": 99}}},
        {"signal": "latency_ms", "detector": "cusum", "evidence": {}},
    ]
    charts, per_chart = chart_budgets(rows)
    assert charts == 9
    assert [(c.signal, c.arl0, c.obs_per_day) for c in per_chart] == [
        ("edited", 52_000.0, 1000.0),
        ("errors", None, None),
    ]
    assert chart_budgets(rows[3:]) == (None, [])


def test_status_reason_names_the_chart_furthest_from_a_verdict() -> None:
    def row(signal: str, learned: int, needed: int) -> dict[str, object]:
        ev = {"reason": "learning baseline", "learned": learned, "needed": needed}
        return {"signal": signal, "detector": "cusum", "status": "unknown", "evidence": ev}

    found = [row("edited", 450, 500), row("groundedness", 20, 100), row("errors", 120, 500)]
    assert status_reason(Status.UNKNOWN, found) == "learning (20/100)"
    # a rule that learns without counting (cost per run) is named, never "None/None"
    uncounted = {
        "signal": "cost_per_run",
        "detector": "ratio",
        "status": "unknown",
        "evidence": {"reason": "learning baseline"},
    }
    assert status_reason(Status.UNKNOWN, [uncounted]) == "learning (cost_per_run/ratio)"
    assert status_reason(Status.UNKNOWN, [uncounted, *found]) == "learning (20/100)"
    quiet = [
        {
            "signal": "edited",
            "detector": "cusum",
            "status": "unknown",
            "evidence": {"reason": "no data in the window"},
        }
    ]
    assert status_reason(Status.UNKNOWN, quiet) == "no data in the window"
    assert status_reason(Status.OK, found) is None
