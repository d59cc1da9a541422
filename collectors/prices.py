"""Cost of a model call from its token counts, using the maintained genai-prices table.

Token convention (the one canonical ``cost`` events use): ``input_tokens`` INCLUDES cached
input tokens, and ``cached_tokens`` / ``cache_write_tokens`` are subsets of it. That is the
OpenAI (Chat Completions and Responses API) and OpenTelemetry GenAI convention, and also
what genai-prices expects, so cached tokens are priced at the cache-read rate and only the
remainder at the full input rate: nothing is counted twice. Sources that report input
without cached tokens (Anthropic's raw ``input_tokens``, Langfuse's ``input``) are converted
by their collector before they get here.

An unknown model is never guessed: ``price_tokens`` returns ``None`` and the collector leaves
``cost_usd`` empty, so the model shows up in ``driftwarden_cost_unpriced_total{model}``.

>>> quote = price_tokens("gpt-4o", TokenUsage(input_tokens=1000, output_tokens=100))
>>> quote is not None and quote.source == PRICE_SOURCE and quote.cost_usd > 0
True
>>> price_tokens("no-such-model-xyz", TokenUsage(input_tokens=10)) is None
True
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any, Final

import genai_prices
from genai_prices import Usage, calc_price, data_snapshot
from genai_prices.types import TieredPrices

from collectors.events import Cost, Event

PRICE_SOURCE: Final = f"genai-prices {genai_prices.__version__}"
UNKNOWN_MODEL: Final = "unknown"


@dataclass(slots=True)  # not frozen: its __init__ runs once per priced span
class TokenUsage:
    """Token counts of one call; ``input_tokens`` includes the cached ones (see module doc)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0

    def __post_init__(self) -> None:
        for name in ("input_tokens", "output_tokens", "cached_tokens", "cache_write_tokens"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must not be negative")
        if self.cached_tokens + self.cache_write_tokens > self.input_tokens:
            raise ValueError(
                "cached_tokens: cached and cache-write tokens are part of input_tokens "
                "and cannot exceed it"
            )

    @property
    def empty(self) -> bool:
        return self.input_tokens == 0 and self.output_tokens == 0


@dataclass(frozen=True, slots=True)
class PriceQuote:
    cost_usd: float
    source: str  # recorded in Cost.price_source
    priced_model: str  # the price-table entry that matched, e.g. "gpt-4o" for a dated name


@lru_cache(maxsize=256)
def _known_provider(provider: str) -> str | None:
    """The genai-prices provider id for a provider name, or None when it has no such provider.

    genai-prices matches OTel names such as ``aws.bedrock`` or ``gcp.vertex_ai`` itself.
    """
    try:
        return data_snapshot.get_snapshot().find_provider(None, provider, None).id
    except LookupError:
        return None


@lru_cache(maxsize=4096)
def _split_model(model: str, provider: str | None) -> tuple[str, str | None]:
    # LiteLLM and OpenRouter style names carry the provider: "openai/gpt-4o"
    if "/" in model:
        prefix, rest = model.split("/", 1)
        known = _known_provider(prefix)
        if known is not None and rest:
            return rest, known
    return model, _known_provider(provider) if provider else None


@dataclass(frozen=True, slots=True)
class _Linear:
    """A model's per-token prices up to the first volume tier (``limit`` input tokens)."""

    base: float  # per-request charge, if any
    input: float  # USD per token (floats: exact to ~1e-16, and 20x cheaper than Decimal)
    output: float
    cache_read: float
    cache_write: float
    limit: int | None  # None: no tiers
    priced_model: str

    def cost(self, usage: TokenUsage) -> float:
        uncached = usage.input_tokens - usage.cached_tokens - usage.cache_write_tokens
        total = (
            self.base
            + self.input * uncached
            + self.output * usage.output_tokens
            + self.cache_read * usage.cached_tokens
            + self.cache_write * usage.cache_write_tokens
        )
        return total


_PROBE: Final = 1000  # tokens per probe: far below any volume tier
_UNKNOWN: Final = "unknown"
_UNPROBED: Final = "unprobed"


def _calc(model_ref: str, provider_id: str | None, at: datetime, **usage: int) -> Any:
    return calc_price(
        Usage(**{"input_tokens": 0, "output_tokens": 0, **usage}),
        model_ref,
        provider_id=provider_id,
        genai_request_timestamp=at,
    )


@lru_cache(maxsize=4096)
def _rates(model_ref: str, provider_id: str | None, hour: int) -> _Linear | str:
    """Per-token rates of a model in one hour, found by pricing a few probe usages once.

    genai-prices takes about a millisecond per call and spans arrive by the thousand per
    second. Below the first volume tier ("cliff" tiers apply to all tokens once the input
    crosses them) a price is linear in the token counts, so the probes give exact rates;
    usage above the tier, or a model the probes cannot price, takes the full path.
    """
    at = datetime.fromtimestamp(hour * 3600, tz=UTC)
    try:
        zero = _calc(model_ref, provider_id, at)
    except LookupError:
        return _UNKNOWN
    starts = [
        tier.start
        for value in vars(zero.model_price).values()
        if isinstance(value, TieredPrices)
        for tier in value.tiers
    ]
    limit = min(starts) if starts else None
    if limit is not None and limit < 2 * _PROBE:
        return _UNPROBED

    def rate(**usage: int) -> float:
        price: Decimal = _calc(model_ref, provider_id, at, **usage).total_price
        return float((price - zero.total_price) / _PROBE)

    try:
        return _Linear(
            base=float(zero.total_price),
            input=rate(input_tokens=_PROBE),
            output=rate(output_tokens=_PROBE),
            cache_read=rate(input_tokens=_PROBE, cache_read_tokens=_PROBE),
            cache_write=rate(input_tokens=_PROBE, cache_write_tokens=_PROBE),
            limit=limit,
            priced_model=zero.model.id,
        )
    except (LookupError, ValueError):
        return _UNPROBED


def price_tokens(
    model: str,
    usage: TokenUsage,
    *,
    provider: str | None = None,
    at: datetime | None = None,
) -> PriceQuote | None:
    """Price one call, or ``None`` when the price table does not know the model.

    ``provider`` narrows the match when genai-prices knows that provider; a provider it
    does not know (a private gateway, say) is ignored rather than failing the lookup, but a
    known provider that does not sell the model is not replaced by another one's price.
    ``at`` selects the prices in force at that time (prices change; default: now).
    """
    if not model:
        return None
    model_ref, provider_id = _split_model(model, provider)
    when = at if at is not None else datetime.now(tz=UTC)
    rates = _rates(model_ref.lower(), provider_id, int(when.timestamp() // 3600))
    if rates == _UNKNOWN:
        return None
    if isinstance(rates, _Linear) and (rates.limit is None or usage.input_tokens <= rates.limit):
        return PriceQuote(rates.cost(usage), PRICE_SOURCE, rates.priced_model)
    try:
        calc = _calc(
            model_ref,
            provider_id,
            when,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            **({"cache_read_tokens": usage.cached_tokens} if usage.cached_tokens else {}),
            **(
                {"cache_write_tokens": usage.cache_write_tokens} if usage.cache_write_tokens else {}
            ),
        )
    except (LookupError, ValueError):
        return None
    return PriceQuote(float(calc.total_price), PRICE_SOURCE, calc.model.id)


def unpriced_models(events: Iterable[Event]) -> list[str]:
    """Model names of cost events that carry tokens but no cost, one entry per event.

    The HTTP layer counts these in ``driftwarden_cost_unpriced_total{model}``.
    """
    return [
        event.model or UNKNOWN_MODEL
        for event in events
        if isinstance(event, Cost)
        and event.cost_usd is None
        and (event.input_tokens or 0) + (event.output_tokens or 0) > 0
    ]


def _when(ts: Any) -> datetime | None:
    if isinstance(ts, int | float) and not isinstance(ts, bool):
        try:
            return datetime.fromtimestamp(ts, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(ts, str):
        try:
            parsed = datetime.fromisoformat(ts)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return ts if isinstance(ts, datetime) else None


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def fill_cost(cost: dict[str, Any], cache_write_tokens: int = 0) -> None:
    """Set ``cost_usd`` and ``price_source`` on a cost-event dict that has tokens but no cost.

    Leaves the dict alone when it already has a cost, has no model or tokens, or carries
    counts that are not valid (event validation then names the field), and when the model
    is unknown (never guessed). Prices are those in force at the event's ``ts``.
    """
    if cost.get("cost_usd") is not None or not isinstance(cost.get("model"), str):
        return
    counts = [cost.get(k) or 0 for k in ("input_tokens", "output_tokens", "cached_tokens")]
    if not all(_is_count(c) for c in counts) or not _is_count(cache_write_tokens):
        return
    try:
        usage = TokenUsage(counts[0], counts[1], counts[2], cache_write_tokens)
    except ValueError:
        return  # cached > input: validation of the event reports it
    if usage.empty:
        return
    provider = cost.get("provider")
    quote = price_tokens(
        cost["model"],
        usage,
        provider=provider if isinstance(provider, str) else None,
        at=_when(cost.get("ts")),
    )
    if quote is not None:
        cost["cost_usd"] = quote.cost_usd
        cost["price_source"] = quote.source


def price_cost_events(events: Iterable[Event]) -> None:
    """``fill_cost`` for validated native ``cost`` events: one that names a model and
    tokens but no ``cost_usd`` gets the price in force at its time, and ``price_source``.

    The cost-log and OTLP collectors price their dicts before validation; native events
    arrive validated, so they are priced here, in place.
    """
    for event in events:
        if not isinstance(event, Cost) or event.cost_usd is not None or not event.model:
            continue
        try:
            usage = TokenUsage(
                event.input_tokens or 0, event.output_tokens or 0, event.cached_tokens or 0
            )
        except ValueError:
            continue  # more cached than input tokens: not priced rather than priced wrong
        if usage.empty:
            continue
        quote = price_tokens(
            event.model, usage, provider=event.provider, at=datetime.fromtimestamp(event.epoch, UTC)
        )
        if quote is not None:
            event.cost_usd = quote.cost_usd
            event.price_source = quote.source
