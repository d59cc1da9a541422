"""Native ``cost`` events without ``cost_usd`` are priced from genai-prices, as the README
promises and as the cost-log and OTLP paths do: through POST /v1/events and through
``driftwarden ingest``, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from genai_prices import Usage, calc_price
from sqlalchemy import select
from typer.testing import CliRunner

from collectors.prices import PRICE_SOURCE
from monitor.cli.main import app
from monitor.store import Store
from monitor.store import schema as t
from tests.support.otlp import make_app

TS = "2026-11-18T10:00:00Z"
AT = datetime(2026, 11, 18, 10, tzinfo=UTC)
UNPRICED = {"id": "c1", "type": "cost", "workflow": "wf", "ts": TS, "model": "gpt-4o"}
EVENTS: list[dict[str, Any]] = [
    {**UNPRICED, "input_tokens": 2000, "output_tokens": 150, "cached_tokens": 1500},
    {**UNPRICED, "id": "c2", "cost_usd": 0.5, "input_tokens": 10},  # priced by the client
    {**UNPRICED, "id": "c3", "model": "acme-13b", "input_tokens": 10},  # unknown: unpriced
]


def want() -> float:
    usage = Usage(input_tokens=2000, output_tokens=150, cache_read_tokens=1500)
    return float(calc_price(usage, "gpt-4o", genai_request_timestamp=AT).total_price)


def costs(store: Store) -> dict[str, tuple[float | None, str | None]]:
    with store.read() as conn:
        rows = conn.execute(select(t.events.c.id, t.events.c.payload)).all()
    return {
        r[0]: (orjson.loads(r[1]).get("cost_usd"), orjson.loads(r[1]).get("price_source"))
        for r in rows
    }


def check(store: Store) -> None:
    found = costs(store)
    assert found["c1"][0] == pytest.approx(want()) and found["c1"][1] == PRICE_SOURCE
    assert found["c2"] == (0.5, None)
    assert found["c3"] == (None, None)


@pytest.mark.parametrize("kind", ["application/json", "application/x-ndjson"])
def test_post_prices_cost_events_that_have_no_cost(store: Store, kind: str) -> None:
    if kind == "application/json":
        body = json.dumps(EVENTS)
    else:
        body = "\n".join(json.dumps(e) for e in EVENTS)
    with TestClient(make_app(store)) as client:
        resp = client.post("/v1/events", content=body, headers={"content-type": kind})
        metrics = client.get("/metrics").text
    assert resp.status_code == 200 and resp.json()["accepted"] == 3, resp.text
    check(store)
    spent = 'driftwarden_cost_usd_total{model="gpt-4o",workflow="wf"}'
    line = next(x for x in metrics.splitlines() if x.startswith(spent))
    assert float(line.split()[-1]) == pytest.approx(want() + 0.5)
    assert 'driftwarden_cost_unpriced_total{model="acme-13b"} 1.0' in metrics


def test_ingest_command_prices_them_too(store: Store, tmp_path: Path) -> None:
    data = tmp_path / "costs.jsonl"
    data.write_text("\n".join(json.dumps(e) for e in EVENTS) + "\n")
    result = CliRunner().invoke(app, ["ingest", str(data), "--db", store.url])
    assert result.exit_code == 0, result.output
    check(store)
