"""The console's HTTP routes: server-rendered pages at ``/``, sign-in, and the switch forms.

Reads go through the same store reads and switch service as the API; a switch change goes
through ``SwitchService.set_by_human`` with the API's own ``SwitchChange`` validation, so
a change made here is the change ``PUT /v1/switches/{workflow}`` would make, audited as a
human's with the signed-in token as the actor. Every POST needs the session's CSRF token;
the session cookie is HttpOnly and SameSite=Strict, and pages forbid framing.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar
from urllib.parse import parse_qs, quote

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from collectors.events import WORKFLOW_PATTERN
from monitor.api.state import services
from monitor.api.switches import SwitchChange
from monitor.console import pages
from monitor.console.auth import (
    COOKIE,
    MAX_AGE_S,
    Session,
    SessionKeys,
    Viewer,
    keys_for,
    new_session,
    role_of,
    token_hash,
    viewer_for,
)
from monitor.console.series import load_version_history
from monitor.console.templates import HERE, render
from monitor.detection import store as ds
from monitor.settings import Settings
from monitor.switch.state import MODES, VersionConflict, Wanted

router = APIRouter(include_in_schema=False)
WORKFLOW_RE: Final = re.compile(WORKFLOW_PATTERN)
MAX_FORM_BYTES: Final = 16_384
REFRESH_S: Final = 30
# no framing (the switch forms cannot be clickjacked), nothing loaded from elsewhere
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
STATIC: Final = {
    "console.css": ("text/css; charset=utf-8", (HERE / "static" / "console.css").read_bytes()),
    "console.js": ("text/javascript; charset=utf-8", (HERE / "static" / "console.js").read_bytes()),
}
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Visit:
    """One request's viewer, and whether its session is new (then the cookie is set)."""

    viewer: Viewer
    keys: SessionKeys
    fresh: bool
    secure: bool

    @property
    def csrf(self) -> str:
        return self.keys.csrf(self.viewer.session)


