"""OTLP/HTTP trace bodies: content negotiation, protobuf/JSON decoding, replies.

Pure functions over bytes: the HTTP route (``monitor/api/otlp.py``) only moves bytes and
status codes around, so everything here is testable without a server.

The OTLP spec (opentelemetry-proto ``docs/specification.md``) decides the details:

* ``application/x-protobuf`` and ``application/json`` on the same path, replies in the
  request's content type; anything else is 415.
* OTLP/JSON is *not* the stock protobuf JSON mapping: ``traceId``/``spanId``/
  ``parentSpanId`` (also in links) are hex, and ``json_format.Parse`` would silently read them
  as base64 (24-byte trace ids). We turn them into base64 ourselves before ``ParseDict``.
* Size limits and gzip (bounded, so a bomb gets a 413) are the HTTP layer's
  ``monitor.api.body.read_body``; this module sees the inflated bytes.
* Errors are a ``google.rpc.Status`` body; success is an ``ExportTraceServiceResponse`` whose
  ``partial_success`` stays unset unless something was rejected.

>>> req = decode_request(b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId":'
...     b' "5B8EFFF798038103D269B633813FC60C", "spanId": "EEE19B7EC3C1B174"}]}]}]}', JSON)
>>> [(s.trace_id, s.span_id) for s in iter_spans(req)]
[('5b8efff798038103d269b633813fc60c', 'eee19b7ec3c1b174')]
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

PROTOBUF: Final = "application/x-protobuf"
JSON: Final = "application/json"
_SCALARS: Final = frozenset({"string_value", "int_value", "double_value", "bool_value"})
_ID_FIELDS: Final = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


class OtlpError(Exception):
    """A request we refuse as a whole; ``status`` is the HTTP status to answer with."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UndecodableBody(OtlpError):
    status = 400


class UnsupportedMediaType(OtlpError):
    status = 415


def media_type(content_type: str | None) -> str:
    """``PROTOBUF`` or ``JSON`` for a Content-Type header; raise ``UnsupportedMediaType``."""
    base = (content_type or "").split(";", 1)[0].strip().lower()
    if base in (PROTOBUF, JSON):
        return base
    raise UnsupportedMediaType(
        f"Content-Type must be {PROTOBUF} or {JSON}, not {base or 'missing'!r}"
    )


def decode_request(body: bytes, kind: str) -> ExportTraceServiceRequest:
    """Parse an (inflated) body as ``ExportTraceServiceRequest``; raise ``UndecodableBody``."""
    request = ExportTraceServiceRequest()
    if kind == PROTOBUF:
        try:
            request.ParseFromString(body)
        except (DecodeError, RecursionError) as err:
            raise UndecodableBody(
                f"body is not a protobuf ExportTraceServiceRequest: {err}"
            ) from None
        return request
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as err:
        raise UndecodableBody(f"body is not valid JSON: {err}") from None
    if not isinstance(obj, dict):
        raise UndecodableBody("body must be a JSON object with resourceSpans")
    _hex_ids_to_base64(obj)
    try:
        json_format.ParseDict(obj, request, ignore_unknown_fields=True)
    except (json_format.ParseError, RecursionError, ValueError, TypeError) as err:
        raise UndecodableBody(
            f"body is not an OTLP/JSON ExportTraceServiceRequest: {err}"
        ) from None
    return request


def _hex_ids_to_base64(obj: dict[str, Any]) -> None:
    """Rewrite OTLP/JSON hex ids in place into what the proto3 JSON mapping expects."""
    for r, rs in enumerate(_items(obj, "resourceSpans", "resource_spans", "")):
        for s, ss in enumerate(_items(rs, "scopeSpans", "scope_spans", f"resourceSpans[{r}]")):
            where = f"resourceSpans[{r}].scopeSpans[{s}]"
            for i, span in enumerate(_items(ss, "spans", "spans", where)):
                _convert_ids(span, f"{where}.spans[{i}]")
                for j, link in enumerate(_items(span, "links", "links", f"{where}.spans[{i}]")):
                    _convert_ids(link, f"{where}.spans[{i}].links[{j}]")


