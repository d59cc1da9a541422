"""Bearer tokens per role. With no tokens configured everything is open (and ``serve``
then refuses non-loopback addresses); once any token is configured every protected
endpoint needs one. A control token is accepted wherever read or ingest is required."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Literal

from fastapi import Request

from monitor.api.errors import ApiError
from monitor.api.state import services
from monitor.settings import Settings

Role = Literal["ingest", "read", "control"]


def allowed_tokens(settings: Settings, role: Role) -> list[str]:
    if role == "control":
        return list(settings.control_tokens)
    if role == "read":
        return [*settings.read_tokens, *settings.control_tokens]
    return [*settings.ingest_tokens, *settings.control_tokens]


def check(settings: Settings, request: Request, role: Role) -> str:
    """The caller's identity (``token:<role>`` or ``anonymous``) or raise 401/403."""
    if not settings.has_tokens:
        return "anonymous"
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(
            401,
            "unauthorized",
            f"send `Authorization: Bearer <{role} token>`",
            headers={"WWW-Authenticate": "Bearer"},
        )
    token = token.strip()
    for candidate in allowed_tokens(settings, role):
        if hmac.compare_digest(candidate.encode(), token.encode()):
            return f"token:{_fingerprint(candidate)}"
    raise ApiError(403, "forbidden", f"this token does not have the {role} role")


def _fingerprint(token: str) -> str:
    import hashlib

    return hashlib.sha256(token.encode()).hexdigest()[:8]


def require(role: Role) -> Callable[[Request], str]:
    """A FastAPI dependency: ``caller: str = Depends(require("control"))``."""

    def dependency(request: Request) -> str:
        settings: Settings = services(request).settings
        return check(settings, request, role)

    return dependency
