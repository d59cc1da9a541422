"""POST /v1/traces: the OTLP/HTTP traces receiver (protobuf or JSON, gzip allowed).

Status codes follow the OTLP spec so that exporters retry exactly when they should:
200 (with ``partial_success`` only when spans were rejected), 400 undecodable (never
retried), 413 too large, 415 other content types, 429 (concurrency limit reached) and 503
(store down) with Retry-After (retried). Error bodies are ``google.rpc.Status`` in the
request's content type. Decoding and mapping run in a worker thread so the event loop
keeps answering health checks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final

import anyio
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response

from collectors.otlp import (
    JSON,
    OtlpError,
    encode_response,
    encode_status,
)
from collectors.otlp import media_type as otlp_media_type
from collectors.otlp_mapping import MappingOptions, MappingResult, decode_and_map
from monitor.api.auth import check
from monitor.api.body import read_body
from monitor.api.errors import RETRY_AFTER_S, ApiError
from monitor.api.state import services
from monitor.ingest.service import IngestService
from monitor.settings import Settings
from monitor.store import StoreUnavailable

router = APIRouter()

BUSY_RETRY_AFTER_S: Final = 1
# google.rpc.Code values for the Status body
_CODES: Final = {400: 3, 401: 16, 403: 7, 413: 8, 415: 3, 429: 8, 503: 14}


class _Gate:
    """Admission control: at most ``limit`` requests in flight; the next one gets a 429.

    A counter is enough: it is only touched on the event loop, between awaits.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0

    def try_enter(self) -> bool:
        if self.active >= self.limit:
            return False
        self.active += 1
        return True

    def leave(self) -> None:
        self.active -= 1


@dataclass(frozen=True, slots=True)
class OtlpConfig:
    options: MappingOptions
    max_body_bytes: int
    concurrency: int


def config_from_settings(settings: Settings) -> OtlpConfig:
    """The receiver's configuration: every ``MappingOptions`` field is the setting
    ``otlp_<field>`` (``DRIFTWARDEN_OTLP_<FIELD>``); ``otlp_max_body_bytes`` and
    ``otlp_concurrency`` bound the receiver itself."""
    return OtlpConfig(
        options=MappingOptions(
            workflow_attribute=settings.otlp_workflow_attribute,
            workflow_resource_attribute=settings.otlp_workflow_resource_attribute,
            default_workflow=settings.otlp_default_workflow,
            select=settings.otlp_select,
            cost_from_aggregate_spans=settings.otlp_cost_from_aggregate_spans,
            price_missing_cost=settings.otlp_price_missing_cost,
        ),
        max_body_bytes=settings.otlp_max_body_bytes,
        concurrency=settings.otlp_concurrency or settings.ingest_concurrency,
    )


def install(app: FastAPI, settings: Settings) -> None:
    """Mount the receiver with its configuration and admission gate."""
    config = config_from_settings(settings)
    app.state.otlp_config = config
    app.state.otlp_gate = _Gate(config.concurrency)
    app.include_router(router)


def _reply(kind: str, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    body = encode_status(kind, message, _CODES.get(status, 2))
    return Response(body, status_code=status, media_type=kind, headers=headers)


@router.post("/v1/traces", summary="OTLP/HTTP traces", response_model=None)
async def post_traces(request: Request) -> Response:
    settings: Settings = services(request).settings
    service: IngestService = services(request).ingest
    try:
        kind = otlp_media_type(request.headers.get("content-type"))
    except OtlpError as err:
        service.reject("unsupported_media_type")
        return _reply(JSON, err.status, err.message)
    try:
        check(settings, request, "ingest")
    except ApiError as err:
        return _reply(kind, err.status, str(err.detail), err.headers)
    config: OtlpConfig = request.app.state.otlp_config
    gate: _Gate = request.app.state.otlp_gate
    if not gate.try_enter():
        service.reject("overloaded")
        return _reply(
            kind,
            429,
            "too many concurrent exports; retry later",
            {"Retry-After": str(BUSY_RETRY_AFTER_S)},
        )
    try:
        return await _export(request, service, config, kind)
    finally:
        gate.leave()


async def _export(
    request: Request, service: IngestService, config: OtlpConfig, kind: str
) -> Response:
    try:
        body = await read_body(request, config.max_body_bytes)
    except ApiError as err:
        service.reject(err.error)
        return _reply(kind, err.status, str(err.detail))
    received = time.time()
    limiter: anyio.CapacityLimiter = request.app.state.ingest_limiter
    try:
        mapped, _ = await service.ingest_body(
            limiter, received, decode_and_map, body, kind, config.options, received
        )
    except OtlpError as err:
        service.reject("unparseable")
        return _reply(kind, err.status, err.message)
    except StoreUnavailable:
        return _reply(
            kind,
            503,
            "the store is unavailable; retry later",
            {"Retry-After": str(RETRY_AFTER_S)},
        )
    assert isinstance(mapped, MappingResult)
    body_out = encode_response(kind, len(mapped.rejected), mapped.error_message())
    return Response(body_out, status_code=200, media_type=kind)
