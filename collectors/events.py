"""Canonical events: the four types of docs/design.md, validated on the hot path with msgspec.

Each event is decoded on its own (``decode_event``) so that one bad event names its field
and never takes the rest of the batch with it. Collectors that build events from other
formats hand plain dicts to ``convert_event``, which applies the same rules.

>>> ev = decode_event(b'{"id": "r1", "type": "run", "workflow": "invoice-triage",'
...                   b' "ts": "2026-11-23T09:00:00Z", "status": "error", "latency_ms": 812}')
>>> ev.status, ev.epoch
('error', 1795424400.0)
"""

from __future__ import annotations

import math
import re
import time
from datetime import datetime
from typing import Annotated, Any, Final, Literal

import msgspec
from rapidfuzz.distance import Levenshtein

from detectors.signals import ACTION_ERRORS_PREFIX, SIGNAL_MAX_LENGTH

MAX_EVENT_BYTES: Final = 64 * 1024
MAX_ATTRIBUTES_BYTES: Final = 16 * 1024
MAX_BATCH_BYTES: Final = 10 * 1024 * 1024
MAX_BATCH_EVENTS: Final = 10_000
WORKFLOW_PATTERN: Final = r"^[a-z0-9][a-z0-9_.-]{0,63}$"

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
# The pattern is checked in _finish against a memo of names already seen: msgspec runs
# the regex through Python's re for every event, which doubled the decode time.
Workflow = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Label = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
# an action becomes the rollup signal ``action_errors.<action>``, which must fit its column
MAX_ACTION_LENGTH: Final = SIGNAL_MAX_LENGTH - len(ACTION_ERRORS_PREFIX)
Action = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ACTION_LENGTH)]
Score = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
Count = Annotated[int, msgspec.Meta(ge=0, le=10**12)]
Amount = Annotated[float, msgspec.Meta(ge=0.0, le=1e12)]
Millis = Annotated[float, msgspec.Meta(ge=0.0, le=7 * 86_400_000.0)]
Text = Annotated[str, msgspec.Meta(max_length=MAX_EVENT_BYTES)]


