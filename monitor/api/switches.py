"""GET/PUT /v1/switches[/{workflow}] and GET /v1/audit.

Reads need the read token, changes the control token and a reason. ``ETag`` is the
switch version; ``If-Match`` on PUT is a compare-and-set (412 when stale) and
``If-None-Match`` on GET answers 304 when nothing changed.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from collectors.events import WORKFLOW_PATTERN
from monitor.api.auth import Role, check, require
from monitor.api.errors import ApiError
from monitor.api.state import services
from monitor.switch.reads import SwitchReader
from monitor.switch.service import (
    ACTION_PATTERN,
    Mode,
    SwitchService,
    VersionConflict,
    Wanted,
)

WORKFLOW_RE = re.compile(WORKFLOW_PATTERN)


router = APIRouter()


def _service(request: Request) -> SwitchService:
    return services(request).switches


def caller(role: Role) -> Callable[[Request], Awaitable[str]]:
    """``require(role)`` as an async dependency: FastAPI runs sync dependencies on the
    thread pool, a hop that costs more than a cached switch read itself."""

    async def dependency(request: Request) -> str:
        return check(services(request).settings, request, role)

    return dependency


def reader(request: Request) -> SwitchReader:
    """Switch reads with a deadline: stale from memory rather than late (monitor.switch.reads)."""
    return services(request).switch_reads


def check_workflow(workflow: str, field: str = "workflow") -> str:
    if not WORKFLOW_RE.match(workflow):
        raise ApiError(
            400, "invalid_request", [{"field": field, "error": f"must match {WORKFLOW_PATTERN}"}]
        )
    return workflow


# -- reads ---------------------------------------------------------------------------------
@router.get(
    "/v1/switches",
    summary="All switches (written ones and configured workflows)",
    response_model=None,
)
async def list_switches(request: Request, _caller: str = Depends(caller("read"))) -> JSONResponse:
    read = await reader(request).every()
    body = {"switches": [s.as_dict() for s in read.states], **read.freshness.fields()}
    return JSONResponse(body, headers=read.freshness.headers())


@router.get("/v1/switches/{workflow}", summary="One switch (ETag = version)", response_model=None)
async def get_switch(
    workflow: str,
    request: Request,
    if_none_match: Annotated[str | None, Header()] = None,
    _caller: str = Depends(caller("read")),
) -> Response:
    read = await reader(request).one(check_workflow(workflow))
    state, headers = read.state, {"ETag": read.state.etag, **read.freshness.headers()}
    if if_none_match is not None and state.version in _versions(if_none_match, "If-None-Match"):
        return Response(status_code=304, headers=headers)
    return JSONResponse({**state.as_dict(), **read.freshness.fields()}, headers=headers)


# -- changes -------------------------------------------------------------------------------
def _check_actions(values: list[str] | None) -> list[str] | None:
    for action in values or []:
        if not ACTION_PATTERN.match(action):
            raise ValueError(f"{action!r} is not an action name like crm_write")
    return values


class SwitchChange(BaseModel):
    """PUT body. ``disabled_actions`` replaces the set; ``disable``/``enable`` edit it."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000)
    mode: Mode | None = None
    disabled_actions: list[str] | None = None
    disable: list[str] = Field(default_factory=list)
    enable: list[str] = Field(default_factory=list)

    _actions = field_validator("disabled_actions", "disable", "enable")(_check_actions)

    @field_validator("reason")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("reason must say why (it is kept in the audit log)")
        if "\x00" in value:  # PostgreSQL text cannot hold it
            raise ValueError("reason must not contain a NUL character (U+0000)")
        return value.strip()

    @model_validator(mode="after")
    def _asks_for_something(self) -> SwitchChange:
        if (
            self.mode is None
            and self.disabled_actions is None
            and not (self.disable or self.enable)
        ):
            raise ValueError("give mode, disabled_actions, disable or enable")
        if self.disabled_actions is not None and (self.disable or self.enable):
            raise ValueError(
                "disabled_actions replaces the set: do not combine with disable/enable"
            )
        return self


@router.put(
    "/v1/switches/{workflow}", summary="Set a switch (control token, reason)", response_model=None
)
def put_switch(
    workflow: str,
    change: SwitchChange,
    request: Request,
    if_match: Annotated[str | None, Header()] = None,
    caller: str = Depends(require("control")),
) -> JSONResponse:
    check_workflow(workflow)
    expected = None
    if if_match is not None and if_match.strip() != "*":
        versions = _versions(if_match, "If-Match")
        expected = versions[0] if len(versions) == 1 else None
        if expected is None:
            raise ApiError(
                400,
                "invalid_request",
                [{"field": "If-Match", "error": 'give one version, e.g. "3"'}],
            )
    wanted = Wanted(
        mode=change.mode,
        disabled_actions=None
        if change.disabled_actions is None
        else frozenset(change.disabled_actions),
        disable=frozenset(change.disable),
        enable=frozenset(change.enable),
    )
    try:
        result = _service(request).set_by_human(
            workflow, wanted, actor=caller, reason=change.reason, expected_version=expected
        )
    except VersionConflict as err:
        raise ApiError(
            412,
            "precondition_failed",
            {
                "message": f"the switch is at version {err.current.version}, not {err.expected}: "
                "re-read it and decide again",
                "current": err.current.as_dict(),
            },
            headers={"ETag": err.current.etag},
        ) from None
    body = {**result.after.as_dict(), "changed": result.changed}
    return JSONResponse(body, headers={"ETag": result.after.etag})


def _versions(header: str, field: str) -> list[int]:
    """Versions in an If-Match / If-None-Match header: ``"3"``, ``W/"3"``, ``3``, lists."""
    out = []
    for part in header.split(","):
        tag = part.strip().removeprefix("W/").strip('"')
        if tag == "*":
            continue
        if not tag.isdigit():
            raise ApiError(
                400,
                "invalid_request",
                [{"field": field, "error": f"{part.strip()!r} is not a switch version"}],
            )
        out.append(int(tag))
    return out


# -- audit ---------------------------------------------------------------------------------
def parse_time(value: str | None, field: str) -> float | None:
    """Epoch seconds or RFC 3339 with a timezone."""
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise ApiError(
            400,
            "invalid_request",
            [
                {
                    "field": field,
                    "error": "epoch seconds or RFC 3339 with a zone (2026-11-23T09:00:00Z)",
                }
            ],
        )
    return when.timestamp()


@router.get("/v1/audit", summary="Switch history, newest first")
def get_audit(
    request: Request,
    workflow: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    _caller: str = Depends(require("read")),
) -> dict[str, Any]:
    if workflow is not None:
        check_workflow(workflow)
    entries = _service(request).audit(
        workflow, parse_time(since, "since"), parse_time(until, "until"), limit
    )
    return {"audit": [e.as_dict() for e in entries]}