class Refused(Exception):
    """A console request answered with an HTML error page."""

    def __init__(
        self,
        status: int,
        message: str,
        problems: list[dict[str, str]] | None = None,
        back: str = "/",
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.problems, self.back = status, message, problems, back


def _settings(request: Request) -> Settings:
    settings: Settings = services(request).settings
    return settings


def _visit(request: Request, session: Session | None = None) -> Visit:
    settings = _settings(request)
    keys = keys_for(settings)
    now = time.time()
    found = session or keys.verify(request.cookies.get(COOKIE), now)
    fresh = session is not None or found is None
    return Visit(
        viewer_for(settings, found or new_session(None, now)),
        keys,
        fresh,
        request.url.scheme == "https",
    )


def _finish(response: Response, visit: Visit) -> Response:
    response.headers.update(SECURITY_HEADERS)
    if visit.fresh:
        response.set_cookie(
            COOKIE,
            visit.keys.sign(visit.viewer.session),
            max_age=MAX_AGE_S,
            path="/",
            httponly=True,
            samesite="strict",
            secure=visit.secure,
        )
    return response


def _html(visit: Visit, template: str, code: int = 200, **context: Any) -> Response:
    body = render(template, viewer=visit.viewer, csrf=visit.csrf, now=time.time(), **context)
    return _finish(HTMLResponse(body, status_code=code), visit)


def _refused(visit: Visit, err: Refused) -> Response:
    heading = {400: "Bad request", 403: "Refused", 404: "Not found", 412: "Changed meanwhile"}
    return _html(
        visit,
        "error.html",
        err.status,
        status=err.status,
        heading=heading.get(err.status, "Error"),
        message=err.message,
        problems=err.problems,
        back=err.back,
    )


def _sign_in_page(visit: Visit, next_path: str, error: str | None, status: int) -> Response:
    return _html(visit, "sign_in.html", status, next=_local(next_path), error=error)


def _local(path: str | None) -> str:
    """Only a path on this site (an open redirect would make sign-in a phishing aid)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path


async def _thread(fn: Callable[[], T]) -> T:
    return await anyio.to_thread.run_sync(fn)


async def _form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (what a plain HTML form posts)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise Refused(400, "send the form as application/x-www-form-urlencoded")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise Refused(400, f"form larger than {MAX_FORM_BYTES} bytes")
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise Refused(400, "form is not UTF-8") from None
    return {k: v[0] for k, v in parsed.items()}


def _check_csrf(visit: Visit, form: dict[str, str]) -> None:
    if visit.fresh or not visit.keys.csrf_ok(visit.viewer.session, form.get("csrf")):
        raise Refused(
            403,
            "missing or wrong CSRF token: reload the page and submit the form again",
        )


# -- pages ---------------------------------------------------------------------------------
@router.get("/", response_class=HTMLResponse)
async def overview(request: Request) -> Response:
    visit = _visit(request)
    if not visit.viewer.can_read:
        return _sign_in_page(visit, "/", None, 401)
    sv = services(request)
    page = await _thread(
        lambda: pages.overview(
            sv.store, sv.settings, sv.file_config, sv.switches.all(), time.time()
        )
    )
    return _html(
        visit, "overview.html", page=page, last_detection=page.last_detection, refresh=REFRESH_S
    )


@router.get("/workflows/{workflow}", response_class=HTMLResponse)
async def workflow(request: Request, workflow: str) -> Response:
    visit = _visit(request)
    path = f"/workflows/{quote(workflow)}"
    if not visit.viewer.can_read:
        return _sign_in_page(visit, path, None, 401)
    try:
        span = _range(request.query_params.get("range", "24h"))
        _check_name(workflow)
        page = await _thread(lambda: _workflow_page(request, workflow, span))
    except Refused as err:
        return _refused(visit, err)
    changed = request.query_params.get("changed")
    done = f"Switch changed: now version {changed}." if changed and changed.isdigit() else None
    return _html(
        visit,
        "workflow.html",
        page=page,
        last_detection=page.last_detection,
        ranges=list(pages.RANGES),
        modes=MODES,
        done=done,
        refresh=REFRESH_S,
    )


def _range(name: str) -> pages.Range:
    found = pages.RANGES.get(name)
    if found is None:
        raise Refused(
            400,
            "unknown range",
            [{"field": "range", "error": f"one of {', '.join(pages.RANGES)}"}],
        )
    return found


def _check_name(workflow: str) -> None:
    if not WORKFLOW_RE.match(workflow):
        raise Refused(
            400, "not a workflow name", [{"field": "workflow", "error": f"{WORKFLOW_PATTERN}"}]
        )


def _workflow_page(request: Request, workflow: str, span: pages.Range) -> pages.WorkflowPage:
    state = services(request)
    service = state.switches
    switch = service.get(workflow)
    rows = ds.current_findings(state.store, workflow)
    if not pages.is_known(workflow, state.file_config, switch, rows):
        raise Refused(404, f"no workflow {workflow!r}: it has sent no events and is not configured")
    return pages.workflow_page(
        state.store,
        state.settings,
        state.file_config,
        switch,
        service.audit(workflow, limit=100),
        load_version_history(state.store, workflow),
        rows,
        span,
        time.time(),
    )


# -- sign-in -------------------------------------------------------------------------------
@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_form(request: Request) -> Response:
    visit = _visit(request)
    return _sign_in_page(visit, request.query_params.get("next", "/"), None, 200)


@router.post("/sign-in", response_class=HTMLResponse)
async def sign_in(request: Request) -> Response:
    visit = _visit(request)
    try:
        form = await _form(request)
        _check_csrf(visit, form)
    except Refused as err:
        return _refused(visit, err)
    token = form.get("token", "").strip()
    next_path = _local(form.get("next"))
    if role_of(_settings(request), token_hash(token) if token else None) is None:
        return _sign_in_page(
            visit, next_path, "That is not a read or control token of this daemon.", 401
        )
    signed_in = _visit(request, new_session(token, time.time()))  # a new sid: new CSRF
    return _finish(RedirectResponse(next_path, status_code=303), signed_in)


@router.post("/sign-out", response_class=HTMLResponse)
async def sign_out(request: Request) -> Response:
    visit = _visit(request)
    try:
        _check_csrf(visit, await _form(request))
    except Refused as err:
        return _refused(visit, err)
    signed_out = _visit(request, new_session(None, time.time()))
    return _finish(RedirectResponse("/", status_code=303), signed_out)


# -- switch changes ------------------------------------------------------------------------
@router.post("/workflows/{workflow}/switch", response_class=HTMLResponse)
async def change_switch(request: Request, workflow: str) -> Response:
    visit = _visit(request)
    back = f"/workflows/{quote(workflow)}"
    try:
        _check_name(workflow)
        form = await _form(request)
        _check_csrf(visit, form)
        if not visit.viewer.can_control:
            who = "a read token" if visit.viewer.role == "read" else "no token"
            raise Refused(
                403, f"signed in with {who}: changing a switch needs a control token", back=back
            )
        wanted, reason, expected = _wanted(form, back)
        service = services(request).switches
        result = await _thread(
            lambda: service.set_by_human(
                workflow,
                wanted,
                actor=visit.viewer.actor,
                reason=reason,
                expected_version=expected,
            )
        )
    except Refused as err:
        return _refused(visit, err)
    except VersionConflict as err:
        return _refused(
            visit,
            Refused(
                412,
                f"the switch is at version {err.current.version} now, not {err.expected}: "
                "someone changed it after this page was loaded; look again and decide",
                back=back,
            ),
        )
    to = f"{back}?changed={result.after.version}#switch"
    return _finish(RedirectResponse(to, status_code=303), visit)


def _wanted(form: dict[str, str], back: str) -> tuple[Wanted, str, int | None]:
    """The form as the API's ``SwitchChange`` (same rules, same messages)."""
    kind = form.get("change", "")
    fields: dict[str, Any] = {"reason": form.get("reason", "")}
    if kind == "mode":
        fields["mode"] = form.get("mode") or None
    elif kind in ("disable", "enable"):
        fields[kind] = [form.get("action", "").strip()]
    else:
        raise Refused(
            400,
            "unknown change",
            [{"field": "change", "error": "one of mode, disable, enable"}],
            back,
        )
    version = form.get("version", "").strip()
    if version and not version.isdigit():
        raise Refused(400, "bad version", [{"field": "version", "error": "a number"}], back)
    try:
        change = SwitchChange(**fields)
    except ValidationError as err:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"]) or "form", "error": e["msg"]}
            for e in err.errors()
        ]
        raise Refused(400, "the change was not made", problems, back) from None
    wanted = Wanted(
        mode=change.mode, disable=frozenset(change.disable), enable=frozenset(change.enable)
    )
    return wanted, change.reason, int(version) if version else None


# -- assets --------------------------------------------------------------------------------
@router.get("/console/static/{name}")
async def static(name: str) -> Response:
    found = STATIC.get(name)
    if found is None:
        return Response(status_code=404)
    kind, body = found
    return Response(body, media_type=kind, headers={"Cache-Control": "public, max-age=300"})
