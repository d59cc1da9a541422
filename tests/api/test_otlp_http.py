"""POST /v1/traces over HTTP: the real OTel SDK exporter, partial success, limits, status codes."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from genai_prices import Usage, calc_price
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace.export import SpanExportResult
from sqlalchemy import select

from collectors.otlp_mapping import MappingOptions
from collectors.prices import PRICE_SOURCE
from monitor.api.otlp import _Gate, config_from_settings
from monitor.settings import Settings
from monitor.store import Store
from monitor.store import schema as t
from tests.support.daemon import Daemon, free_port
from tests.support.otlp import GENAI_CHAT, make_app, make_spans, otlp_json, request_of

PB = {"content-type": "application/x-protobuf"}
JS = {"content-type": "application/json"}


def stored(store: Store) -> list[dict[str, Any]]:
    with store.read() as conn:
        rows = conn.execute(select(t.events.c.type, t.events.c.payload).order_by(t.events.c.id))
        return [{"type": r[0], **orjson.loads(r[1])} for r in rows]


def metric(text: str, name: str, **labels: str) -> float | None:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{{want}}} ") or (not labels and line.startswith(name + " ")):
            return float(line.rsplit(" ", 1)[1])
    return None


@pytest.mark.slow
def test_sdk_exporter_with_gzip_stores_runs_tokens_and_cost_once(tmp_path: Path) -> None:
    spans = make_spans(
        [
            {"name": "chat gpt-4o", "attributes": GENAI_CHAT},
            {"name": "chat gpt-4o", "attributes": GENAI_CHAT, "error": "boom"},
            {"name": "GET /health", "attributes": {"http.route": "/health"}},
        ]
    )
    url = f"sqlite:///{tmp_path / 'daemon.db'}"
    env = {"DRIFTWARDEN_DETECTION": "false"}
    with Daemon(url, env=env, log_path=tmp_path / "daemon.log") as daemon:
        store = Store(url)
        exporter = OTLPSpanExporter(
            endpoint=daemon.url + "/v1/traces", compression=Compression.Gzip
        )
        assert exporter.export(spans) == SpanExportResult.SUCCESS
        first = stored(store)
        metrics_once = httpx.get(daemon.url + "/metrics").text
        assert exporter.export(spans) == SpanExportResult.SUCCESS  # an exporter retry
        assert stored(store) == first
        metrics_twice = httpx.get(daemon.url + "/metrics").text
        exporter.shutdown()  # type: ignore[no-untyped-call]  # the SDK leaves it unannotated
        store.dispose()
    kinds = sorted((e["type"], e.get("status", "")) for e in first)
    assert kinds == [("cost", ""), ("cost", ""), ("run", "error"), ("run", "ok")]
    assert all(
        e.get("input_tokens") is e.get("cost_usd") is None for e in first if e["type"] == "run"
    )
    costs = [e for e in first if e["type"] == "cost"]
    assert {(c["input_tokens"], c["output_tokens"], c["cached_tokens"]) for c in costs} == {
        (1200, 80, 200)
    }
    spend = sum(c["cost_usd"] for c in costs)
    one_call = calc_price(
        Usage(input_tokens=1200, output_tokens=80, cache_read_tokens=200), "gpt-4o-2024-08-06"
    )
    assert spend == pytest.approx(2 * float(one_call.total_price))
    assert {c["price_source"] for c in costs} == {PRICE_SOURCE}
    labels = {"workflow": "invoice-triage", "model": "gpt-4o-2024-08-06"}
    for text in (metrics_once, metrics_twice):
        assert metric(text, "driftwarden_tokens_total", direction="input", **labels) == 2400
        assert metric(text, "driftwarden_cost_usd_total", **labels) == pytest.approx(spend)
        assert (
            metric(text, "driftwarden_runs_total", workflow="invoice-triage", status="error") == 1
        )
        assert (
            metric(text, "driftwarden_events_ingested_total", workflow="invoice-triage", type="run")
            == 2
        )


def test_json_export_stores_the_same_events_as_protobuf(sqlite_store: Store) -> None:
    request = request_of(make_spans([{"name": "chat", "attributes": GENAI_CHAT}]))
    with TestClient(make_app(sqlite_store)) as client:
        reply = client.post("/v1/traces", content=otlp_json(request), headers=JS)
        assert (reply.status_code, reply.headers["content-type"]) == (200, "application/json")
        assert reply.json() == {}
        first = stored(sqlite_store)
        again = client.post("/v1/traces", content=request.SerializeToString(), headers=PB)
        assert (again.status_code, again.content) == (200, b"")
    assert len(first) == 2
    assert stored(sqlite_store) == first  # same ids: the protobuf copy added nothing


def test_partial_success_stores_the_rest_and_reports_the_count(sqlite_store: Store) -> None:
    spans = make_spans(
        [
            {"attributes": GENAI_CHAT},
            {"attributes": {**GENAI_CHAT, "driftwarden.workflow": "Not A Name"}},
            {"attributes": {"gen_ai.operation.name": "chat", "driftwarden.groundedness": 7}},
            {"attributes": {"http.route": "/plain"}},
        ]
    )
    body = request_of(spans).SerializeToString()
    with TestClient(make_app(sqlite_store)) as client:
        reply = client.post("/v1/traces", content=body, headers=PB)
        metrics = client.get("/metrics").text
    assert reply.status_code == 200
    response = ExportTraceServiceResponse.FromString(reply.content)
    assert response.partial_success.rejected_spans == 2
    message = response.partial_success.error_message
    assert "workflow" in message and "driftwarden.groundedness" in message
    assert sorted(e["type"] for e in stored(sqlite_store)) == ["cost", "run"]
    assert metric(metrics, "driftwarden_events_rejected_total", reason="validation") == 2


def test_gzip_bomb_gets_413_without_inflating_it(sqlite_store: Store) -> None:
    bomb = gzip.compress(b"\0" * (17 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 100_000
    with TestClient(make_app(sqlite_store)) as client:
        reply = client.post("/v1/traces", content=bomb, headers={**PB, "content-encoding": "gzip"})
    assert reply.status_code == 413
    assert "larger than" in status_pb2.Status.FromString(reply.content).message


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({"content-type": "text/plain"}, b"x", 415),
        ({**PB, "content-encoding": "br"}, b"x", 415),
        ({**PB, "content-encoding": "gzip"}, b"not gzip", 400),
        (PB, b"\xff\xff\xff", 400),
        (JS, b'{"resourceSpans": "nope"}', 400),
    ],
)
def test_bad_requests_get_a_4xx_with_an_rpc_status_body(
    sqlite_store: Store, headers: dict[str, str], body: bytes, status: int
) -> None:
    with TestClient(make_app(sqlite_store)) as client:
        reply = client.post("/v1/traces", content=body, headers=headers)
    assert reply.status_code == status
    if reply.headers["content-type"] == "application/json":
        assert reply.json()["message"]
    else:
        assert status_pb2.Status.FromString(reply.content).message


def test_full_concurrency_gate_answers_429_with_retry_after(sqlite_store: Store) -> None:
    app = make_app(sqlite_store)
    body = request_of(make_spans([{"attributes": GENAI_CHAT}])).SerializeToString()
    with TestClient(app) as client:
        assert client.post("/v1/traces", content=body, headers=PB).status_code == 200
        gate: _Gate = app.state.otlp_gate
        gate.active = gate.limit  # every slot taken by exports still in flight
        busy = client.post("/v1/traces", content=body, headers=PB)
        gate.active = 0
        assert client.post("/v1/traces", content=body, headers=PB).status_code == 200
    assert busy.status_code == 429
    assert busy.headers["retry-after"] == "1"


def test_store_down_answers_503_with_retry_after() -> None:
    down = Store(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing")
    body = request_of(make_spans([{"attributes": GENAI_CHAT}])).SerializeToString()
    with TestClient(make_app(down)) as client:
        reply = client.post("/v1/traces", content=body, headers=PB)
    assert reply.status_code == 503
    assert int(reply.headers["retry-after"]) > 0
    assert "unavailable" in status_pb2.Status.FromString(reply.content).message


def test_ingest_token_is_required_once_tokens_are_configured(sqlite_store: Store) -> None:
    body = request_of(make_spans([{"attributes": GENAI_CHAT}])).SerializeToString()
    with TestClient(make_app(sqlite_store, ingest_tokens=["s3cret"])) as client:
        denied = client.post("/v1/traces", content=body, headers=PB)
        allowed = client.post(
            "/v1/traces", content=body, headers={**PB, "authorization": "Bearer s3cret"}
        )
    assert denied.status_code == 401
    assert status_pb2.Status.FromString(denied.content).code == 16
    assert allowed.status_code == 200


def test_receiver_options_come_from_otlp_settings_fields(sqlite_store: Store) -> None:
    custom = Settings(  # type: ignore[call-arg]  # an init-only option of pydantic-settings
        database_url=sqlite_store.url,
        otlp_select="all",
        otlp_default_workflow="catch-all",
        otlp_concurrency=3,
        _env_file=None,
    )
    config = config_from_settings(custom)
    assert (config.options.select, config.options.default_workflow) == ("all", "catch-all")
    assert (config.concurrency, config.options.workflow_attribute) == (3, "driftwarden.workflow")
    plain_settings = Settings(database_url=sqlite_store.url, _env_file=None)  # type: ignore[call-arg]  # an init-only option of pydantic-settings
    plain = config_from_settings(plain_settings)
    assert plain.options == MappingOptions()


def test_a_span_naming_no_workflow_is_stored_under_the_configured_default(
    sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTWARDEN_OTLP_DEFAULT_WORKFLOW", "catch-all")
    monkeypatch.setenv("DRIFTWARDEN_OTLP_WORKFLOW_RESOURCE_ATTRIBUTE", "")
    body = request_of(make_spans([{"attributes": GENAI_CHAT}])).SerializeToString()
    with TestClient(make_app(sqlite_store)) as client:
        assert client.post("/v1/traces", content=body, headers=PB).status_code == 200
    assert {e["workflow"] for e in stored(sqlite_store)} == {"catch-all"}


def test_span_with_an_unknown_model_is_stored_unpriced_and_counted(sqlite_store: Store) -> None:
    attrs = {**GENAI_CHAT, "gen_ai.response.model": "acme-13b", "gen_ai.request.model": "acme"}
    body = request_of(make_spans([{"attributes": attrs}])).SerializeToString()
    with TestClient(make_app(sqlite_store)) as client:
        assert client.post("/v1/traces", content=body, headers=PB).status_code == 200
        metrics = client.get("/metrics").text
    (cost,) = [e for e in stored(sqlite_store) if e["type"] == "cost"]
    assert (cost["model"], cost["cost_usd"], cost["input_tokens"]) == ("acme-13b", None, 1200)
    assert metric(metrics, "driftwarden_cost_unpriced_total", model="acme-13b") == 1