def _items(obj: Any, camel: str, snake: str, where: str) -> list[Any]:
    if not isinstance(obj, dict):
        raise UndecodableBody(f"{where or 'body'}: must be a JSON object")
    value = obj.get(camel, obj.get(snake))
    if value is None:
        return []
    if not isinstance(value, list):
        raise UndecodableBody(f"{where + '.' if where else ''}{camel}: must be a JSON array")
    return value


def _convert_ids(obj: Any, where: str) -> None:
    if not isinstance(obj, dict):
        raise UndecodableBody(f"{where}: must be a JSON object")
    for key in _ID_FIELDS:
        value = obj.get(key)
        if isinstance(value, str):
            try:
                obj[key] = base64.b64encode(bytes.fromhex(value)).decode("ascii")
            except ValueError:
                raise UndecodableBody(f"{where}.{key}: must be a hex string") from None


@dataclass(slots=True)
class SpanEvent:
    name: str
    time_unix_nano: int
    attributes: dict[str, Any]


@dataclass(slots=True)
class SpanRecord:
    """One span with its attributes as plain Python values (ids as lower-case hex)."""

    trace_id: str
    span_id: str
    name: str
    kind: int
    start_unix_nano: int
    end_unix_nano: int
    status_code: int  # 0 unset, 1 ok, 2 error
    status_message: str
    attributes: dict[str, Any]
    events: list[SpanEvent]
    resource: dict[str, Any]  # shared by every span of one resource
    scope: str


def any_value(value: AnyValue) -> Any:
    """An OTLP ``AnyValue`` as a Python value (bytes as hex, so it can go into JSON)."""
    which = value.WhichOneof("value")
    if which in _SCALARS:
        return getattr(value, which)
    if which == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return attributes_dict(value.kvlist_value.values)
    if which == "bytes_value":
        return value.bytes_value.hex()
    return None


def attributes_dict(attributes: Iterable[KeyValue]) -> dict[str, Any]:
    """Repeated ``KeyValue`` as a dict (the last one wins on duplicate keys)."""
    return {kv.key: any_value(kv.value) for kv in attributes}


def iter_spans(request: ExportTraceServiceRequest) -> Iterator[SpanRecord]:
    """Every span of the request, in order, with its resource and scope."""
    for resource_spans in request.resource_spans:
        resource = attributes_dict(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name
            for span in scope_spans.spans:
                yield SpanRecord(
                    trace_id=span.trace_id.hex(),
                    span_id=span.span_id.hex(),
                    name=span.name,
                    kind=span.kind,
                    start_unix_nano=span.start_time_unix_nano,
                    end_unix_nano=span.end_time_unix_nano,
                    status_code=span.status.code,
                    status_message=span.status.message,
                    attributes=attributes_dict(span.attributes),
                    events=[
                        SpanEvent(e.name, e.time_unix_nano, attributes_dict(e.attributes))
                        for e in span.events
                    ],
                    resource=resource,
                    scope=scope,
                )


def encode_response(kind: str, rejected_spans: int = 0, error_message: str = "") -> bytes:
    """``ExportTraceServiceResponse``; ``partial_success`` only when something was rejected."""
    response = ExportTraceServiceResponse()
    if rejected_spans or error_message:
        response.partial_success.rejected_spans = rejected_spans
        response.partial_success.error_message = error_message
    if kind == JSON:
        text: str = json_format.MessageToJson(response, indent=None)
        return text.encode()
    data: bytes = response.SerializeToString()
    return data


def encode_status(kind: str, message: str, code: int = 3) -> bytes:
    """A ``google.rpc.Status`` error body (code 3 = INVALID_ARGUMENT by default)."""
    status = status_pb2.Status(code=code, message=message)
    if kind == JSON:
        text: str = json_format.MessageToJson(status, indent=None)
        return text.encode()
    data: bytes = status.SerializeToString()
    return data
