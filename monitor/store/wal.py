"""Copying SQLite's write-ahead log into the database file off the ingest path.

SQLite's own checkpoint runs inside the commit that crosses ``wal_autocheckpoint`` pages:
that batch waits while the WAL is copied and synced, and with it every request queued on
the writer (at 1,000 pages, a third of the ingest time). In ``serve`` this thread does the
copying instead, beside the writer: a PASSIVE checkpoint never blocks a writer. When the
log has grown long, it catches up without blocking anyone, then copies the last frames
holding the store's write lock (10-30 ms: a batch or two and one sync), so that the next
commit starts the log from the beginning again and the file stays small. SQLite's own
checkpoint stays on at a larger size (``DRIFTWARDEN_SQLITE_AUTOCHECKPOINT``) in case this
thread falls behind.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass

import structlog
from sqlalchemy.exc import SQLAlchemyError

from monitor.store.database import Store

log = structlog.get_logger(__name__)

INTERVAL_S = 0.25
RESTART_FRAMES = 2_000  # about 8 MB of log: past this, finish under the write lock
CATCH_UP_PASSES = 8
CATCH_UP_FRAMES = 400  # written during the last pass: about one batch, few enough to pause for


@dataclass(frozen=True, slots=True)
class WalCheckpoint:
    frames: int  # frames in the log when the checkpoint finished
    copied: int  # of which copied into the database file
    restarted: bool  # finished under the write lock: the next commit rewinds the log


def checkpoint_wal(store: Store, restart_frames: int = RESTART_FRAMES) -> WalCheckpoint:
    """One checkpoint; see the module docstring. SQLite stores only."""
    conn = store.engine.raw_connection()
    try:
        cursor = conn.cursor()
        _, frames, copied = cursor.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if frames < restart_frames:
            return WalCheckpoint(frames, copied, False)
        # Catch up without pausing anyone while each pass still has much to copy, so the
        # pause below only covers the last few frames (and one sync).
        for _ in range(CATCH_UP_PASSES):
            before = frames
            _, frames, copied = cursor.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if frames - before < CATCH_UP_FRAMES:
                break
        # Even a log copied to the end is only rewound by a commit that starts after the
        # copy finished; under load the writer is always mid-batch, so the log would keep
        # growing. Finishing with writers paused makes the next commit the one that rewinds.
        with store.writers_paused():
            _, frames, copied = cursor.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return WalCheckpoint(frames, copied, copied >= frames)
    finally:
        conn.close()


class WalCheckpointer:
    """``run`` checkpoints every ``interval`` seconds until ``stop`` is set."""

    def __init__(
        self, store: Store, interval: float = INTERVAL_S, restart_frames: int = RESTART_FRAMES
    ) -> None:
        self.store = store
        self.interval = interval
        self.restart_frames = restart_frames

    def run(self, stop: threading.Event) -> None:
        failing = False
        while not stop.wait(self.interval):
            try:
                checkpoint_wal(self.store, self.restart_frames)
            except (sqlite3.Error, SQLAlchemyError, OSError) as err:
                if not failing:  # once per outage, not four times a second
                    log.warning("WAL checkpoint failed; SQLite's own takes over", error=str(err))
                failing = True
            else:
                failing = False