class EventError(ValueError):
    """An event that cannot be accepted; ``field`` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


class _Base(msgspec.Struct, kw_only=True, tag_field="type", forbid_unknown_fields=True):
    id: Id
    workflow: Workflow
    ts: datetime | float | None = None
    trace_id: Label | None = None
    team: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    user: Label | None = None
    attributes: dict[str, Any] | None = None

    @property
    def epoch(self) -> float:
        """Event time as epoch seconds (set by ``_finish``; receive time when absent)."""
        assert isinstance(self.ts, float)
        return self.ts


class Run(_Base, tag="run"):
    status: Literal["ok", "error", "timeout"] = "ok"
    retries: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 0
    latency_ms: Millis | None = None
    action: Action | None = None
    model: Label | None = None
    model_version: Label | None = None
    prompt_version: Label | None = None
    groundedness: Score | None = None
    confidence: Score | None = None
    validation: Literal["passed", "failed"] | None = None
    failed_checks: Annotated[list[Label], msgspec.Meta(max_length=64)] | None = None
    escalated: bool | None = None
    input_tokens: Count | None = None
    output_tokens: Count | None = None
    cost_usd: Amount | None = None


class Review(_Base, tag="review"):
    decision: Literal["approved", "edited", "rejected"]
    edit_ratio: Score | None = None
    before: Text | None = None
    after: Text | None = None
    review_ms: Millis | None = None
    time_saved_s: Annotated[float, msgspec.Meta(ge=-86_400.0, le=86_400.0)] | None = None
    reviewer: Label | None = None


class Cost(_Base, tag="cost"):
    provider: Label | None = None
    model: Label | None = None
    input_tokens: Count | None = None
    output_tokens: Count | None = None
    cached_tokens: Count | None = None
    cost_usd: Amount | None = None
    request_id: Label | None = None
    price_source: Label | None = None  # e.g. "genai-prices 0.2.3" when we computed cost_usd


class Kpi(_Base, tag="kpi"):
    name: Annotated[str, msgspec.Meta(pattern=r"^[a-zA-Z0-9_.-]{1,64}$")]
    value: float
    unit: Annotated[str, msgspec.Meta(max_length=32)] | None = None


Event = Run | Review | Cost | Kpi
EVENT_TYPES: Final = ("run", "review", "cost", "kpi")

_decoder: Final = msgspec.json.Decoder(Event)
_batch_decoder: Final = msgspec.json.Decoder(list[Event])
_encoder: Final = msgspec.json.Encoder()
_MIN_TS: Final = 946_684_800.0  # 2000-01-01: older stamps are almost always unit mistakes
_MAX_FUTURE_S: Final = 86_400.0
_WORKFLOW_RE: Final = re.compile(WORKFLOW_PATTERN)
# PostgreSQL text cannot hold U+0000; in JSON it can only be written as this escape, so
# events without it (nearly all) skip the field-by-field search below
_NUL_ESCAPE: Final = b"\\u0000"
_valid_workflows: set[str] = set()


def _field_from(err: msgspec.ValidationError) -> str:
    # msgspec reports "... - at `$.latency_ms`" or "... - at `$.failed_checks[2]`"
    text = str(err)
    if "`$." in text:
        return text.rsplit("`$.", 1)[1].rstrip("`")
    if "missing required field `" in text:
        return text.split("missing required field `", 1)[1].split("`", 1)[0]
    if "unknown field `" in text:
        return text.split("unknown field `", 1)[1].split("`", 1)[0]
    if "tag" in text or "`type`" in text:
        return "type"
    return ""


def _message_from(err: msgspec.ValidationError) -> str:
    return str(err).split(" - at `", 1)[0]


def _nul_field(event: Event) -> str | None:
    """The first field (path) whose text holds a NUL character, or None."""
    stack: list[tuple[str, Any]] = [
        (name, getattr(event, name)) for name in reversed(event.__struct_fields__)
    ]
    while stack:  # a loop, not recursion: attributes may nest deeply
        path, value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return path
        elif isinstance(value, dict):
            for key, item in reversed(value.items()):
                if "\x00" in key:
                    return path
                stack.append((f"{path}.{key}", item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item) for i, item in reversed(list(enumerate(value))))
    return None


def _finish(event: Event, received_at: float) -> Event:
    """Normalise time, check cross-field rules and derive computed fields."""
    if event.workflow not in _valid_workflows:
        _check_workflow(event.workflow)
    ts = event.ts
    if ts is None:
        epoch = received_at
    elif isinstance(ts, datetime):
        if ts.tzinfo is None:
            raise EventError("ts", "timestamp must include a timezone (e.g. Z or +02:00)")
        epoch = ts.timestamp()
    else:
        if not math.isfinite(ts):
            raise EventError("ts", "timestamp must be a finite number of epoch seconds")
        epoch = float(ts)
    if epoch < _MIN_TS or epoch > received_at + _MAX_FUTURE_S:
        raise EventError("ts", "timestamp is before 2000 or more than a day in the future")
    event.ts = epoch
    if isinstance(event, Review):
        _derive_edit_ratio(event)
    elif isinstance(event, Kpi) and not math.isfinite(event.value):
        raise EventError("value", "must be a finite number")
    if event.attributes is not None and len(_encoder.encode(event.attributes)) > (
        MAX_ATTRIBUTES_BYTES
    ):
        raise EventError("attributes", f"larger than {MAX_ATTRIBUTES_BYTES} bytes")
    return event


def _check_workflow(name: str) -> None:
    if _WORKFLOW_RE.fullmatch(name) is None:
        raise EventError("workflow", f"must match {WORKFLOW_PATTERN} (lower case, no spaces)")
    if len(_valid_workflows) < 10_000:  # bounded: a client inventing names cannot grow it
        _valid_workflows.add(name)


def _derive_edit_ratio(review: Review) -> None:
    if (review.before is None) != (review.after is None):
        raise EventError(
            "after" if review.after is None else "before", "give both before and after"
        )
    if review.before is not None and review.after is not None:
        if review.edit_ratio is None:
            # share of the text a human had to change: 0 = untouched, 1 = rewritten
            review.edit_ratio = Levenshtein.normalized_distance(review.before, review.after)
        # the texts served their purpose; storing them would keep user content for no reason
        review.before = review.after = None


def decode_event(raw: bytes, received_at: float | None = None) -> Event:
    """Decode and validate one JSON event; raise ``EventError`` naming the field."""
    if len(raw) > MAX_EVENT_BYTES:
        raise EventError("", f"event larger than {MAX_EVENT_BYTES} bytes")
    try:
        event = _decoder.decode(raw)
    except msgspec.ValidationError as err:
        field = _field_from(err)
        if field == "type":
            raise EventError("type", f"must be one of {', '.join(EVENT_TYPES)}") from None
        raise EventError(field, _message_from(err)) from None
    except msgspec.DecodeError as err:
        raise EventError("", f"not valid JSON: {err}") from None
    except RecursionError:
        raise EventError("", "JSON nested too deeply") from None
    if _NUL_ESCAPE in raw:
        where = _nul_field(event)
        if where is not None:
            raise EventError(where, "must not contain a NUL character (U+0000)")
    return _finish(event, time.time() if received_at is None else received_at)


def decode_events(array: bytes, received_at: float) -> list[Event] | None:
    """All events of a JSON array in one call, or None if any one of them is invalid.

    The fast path for whole batches; on None, decode the events one by one with
    ``decode_event`` to learn which are bad and why.
    """
    if _NUL_ESCAPE in array:
        return None  # the one-by-one path names the field
    try:
        events = _batch_decoder.decode(array)
        return [_finish(event, received_at) for event in events]
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError, EventError):
        return None


def convert_event(obj: Any, received_at: float | None = None) -> Event:
    """Validate an event given as a Python mapping (used by collectors)."""
    if not isinstance(obj, dict):
        raise EventError("", f"an event must be a JSON object, not {type(obj).__name__}")
    return decode_event(_encoder.encode(obj), received_at)


def encode_event(event: Event) -> bytes:
    """Canonical JSON of a validated event (what the store keeps)."""
    return _encoder.encode(event)


def to_dict(event: Event) -> dict[str, Any]:
    """The event as a plain dict, ``type`` included."""
    out: dict[str, Any] = msgspec.to_builtins(event)
    return out
