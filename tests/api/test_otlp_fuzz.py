"""10,000 generated malformed OTLP bodies through the real app: never a 5xx, always a clear 4xx.

Bodies are cheap on purpose (small JSON documents shaped like OTLP with wrong types and
values where the decoder and the mapping look, mutated protobuf, random bytes, broken gzip),
so the whole run stays well under a minute.
"""

from __future__ import annotations

import copy
import gzip
import time
from pathlib import Path
from typing import Any

import orjson
from fastapi.testclient import TestClient
from google.rpc import status_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from collectors.otlp import JSON, PROTOBUF, OtlpError, encode_response
from collectors.otlp_mapping import MappingOptions, decode_and_map
from monitor.api.body import gunzip
from monitor.api.errors import ApiError
from monitor.settings import OTLP_MAX_BODY_BYTES
from monitor.store import Store
from monitor.store.migrate import upgrade
from tests.support.otlp import GENAI_CHAT, make_app, make_spans, otlp_json, request_of

I64 = st.integers(-(2**63), 2**64 - 1)
SCALAR = st.none() | st.booleans() | I64 | st.floats() | st.text(max_size=12)
JUNK = (
    SCALAR
    | st.lists(SCALAR, max_size=2)
    | st.dictionaries(st.sampled_from(["stringValue", "intValue", "values", "x"]), SCALAR,
                      max_size=2)
    | st.sampled_from(["", "0" * 32, "ab", "zz" * 8, "-1", "1e999", "NaN"])
)  # fmt: skip
VALID_REQUEST = request_of(
    make_spans(
        [
            {"attributes": {**GENAI_CHAT, "driftwarden.review.decision": "edited",
                            "evaluations.0.evaluation.name": "groundedness",
                            "evaluations.0.evaluation.score": 0.5,
                            "gen_ai.usage.cache_write.input_tokens": 3, "llm.cost.prompt": 0.1,
                            "llm.cost.completion": 0.2, "driftwarden.retries": 1}},
            {"attributes": {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "crm"},
             "events": [("gen_ai.evaluation.result", {"gen_ai.evaluation.name": "faithfulness",
                                                      "gen_ai.evaluation.score.value": 0.9})],
             "error": "timeout"},
        ]
    )
)  # fmt: skip
VALID_PB = VALID_REQUEST.SerializeToString()
VALID_DOC = orjson.loads(otlp_json(VALID_REQUEST))


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    children = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else []
    )
    for key, child in children:
        found += _paths(child, (*prefix, key))
    return found


PATHS = _paths(VALID_DOC)


@st.composite
def mutated_json(draw: st.DrawFn) -> bytes:
    """The valid document with 1-4 values replaced by junk or removed (where decoders look)."""
    doc = copy.deepcopy(VALID_DOC)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(PATHS))
        parent = doc
        try:
            for key in path[:-1]:
                parent = parent[key]
            if draw(st.booleans()):
                parent[path[-1]] = draw(JUNK)
            elif isinstance(parent, dict):
                del parent[path[-1]]
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation already replaced this branch
    try:
        return orjson.dumps(doc)
    except TypeError:  # orjson refuses integers beyond 64 bits: the text is still JSON
        return repr(doc).replace("None", "null").replace("True", "true").replace("'", '"').encode()


@st.composite
def mutated_protobuf(draw: st.DrawFn) -> bytes:
    body = bytearray(VALID_PB)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(body) - 1))
        action = draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            body[at] = draw(st.integers(0, 255))
        elif action == "cut":
            del body[at:]
            if not body:
                break
        else:
            body[at:at] = draw(st.binary(min_size=1, max_size=4))
    return bytes(body)


CASES = st.one_of(
    st.tuples(st.just(JSON), mutated_json(), st.booleans()),
    st.tuples(st.just(PROTOBUF), mutated_protobuf(), st.booleans()),
    st.tuples(st.sampled_from([JSON, PROTOBUF]), st.binary(max_size=64), st.booleans()),
    st.tuples(st.just("gzip-broken"), st.binary(max_size=40), st.just(True)),
)


def _check_reply(status: int, content: bytes, kind: str) -> None:
    assert status in (200, 400), status
    if status == 400:
        message = (
            orjson.loads(content)["message"]
            if kind == JSON
            else status_pb2.Status.FromString(content).message
        )
        assert message
        return
    if kind == PROTOBUF:
        response = ExportTraceServiceResponse.FromString(content)
        partial = response.partial_success if response.HasField("partial_success") else None
    else:
        raw = orjson.loads(content).get("partialSuccess")
        partial = raw
    if partial:  # set only when spans were rejected, and then it says why
        message = partial["errorMessage"] if isinstance(partial, dict) else partial.error_message
        assert message


def _request(case: tuple[str, bytes, bool]) -> tuple[str, bytes, dict[str, str]]:
    """(kind, body, headers) for a generated case; gzip applied or broken as drawn."""
    kind, body, zipped = case
    if kind == "gzip-broken":
        return JSON, b"\x1f\x8b\x08" + body, {"content-type": JSON, "content-encoding": "gzip"}
    headers = {"content-type": kind}
    if zipped:
        body = gzip.compress(body, compresslevel=1)
        headers["content-encoding"] = "gzip"
    return kind, body, headers


def _must_be_400(case: tuple[str, bytes, bool]) -> bool:
    kind, body, _ = case
    return kind == "gzip-broken" or (kind == JSON and _invalid_json(body))


def _invalid_json(body: bytes) -> bool:
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError:
        return True
    return False


FUZZ = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@settings(FUZZ, max_examples=10_000)
@given(CASES)
def test_ten_thousand_malformed_bodies_get_a_400_or_a_partial_success(
    case: tuple[str, bytes, bool],
) -> None:
    # what the route does after reading the body, minus the store (fast enough for 10k)
    kind, body, headers = _request(case)
    try:
        if headers.get("content-encoding") == "gzip":
            body = gunzip(body, OTLP_MAX_BODY_BYTES)
        result = decode_and_map(body, kind, MappingOptions(), time.time())
    except ApiError as err:
        assert (err.status, err.error) == (400, "bad_gzip") and err.detail
        return
    except OtlpError as err:
        assert err.status == 400 and err.message
        return
    assert not _must_be_400(case)
    _check_reply(200, encode_response(kind, len(result.rejected), result.error_message()), kind)
    assert bool(result.rejected) == bool(result.error_message())


def test_malformed_bodies_never_get_a_5xx_from_the_app(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'fuzz.db'}", sqlite_synchronous="OFF")
    upgrade(store)
    with TestClient(make_app(store)) as client:  # raises on any unhandled server error

        @settings(FUZZ, max_examples=1_000)
        @given(CASES)
        def post(case: tuple[str, bytes, bool]) -> None:
            kind, body, headers = _request(case)
            reply = client.post("/v1/traces", content=body, headers=headers)
            _check_reply(reply.status_code, reply.content, kind)
            if _must_be_400(case):
                assert reply.status_code == 400

        post()
