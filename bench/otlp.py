"""OTLP/HTTP traces ingest throughput vs the decode-only ceiling, measured in one run.

    python bench/otlp.py                         # 200 batches x 512 spans, SQLite
    python bench/otlp.py --batches 100 --stores sqlite,postgres

Through HTTP: a real ``driftwarden serve`` subprocess, N clients posting protobuf
``ExportTraceServiceRequest`` batches of 512 GenAI chat spans (each becomes a run and a
priced cost event) to POST /v1/traces. Ceilings, on the same payloads in the same process:
``ParseFromString`` alone (opentelemetry-proto/upb), and the daemon's own decode + mapping
(``iter_spans`` + ``map_spans``, no store), and storing the mapped events without HTTP,
which together show where the time goes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors.otlp import PROTOBUF, decode_request, iter_spans
from collectors.otlp_mapping import MappingOptions, map_spans
from monitor.ingest.service import IngestService
from monitor.store import Store
from monitor.store.migrate import upgrade
from monitor.telemetry.logging import configure
from monitor.telemetry.metrics import Metrics
from tests.support.daemon import Daemon

SPANS_PER_BATCH = 512
MODELS = ("gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5", "in-house-7b")


def _kv(key: str, value: str | int | float) -> KeyValue:
    if isinstance(value, str):
        return KeyValue(key=key, value=AnyValue(string_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(double_value=value))


def make_batch(batch: int, now_ns: int) -> bytes:
    """512 chat spans over 4 services; ids unique across batches."""
    request = ExportTraceServiceRequest()
    per_resource = SPANS_PER_BATCH // 4
    for r in range(4):
        spans = []
        for j in range(per_resource):
            i = batch * SPANS_PER_BATCH + r * per_resource + j
            start = now_ns - 3_600_000_000_000 + i * 1_000_000
            model = MODELS[i % len(MODELS)]
            spans.append(
                Span(
                    trace_id=(i + 1).to_bytes(16, "big"),
                    span_id=(i + 1).to_bytes(8, "big"),
                    name=f"chat {model}",
                    kind=Span.SPAN_KIND_CLIENT,
                    start_time_unix_nano=start,
                    end_time_unix_nano=start + 400_000_000 + (i % 97) * 1_000_000,
                    status=Status(
                        code=Status.STATUS_CODE_ERROR if i % 50 == 0 else Status.STATUS_CODE_UNSET
                    ),
                    attributes=[
                        _kv("gen_ai.operation.name", "chat"),
                        _kv("gen_ai.provider.name", "anthropic" if "claude" in model else "openai"),
                        _kv("gen_ai.request.model", model),
                        _kv("gen_ai.response.model", model),
                        _kv("gen_ai.usage.input_tokens", 800 + i % 400),
                        _kv("gen_ai.usage.output_tokens", 60 + i % 90),
                        _kv("gen_ai.usage.cache_read.input_tokens", 200),
                        _kv("driftwarden.team", f"team-{i % 3}"),
                        _kv("server.address", "api.example.com"),
                    ],
                )
            )
        request.resource_spans.append(
            ResourceSpans(
                resource=Resource(attributes=[_kv("service.name", f"Workflow {r}")]),
                scope_spans=[ScopeSpans(scope=InstrumentationScope(name="bench"), spans=spans)],
            )
        )
    data: bytes = request.SerializeToString()
    return data


def through_http(url: str, payloads: list[bytes], clients: int) -> float:
    queue = list(reversed(payloads))
    lock = threading.Lock()
    failures: list[str] = []

    def client() -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            while True:
                with lock:
                    if not queue:
                        return
                    body = queue.pop()
                resp = http.post("/v1/traces", content=body, headers={"content-type": PROTOBUF})
                if resp.status_code != 200 or ExportTraceServiceResponse.FromString(
                    resp.content
                ).HasField("partial_success"):
                    failures.append(f"{resp.status_code} {resp.content[:200]!r}")

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(f"{len(failures)} batches failed, e.g. {failures[0]}")
    return len(payloads) * SPANS_PER_BATCH / elapsed


def parse_only(payloads: list[bytes]) -> float:
    started = time.perf_counter()
    for body in payloads:
        ExportTraceServiceRequest.FromString(body)
    return len(payloads) * SPANS_PER_BATCH / (time.perf_counter() - started)


def decode_and_map(payloads: list[bytes]) -> tuple[float, float]:
    """(spans/s for decode + iter_spans, spans/s for decode + iter_spans + map_spans)."""
    started = time.perf_counter()
    for body in payloads:
        for _ in iter_spans(decode_request(body, PROTOBUF)):
            pass
    records = len(payloads) * SPANS_PER_BATCH / (time.perf_counter() - started)
    options = MappingOptions()
    started = time.perf_counter()
    for body in payloads:
        result = map_spans(iter_spans(decode_request(body, PROTOBUF)), options, time.time())
        assert len(result.events) == 2 * SPANS_PER_BATCH, result.error_message()
    mapped = len(payloads) * SPANS_PER_BATCH / (time.perf_counter() - started)
    return records, mapped


def store_only(url: str, payloads: list[bytes]) -> float:
    """spans/s for storing the already-mapped events (IngestService, no HTTP, no decoding)."""
    store = Store(url)
    upgrade(store)
    service = IngestService(store, Metrics())
    options = MappingOptions()
    mapped = [
        map_spans(iter_spans(decode_request(body, PROTOBUF)), options, time.time()).events
        for body in payloads
    ]
    started = time.perf_counter()
    for events in mapped:
        service.ingest(events, time.time())
    rate = len(payloads) * SPANS_PER_BATCH / (time.perf_counter() - started)
    store.dispose()
    return rate


def run(store_kind: str, payloads: list[bytes], clients: int, pg_base: str) -> None:
    sqlite = store_kind == "sqlite"
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'daemon.db'}" if sqlite else fresh_pg(pg_base)
        env = {"DRIFTWARDEN_DETECTION": "false"}
        with Daemon(url, env=env, log_path=Path(tmp) / "daemon.log") as daemon:
            http_rate = through_http(daemon.url, payloads, clients)
        other = f"sqlite:///{Path(tmp) / 'store.db'}" if sqlite else fresh_pg(pg_base, "dw_otlp2")
        stored = store_only(other, payloads)
    ceiling = parse_only(payloads)
    records, mapped = decode_and_map(payloads)
    n = len(payloads) * SPANS_PER_BATCH
    print(f"{store_kind:8s} spans={n:,} batch={SPANS_PER_BATCH} clients={clients}")
    print(f"  {'through /v1/traces':28s}: {http_rate:10,.0f} spans/s")
    for label, rate in (
        ("ceiling: ParseFromString", ceiling),
        ("decode + iter_spans", records),
        ("decode + iter_spans + map", mapped),
        ("store only (2 events/span)", stored),
    ):
        print(f"  {label:28s}: {rate:10,.0f} spans/s   ratio {http_rate / rate:.3f}")


def fresh_pg(base: str, name: str = "dw_bench_otlp") -> str:
    import psycopg

    admin = base.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return base.rsplit("/", 1)[0] + "/" + name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--stores", default="sqlite")
    parser.add_argument(
        "--pg",
        default=os.environ.get(
            "DRIFTWARDEN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()
    configure("console", "warning")  # the in-process store would log every batch
    print(f"driftwarden OTLP benchmark, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}")
    now = time.time_ns()
    payloads = [make_batch(b, now) for b in range(args.batches)]
    for kind in args.stores.split(","):
        kind = kind.strip()
        run(kind, payloads, args.clients, args.pg)


if __name__ == "__main__":
    main()
