"""Liveness, readiness and the Prometheus exposition."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from monitor import __version__
from monitor.api.errors import unavailable_response
from monitor.api.state import services
from monitor.store import Store, StoreUnavailable

router = APIRouter()


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


@router.get("/readyz", summary="Readiness: the store answers", response_model=None)
async def readyz(request: Request) -> JSONResponse:
    store: Store = services(request).store
    try:
        with anyio.fail_after(5):
            await anyio.to_thread.run_sync(store.ping)
    except (StoreUnavailable, TimeoutError):
        return unavailable_response("the store does not answer")
    return JSONResponse({"status": "ready", "store": store.dialect})


@router.get("/metrics", summary="Prometheus metrics", response_model=None)
async def metrics(request: Request) -> Response:
    # on a worker thread: the detection gauges are read from the store, which may be slow
    # or gone, and the event loop also answers the switch reads
    exposition = await anyio.to_thread.run_sync(services(request).metrics.exposition)
    return Response(exposition, media_type=CONTENT_TYPE_LATEST)
