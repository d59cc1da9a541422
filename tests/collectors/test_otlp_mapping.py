"""Span -> event mapping: GenAI semconv, OpenInference, driftwarden attributes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from genai_prices import Usage, calc_price

from collectors.events import Cost, Review, Run
from collectors.otlp import SpanEvent, SpanRecord
from collectors.otlp_mapping import MappingOptions, map_spans, normalise_workflow
from collectors.prices import PRICE_SOURCE

TRACE = "0af7651916cd43dd8448eb211c80319c"
START = 1_795_424_400_000_000_000  # 2026-11-17T...Z, in nanoseconds
RECEIVED = START / 1e9 + 60


def span(
    attributes: dict[str, Any],
    *,
    span_id: str = "b7ad6b7169203331",
    status: int = 0,
    message: str = "",
    duration_ms: int = 812,
    resource: dict[str, Any] | None = None,
    events: list[SpanEvent] | None = None,
    start: int = START,
) -> SpanRecord:
    return SpanRecord(
        TRACE,
        span_id,
        "chat gpt-4o",
        3,
        start,
        start + duration_ms * 1_000_000,
        status,
        message,
        attributes,
        events or [],
        {"service.name": "Invoice Triage"} if resource is None else resource,
        "test",
    )


def mapped(*spans: SpanRecord, **options: Any) -> Any:
    return map_spans(list(spans), MappingOptions(**options), received_at=RECEIVED)


def expected_cost(model: str, at_ns: int = START + 812_000_000, **usage: int) -> float:
    when = datetime.fromtimestamp(at_ns / 1e9, tz=UTC)
    return float(calc_price(Usage(**usage), model, genai_request_timestamp=when).total_price)


def test_genai_span_becomes_a_run_and_a_priced_cost_event() -> None:
    result = mapped(
        span(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.response.model": "gpt-4o-2024-08-06",
                "gen_ai.usage.input_tokens": 1200,
                "gen_ai.usage.output_tokens": 80,
                "gen_ai.usage.cache_read.input_tokens": 200,
            }
        )
    )
    run, cost = result.events
    assert isinstance(run, Run) and isinstance(cost, Cost)
    assert (run.id, cost.id) == (TRACE + "b7ad6b7169203331", TRACE + "b7ad6b7169203331:cost")
    assert (run.workflow, run.status, run.latency_ms) == ("invoice-triage", "ok", 812.0)
    assert (run.model, run.model_version, run.trace_id) == ("gpt-4o", "gpt-4o-2024-08-06", TRACE)
    # tokens and cost only on the cost event, so spend is counted once
    assert (run.input_tokens, run.output_tokens, run.cost_usd) == (None, None, None)
    assert (cost.input_tokens, cost.output_tokens, cost.cached_tokens) == (1200, 80, 200)
    assert (cost.provider, cost.model, cost.price_source) == (
        "openai",
        "gpt-4o-2024-08-06",
        PRICE_SOURCE,
    )
    want = expected_cost(
        "gpt-4o-2024-08-06", input_tokens=1200, output_tokens=80, cache_read_tokens=200
    )
    assert cost.cost_usd == pytest.approx(want)
    no_cache = expected_cost("gpt-4o-2024-08-06", input_tokens=1200, output_tokens=80)
    assert cost.cost_usd is not None
    assert cost.cost_usd < no_cache  # cached tokens priced at the cache-read rate
    assert result.rejected == [] and result.skipped == 0


def test_older_genai_names_are_understood() -> None:
    (_, cost) = mapped(
        span(
            {
                "gen_ai.system": "anthropic",
                "gen_ai.request.model": "claude-sonnet-4-5",
                "gen_ai.usage.prompt_tokens": 500,
                "gen_ai.usage.completion_tokens": 40,
            }
        )
    ).events
    assert (cost.provider, cost.input_tokens, cost.output_tokens) == ("anthropic", 500, 40)
    want = expected_cost("claude-sonnet-4-5", input_tokens=500, output_tokens=40)
    assert cost.cost_usd == pytest.approx(want)


def test_cache_reads_above_input_mean_input_excluded_them() -> None:
    (_, cost) = mapped(
        span(
            {
                "gen_ai.provider.name": "anthropic",
                "gen_ai.request.model": "claude-sonnet-4-5",
                "gen_ai.usage.input_tokens": 10,
                "gen_ai.usage.output_tokens": 5,
                "gen_ai.usage.cache_read.input_tokens": 3000,
                "gen_ai.usage.cache_creation.input_tokens": 100,
            }
        )
    ).events
    assert (cost.input_tokens, cost.cached_tokens) == (3110, 3000)
    assert cost.attributes == {"cache_write_tokens": 100}
    want = expected_cost(
        "claude-sonnet-4-5",
        input_tokens=3110,
        output_tokens=5,
        cache_read_tokens=3000,
        cache_write_tokens=100,
    )
    assert cost.cost_usd == pytest.approx(want)


def test_openinference_llm_span_maps_tokens_and_reported_cost() -> None:
    (run, cost) = mapped(
        span(
            {
                "openinference.span.kind": "LLM",
                "llm.model_name": "gpt-4o-mini",
                "llm.provider": "openai",
                "llm.token_count.prompt": 300,
                "llm.token_count.completion": 20,
                "llm.token_count.prompt_details.cache_read": 100,
                "llm.cost.total": 0.5,
                "user.id": "u-17",
            }
        )
    ).events
    assert (run.model, run.user, run.attributes["openinference.span.kind"]) == (
        "gpt-4o-mini",
        "u-17",
        "LLM",
    )
    assert (cost.input_tokens, cost.output_tokens, cost.cached_tokens) == (300, 20, 100)
    assert (cost.cost_usd, cost.price_source, cost.user) == (0.5, None, "u-17")


def test_openinference_prompt_and_completion_cost_add_up() -> None:
    (_, cost) = mapped(
        span(
            {
                "llm.model_name": "m",
                "llm.token_count.prompt": 1,
                "llm.cost.prompt": 0.25,
                "llm.cost.completion": 0.5,
            }
        )
    ).events
    assert cost.cost_usd == 0.75


def test_reported_genai_cost_wins_over_the_price_table() -> None:
    (_, cost) = mapped(
        span(
            {
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.input_tokens": 10,
                "gen_ai.usage.cost": 1.25,
            }
        )
    ).events
    assert (cost.cost_usd, cost.price_source) == (1.25, None)


def test_unknown_model_is_left_unpriced_never_guessed() -> None:
    result = mapped(
        span(
            {
                "gen_ai.request.model": "in-house-llm-7",
                "gen_ai.usage.input_tokens": 10,
                "gen_ai.usage.output_tokens": 3,
            }
        )
    )
    cost = result.events[1]
    assert (cost.cost_usd, cost.price_source, cost.input_tokens) == (None, None, 10)
    assert result.unpriced == ["in-house-llm-7"]


@pytest.mark.parametrize(
    ("status", "message", "error_type", "expected"),
    [
        (2, "", None, "error"),
        (0, "", "RateLimitError", "error"),
        (2, "", "openai.APITimeoutError", "timeout"),
        (2, "DEADLINE_EXCEEDED", "_OTHER", "timeout"),
        (1, "", None, "ok"),
    ],
)
def test_status_follows_span_status_and_error_type(
    status: int, message: str, error_type: str | None, expected: str
) -> None:
    attrs: dict[str, Any] = {"gen_ai.operation.name": "chat"}
    if error_type:
        attrs["error.type"] = error_type
    (run,) = mapped(span(attrs, status=status, message=message)).events
    assert run.status == expected


def test_evaluation_events_set_groundedness_and_keep_other_scores() -> None:
    evals = [
        SpanEvent(
            "gen_ai.evaluation.result",
            START,
            {"gen_ai.evaluation.name": "Relevance", "gen_ai.evaluation.score.value": 0.7},
        ),
        SpanEvent(
            "gen_ai.evaluation.result",
            START,
            {"gen_ai.evaluation.name": "Faithfulness", "gen_ai.evaluation.score.value": 0.91},
        ),
    ]
    (run,) = mapped(span({"gen_ai.operation.name": "chat"}, events=evals)).events
    assert run.groundedness == 0.91
    assert run.attributes["eval.Relevance"] == 0.7


def test_openinference_evaluation_attributes_are_read() -> None:
    (run,) = mapped(
        span(
            {
                "openinference.span.kind": "LLM",
                "evaluations.0.evaluation.name": "groundedness",
                "evaluations.0.evaluation.score": 0.4,
            }
        )
    ).events
    assert run.groundedness == 0.4


def test_driftwarden_attributes_fill_the_run_and_emit_a_review() -> None:
    result = mapped(
        span(
            {
                "driftwarden.workflow": "crm-updates",
                "driftwarden.action": "crm_write",
                "driftwarden.groundedness": 0.83,
                "driftwarden.team": "sales-emea",
                "driftwarden.user": "ana",
                "driftwarden.model_version": "v7",
                "driftwarden.prompt_version": "p3",
                "driftwarden.review.decision": "edited",
                "driftwarden.review.edit_ratio": 0.2,
                "driftwarden.review.time_saved_s": 90,
            }
        )
    )
    run, review = result.events
    assert isinstance(review, Review)
    assert (run.workflow, run.action, run.groundedness, run.team, run.user) == (
        "crm-updates",
        "crm_write",
        0.83,
        "sales-emea",
        "ana",
    )
    assert (run.model_version, run.prompt_version) == ("v7", "p3")
    assert (review.id, review.decision, review.edit_ratio, review.time_saved_s) == (
        TRACE + "b7ad6b7169203331:review",
        "edited",
        0.2,
        90.0,
    )
    assert (review.workflow, review.team, review.user) == ("crm-updates", "sales-emea", "ana")


def test_tool_span_reports_its_tool_as_the_action() -> None:
    (run,) = mapped(
        span({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "send_email"}, status=2)
    ).events
    assert (run.action, run.status) == ("send_email", "error")


def test_agent_span_tokens_do_not_double_count_children_spend() -> None:
    attrs = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 5000,
        "gen_ai.usage.output_tokens": 300,
    }
    assert [type(e).__name__ for e in mapped(span(attrs)).events] == ["Run"]
    both = mapped(span(attrs), cost_from_aggregate_spans=True).events
    assert [type(e).__name__ for e in both] == ["Run", "Cost"]


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        ("Invoice Triage", "invoice-triage"),
        ("billing/api v2", "billing-api-v2"),
        ("__Weird__", "weird__"),
        ("x" * 80, "x" * 64),
    ],
)
def test_service_names_are_normalised_into_workflow_names(service: str, expected: str) -> None:
    assert normalise_workflow(service) == expected
    (run,) = mapped(
        span({"gen_ai.operation.name": "chat"}, resource={"service.name": service})
    ).events
    assert run.workflow == expected


def test_explicit_invalid_workflow_is_rejected_not_renamed() -> None:
    result = mapped(span({"driftwarden.workflow": "Has Spaces"}))
    assert result.events == []
    assert result.rejected[0].span_id == "b7ad6b7169203331"
    assert result.rejected[0].error.startswith("workflow")


def test_span_without_any_workflow_uses_the_default_or_is_rejected() -> None:
    lone = span({"gen_ai.operation.name": "chat"}, resource={})
    assert "driftwarden.workflow" in mapped(lone).rejected[0].error
    (run,) = mapped(lone, default_workflow="fallback").events
    assert run.workflow == "fallback"


def test_plain_spans_are_skipped_silently_and_malformed_ai_spans_rejected() -> None:
    good = span({"gen_ai.operation.name": "chat"}, span_id="00000000000000a1")
    plain = span({"http.route": "/x"}, span_id="00000000000000a2")
    no_id = span({"gen_ai.operation.name": "chat"}, span_id="")
    backwards = span({"gen_ai.operation.name": "chat"}, span_id="00000000000000a3", duration_ms=-5)
    bad_value = span(
        {"gen_ai.usage.input_tokens": -4, "gen_ai.request.model": "gpt-4o"},
        span_id="00000000000000a4",
    )
    result = mapped(good, plain, no_id, backwards, bad_value)
    assert [e.id[-2:] for e in result.events] == ["a1"]
    assert result.skipped == 1
    assert [(r.index, r.error.split(":")[0]) for r in result.rejected] == [
        (2, "spanId"),
        (3, "endTimeUnixNano"),
        (4, "gen_ai.usage.input_tokens"),
    ]
    message = result.error_message()
    assert message.startswith("3 span(s) rejected: span #2: spanId")
    assert "span 00000000000000a4: gen_ai.usage.input_tokens" in message


def test_selection_can_require_driftwarden_attributes_or_take_every_span() -> None:
    genai = span({"gen_ai.operation.name": "chat"}, span_id="00000000000000b1")
    plain = span({"http.route": "/x"}, span_id="00000000000000b2")
    assert len(mapped(genai, plain, select="driftwarden").events) == 0
    assert len(mapped(genai, plain, select="all").events) == 2


def test_the_same_span_twice_in_a_request_maps_once() -> None:
    one = span({"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 10})
    assert len(mapped(one, one).events) == 2
