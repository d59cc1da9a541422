"""Pricing from the maintained genai-prices table: never guessed, cache not double counted."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from genai_prices import Usage, calc_price

from collectors.events import convert_event
from collectors.prices import (
    PRICE_SOURCE,
    TokenUsage,
    fill_cost,
    price_tokens,
    unpriced_models,
)

AT = datetime(2026, 11, 1, tzinfo=UTC)


def reference(model: str, **usage: int) -> float:
    return float(calc_price(Usage(**usage), model, genai_request_timestamp=AT).total_price)


def test_known_model_costs_what_genai_prices_says() -> None:
    quote = price_tokens("gpt-4o", TokenUsage(input_tokens=12_000, output_tokens=900), at=AT)
    assert quote is not None
    assert quote.cost_usd == pytest.approx(
        reference("gpt-4o", input_tokens=12_000, output_tokens=900)
    )
    assert (quote.source, quote.priced_model) == (PRICE_SOURCE, "gpt-4o")
    assert PRICE_SOURCE.startswith("genai-prices ")


def test_cached_tokens_are_priced_at_the_cache_rate_and_counted_once() -> None:
    usage = TokenUsage(input_tokens=10_000, output_tokens=0, cached_tokens=8_000)
    quote = price_tokens("gpt-4o", usage, at=AT)
    full = price_tokens("gpt-4o", TokenUsage(input_tokens=10_000), at=AT)
    assert quote is not None and full is not None
    want = reference("gpt-4o", input_tokens=10_000, cache_read_tokens=8_000)
    assert quote.cost_usd == pytest.approx(want)
    # 2,000 at the input rate + 8,000 at the (cheaper) cache-read rate, not 18,000 tokens
    assert full.cost_usd * 0.2 < quote.cost_usd < full.cost_usd


def test_unknown_model_is_not_guessed() -> None:
    assert price_tokens("acme-internal-13b", TokenUsage(input_tokens=100), at=AT) is None
    assert price_tokens("", TokenUsage(input_tokens=100), at=AT) is None


def test_provider_prefix_in_the_model_name_is_understood() -> None:
    quote = price_tokens("openai/gpt-4o", TokenUsage(input_tokens=1000), at=AT)
    assert quote is not None
    assert quote.cost_usd == pytest.approx(reference("gpt-4o", input_tokens=1000))


def test_unknown_provider_is_ignored_but_a_known_one_is_respected() -> None:
    via_gateway = price_tokens("gpt-4o", TokenUsage(input_tokens=1000), provider="acme-gw", at=AT)
    assert via_gateway is not None
    # anthropic does not sell gpt-4o: no borrowing another provider's price
    assert (
        price_tokens("gpt-4o", TokenUsage(input_tokens=1000), provider="anthropic", at=AT) is None
    )


@pytest.mark.parametrize(
    ("usage", "field"),
    [
        ({"input_tokens": -1}, "input_tokens"),
        ({"input_tokens": 10, "cached_tokens": 11}, "cached_tokens"),
        ({"input_tokens": 10, "cached_tokens": 6, "cache_write_tokens": 5}, "cached_tokens"),
    ],
)
def test_impossible_token_usage_names_the_field(usage: dict[str, int], field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        TokenUsage(**usage)


def test_fill_cost_prices_a_cost_dict_at_its_own_time() -> None:
    cost = {"model": "gpt-4o", "input_tokens": 100, "output_tokens": 10, "ts": AT.timestamp()}
    fill_cost(cost)
    assert cost["cost_usd"] == pytest.approx(
        reference("gpt-4o", input_tokens=100, output_tokens=10)
    )
    assert cost["price_source"] == PRICE_SOURCE


@pytest.mark.parametrize(
    "cost",
    [
        {"model": "gpt-4o", "input_tokens": 100, "cost_usd": 0.5},  # reported cost wins
        {"model": "gpt-4o"},  # nothing to price
        {"input_tokens": 100},  # no model
        {"model": "gpt-4o", "input_tokens": "100"},  # invalid: validation reports it
        {"model": "gpt-4o", "input_tokens": 10, "cached_tokens": 20},
    ],
)
def test_fill_cost_leaves_what_it_cannot_price_alone(cost: dict[str, object]) -> None:
    before = dict(cost)
    fill_cost(cost)
    assert cost == before


def test_unpriced_models_lists_cost_events_with_tokens_but_no_cost() -> None:
    def cost(i: int, **fields: object) -> object:
        return convert_event({"id": f"c{i}", "type": "cost", "workflow": "w", **fields})

    events = [
        cost(1, model="mystery", input_tokens=5),
        cost(2, model="gpt-4o", input_tokens=5, cost_usd=0.1),
        cost(3, input_tokens=5),
        cost(4, model="empty"),
        convert_event({"id": "r", "type": "run", "workflow": "w", "model": "mystery"}),
    ]
    assert unpriced_models(events) == ["mystery", "unknown"]  # type: ignore[arg-type]


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-pro"])
@pytest.mark.parametrize(
    ("inputs", "outputs", "cached", "written"),
    [(1, 0, 0, 0), (1234, 567, 0, 0), (5000, 100, 4000, 500), (250_000, 2000, 1000, 0)],
)
def test_fast_rates_agree_with_genai_prices_below_and_above_volume_tiers(
    model: str, inputs: int, outputs: int, cached: int, written: int
) -> None:
    usage = TokenUsage(inputs, outputs, cached, written)
    quote = price_tokens(model, usage, at=AT)
    extra = {"cache_read_tokens": cached} if cached else {}
    if written:
        extra["cache_write_tokens"] = written
    want = reference(model, input_tokens=inputs, output_tokens=outputs, **extra)
    assert quote is not None
    assert quote.cost_usd == pytest.approx(want, rel=1e-12, abs=1e-15)
