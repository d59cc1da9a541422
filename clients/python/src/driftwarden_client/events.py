"""The daemon's canonical event schema, as keyword arguments a workflow can type-check.

Each ``*Fields`` dict names the optional fields of one event type exactly as ``POST
/v1/events`` takes them (the daemon's ``collectors.events``; a test keeps the two equal).
``encode`` turns one event into its JSON bytes when it is queued, so that a workflow
mutating its ``attributes`` afterwards cannot change what is sent, and an event that cannot
be sent (not JSON, too large) is refused at once, in the workflow's own call, with a
warning instead of an exception.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal, TypedDict

log = logging.getLogger("driftwarden_client")

EventType = Literal["run", "review", "cost", "kpi"]
MAX_EVENT_BYTES: Final = 64 * 1024  # the daemon rejects larger events


class CommonFields(TypedDict, total=False):
    """Fields every event type has. ``id`` defaults to a random UUID, ``ts`` to now."""

    id: str
    ts: float | str  # epoch seconds, or RFC 3339 with a timezone
    trace_id: str
    team: str
    user: str
    attributes: Mapping[str, object]


class RunFields(CommonFields, total=False):
    status: Literal["ok", "error", "timeout"]
    retries: int
    latency_ms: float
    action: str
    model: str
    model_version: str
    prompt_version: str
    groundedness: float
    confidence: float
    validation: Literal["passed", "failed"]
    failed_checks: list[str]
    escalated: bool
    input_tokens: int
    output_tokens: int
    cost_usd: float


class ReviewFields(CommonFields, total=False):
    edit_ratio: float
    before: str  # with ``after``: the daemon computes edit_ratio and does not keep the texts
    after: str
    review_ms: float
    time_saved_s: float
    reviewer: str


class CostFields(CommonFields, total=False):
    provider: str
    model: str
    input_tokens: int  # cached tokens included
    output_tokens: int
    cached_tokens: int
    cost_usd: float  # the daemon prices it from genai-prices when absent
    request_id: str
    price_source: str  # where cost_usd came from, e.g. "genai-prices 0.2.3"


class KpiFields(CommonFields, total=False):
    unit: str


FIELDS: Final[dict[EventType, frozenset[str]]] = {
    "run": frozenset(RunFields.__optional_keys__),
    "review": frozenset(ReviewFields.__optional_keys__),
    "cost": frozenset(CostFields.__optional_keys__),
    "kpi": frozenset(KpiFields.__optional_keys__),
}


@dataclass(frozen=True, slots=True)
class Encoded:
    """One queued event: its id (to name it in warnings) and its JSON."""

    id: str
    body: bytes


def encode(
    kind: EventType,
    workflow: str,
    required: Mapping[str, object],
    fields: Mapping[str, object],
) -> Encoded | None:
    """The event as JSON, or None (with a warning) when it cannot be sent.

    An unknown field is left out with a warning rather than sent: the daemon rejects a
    whole event for one unknown field, and the rest of the event is still worth having.
    """
    known = FIELDS[kind]
    unknown = sorted(set(fields) - known)
    if unknown:
        log.warning("driftwarden: %s event: unknown fields %s left out", kind, unknown)
    body: dict[str, object] = {
        "id": str(fields.get("id") or uuid.uuid4()),
        "type": kind,
        "workflow": workflow,
        # the send time, not the time the background thread posts it
        "ts": time.time(),
        **required,
    }
    for key, value in fields.items():
        if key in known and value is not None:
            # json takes dicts only; attributes may be any Mapping
            body[key] = dict(value) if isinstance(value, Mapping) else value
    try:
        raw = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError) as err:
        log.warning("driftwarden: %s event %s not sent, not JSON: %s", kind, body["id"], err)
        return None
    if len(raw) > MAX_EVENT_BYTES:
        log.warning(
            "driftwarden: %s event %s not sent: %d bytes, the daemon takes at most %d",
            kind,
            body["id"],
            len(raw),
            MAX_EVENT_BYTES,
        )
        return None
    return Encoded(str(body["id"]), raw)
