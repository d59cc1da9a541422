"""A parse process: reads parse jobs on stdin, answers with prepared batches on stdout.

Run by ``monitor.ingest.parse_pool`` as ``python -m monitor.ingest.parse_worker``. It imports
only what parsing needs (about 40 MB, half of it the price table that prices native cost
events), not the server. Frames are an 8-byte little-endian length and a pickle, both ways;
the peer is always our own server process. The loop ends when stdin closes, which is also
what happens when the server dies.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import signal
import struct
import sys
from collections.abc import Callable, Sequence
from typing import IO, Any, Protocol

from collectors.events import Event
from monitor.batch.prepare import Prepared, prepare

HEADER = struct.Struct("<Q")


class HasEvents(Protocol):
    """What a parser returns: the valid events and the rejections."""

    events: list[Event]

    @property
    def rejected(self) -> Sequence[object]: ...


def parse_and_prepare(
    received: float, parse: Callable[..., HasEvents], args: tuple[Any, ...], for_copy: bool
) -> tuple[HasEvents, Prepared]:
    """``parse(*args)``, with its events turned into rows, rollups and counts (and COPY
    input, ``for_copy``: see ``monitor.batch.prepare``).

    The events travel back as rows only: the result keeps everything else (rejections).
    """
    parsed = parse(*args)
    batch = prepare(parsed.events, received, for_copy=for_copy)
    return dataclasses.replace(parsed, events=[]), batch  # type: ignore[type-var]


def read_frame(stream: IO[bytes]) -> bytes | None:
    head = stream.read(HEADER.size)
    if len(head) < HEADER.size:
        return None
    (size,) = HEADER.unpack(head)
    data = stream.read(size)
    return data if len(data) == size else None


def write_frame(stream: IO[bytes], data: bytes) -> None:
    stream.write(HEADER.pack(len(data)))
    stream.write(data)
    stream.flush()


def serve(inp: IO[bytes], out: IO[bytes]) -> None:
    while (frame := read_frame(inp)) is not None:
        job = pickle.loads(frame)
        try:
            reply: tuple[bool, Any] = (True, parse_and_prepare(*job))
        except Exception as err:
            reply = (False, repr(err))
        write_frame(out, pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL))


def main() -> None:
    # The frames get a private copy of stdout; fd 1 then points at stderr, so a stray
    # print or log line from library code cannot corrupt the stream.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    # Ctrl-C in a terminal reaches the whole process group: the server shuts down and
    # closes our input, which ends the loop; no traceback from here meanwhile
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    serve(sys.stdin.buffer, out)


if __name__ == "__main__":
    main()
