"""Reading request bodies with hard size limits, before and after decompression."""

from __future__ import annotations

import zlib

from fastapi import Request

from monitor.api.errors import ApiError


async def read_body(request: Request, limit: int) -> bytes:
    """The (decompressed) body; 413 past ``limit`` bytes, 400 for a broken gzip or deflate
    stream, 415 for another encoding.

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
    if encoding in ("gzip", "x-gzip"):
        return gunzip(body, limit)
    if encoding == "deflate":  # OTLP/HTTP allows it; HTTP means zlib, some clients send raw
        return inflate(body, limit)
    raise ApiError(
        415, "unsupported_encoding", f"Content-Encoding {encoding!r}; use gzip or deflate"
    )


def gunzip(data: bytes, limit: int) -> bytes:
    """Every member of a gzip stream, concatenated (as zlib's and Go's readers do: ``cat
    a.gz b.gz`` is valid gzip); anything after a member that is not another member is a 400,
    never silently dropped."""
    out = bytearray()
    rest = _decompress(data, 16 + zlib.MAX_WBITS, limit, out, "gzip", "body is not valid gzip")
    member = 1
    while rest:
        rest = _decompress(
            rest,
            16 + zlib.MAX_WBITS,
            limit,
            out,
            "gzip",
            f"the {len(rest)} bytes after gzip member {member} are not another gzip member",
        )
        member += 1
    return bytes(out)


def inflate(data: bytes, limit: int) -> bytes:
    """A ``deflate`` body: a zlib stream (RFC 1950), or raw deflate (RFC 1951)."""
    zlib_header = len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
    wbits = zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS
    out = bytearray()
    rest = _decompress(data, wbits, limit, out, "deflate", "body is not valid deflate")
    if rest:
        raise ApiError(400, "bad_deflate", f"{len(rest)} bytes after the end of the deflate data")
    return bytes(out)


def _decompress(
    data: bytes, wbits: int, limit: int, out: bytearray, kind: str, invalid: str
) -> bytes:
    """Append one compressed stream from the start of ``data`` to ``out``, never past
    ``limit`` + 1 bytes (a small bomb cannot expand into memory); return what follows it."""
    decomp = zlib.decompressobj(wbits)
    pending = data
    while True:
        try:  # max_length is >= 1 here: 0 would mean "no limit"
            out += decomp.decompress(pending, limit + 1 - len(out))
        except zlib.error as err:
            raise ApiError(400, f"bad_{kind}", f"{invalid}: {err}") from None
        if len(out) > limit:
            raise ApiError(413, "too_large", f"decompressed body is larger than {limit} bytes")
        if decomp.eof:
            return decomp.unused_data
        pending = decomp.unconsumed_tail
        if not pending:
            raise ApiError(400, f"bad_{kind}", f"{kind} stream is truncated")


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
