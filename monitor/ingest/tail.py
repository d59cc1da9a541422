"""Follow a growing JSONL file, surviving rotation and restarts without skipping or
doubling a line.

The position (inode, byte offset of the next unread line) is written in the same
transaction as the events read up to it. After a restart the tailer seeks to the
saved position; if the path now holds a different file (rotated while we were down), it first
drains the rotated file, found by its inode in the same directory, then starts the new one.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import structlog
from sqlalchemy import Connection, select

from collectors.native import validate_items
from monitor.ingest.service import IngestService
from monitor.store import Store, StoreUnavailable
from monitor.store import schema as t

log = structlog.get_logger(__name__)
MAX_BATCH_LINES = 1000


@dataclass(slots=True)
class TailPosition:
    inode: int
    offset: int


def load_position(store: Store, path: str) -> TailPosition | None:
    with store.read() as conn:
        row = conn.execute(
            select(t.tail_positions.c.inode, t.tail_positions.c.offset).where(
                t.tail_positions.c.path == path
            )
        ).first()
    return TailPosition(int(row[0]), int(row[1])) if row else None


def save_position(store: Store, path: str, pos: TailPosition) -> Callable[[Connection], None]:
    """A callback that upserts the position inside the caller's transaction."""

    def run(conn: Connection) -> None:
        ins = store.insert(t.tail_positions)
        conn.execute(
            ins.on_conflict_do_update(
                index_elements=["path"],
                set_={"inode": pos.inode, "offset": pos.offset, "updated_at": time.time()},
            ),
            {"path": path, "inode": pos.inode, "offset": pos.offset, "updated_at": time.time()},
        )

    return run


def _find_by_inode(directory: Path, inode: int) -> Path | None:
    try:
        for entry in os.scandir(directory):
            if entry.is_file(follow_symlinks=False) and entry.inode() == inode:
                return Path(entry.path)
    except OSError:
        return None
    return None


class Tailer:
    """Reads complete lines from ``path`` into the store, batch by batch."""

    def __init__(self, path: str | Path, service: IngestService, poll_s: float = 0.5) -> None:
        self.path = Path(path).resolve()
        self.key = str(self.path)
        self.service = service
        self.poll_s = poll_s
        self.stats = {"accepted": 0, "duplicates": 0, "rejected": 0}
        self._fh: BinaryIO | None = None
        self._pos = TailPosition(0, 0)

    # -- opening ---------------------------------------------------------------------
    def _open_current(self) -> bool:
        try:
            fh = open(self.path, "rb")  # noqa: SIM115 - held open across polls on purpose
        except FileNotFoundError:
            return False
        self._fh = fh
        self._pos = TailPosition(os.fstat(fh.fileno()).st_ino, 0)
        return True

    def resume(self) -> None:
        """Seek to the stored position (call once before ``poll``)."""
        saved = load_position(self.service.store, self.key)
        if saved is None:
            self._open_current()
            return
        try:
            current_inode = os.stat(self.path).st_ino
        except FileNotFoundError:
            current_inode = -1
        source = self.path if current_inode == saved.inode else None
        if source is None:
            source = _find_by_inode(self.path.parent, saved.inode)
            if source is not None:
                log.info("resuming a rotated file", path=str(source), offset=saved.offset)
        if source is None:
            log.warning("the file read so far is gone; starting the current file", path=self.key)
            self._open_current()
            return
        fh = open(source, "rb")  # noqa: SIM115
        size = os.fstat(fh.fileno()).st_size
        offset = saved.offset if saved.offset <= size else 0  # truncated: start over
        fh.seek(offset)
        self._fh, self._pos = fh, TailPosition(saved.inode, offset)

    # -- reading ---------------------------------------------------------------------
    def poll(self) -> int:
        """Read and store everything complete that is available now; return lines read."""
        if self._fh is None and not self._open_current():
            return 0
        total = 0
        while True:
            n = self._read_batch()
            total += n
            if n:
                continue
            if not self._switch_if_rotated():
                return total

    def _read_batch(self) -> int:
        assert self._fh is not None
        fh = self._fh
        if os.fstat(fh.fileno()).st_size < self._pos.offset:  # copytruncate rotation
            fh.seek(0)
            self._pos.offset = 0
        fh.seek(self._pos.offset)
        items: list[tuple[int, bytes]] = []
        consumed = 0
        for line in fh:
            if not line.endswith(b"\n"):
                break  # a line still being written; read it next time
            consumed += len(line)
            if line.strip():
                items.append((len(items) + 1, line))
            if len(items) >= MAX_BATCH_LINES:
                break
        if consumed == 0:
            return 0
        parsed = validate_items(items, time.time())
        new_pos = TailPosition(self._pos.inode, self._pos.offset + consumed)
        result = self.service.ingest(
            parsed.events, also=save_position(self.service.store, self.key, new_pos)
        )
        for rej in parsed.rejected[:5]:
            log.warning("rejected line", path=self.key, error=rej.error)
        if parsed.rejected:
            self.service.reject("validation", len(parsed.rejected))
        self._pos = new_pos
        self.stats["accepted"] += result.accepted
        self.stats["duplicates"] += result.duplicates
        self.stats["rejected"] += len(parsed.rejected)
        return len(items) or 1

    def _switch_if_rotated(self) -> bool:
        try:
            inode = os.stat(self.path).st_ino
        except FileNotFoundError:
            return False
        if inode == self._pos.inode:
            return False
        # the old file is fully drained (last read returned nothing): move to the new one
        log.info("file rotated; following the new file", path=self.key)
        if self._fh is not None:
            self._fh.close()
        return self._open_current()

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set; a store outage pauses and retries, losing nothing."""
        self.resume()
        while not stop.is_set():
            try:
                self.poll()
            except StoreUnavailable:
                log.warning("store unavailable; tail paused", path=self.key)
                stop.wait(5)
                continue
            stop.wait(self.poll_s)
        if self._fh is not None:
            self._fh.close()
