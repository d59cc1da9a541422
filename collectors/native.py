"""Native batches: a JSON array, ``{"events": [...]}``, one event object, or NDJSON.

Each element is validated on its own so a bad event is rejected by index with the field
named, and the good ones in the same batch are kept. A ``cost`` event with tokens and a
model but no ``cost_usd`` is priced from genai-prices, as in the other collectors.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

import msgspec

from collectors.events import (
    MAX_BATCH_EVENTS,
    MAX_EVENT_BYTES,
    Event,
    EventError,
    decode_event,
    decode_events,
)
from collectors.prices import price_cost_events

Format = Literal["json", "ndjson"]
_raw_list = msgspec.json.Decoder(list[msgspec.Raw])
_raw_object = msgspec.json.Decoder(dict[str, msgspec.Raw])


class BatchError(ValueError):
    """The body as a whole is unusable (400), or too large (413 when ``too_large``)."""

    def __init__(self, message: str, *, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large


@dataclass(frozen=True, slots=True)
class Rejected:
    index: int  # position in the batch (0-based), or line number (1-based) for files
    field: str
    error: str

    def as_dict(self) -> dict[str, object]:
        return {"index": self.index, "field": self.field, "error": self.error}


@dataclass(slots=True)
class Parsed:
    events: list[Event] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


def split_json(body: bytes) -> list[msgspec.Raw]:
    """The raw elements of a JSON body (array, envelope or single object)."""
    stripped = body.lstrip()
    try:
        if stripped[:1] == b"[":
            return _raw_list.decode(body)
        if stripped[:1] == b"{":
            obj = _raw_object.decode(body)
            if "events" in obj:
                return _raw_list.decode(obj["events"])
            return [msgspec.Raw(body)]
    except msgspec.ValidationError as err:
        raise BatchError(f"`events` must be an array of event objects ({err})") from None
    except msgspec.DecodeError as err:
        raise BatchError(f"body is not valid JSON: {err}") from None
    except RecursionError:
        raise BatchError("body is nested too deeply") from None
    raise BatchError("body must be a JSON array, an object with `events`, or NDJSON")


def split_ndjson(body: bytes) -> list[tuple[int, bytes]]:
    """(line number, line) for every non-blank line."""
    return [(n, line) for n, line in enumerate(body.split(b"\n"), 1) if line.strip()]


def parse_batch(body: bytes, fmt: Format, received_at: float | None = None) -> Parsed:
    received = time.time() if received_at is None else received_at
    if fmt == "ndjson":
        items = split_ndjson(body)
        _check_count(len(items))
        return validate_items(items, received)
    raws = split_json(body)
    _check_count(len(raws))
    if raws and max(map(len, raws)) <= MAX_EVENT_BYTES:
        # the usual all-valid batch is decoded in one call; any invalid event sends the
        # batch down the one-by-one path, which names the index and field of each
        events = decode_events(b"[" + b",".join(raws) + b"]", received)
        if events is not None:
            price_cost_events(events)
            return Parsed(events)
    return validate_items(list(enumerate(bytes(raw) for raw in raws)), received)


def _check_count(n: int) -> None:
    if n > MAX_BATCH_EVENTS:
        raise BatchError(f"batch has {n} events; the limit is {MAX_BATCH_EVENTS}", too_large=True)


def validate_items(items: list[tuple[int, bytes]], received_at: float) -> Parsed:
    out = Parsed()
    for index, raw in items:
        try:
            out.events.append(decode_event(raw, received_at))
        except EventError as err:
            out.rejected.append(Rejected(index, err.field, str(err)))
    price_cost_events(out.events)  # a cost without cost_usd, as the other collectors do
    return out
