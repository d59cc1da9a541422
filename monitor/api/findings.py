"""GET /v1/findings and GET /v1/workflows: the current verdicts."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Depends, Query, Request

from detectors.types import Status, worst
from monitor.api.auth import require
from monitor.api.state import services
from monitor.detection import store as ds
from monitor.detection.alarm_budget import budget_in_force, budget_report

router = APIRouter()
STATUSES = "^(ok|warn|critical|unknown)$"
LEARNING = "learning baseline"  # the evidence reason of a chart still learning


def learning(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The charts still learning, with how far they are (``learned`` of ``needed``)."""
    out = []
    for f in found:
        ev = f.get("evidence") or {}
        if f["status"] == "unknown" and ev.get("reason") == LEARNING:
            out.append(
                {
                    "signal": f["signal"],
                    "detector": f["detector"],
                    "learned": ev.get("learned"),
                    "needed": ev.get("needed"),
                }
            )
    return out


def _progress(entry: dict[str, Any]) -> float:
    learned, needed = entry["learned"], entry["needed"]
    if not isinstance(learned, int | float) or not isinstance(needed, int | float) or needed <= 0:
        return 0.0  # progress unknown: as far from done as it gets
    return float(learned) / float(needed)


def status_reason(status: Status, found: list[dict[str, Any]]) -> str | None:
    """Why a workflow reads ``unknown`` (the chart furthest from a verdict, or ``no data``),
    or the silence behind a ``no_data`` warning; None otherwise."""
    if status is Status.UNKNOWN:
        charts = learning(found)
        counted = [
            c
            for c in charts
            if isinstance(c["learned"], int | float) and isinstance(c["needed"], int | float)
        ]
        if counted:
            slowest = min(counted, key=_progress)
            return f"learning ({slowest['learned']:g}/{slowest['needed']:g})"
        if charts:  # a rule that learns without counting (e.g. cost per run): name it
            return f"learning ({charts[0]['signal']}/{charts[0]['detector']})"
        reasons = [(f.get("evidence") or {}).get("reason") for f in found]
        return next((r for r in reasons if isinstance(r, str) and r), "no data")
    for f in found:
        if f["detector"] == "no_data" and f["status"] == status.value:
            silent = (f.get("evidence") or {}).get("silent_s") or 0.0
            expected = (f.get("evidence") or {}).get("expected_events") or 0.0
            return f"no data for {silent / 3600:.1f} h ({expected:.0f} events expected)"
    return None


@router.get("/v1/findings", summary="Current findings (filters: workflow, status, signal)")
async def findings(
    request: Request,
    workflow: str | None = None,
    status: str | None = Query(None, pattern=STATUSES),
    signal: str | None = None,
    _caller: str = Depends(require("read")),
) -> dict[str, Any]:
    rows = await anyio.to_thread.run_sync(
        lambda: ds.current_findings(services(request).store, workflow, status, signal)
    )
    return {"findings": rows, "count": len(rows)}


@router.get("/v1/workflows", summary="Workflows with their worst status and switch mode")
async def workflows(request: Request, _caller: str = Depends(require("read"))) -> dict[str, Any]:
    wired = services(request)
    store, settings, file_config = wired.store, wired.settings, wired.file_config
    rows = await anyio.to_thread.run_sync(ds.current_findings, store)
    last = await anyio.to_thread.run_sync(ds.last_pass_time, store)
    service = wired.switches
    cached = service.cached_all()
    switches = {
        s.workflow: s
        for s in (cached if cached is not None else await anyio.to_thread.run_sync(service.all))
    }
    by_wf: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_wf.setdefault(r["workflow"], []).append(r)
    for name in (*file_config.workflows, *switches):
        by_wf.setdefault(name, [])
    out = []
    for name in sorted(by_wf):
        found = by_wf[name]
        status = worst([Status(f["status"]) for f in found])
        switch = switches.get(name)
        out.append(
            {
                "workflow": name,
                # a workflow never switched runs in its default mode
                "mode": switch.mode if switch is not None else service.default_mode(name),
                "disabled_actions": sorted(switch.disabled_actions) if switch is not None else [],
                "status": status.value,
                "status_reason": status_reason(status, found),
                "signals": sorted({f["signal"] for f in found}),
                "critical": [
                    f"{f['signal']}/{f['detector']}" for f in found if f["status"] == "critical"
                ],
                "warn": [f"{f['signal']}/{f['detector']}" for f in found if f["status"] == "warn"],
                # too little data: not counted as ok, listed so a learning chart is visible
                "unknown": [
                    f"{f['signal']}/{f['detector']}" for f in found if f["status"] == "unknown"
                ],
                "learning": learning(found),
                "budget": budget_report(budget_in_force(settings, file_config, name), found),
            }
        )
    return {"workflows": out, "last_detection": last}
