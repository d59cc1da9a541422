"""GET /v1/findings and GET /v1/workflows: the current verdicts."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Depends, Query, Request

from detectors.types import Status, worst
from monitor import detection_store as ds
from monitor.api.auth import require

router = APIRouter()
STATUSES = "^(ok|warn|critical|unknown)$"


@router.get("/v1/findings", summary="Current findings (filters: workflow, status, signal)")
async def findings(
    request: Request,
    workflow: str | None = None,
    status: str | None = Query(None, pattern=STATUSES),
    signal: str | None = None,
    _caller: str = Depends(require("read")),
) -> dict[str, Any]:
    rows = await anyio.to_thread.run_sync(
        lambda: ds.current_findings(request.app.state.store, workflow, status, signal)
    )
    return {"findings": rows, "count": len(rows)}


@router.get("/v1/workflows", summary="Workflows with their worst status and switch mode")
async def workflows(request: Request, _caller: str = Depends(require("read"))) -> dict[str, Any]:
    store = request.app.state.store
    rows = await anyio.to_thread.run_sync(ds.current_findings, store)
    last = await anyio.to_thread.run_sync(ds.last_pass_time, store)
    by_wf: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_wf.setdefault(r["workflow"], []).append(r)
    for name in request.app.state.file_config.workflows:
        by_wf.setdefault(name, [])
    out = []
    for name in sorted(by_wf):
        found = by_wf[name]
        out.append(
            {
                "workflow": name,
                "status": worst([Status(f["status"]) for f in found]).value,
                "signals": sorted({f["signal"] for f in found}),
                "critical": [
                    f"{f['signal']}/{f['detector']}" for f in found if f["status"] == "critical"
                ],
                "warn": [f"{f['signal']}/{f['detector']}" for f in found if f["status"] == "warn"],
                # too little data: not counted as ok, listed so a learning chart is visible
                "unknown": [
                    f"{f['signal']}/{f['detector']}" for f in found if f["status"] == "unknown"
                ],
            }
        )
    return {"workflows": out, "last_detection": last}
