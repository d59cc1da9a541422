"""One model call seen by two instrumentations is one run and one cost.

The provider SDK's own GenAI span and an instrumentation library's span (OpenLLMetry,
OpenInference) are two root spans, in different traces, with the same
``gen_ai.response.id``. On SQLite and PostgreSQL, through POST /v1/traces.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from monitor.store import Store
from monitor.store import schema as t
from tests.support.otlp import make_app, make_spans, request_of

PB = {"content-type": "application/x-protobuf"}
SDK = {  # the SDK's own span (current GenAI semantic conventions)
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.response.model": "gpt-4o-2024-08-06",
    "gen_ai.usage.input_tokens": 1200,
    "gen_ai.usage.output_tokens": 80,
}
LIBRARY = {  # OpenLLMetry's span of the same call (older attribute names)
    "gen_ai.system": "openai",
    "llm.request.type": "chat",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.response.model": "gpt-4o-2024-08-06",
    "gen_ai.usage.prompt_tokens": 1200,
    "gen_ai.usage.completion_tokens": 80,
}


def spans(*specs: tuple[dict[str, Any], str], service: str = "Invoice Triage") -> bytes:
    made = make_spans(
        [
            {"name": "chat gpt-4o", "attributes": {**a, "gen_ai.response.id": rid}}
            for a, rid in specs
        ],
        service=service,
    )
    assert len({s.context.trace_id for s in made}) == len(made)  # each a root of its own
    body: bytes = request_of(made).SerializeToString()
    return body


def stored(store: Store) -> list[dict[str, Any]]:
    with store.read() as conn:
        rows = conn.execute(select(t.events.c.type, t.events.c.payload))
        return [{"type": r[0], **orjson.loads(r[1])} for r in rows]


def test_two_instrumentations_of_one_call_are_one_run_and_one_cost(store: Store) -> None:
    with TestClient(make_app(store)) as client:
        first = client.post(
            "/v1/traces",
            content=spans((SDK, "chatcmpl-1"), (LIBRARY, "chatcmpl-1"), (SDK, "chatcmpl-2")),
            headers=PB,
        )
        assert first.status_code == 200, first.text
        # the library's span of call 1 exported again later, in a request of its own
        again = client.post("/v1/traces", content=spans((LIBRARY, "chatcmpl-1")), headers=PB)
        assert again.status_code == 200
        # another workflow's call with the same id is another call
        other = spans((SDK, "chatcmpl-1"), service="Support Replies")
        assert client.post("/v1/traces", content=other, headers=PB).status_code == 200
        metrics = client.get("/metrics").text
    events = stored(store)
    by = {(e["workflow"], e["type"]): 0 for e in events}
    for e in events:
        by[(e["workflow"], e["type"])] += 1
    assert by == {
        ("invoice-triage", "run"): 2,
        ("invoice-triage", "cost"): 2,
        ("support-replies", "run"): 1,
        ("support-replies", "cost"): 1,
    }
    costs = [e for e in events if e["type"] == "cost" and e["workflow"] == "invoice-triage"]
    assert sorted(c["request_id"] for c in costs) == ["chatcmpl-1", "chatcmpl-2"]
    assert costs[0]["cost_usd"] == pytest.approx(
        costs[1]["cost_usd"]
    )  # same usage, priced once each
    runs = 'driftwarden_runs_total{status="ok",workflow="invoice-triage"}'
    assert f"{runs} 2.0" in metrics
