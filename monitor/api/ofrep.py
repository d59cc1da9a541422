"""OpenFeature Remote Evaluation Protocol (OFREP 0.3) over the switches.

Flag keys: ``{workflow}.mode`` (string auto|review|manual) and
``{workflow}.action.{name}`` (boolean, true = the AI may run the action by itself: the
action is not disabled and the mode is not manual). Every success carries ``variant``
(the Python provider fails without it); a missing ``targetingKey`` is fine (the
provider sends ``{"context": {}}``). Bulk evaluation lists a flag per action each workflow
has used, and answers with an ``ETag`` and 304 on a matching ``If-None-Match``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import JSONResponse

from collectors.events import WORKFLOW_PATTERN
from monitor.api.body import read_body
from monitor.api.state import services
from monitor.api.switches import WORKFLOW_RE, caller, reader
from monitor.store import StoreUnavailable
from monitor.switch.reads import Freshness
from monitor.switch.service import ACTION_PATTERN, SwitchService, SwitchState

router = APIRouter()
MAX_BODY = 64 * 1024


def parse_key(key: str) -> tuple[str, str | None] | None:
    """``(workflow, None)`` for a mode flag, ``(workflow, action)`` for an action flag,
    None when the key is neither. Workflow names may contain dots, so split from the right.

    >>> parse_key("invoices.v2.action.send_email")
    ('invoices.v2', 'send_email')
    """
    if key.endswith(".mode"):
        workflow, action = key[: -len(".mode")], None
    else:
        workflow, sep, action = key.rpartition(".action.")
        if not sep or not ACTION_PATTERN.match(action):
            return None
    return (workflow, action) if WORKFLOW_RE.match(workflow) else None


def evaluate(
    key: str, state: SwitchState, action: str | None, freshness: Freshness | None = None
) -> dict[str, Any]:
    reason = "STATIC" if state.version else "DEFAULT"
    metadata: dict[str, Any] = {
        "workflow": state.workflow,
        "version": state.version,
        "source": state.source,
    }
    if freshness is not None and freshness.stale:  # from memory: the store did not answer
        metadata.update(freshness.fields())
    if action is None:
        return {
            "key": key,
            "value": state.mode,
            "variant": state.mode,
            "reason": reason,
            "metadata": metadata,
        }
    allowed = state.allows(action)
    if not allowed:
        reason = "DISABLED" if action in state.disabled_actions else "TARGETING_MATCH"
    return {
        "key": key,
        "value": allowed,
        "variant": "enabled" if allowed else "disabled",
        "reason": reason,
        "metadata": {**metadata, "mode": state.mode},
    }


def _failure(status: int, key: str | None, code: str, details: str) -> JSONResponse:
    body: dict[str, Any] = {"errorCode": code, "errorDetails": details}
    if key is not None:
        body = {"key": key, **body}
    return JSONResponse(body, status_code=status)


async def _context(request: Request) -> dict[str, Any] | str:
    """The evaluation context, or an error message (PARSE_ERROR / INVALID_CONTEXT)."""
    raw = await read_body(request, MAX_BODY)
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        return f"PARSE_ERROR:body is not JSON: {err}"
    if not isinstance(body, dict):
        return 'PARSE_ERROR:body must be a JSON object {"context": {...}}'
    context = body.get("context", {})
    if not isinstance(context, dict):
        return "INVALID_CONTEXT:context must be an object"
    return context


@router.post(
    "/ofrep/v1/evaluate/flags/{key}", summary="OFREP: evaluate one flag", response_model=None
)
async def evaluate_flag(
    key: str, request: Request, _caller: str = Depends(caller("read"))
) -> JSONResponse:
    context = await _context(request)
    if isinstance(context, str):
        code, _, details = context.partition(":")
        return _failure(400, key, code, details)
    parsed = parse_key(key)
    if parsed is None:
        return _failure(
            404,
            key,
            "FLAG_NOT_FOUND",
            f"flag {key!r} is not <workflow>.mode or <workflow>.action.<name>",
        )
    workflow, action = parsed
    read = await reader(request).one(workflow)
    return JSONResponse(
        evaluate(key, read.state, action, read.freshness), headers=read.freshness.headers()
    )


@router.post(
    "/ofrep/v1/evaluate/flags", summary="OFREP: evaluate all flags (ETag)", response_model=None
)
async def evaluate_all(
    request: Request,
    if_none_match: Annotated[str | None, Header()] = None,
    _caller: str = Depends(caller("read")),
) -> Response:
    """Every switch's mode flag and a flag per action the workflow has used or has
    disabled (false while disabled or in manual mode): a bulk reader, such as the web
    provider, only knows the keys listed here, and would read its own default (usually
    "allowed") for any other. A context attribute ``workflow`` narrows the answer to that
    workflow."""
    context = await _context(request)
    if isinstance(context, str):
        code, _, details = context.partition(":")
        return _failure(400, None, code, details)
    only = context.get("workflow")
    if isinstance(only, str) and not WORKFLOW_RE.match(only):
        return _failure(400, None, "INVALID_CONTEXT", f"workflow must match {WORKFLOW_PATTERN}")
    service = services(request).switches
    read = await reader(request).every()
    states, freshness = read.states, read.freshness
    if isinstance(only, str):
        states = [s for s in states if s.workflow == only]
        if not states:  # a workflow never written still has a (default) mode
            one = await reader(request).one(only)
            states, freshness = [one.state], one.freshness
    # a bulk reader sees only the keys listed: a flag for every action the workflow has
    # used (false in manual mode) gives it the safe value instead of its own default
    used = await _used_actions(service)
    if not isinstance(only, str):
        known = {s.workflow for s in states}
        states = [*states, *(service.default_state(wf) for wf in sorted(used.keys() - known))]
    flags = []
    for state in states:
        flags.append(evaluate(f"{state.workflow}.mode", state, None, freshness))
        actions = sorted(used.get(state.workflow, set()) | set(state.disabled_actions))
        for action in actions:
            flags.append(evaluate(f"{state.workflow}.action.{action}", state, action, freshness))
    body = json.dumps({"flags": flags}, separators=(",", ":"), sort_keys=True).encode()
    # the ETag names the flags, not their freshness: a stale answer of the same flags
    # is still "not modified" for a client that holds them
    etag = '"' + hashlib.sha256(_unmarked(flags)).hexdigest()[:32] + '"'
    headers = {"ETag": etag, **freshness.headers()}
    if if_none_match is not None and etag in [t.strip() for t in if_none_match.split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


async def _used_actions(service: SwitchService) -> dict[str, set[str]]:
    """The actions each workflow has used: a fresh read when the store answers within
    25 ms, else the last one (a switch read never waits on a store fault)."""
    used = service.known_used_actions()
    try:
        with anyio.move_on_after(0.025):
            used = await anyio.to_thread.run_sync(service.used_actions, abandon_on_cancel=True)
    except StoreUnavailable:
        pass
    return used


def _unmarked(flags: list[dict[str, Any]]) -> bytes:
    plain = [
        {**f, "metadata": {k: v for k, v in f["metadata"].items() if k not in ("stale", "as_of")}}
        for f in flags
    ]
    return json.dumps(plain, separators=(",", ":"), sort_keys=True).encode()
