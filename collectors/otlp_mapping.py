"""Spans -> canonical ``run`` (+ ``cost``, ``review``) events, driven by attribute tables.

Each table row is (event field, attribute keys in order of preference, converter): the
first key present on the span wins. The tables cover the OpenTelemetry GenAI semantic
conventions (current and older names), OpenInference, and ``driftwarden.*`` attributes for
what no convention has. ``docs/otlp-mapping.md`` is the same table for users.

Tokens and cost go on the ``cost`` event only, never also on the ``run``, so spend is
counted once. Event ids are ``<workflow>/<gen_ai.response.id>`` for a model call that has
one, so two instrumentations of one call count once, else ``<trace id hex><span id hex>``
(+ ``:cost`` / ``:review``), so an exporter that retries a batch stores nothing twice.

>>> from collectors.otlp import SpanRecord, decode_request, iter_spans
>>> span = SpanRecord("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", "chat gpt-4o", 3,
...     1_795_424_400_000_000_000, 1_795_424_400_812_000_000, 0, "",
...     {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
...      "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 50}, [],
...     {"service.name": "Invoice Triage"}, "")
>>> result = map_spans([span], MappingOptions(), received_at=1_795_424_401.0)
>>> [(type(e).__name__, e.workflow, e.id[-5:]) for e in result.events]
[('Run', 'invoice-triage', '03331'), ('Cost', 'invoice-triage', ':cost')]
>>> result.events[0].latency_ms, result.events[1].input_tokens, result.events[1].cost_usd > 0
(812.0, 1000, True)
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from collectors.events import Event, EventError, convert_event
from collectors.otlp import SpanRecord, decode_request, iter_spans
from collectors.prices import fill_cost, unpriced_models

Convert = Callable[[Any], Any]
RESPONSE_ID: Final = "gen_ai.response.id"  # the provider's id of one model call


def _text(value: Any) -> Any:
    return value if isinstance(value, str) else str(value)


def _number(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value  # validation names the attribute
    return value


def _count(value: Any) -> Any:
    value = _number(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _flag(value: Any) -> Any:
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def _texts(value: Any) -> Any:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


@dataclass(frozen=True, slots=True)
class Rule:
    field: str
    keys: tuple[str, ...]
    convert: Convert = _text


# fmt: off
# one row per event field: (field, attribute keys in order of preference, converter)
RUN_RULES: Final = (
    Rule("model", ("gen_ai.request.model", "gen_ai.response.model", "llm.model_name",
                   "llm.request.model_name", "llm.response.model_name")),
    Rule("model_version", ("driftwarden.model_version", "gen_ai.response.model")),
    Rule("prompt_version", ("driftwarden.prompt_version", "gen_ai.prompt.version",
                            "llm.prompt_template.version")),
    Rule("action", ("driftwarden.action", "gen_ai.tool.name")),
    Rule("groundedness", ("driftwarden.groundedness",), _number),
    Rule("confidence", ("driftwarden.confidence",), _number),
    Rule("retries", ("driftwarden.retries",), _count),
    Rule("validation", ("driftwarden.validation",)),
    Rule("failed_checks", ("driftwarden.failed_checks",), _texts),
    Rule("escalated", ("driftwarden.escalated",), _flag),
    Rule("team", ("driftwarden.team",)),
    Rule("user", ("driftwarden.user", "user.id", "enduser.id")),
)
COST_RULES: Final = (
    Rule("provider", ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")),
    # the billed model: the response names the exact snapshot that served the call
    Rule("model", ("gen_ai.response.model", "gen_ai.request.model", "llm.response.model_name",
                   "llm.model_name", "llm.request.model_name")),
    Rule("input_tokens", ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens",
                          "llm.token_count.prompt"), _count),
    Rule("output_tokens", ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
                           "llm.token_count.completion"), _count),
    Rule("cached_tokens", ("gen_ai.usage.cache_read.input_tokens",
                           "llm.token_count.prompt_details.cache_read"), _count),
    Rule("cost_usd", ("gen_ai.usage.cost", "llm.cost.total"), _number),
    Rule("request_id", (RESPONSE_ID,)),
)
CACHE_WRITE_KEYS: Final = ("gen_ai.usage.cache_write.input_tokens",
                           "gen_ai.usage.cache_creation.input_tokens",
                           "llm.token_count.prompt_details.cache_write")
REVIEW_RULES: Final = (
    Rule("decision", ("driftwarden.review.decision",)),
    Rule("edit_ratio", ("driftwarden.review.edit_ratio",), _number),
    Rule("review_ms", ("driftwarden.review.review_ms",), _number),
    Rule("time_saved_s", ("driftwarden.review.time_saved_s",), _number),
    Rule("reviewer", ("driftwarden.review.reviewer",)),
)
# fmt: on

AI_PREFIXES: Final = ("gen_ai.", "llm.", "driftwarden.")
# spans that sum up their children: their token counts repeat the children's
AGGREGATE_OPERATIONS: Final = frozenset({"invoke_agent", "invoke_workflow", "create_agent"})
AGGREGATE_OI_KINDS: Final = frozenset({"AGENT", "CHAIN"})
GROUNDEDNESS_NAMES: Final = re.compile(r"grounded|faithful", re.IGNORECASE)
TIMEOUT_WORDS: Final = re.compile(r"timeout|timed out|deadline", re.IGNORECASE)
_NOT_IN_NAME: Final = re.compile(r"[^a-z0-9_.-]+")
_OI_EVAL: Final = re.compile(
    r"^(?:annotations|evaluations)\.(\d+)\.(?:annotation|evaluation)\.name$"
)
_OI_EVAL_PREFIXES: Final = ("annotations.", "evaluations.")
_MAX_MESSAGES: Final = 5
_MAX_KEY: Final = 120  # event ids are at most 128 characters, ":review" included


@dataclass(frozen=True, slots=True)
class MappingOptions:
    """How spans become events (all settable in the daemon's settings)."""

    workflow_attribute: str = "driftwarden.workflow"  # span, then resource attribute
    workflow_resource_attribute: str | None = "service.name"  # fallback, normalised
    default_workflow: str | None = None  # last resort; otherwise the span is rejected
    select: Literal["ai", "driftwarden", "all"] = "ai"
    cost_from_aggregate_spans: bool = False
    price_missing_cost: bool = True


@dataclass(frozen=True, slots=True)
class SpanRejection:
    index: int
    span_id: str
    error: str


@dataclass(slots=True)
class MappingResult:
    events: list[Event] = field(default_factory=list)
    rejected: list[SpanRejection] = field(default_factory=list)
    skipped: int = 0  # plain non-AI spans, ignored on purpose

    @property
    def unpriced(self) -> list[str]:
        return unpriced_models(self.events)

    def error_message(self) -> str:
        """Text for OTLP ``partial_success.error_message`` (empty when nothing was rejected)."""
        if not self.rejected:
            return ""
        parts = [f"span {r.span_id or '#' + str(r.index)}: {r.error}" for r in self.rejected]
        more = len(parts) - _MAX_MESSAGES
        text = "; ".join(parts[:_MAX_MESSAGES]) + (f"; and {more} more" if more > 0 else "")
        return f"{len(self.rejected)} span(s) rejected: {text}"


def normalise_workflow(name: str) -> str | None:
    """A service name as a workflow name: lower-case, other characters replaced by '-'.

    >>> normalise_workflow("Invoice Triage/EU")
    'invoice-triage-eu'
    """
    text = _NOT_IN_NAME.sub("-", name.strip().lower()).lstrip("-_.")[:64]
    return text or None


def is_selected(span: SpanRecord, select: str) -> bool:
    if select == "all":
        return True
    prefixes = ("driftwarden.",) if select == "driftwarden" else AI_PREFIXES
    return any(key.startswith(prefixes) for key in span.attributes) or (
        select == "ai" and span.attributes.get("openinference.span.kind") == "LLM"
    )


def map_spans(
    spans: Iterable[SpanRecord], options: MappingOptions, received_at: float
) -> MappingResult:
    """Validated events for the selected spans; malformed ones are rejected with a reason."""
    result = MappingResult()
    seen: set[str] = set()
    for index, span in enumerate(spans):
        if not is_selected(span, options.select):
            result.skipped += 1
            continue
        try:
            events = _span_events(span, options, received_at)
        except EventError as err:
            result.rejected.append(SpanRejection(index, span.span_id, str(err)))
            continue
        for event in events:
            if event.id not in seen:  # the same span twice in one request
                seen.add(event.id)
                result.events.append(event)
    return result


def _apply(rules: tuple[Rule, ...], attrs: dict[str, Any], out: dict[str, Any]) -> dict[str, str]:
    sources: dict[str, str] = {}
    for rule in rules:
        for key in rule.keys:
            value = attrs.get(key)
            if value is not None:
                out[rule.field] = rule.convert(value)
                sources[rule.field] = key
                break
    return sources


def _validate(obj: dict[str, Any], sources: dict[str, str], received_at: float) -> Event:
    try:
        return convert_event(obj, received_at)
    except EventError as err:
        key = sources.get(err.field.split("[", 1)[0])
        if key is None:
            raise
        raise EventError(key, f"{err.message} (mapped to {obj['type']}.{err.field})") from None


def _span_events(span: SpanRecord, options: MappingOptions, received_at: float) -> list[Event]:
    if len(span.trace_id) != 32 or not span.trace_id.strip("0"):
        raise EventError("traceId", "must be 16 non-zero bytes")
    if len(span.span_id) != 16 or not span.span_id.strip("0"):
        raise EventError("spanId", "must be 8 non-zero bytes")
    start, end = span.start_unix_nano, span.end_unix_nano
    if start <= 0 and end <= 0:
        raise EventError("startTimeUnixNano", "span has neither start nor end time")
    if start > 0 and end > 0 and end < start:
        raise EventError("endTimeUnixNano", "is before startTimeUnixNano")
    attrs = span.attributes
    workflow = _workflow(span, options)
    key = _event_key(span, workflow)
    common: dict[str, Any] = {
        "workflow": workflow,
        "ts": (end or start) / 1e9,
        "trace_id": span.trace_id,
    }
    run: dict[str, Any] = {"id": key, "type": "run", **common, "status": _status(span)}
    if start > 0 and end > 0:
        run["latency_ms"] = (end - start) / 1e6
    sources = _apply(RUN_RULES, attrs, run)
    extra = _run_attributes(span, run, sources)
    if extra:
        run["attributes"] = extra
    for who in ("team", "user"):
        if who in run:
            common[who] = run[who]
    events = [_validate(run, sources, received_at)]
    cost = _cost(span, options, common, key)
    if cost is not None:
        events.append(_validate(cost[0], cost[1], received_at))
    review: dict[str, Any] = {"id": key + ":review", "type": "review", **common}
    review_sources = _apply(REVIEW_RULES, attrs, review)
    if "decision" in review:
        events.append(_validate(review, review_sources, received_at))
    return events


def _event_key(span: SpanRecord, workflow: str) -> str:
    """The id of a span's run (its cost and review add a suffix).

    A model call's ``gen_ai.response.id`` within its workflow when the span has one: the
    provider SDK's own GenAI span and an instrumentation library's (OpenLLMetry,
    OpenInference) are two root spans of one call, and must be one run and one cost. The
    store keeps an id once, so this holds across requests too. Other spans: trace id +
    span id, which an exporter's retry repeats.
    """
    response = span.attributes.get(RESPONSE_ID)
    if isinstance(response, str) and response.strip():
        key = f"{workflow}/{response.strip()}"
        if len(key) <= _MAX_KEY:
            return key
        return "response:" + hashlib.sha256(key.encode()).hexdigest()[:40]
    return span.trace_id + span.span_id


def _workflow(span: SpanRecord, options: MappingOptions) -> str:
    name = span.attributes.get(options.workflow_attribute)
    if name is None:
        name = span.resource.get(options.workflow_attribute)
    if name is not None:
        return str(name)  # explicit: kept as given, so a typo is an error, not a new name
    if options.workflow_resource_attribute:
        fallback = span.resource.get(options.workflow_resource_attribute)
        if fallback is not None and (normalised := normalise_workflow(str(fallback))):
            return normalised
    if options.default_workflow:
        return options.default_workflow
    raise EventError(
        options.workflow_attribute,
        f"no workflow: set the {options.workflow_attribute} attribute"
        + (
            f" or the {options.workflow_resource_attribute} resource attribute"
            if options.workflow_resource_attribute
            else ""
        ),
    )


def _status(span: SpanRecord) -> str:
    error_type = span.attributes.get("error.type")
    if span.status_code != 2 and error_type is None:
        return "ok"
    if TIMEOUT_WORDS.search(f"{error_type or ''} {span.status_message}"):
        return "timeout"
    return "error"


def _run_attributes(
    span: SpanRecord, run: dict[str, Any], sources: dict[str, str]
) -> dict[str, Any]:
    attrs = span.attributes
    extra: dict[str, Any] = {"span.name": span.name[:128]}
    for key in ("gen_ai.operation.name", "openinference.span.kind", "error.type"):
        if (value := attrs.get(key)) is not None:
            extra[key] = _text(value)[:128]
    for name, score in _evaluations(span):
        if (
            "groundedness" not in run
            and GROUNDEDNESS_NAMES.search(name)
            and isinstance(score, int | float)
            and 0.0 <= score <= 1.0
        ):
            run["groundedness"] = float(score)
            sources["groundedness"] = f"evaluation {name}"
        else:
            extra[f"eval.{name[:64]}"] = score
    return extra


def _evaluations(span: SpanRecord) -> list[tuple[str, Any]]:
    """(name, score or label) from gen_ai.evaluation.result span events and OpenInference."""
    found: list[tuple[str, Any]] = []
    for event in span.events:
        if event.name == "gen_ai.evaluation.result":
            name = event.attributes.get("gen_ai.evaluation.name")
            score = event.attributes.get("gen_ai.evaluation.score.value")
            if score is None:
                score = event.attributes.get("gen_ai.evaluation.score.label")
            if name is not None and score is not None:
                found.append((str(name), score))
    for key, name in span.attributes.items():
        if key.startswith(_OI_EVAL_PREFIXES) and _OI_EVAL.match(key):
            prefix = key[: -len("name")]
            score = span.attributes.get(prefix + "score", span.attributes.get(prefix + "label"))
            if score is not None:
                found.append((str(name), score))
    return found


def _cost(
    span: SpanRecord, options: MappingOptions, common: dict[str, Any], key: str
) -> tuple[dict[str, Any], dict[str, str]] | None:
    attrs = span.attributes
    cost: dict[str, Any] = {"id": key + ":cost", "type": "cost", **common}
    sources = _apply(COST_RULES, attrs, cost)
    parts = [_number(attrs.get(k)) for k in ("llm.cost.prompt", "llm.cost.completion")]
    if "cost_usd" not in cost and all(type(p) in (int, float) for p in parts):
        cost["cost_usd"] = sum(parts)
        sources["cost_usd"] = "llm.cost.prompt"
    if not {"input_tokens", "output_tokens", "cost_usd"} & cost.keys():
        return None
    aggregate = (
        attrs.get("gen_ai.operation.name") in AGGREGATE_OPERATIONS
        or attrs.get("openinference.span.kind") in AGGREGATE_OI_KINDS
    )
    if aggregate and not options.cost_from_aggregate_spans:
        return None
    cache_write = _count(next((attrs[k] for k in CACHE_WRITE_KEYS if k in attrs), 0))
    if not isinstance(cache_write, int) or cache_write < 0:
        cache_write = 0
    _fix_input_convention(cost, cache_write)
    if cache_write:
        cost["attributes"] = {"cache_write_tokens": cache_write}
    if options.price_missing_cost:
        fill_cost(cost, cache_write)
    return cost, sources


def _fix_input_convention(cost: dict[str, Any], cache_write: int) -> None:
    """Cached tokens above the input count can only mean input was reported WITHOUT them
    (Anthropic's raw convention); the GenAI semconv total includes them, so add them."""
    inputs, cached = cost.get("input_tokens"), cost.get("cached_tokens") or 0
    if isinstance(inputs, int) and isinstance(cached, int) and cached + cache_write > inputs:
        cost["input_tokens"] = inputs + cached + cache_write


def decode_and_map(
    body: bytes, kind: str, options: MappingOptions, received_at: float
) -> MappingResult:
    """An OTLP/HTTP request body (protobuf or JSON) straight to validated events."""
    return map_spans(iter_spans(decode_request(body, kind)), options, received_at)
