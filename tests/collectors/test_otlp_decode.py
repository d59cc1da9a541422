"""OTLP body decoding: content types, OTLP/JSON hex ids, response and error bodies."""

from __future__ import annotations

import orjson
import pytest
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from collectors.events import to_dict
from collectors.otlp import (
    JSON,
    PROTOBUF,
    UndecodableBody,
    UnsupportedMediaType,
    decode_request,
    encode_response,
    encode_status,
    iter_spans,
    media_type,
)
from collectors.otlp_mapping import MappingOptions, map_spans
from tests.support.otlp import GENAI_CHAT, make_spans, otlp_json, request_of

SPEC_EXAMPLE = (
    b'{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":'
    b'{"stringValue":"my.service"}}]},"scopeSpans":[{"scope":{"name":"my.library",'
    b'"version":"1.0.0"},"spans":[{"traceId":"5B8EFFF798038103D269B633813FC60C",'
    b'"spanId":"EEE19B7EC3C1B174","parentSpanId":"EEE19B7EC3C1B173",'
    b'"name":"I\'m a server span","startTimeUnixNano":"1544712660000000000",'
    b'"endTimeUnixNano":"1544712661000000000","kind":2,"futureField":{"x":1},'
    b'"attributes":[{"key":"my.span.attr","value":{"stringValue":"some value"}},'
    b'{"key":"n","value":{"intValue":"42"}}]}]}]}]}'
)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("application/x-protobuf", PROTOBUF),
        ("application/json; charset=utf-8", JSON),
        ("Application/JSON", JSON),
    ],
)
def test_content_type_selects_the_decoder(header: str, expected: str) -> None:
    assert media_type(header) == expected


@pytest.mark.parametrize("header", [None, "", "text/plain", "application/grpc"])
def test_other_content_types_are_unsupported(header: str | None) -> None:
    with pytest.raises(UnsupportedMediaType) as err:
        media_type(header)
    assert err.value.status == 415


def test_spec_example_json_decodes_hex_ids_to_16_and_8_bytes() -> None:
    request = decode_request(SPEC_EXAMPLE, JSON)
    span = request.resource_spans[0].scope_spans[0].spans[0]
    assert span.trace_id == bytes.fromhex("5B8EFFF798038103D269B633813FC60C")
    assert span.span_id == bytes.fromhex("EEE19B7EC3C1B174")
    assert span.parent_span_id == bytes.fromhex("EEE19B7EC3C1B173")
    assert span.kind == 2
    assert span.start_time_unix_nano == 1544712660000000000
    record = next(iter_spans(request))
    assert record.attributes == {"my.span.attr": "some value", "n": 42}
    assert record.resource == {"service.name": "my.service"}


def test_stock_protobuf_json_parser_gets_hex_ids_wrong() -> None:
    # the pitfall our decoder exists for: no error, but a 24-byte trace id
    stock = json_format.Parse(SPEC_EXAMPLE, ExportTraceServiceRequest(), ignore_unknown_fields=True)
    assert len(stock.resource_spans[0].scope_spans[0].spans[0].trace_id) == 24


def test_json_spans_decode_to_the_same_events_as_protobuf() -> None:
    spans = make_spans(
        [
            {"name": "chat", "attributes": GENAI_CHAT},
            {
                "name": "tool",
                "attributes": {
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": "crm_write",
                },
                "error": "DEADLINE_EXCEEDED",
            },
        ]
    )
    request = request_of(spans)
    options = MappingOptions()
    from_pb = map_spans(
        iter_spans(decode_request(request.SerializeToString(), PROTOBUF)), options, received_at=2e9
    )
    from_json = map_spans(iter_spans(decode_request(otlp_json(request), JSON)), options, 2e9)
    assert [to_dict(e) for e in from_json.events] == [to_dict(e) for e in from_pb.events]
    assert len(from_pb.events) == 3  # run + cost, run
    assert from_pb.events[0].id == format(spans[0].context.trace_id, "032x") + format(
        spans[0].context.span_id, "016x"
    )


def test_non_hex_id_is_a_400_naming_the_field() -> None:
    body = SPEC_EXAMPLE.replace(b"EEE19B7EC3C1B174", b"not-hex-at-all!!")
    with pytest.raises(UndecodableBody) as err:
        decode_request(body, JSON)
    assert err.value.status == 400
    assert "resourceSpans[0].scopeSpans[0].spans[0].spanId" in err.value.message


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"[]",
        b'{"resourceSpans": 3}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [7]}]}]}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "soon"}]}]}]}',
    ],
)
def test_malformed_json_bodies_are_undecodable(body: bytes) -> None:
    with pytest.raises(UndecodableBody):
        decode_request(body, JSON)


def test_corrupt_protobuf_is_undecodable() -> None:
    with pytest.raises(UndecodableBody) as err:
        decode_request(b"\x0a\xff\xff\xff\xff\x0f", PROTOBUF)
    assert "protobuf" in err.value.message


def test_full_success_leaves_partial_success_unset() -> None:
    assert encode_response(PROTOBUF) == b""
    assert orjson.loads(encode_response(JSON)) == {}


def test_partial_success_carries_count_and_message_in_both_encodings() -> None:
    assert orjson.loads(encode_response(JSON, 2, "2 span(s) rejected")) == {
        "partialSuccess": {"rejectedSpans": "2", "errorMessage": "2 span(s) rejected"}
    }
    parsed = ExportTraceServiceResponse.FromString(encode_response(PROTOBUF, 3, "x"))
    assert parsed.HasField("partial_success")
    assert parsed.partial_success.rejected_spans == 3


def test_error_body_is_a_google_rpc_status() -> None:
    status = status_pb2.Status.FromString(encode_status(PROTOBUF, "bad body"))
    assert (status.code, status.message) == (3, "bad body")
    assert orjson.loads(encode_status(JSON, "bad body", 14)) == {"code": 14, "message": "bad body"}
