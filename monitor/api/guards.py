"""Checks on every request before routing: header size (431) and NUL characters (400).

A plain ASGI middleware (no per-request task or body wrapping) because it sits in front of
the switch reads, whose latency matters. Neither check can be left to the routes: the
server accepts headers of any size, and a NUL in a query or path parameter reaches
PostgreSQL, which refuses it with an error that would otherwise be a 500.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from monitor.api.errors import error_response

MAX_HEADER_BYTES: Final = 64 * 1024  # all request header names and values together


class RequestGuard:
    def __init__(self, app: ASGIApp, max_header_bytes: int = MAX_HEADER_BYTES) -> None:
        self.app = app
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            size = sum(len(name) + len(value) + 4 for name, value in scope["headers"])
            if size > self.max_header_bytes:
                response = error_response(
                    431,
                    "headers_too_large",
                    f"request headers total {size} bytes; the limit is {self.max_header_bytes}",
                    headers={"Connection": "close"},
                )
                await response(scope, receive, send)
                return
            field = nul_parameter(scope)
            if field is not None:
                problem = {"field": field, "error": "must not contain a NUL character (U+0000)"}
                await error_response(400, "invalid_request", [problem])(scope, receive, send)
                return
        await self.app(scope, receive, send)


def nul_parameter(scope: Scope) -> str | None:
    """``path`` or the name of the first query parameter holding U+0000, or None."""
    if "\x00" in scope["path"]:
        return "path"
    query: bytes = scope["query_string"]
    if b"%00" not in query:  # a NUL can only arrive percent-encoded
        return None
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            return name.replace("\x00", "") or "query"
    return None
