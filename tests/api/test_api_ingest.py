"""POST /v1/events through the real ASGI app, on SQLite and PostgreSQL."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from monitor.api.app import create_app
from monitor.settings import Settings
from monitor.store import Store
from monitor.telemetry.metrics import Metrics


def make_client(store: Store, **settings_kw: object) -> TestClient:
    cfg = Settings(database_url=store.url, **settings_kw)  # type: ignore[arg-type]
    metrics = Metrics(CollectorRegistry())
    return TestClient(create_app(cfg, store, metrics))


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    with make_client(store) as c:
        yield c


def run(i: int, **extra: object) -> dict[str, object]:
    return {"id": f"r{i}", "type": "run", "workflow": "wf", "latency_ms": 10 + i, **extra}


def sample(client: TestClient, name: str, labels: dict[str, str]) -> float | None:
    registry: CollectorRegistry = client.app.state.services.metrics.registry  # type: ignore[attr-defined]
    return registry.get_sample_value(name, labels)


def test_same_1000_events_posted_twice_are_stored_once(client: TestClient, store: Store) -> None:
    batch = [run(i) for i in range(1000)]
    first = client.post("/v1/events", json=batch)
    second = client.post("/v1/events", json=batch)
    assert first.status_code == second.status_code == 200
    assert first.json()["accepted"] == 1000 and first.json()["duplicates"] == 0
    assert second.json() == {"accepted": 0, "duplicates": 1000, "rejected": [], "rejected_count": 0}
    assert store.count_events() == 1000
    assert (
        sample(client, "driftwarden_events_ingested_total", {"workflow": "wf", "type": "run"})
        == 1000
    )


def test_mixed_batch_stores_valid_events_and_names_each_bad_field(
    client: TestClient, store: Store
) -> None:
    batch = [run(0), run(1, latency_ms=-5), run(2), {"id": "x", "type": "run"}, "nope", run(3)]
    body = client.post("/v1/events", json=batch).json()
    assert body["accepted"] == 3
    rejected = {r["index"]: r for r in body["rejected"]}
    assert set(rejected) == {1, 3, 4}
    assert rejected[1]["field"] == "latency_ms"
    assert rejected[3]["field"] == "workflow"
    assert "object" in rejected[4]["error"]
    assert store.count_events() == 3
    assert sample(client, "driftwarden_events_rejected_total", {"reason": "validation"}) == 3


def test_envelope_ndjson_and_gzip_bodies_are_accepted(client: TestClient) -> None:
    assert client.post("/v1/events", json={"events": [run(1)]}).json()["accepted"] == 1
    ndjson = "\n".join(json.dumps(run(i)) for i in range(2, 5)) + "\n\n"
    resp = client.post(
        "/v1/events", content=ndjson, headers={"content-type": "application/x-ndjson"}
    )
    assert resp.json()["accepted"] == 3
    gz = gzip.compress(json.dumps([run(9)]).encode())
    resp = client.post(
        "/v1/events",
        content=gz,
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert resp.json()["accepted"] == 1


def test_bad_ndjson_line_is_rejected_by_line_and_the_rest_kept(client: TestClient) -> None:
    body = json.dumps(run(1)) + "\n{broken\n" + json.dumps(run(2)) + "\n"
    resp = client.post("/v1/events", content=body, headers={"content-type": "application/x-ndjson"})
    assert resp.status_code == 200
    assert resp.json()["accepted"] == 2
    assert [r["index"] for r in resp.json()["rejected"]] == [2]


@pytest.mark.parametrize(
    ("content", "headers", "status"),
    [
        (b"[{", {"content-type": "application/json"}, 400),
        (b"", {"content-type": "application/json"}, 400),
        (b"42", {"content-type": "application/json"}, 400),
        (b'{"events": 3}', {"content-type": "application/json"}, 400),
        (b"[]", {"content-type": "text/plain"}, 415),
        (b"[]", {"content-type": "application/json", "content-encoding": "br"}, 415),
        (b"not gzip", {"content-type": "application/json", "content-encoding": "gzip"}, 400),
    ],
)
def test_unusable_bodies_get_a_clear_4xx(
    client: TestClient, content: bytes, headers: dict[str, str], status: int
) -> None:
    resp = client.post("/v1/events", content=content, headers=headers)
    assert resp.status_code == status
    assert resp.json()["error"] and resp.json()["detail"]


def test_too_large_body_and_gzip_bomb_get_413(client: TestClient) -> None:
    big = b"[" + b" " * (11 * 1024 * 1024) + b"]"
    assert (
        client.post(
            "/v1/events", content=big, headers={"content-type": "application/json"}
        ).status_code
        == 413
    )
    bomb = gzip.compress(b" " * (20 * 1024 * 1024))
    resp = client.post(
        "/v1/events",
        content=bomb,
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert resp.status_code == 413


def test_more_than_10000_events_in_a_batch_gets_413(client: TestClient) -> None:
    resp = client.post(
        "/v1/events",
        content=b"[" + b",".join([b"{}"] * 10_001) + b"]",
        headers={"content-type": "application/json"},
    )
    assert resp.status_code == 413


def test_tokens_are_required_once_configured(sqlite_store: Store) -> None:
    with make_client(sqlite_store, ingest_tokens=["in-1"], control_tokens=["ctl-1"]) as c:
        assert c.post("/v1/events", json=[run(1)]).status_code == 401
        bad = c.post("/v1/events", json=[run(1)], headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 403
        for token in ("in-1", "ctl-1"):
            ok = c.post("/v1/events", json=[run(1)], headers={"Authorization": f"Bearer {token}"})
            assert ok.status_code == 200
        assert c.get("/healthz").status_code == 200  # liveness stays open


def test_metrics_count_runs_reviews_cost_and_latency(client: TestClient) -> None:
    batch = [
        run(
            1,
            status="error",
            model="m1",
            cost_usd=0.25,
            input_tokens=100,
            output_tokens=7,
            latency_ms=1500,
        ),
        {"id": "v1", "type": "review", "workflow": "wf", "decision": "edited"},
    ]
    client.post("/v1/events", json=batch)
    assert sample(client, "driftwarden_runs_total", {"workflow": "wf", "status": "error"}) == 1
    assert (
        sample(client, "driftwarden_reviews_total", {"workflow": "wf", "decision": "edited"}) == 1
    )
    assert sample(client, "driftwarden_cost_usd_total", {"workflow": "wf", "model": "m1"}) == 0.25
    assert (
        sample(
            client,
            "driftwarden_tokens_total",
            {"workflow": "wf", "model": "m1", "direction": "output"},
        )
        == 7
    )
    assert sample(client, "driftwarden_run_latency_seconds_sum", {"workflow": "wf"}) == 1.5
    text = client.get("/metrics").text
    assert 'driftwarden_runs_total{status="error",workflow="wf"} 1.0' in text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
event_like = st.fixed_dictionaries(
    {
        "id": st.text(max_size=140) | st.integers(),
        "type": st.sampled_from(["run", "review", "cost", "kpi", "x", ""]),
        "workflow": st.text(max_size=70),
    },
    optional={
        "ts": json_values,
        "latency_ms": json_values,
        "status": json_values,
        "decision": json_values,
        "value": json_values,
        "attributes": json_values,
    },
)


def _bodies() -> st.SearchStrategy[bytes]:
    valid_json = st.lists(event_like, max_size=5).map(lambda v: json.dumps(v).encode())
    truncated = valid_json.flatmap(
        lambda b: st.integers(0, max(0, len(b) - 1)).map(lambda n: b[:n])
    )
    special = st.sampled_from(
        [
            b"[NaN]",
            b'[{"id": Infinity}]',
            b"[" * 5000 + b"]" * 5000,
            b'{"events": [' + b'{"a":' * 3000 + b"1" + b"}" * 3000 + b"]}",
            '["\udcff"]'.encode("utf-8", "surrogatepass"),
            b'[{"id": "' + b"x" * 70_000 + b'"}]',
            b"\xff\xfe",
            b"\x00" * 10,
        ]
    )
    return (
        valid_json
        | truncated
        | special
        | st.binary(max_size=300)
        | st.lists(json_values, max_size=4).map(lambda v: json.dumps(v).encode())
    )


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=_bodies(), ndjson=st.booleans())
def test_malformed_bodies_never_get_a_500(sqlite_store: Store, body: bytes, ndjson: bool) -> None:
    ctype = "application/x-ndjson" if ndjson else "application/json"
    with make_client(sqlite_store) as c:
        resp = c.post("/v1/events", content=body, headers={"content-type": ctype})
    assert resp.status_code in (200, 400, 413), resp.text
    payload = resp.json()
    if resp.status_code == 200:
        assert payload["accepted"] + payload["rejected_count"] >= 0
        assert all(r["error"] for r in payload["rejected"])
    else:
        assert payload["error"]
