"""Reading request bodies with hard size limits, before and after gzip."""

from __future__ import annotations

import zlib

from fastapi import Request

from monitor.api.errors import ApiError


async def read_body(request: Request, limit: int) -> bytes:
    """The (decompressed) body; 413 past ``limit`` bytes, 400 for a broken gzip stream.

    The limit applies to the bytes on the wire and again after decompression, so a small
    gzip bomb cannot expand into memory.
    """
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "too_large", f"body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "too_large", f"body is larger than {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise ApiError(415, "unsupported_encoding", f"Content-Encoding {encoding!r}; use gzip")
    return gunzip(body, limit)


def gunzip(data: bytes, limit: int) -> bytes:
    decomp = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = decomp.decompress(data, limit + 1)
    except zlib.error as err:
        raise ApiError(400, "bad_gzip", f"body is not valid gzip: {err}") from None
    if len(out) > limit:
        raise ApiError(413, "too_large", f"decompressed body is larger than {limit} bytes")
    if not decomp.eof:
        raise ApiError(400, "bad_gzip", "gzip stream is truncated")
    return out


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
