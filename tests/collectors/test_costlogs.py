"""Cost logs: OpenAI/Anthropic usage, LiteLLM SpendLogs rows, generic CSV."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from genai_prices import Usage, calc_price
from sqlalchemy import select

from collectors.costlogs import FORMATS, CostlogOptions, parse_costlog
from collectors.events import Cost
from collectors.native import BatchError
from collectors.prices import PRICE_SOURCE
from monitor.store import Store
from monitor.store import schema as t
from tests.support.otlp import make_app

CREATED = 1_795_000_000  # 2026-11-18
RECEIVED = CREATED + 3600.0


def reference(model: str, at: float = CREATED, **usage: int) -> float:
    when = datetime.fromtimestamp(at, tz=UTC)
    return float(calc_price(Usage(**usage), model, genai_request_timestamp=when).total_price)


def parse(fmt: str, data: Any, **options: Any) -> tuple[list[Cost], list[Any]]:
    raw = data if isinstance(data, bytes | str) else orjson.dumps(data)
    events, rejected = parse_costlog(fmt, raw, options, received_at=RECEIVED)
    assert all(isinstance(e, Cost) for e in events)
    return events, rejected  # type: ignore[return-value]


CHAT = {
    "id": "chatcmpl-A1",
    "object": "chat.completion",
    "created": CREATED,
    "model": "gpt-4o-2024-08-06",
    "metadata": {"workflow": "support-replies", "team": "care"},
    "usage": {
        "prompt_tokens": 2000,
        "completion_tokens": 150,
        "total_tokens": 2150,
        "prompt_tokens_details": {"cached_tokens": 1500},
    },
}


def test_openai_chat_usage_is_priced_with_cached_tokens_inside_prompt_tokens() -> None:
    (cost,), rejected = parse("openai", [CHAT])
    assert rejected == []
    assert (cost.id, cost.request_id, cost.workflow, cost.team) == (
        "openai:chatcmpl-A1",
        "chatcmpl-A1",
        "support-replies",
        "care",
    )
    assert (cost.input_tokens, cost.output_tokens, cost.cached_tokens) == (2000, 150, 1500)
    assert (cost.provider, cost.epoch, cost.price_source) == ("openai", CREATED, PRICE_SOURCE)
    want = reference(
        "gpt-4o-2024-08-06", input_tokens=2000, output_tokens=150, cache_read_tokens=1500
    )
    assert cost.cost_usd == pytest.approx(want)


def test_openai_responses_api_names_and_list_envelope() -> None:
    response = {
        "id": "resp_9",
        "object": "response",
        "created_at": CREATED,
        "model": "gpt-4o-mini",
        "usage": {
            "input_tokens": 800,
            "output_tokens": 60,
            "input_tokens_details": {"cached_tokens": 100},
        },
    }
    (cost,), _ = parse("openai", {"object": "list", "data": [response]}, workflow="drafts")
    assert (cost.workflow, cost.input_tokens, cost.cached_tokens) == ("drafts", 800, 100)
    want = reference("gpt-4o-mini", input_tokens=800, output_tokens=60, cache_read_tokens=100)
    assert cost.cost_usd == pytest.approx(want)


def test_anthropic_input_tokens_exclude_cache_and_are_converted() -> None:
    message = {
        "id": "msg_1",
        "model": "claude-sonnet-4-5",
        "ts": CREATED,
        "usage": {
            "input_tokens": 50,
            "output_tokens": 20,
            "cache_read_input_tokens": 4000,
            "cache_creation_input_tokens": 300,
        },
    }
    (cost,), _ = parse("anthropic", [message], workflow="w")
    assert (cost.input_tokens, cost.cached_tokens, cost.provider) == (4350, 4000, "anthropic")
    want = reference(
        "claude-sonnet-4-5",
        input_tokens=4350,
        output_tokens=20,
        cache_read_tokens=4000,
        cache_write_tokens=300,
    )
    assert cost.cost_usd == pytest.approx(want)


def test_ndjson_records_are_numbered_by_line_and_bad_ones_rejected() -> None:
    lines = b"\n".join(
        [
            orjson.dumps(CHAT),
            b"{not json",
            orjson.dumps({**CHAT, "id": "chatcmpl-B", "usage": {"prompt_tokens": -3}}),
            orjson.dumps({**CHAT, "id": "chatcmpl-C", "metadata": {}}),
        ]
    )
    events, rejected = parse("openai", lines)
    assert [e.id for e in events] == ["openai:chatcmpl-A1"]
    assert [(r.index, r.field) for r in rejected] == [(2, ""), (3, "input_tokens"), (4, "workflow")]


def test_unknown_model_keeps_cost_empty() -> None:
    (cost,), _ = parse("openai", [{**CHAT, "model": "acme-13b"}])
    assert (cost.cost_usd, cost.price_source, cost.input_tokens) == (None, None, 2000)


SPEND_ROW = {
    "request_id": "req-77",
    "call_type": "acompletion",
    "spend": 0.0123,
    "total_tokens": 1100,
    "prompt_tokens": 1000,
    "completion_tokens": 100,
    "startTime": "2026-11-18 17:33:20.123",
    "model": "openai/gpt-4o",
    "custom_llm_provider": "openai",
    "user": "u-5",
    "team_id": "team-sales",
    "metadata": '{"workflow": "crm-updates", "usage_object": '
    '{"prompt_tokens_details": {"cached_tokens": 400}}}',
    "request_tags": '["env:prod", "workflow:ignored-when-metadata-says"]',
    "status": "success",
}


def test_litellm_spend_rows_keep_their_spend_and_context() -> None:
    (cost,), rejected = parse("litellm", [SPEND_ROW])
    assert rejected == []
    assert (cost.id, cost.workflow, cost.team, cost.user) == (
        "litellm:req-77",
        "crm-updates",
        "team-sales",
        "u-5",
    )
    assert (cost.cost_usd, cost.price_source, cost.cached_tokens) == (0.0123, None, 400)
    assert cost.epoch == datetime(2026, 11, 18, 17, 33, 20, 123000, tzinfo=UTC).timestamp()
    assert cost.attributes == {"call_type": "acompletion", "status": "success"}


def test_litellm_row_without_spend_is_priced_and_tag_names_the_workflow() -> None:
    row = {**SPEND_ROW, "spend": None, "metadata": {}, "request_tags": ["workflow:triage"]}
    (cost,), _ = parse("litellm", [row])
    assert cost.workflow == "triage"
    at = datetime(2026, 11, 18, 17, 33, 20, 123000, tzinfo=UTC).timestamp()
    want = reference("gpt-4o", at=at, input_tokens=1000, output_tokens=100)
    assert cost.cost_usd == pytest.approx(want)


CSV = """time,model_name,usd,in,out,cached,wf
2026-11-18T10:00:00Z,gpt-4o,0.5,100,10,,billing
2026-11-18T10:00:00Z,gpt-4o,,100,10,40,billing
2026-11-18T10:00:00Z,gpt-4o,,100,10,40,billing
2026-11-18T11:00:00Z,gpt-4o,,lots,10,,billing
"""
COLUMNS = {
    "ts": "time",
    "model": "model_name",
    "cost_usd": "usd",
    "input_tokens": "in",
    "output_tokens": "out",
    "cached_tokens": "cached",
    "workflow": "wf",
}


def test_csv_with_a_column_mapping() -> None:
    events, rejected = parse("csv", CSV, columns=orjson.dumps(COLUMNS).decode())
    assert [(r.index, r.field) for r in rejected] == [(5, "input_tokens")]
    assert "column 'in'" in rejected[0].error
    first, second, third = events
    assert (first.cost_usd, first.input_tokens, first.workflow) == (0.5, 100, "billing")
    at = datetime(2026, 11, 18, 10, tzinfo=UTC).timestamp()
    want = reference("gpt-4o", at=at, input_tokens=100, output_tokens=10, cache_read_tokens=40)
    assert second.cost_usd == pytest.approx(want)
    # identical rows are two records, and re-importing the file gives the same ids
    assert second.id != third.id
    again, _ = parse("csv", CSV, columns=COLUMNS)
    assert [e.id for e in again] == [e.id for e in events]


def test_csv_input_without_cached_tokens_is_converted() -> None:
    mapping = "ts=time,model=model_name,input_tokens=in,output_tokens=out,cached_tokens=cached"
    events, _ = parse("csv", CSV, columns=mapping, workflow="w", input_includes_cached="false")
    assert [e.input_tokens for e in events] == [100, 140, 140]


@pytest.mark.parametrize(
    ("fmt", "data", "options", "message"),
    [
        ("xml", b"", {}, "unknown cost-log format"),
        ("csv", CSV, {"columns": {"price": "usd"}}, "columns: unknown field"),
        ("csv", CSV, {"columns": {"ts": "when"}}, "no column(s) when"),
        ("csv", CSV, {"colour": "blue"}, "unknown cost-log option"),
        ("openai", b"{nope", {}, "not valid JSON"),
    ],
)
def test_unusable_input_or_options_fail_as_a_whole(
    fmt: str, data: Any, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(BatchError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_costlog(fmt, data, options)


def test_options_parse_from_query_strings() -> None:
    opts = CostlogOptions.parse(
        {"workflow": "w", "column.ts": "time", "map.cost_usd": "usd", "delimiter": ";"}
    )
    assert opts.columns == {"ts": "time", "cost_usd": "usd"}
    assert (opts.workflow, opts.delimiter) == ("w", ";")
    assert set(FORMATS) == {"openai", "anthropic", "litellm", "csv"}


def test_cost_logs_post_to_v1_events_with_a_format(sqlite_store: Store) -> None:
    with TestClient(make_app(sqlite_store)) as client:
        reply = client.post(
            "/v1/events?format=openai&workflow=fallback",
            content=orjson.dumps([CHAT, {**CHAT, "id": "x", "model": "acme-13b"}]),
            headers={"content-type": "application/json"},
        )
        again = client.post(
            "/v1/events?format=openai&workflow=fallback",
            content=orjson.dumps([CHAT]),
            headers={"content-type": "application/json"},
        )
        metrics = client.get("/metrics").text
    assert reply.status_code == 200, reply.text
    assert (reply.json()["accepted"], again.json()["duplicates"]) == (2, 1)
    assert 'driftwarden_cost_unpriced_total{model="acme-13b"} 1.0' in metrics


def _nested(depth: int) -> bytes:
    """A record with no id (so it is identified by a hash of its content), ``depth`` deep."""
    head = b'{"model": "gpt-4o", "prompt_tokens": 10, "usage": {"input_tokens": 10}, "x": '
    return head + b"[" * depth + b"]" * depth + b"}"


@pytest.mark.parametrize("fmt", ["litellm", "openai", "anthropic"])
def test_deeply_nested_records_are_rejected_by_index_and_the_rest_stored(
    store: Store, fmt: str
) -> None:
    good = {"model": "gpt-4o", "prompt_tokens": 10, "usage": {"input_tokens": 10}}
    body = b"\n".join([orjson.dumps(good), _nested(500), _nested(900)])
    with TestClient(make_app(store)) as client:
        reply = client.post(
            f"/v1/events?format={fmt}&workflow=wf",
            content=body,
            headers={"content-type": "application/x-ndjson"},
        )
    assert reply.status_code == 200, reply.text
    assert reply.json()["accepted"] == 1
    assert [(r["index"], r["field"]) for r in reply.json()["rejected"]] == [(2, ""), (3, "")]
    assert "nested too deeply" in reply.json()["rejected"][0]["error"]
    assert store.count_events() == 1


def test_litellm_zero_spend_is_repriced_or_unpriced_but_a_cache_hit_stays_free(
    store: Store,
) -> None:
    rows = [
        {**SPEND_ROW, "request_id": "zero", "spend": 0.0},  # LiteLLM could not price it
        {**SPEND_ROW, "request_id": "odd", "spend": 0.0, "model": "acme-13b"},
        {**SPEND_ROW, "request_id": "hit", "spend": 0.0, "cache_hit": "True"},
        {**SPEND_ROW, "request_id": "none", "spend": 0, "prompt_tokens": 0, "completion_tokens": 0},
    ]
    with TestClient(make_app(store)) as client:
        reply = client.post(
            "/v1/events?format=litellm",
            content=orjson.dumps(rows),
            headers={"content-type": "application/json"},
        )
        metrics = client.get("/metrics").text
    assert reply.status_code == 200 and reply.json()["accepted"] == 4, reply.text
    with store.read() as conn:
        found = {
            r[0]: orjson.loads(r[1])
            for r in conn.execute(select(t.events.c.id, t.events.c.payload))
        }
    at = datetime(2026, 11, 18, 17, 33, 20, 123000, tzinfo=UTC).timestamp()
    priced = found["litellm:zero"]
    usage = {"input_tokens": 1000, "output_tokens": 100, "cache_read_tokens": 400}
    assert priced["cost_usd"] == pytest.approx(reference("gpt-4o", at=at, **usage))
    assert priced["price_source"] == PRICE_SOURCE
    assert found["litellm:odd"].get("cost_usd") is None
    assert 'driftwarden_cost_unpriced_total{model="acme-13b"} 1.0' in metrics
    assert found["litellm:hit"]["cost_usd"] == 0.0
    assert found["litellm:none"]["cost_usd"] == 0
