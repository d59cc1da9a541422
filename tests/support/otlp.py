"""Helpers for the OTLP tests: real SDK spans, their protobuf and OTLP/JSON encodings, an app."""

from __future__ import annotations

import base64
import time
from collections.abc import Sequence
from typing import Any

import orjson
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from monitor.api.app import create_app
from monitor.settings import Settings
from monitor.store import Store

GENAI_CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.response.model": "gpt-4o-2024-08-06",
    "gen_ai.usage.input_tokens": 1200,
    "gen_ai.usage.output_tokens": 80,
    "gen_ai.usage.cache_read.input_tokens": 200,
}


def make_spans(
    specs: Sequence[dict[str, Any]], service: str = "Invoice Triage"
) -> list[ReadableSpan]:
    """Finished SDK spans; each spec: name, attributes, optional error/events/duration_ns."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests")
    start = time.time_ns() - 60_000_000_000
    for i, spec in enumerate(specs):
        begin = start + i * 1_000_000_000
        span = tracer.start_span(spec.get("name", f"span {i}"), start_time=begin)
        span.set_attributes(spec.get("attributes", {}))
        for name, attrs in spec.get("events", []):
            span.add_event(name, attrs)
        if "error" in spec:
            span.set_status(Status(StatusCode.ERROR, spec["error"]))
        span.end(end_time=begin + spec.get("duration_ns", 250_000_000))
    provider.shutdown()
    return list(exporter.get_finished_spans())


def request_of(spans: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
    request: ExportTraceServiceRequest = encode_spans(spans)
    return request


def otlp_json(request: ExportTraceServiceRequest) -> bytes:
    """The request as OTLP/JSON per the spec: hex ids, integer enums, camelCase keys."""
    doc = json_format.MessageToDict(request, use_integers_for_enums=True)
    for rs in doc.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex().upper()
    return orjson.dumps(doc)


def make_app(store: Store, **settings: Any) -> Any:
    """The real app on ``store`` (detection off: these tests only ingest)."""
    return create_app(
        Settings(database_url=store.url, detection=False, _env_file=None, **settings),  # type: ignore[call-arg]  # an init-only option of pydantic-settings
        store,
    )
