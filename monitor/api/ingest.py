"""POST /v1/events: native batches (JSON array, envelope, NDJSON; gzip allowed)."""

from __future__ import annotations

import time
from typing import Any

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from collectors.costlogs import FORMATS, parse_costlog_body
from collectors.events import MAX_BATCH_BYTES
from collectors.native import BatchError, Parsed, parse_batch
from monitor.api.auth import require
from monitor.api.body import media_type, read_body
from monitor.api.errors import ApiError
from monitor.api.state import services
from monitor.ingest.service import IngestService

router = APIRouter()

JSON_TYPES = {"application/json", "application/cloudevents-batch+json", "text/json"}
NDJSON_TYPES = {
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/x-jsonlines",
    "application/jsonlines",
}
MAX_ERRORS_RETURNED = 1000


def _service(request: Request) -> IngestService:
    service: IngestService = services(request).ingest
    return service


@router.post("/v1/events", summary="Ingest events", response_model=None)
async def post_events(
    request: Request, format: str = "native", _caller: str = Depends(require("ingest"))
) -> JSONResponse:
    service = _service(request)
    kind = media_type(request)
    body = await _read(request, service)
    received = time.time()
    if format == "native":
        if kind in JSON_TYPES or kind == "":
            fmt = "json"
        elif kind in NDJSON_TYPES:
            fmt = "ndjson"
        else:
            service.reject("unsupported_media_type")
            raise ApiError(
                415,
                "unsupported_media_type",
                f"Content-Type {kind!r}; use application/json or application/x-ndjson",
            )
        parser: Any = parse_batch
        args: tuple[Any, ...] = (body, fmt, received)
    else:
        parser, args = _costlog_parser(format, body, request, received)
    limiter: anyio.CapacityLimiter = request.app.state.ingest_limiter
    try:
        parsed, result = await service.ingest_body(limiter, received, parser, *args)
    except BatchError as err:
        service.reject("too_large" if err.too_large else "unparseable")
        raise ApiError(413 if err.too_large else 400, "bad_batch", str(err)) from None
    assert isinstance(parsed, Parsed)
    return JSONResponse(
        {
            "accepted": result.accepted,
            "duplicates": result.duplicates,
            "rejected": [r.as_dict() for r in parsed.rejected[:MAX_ERRORS_RETURNED]],
            "rejected_count": len(parsed.rejected),
        }
    )


async def _read(request: Request, service: IngestService) -> bytes:
    try:
        return await read_body(request, MAX_BATCH_BYTES)
    except ApiError as err:
        service.reject(err.error)
        raise


def _costlog_parser(
    fmt: str, body: bytes, request: Request, received: float
) -> tuple[Any, tuple[Any, ...]]:
    if fmt not in FORMATS:
        known = ", ".join(["native", *FORMATS])
        raise ApiError(400, "unknown_format", f"format {fmt!r}; known formats: {known}")
    options = {k: v for k, v in request.query_params.items() if k != "format"}
    return parse_costlog_body, (fmt, body, options, received)
