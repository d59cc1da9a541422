"""Liveness, readiness and the Prometheus exposition."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from collectors.events import MAX_BATCH_BYTES
from monitor import __version__
from monitor.api.errors import unavailable_response
from monitor.api.state import services
from monitor.store import Store, StoreUnavailable

router = APIRouter()


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


# below this much room the next batch (up to MAX_BATCH_BYTES, plus its rollups and the
# WAL) may not fit: not ready, rather than ready while every write gets a 503
MIN_ROOM_BYTES = 2 * MAX_BATCH_BYTES


@router.get("/readyz", summary="Readiness: the store answers and takes writes", response_model=None)
async def readyz(request: Request) -> JSONResponse:
    store: Store = services(request).store
    try:
        with anyio.fail_after(5):
            problem = await anyio.to_thread.run_sync(_not_ready, store)
    except (StoreUnavailable, TimeoutError):
        return unavailable_response("the store does not answer")
    if problem is not None:
        return unavailable_response(problem)
    return JSONResponse({"status": "ready", "store": store.dialect})


def _not_ready(store: Store) -> str | None:
    """Why the store cannot take writes now, or None."""
    store.ping()
    room = store.room_left()
    if room is not None and room < MIN_ROOM_BYTES:
        return f"the database has room for {room} more bytes only (needs {MIN_ROOM_BYTES})"
    failure = store.write_failure
    if failure is not None:
        # the last write failed: ready again once a write goes through. Probing only then
        # keeps a healthy daemon's readiness checks from queueing for the writer.
        try:
            store.probe_write()
        except StoreUnavailable:
            return f"the store refuses writes: {failure}"
    return None


@router.get("/metrics", summary="Prometheus metrics", response_model=None)
async def metrics(request: Request) -> Response:
    # on a worker thread: the detection gauges are read from the store, which may be slow
    # or gone, and the event loop also answers the switch reads
    exposition = await anyio.to_thread.run_sync(services(request).metrics.exposition)
    return Response(exposition, media_type=CONTENT_TYPE_LATEST)
