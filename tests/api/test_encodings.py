"""Content-Encoding: every gzip member decoded, trailing garbage refused, deflate accepted.

On SQLite and PostgreSQL, through the real app; deflate also from the OpenTelemetry SDK's
own exporter over HTTP.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from collectors.events import MAX_BATCH_BYTES
from monitor.store import Store
from tests.support.otlp import GENAI_CHAT, make_app, make_spans
from tests.support.switches import serving

NDJSON = {"content-type": "application/x-ndjson"}


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    with TestClient(make_app(store)) as c:
        yield c


def line(i: int) -> bytes:
    return json.dumps({"id": f"r{i}", "type": "run", "workflow": "wf"}).encode() + b"\n"


def post(client: TestClient, body: bytes, encoding: str) -> tuple[int, dict[str, object]]:
    resp = client.post("/v1/events", content=body, headers={**NDJSON, "content-encoding": encoding})
    return resp.status_code, resp.json()


def test_every_gzip_member_is_decoded(client: TestClient, store: Store) -> None:
    # what `cat a.gz b.gz` or a client gzipping each line gives
    body = b"".join(gzip.compress(line(i)) for i in range(3))
    status, answer = post(client, body, "gzip")
    assert (status, answer["accepted"]) == (200, 3), answer
    assert store.count_events() == 3


@pytest.mark.parametrize(
    "tail",
    [b"garbage", b"\x00" * 8, gzip.compress(line(9))[:-4]],
    ids=["garbage", "zeros", "cut-member"],
)
def test_anything_after_a_member_that_is_not_a_whole_member_is_a_400(
    client: TestClient, store: Store, tail: bytes
) -> None:
    status, answer = post(client, gzip.compress(line(0)) + tail, "gzip")
    assert (status, answer["error"]) == (400, "bad_gzip"), answer
    assert "gzip member" in str(answer["detail"]) or "truncated" in str(answer["detail"])
    assert store.count_events() == 0


def test_the_decompressed_limit_holds_across_members(client: TestClient) -> None:
    member = gzip.compress(b" " * (MAX_BATCH_BYTES // 2))  # each one under the limit
    status, answer = post(client, member * 3, "gzip")
    assert (status, answer["error"]) == (413, "too_large")


@pytest.mark.parametrize("wbits", [zlib.MAX_WBITS, -zlib.MAX_WBITS], ids=["zlib", "raw"])
def test_deflate_bodies_are_accepted(client: TestClient, store: Store, wbits: int) -> None:
    packer = zlib.compressobj(wbits=wbits)
    body = packer.compress(line(0) + line(1)) + packer.flush()
    status, answer = post(client, body, "deflate")
    assert (status, answer["accepted"]) == (200, 2), answer
    status, answer = post(client, body + b"x", "deflate")
    assert (status, answer["error"]) == (400, "bad_deflate")
    assert store.count_events() == 2


def test_the_sdk_exporter_with_deflate_is_stored(store: Store) -> None:
    spans = make_spans([{"name": "chat gpt-4o", "attributes": GENAI_CHAT}])
    with serving(make_app(store)) as url:
        exporter = OTLPSpanExporter(endpoint=url + "/v1/traces", compression=Compression.Deflate)
        assert exporter.export(spans) == SpanExportResult.SUCCESS
        exporter.shutdown()  # type: ignore[no-untyped-call]
    assert store.count_events() == 2  # the run and its cost
