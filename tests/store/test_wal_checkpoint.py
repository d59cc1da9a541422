"""SQLite's write-ahead log copied by a background thread instead of inside commits."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from collectors.events import Event
from monitor.settings import Settings
from monitor.store import Store
from monitor.store.migrate import upgrade
from monitor.store.wal import WalCheckpointer, checkpoint_wal
from tests.store.test_store import runs


def wal_frames(store: Store) -> int:
    """Frames in the log now (a PASSIVE checkpoint reports them; it copies what it can)."""
    conn = store.engine.raw_connection()
    try:
        return int(conn.cursor().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])
    finally:
        conn.close()


def sqlite_store(path: Path, autocheckpoint: int) -> Store:
    store = Store(f"sqlite:///{path}", sqlite_autocheckpoint=autocheckpoint)
    upgrade(store)
    return store


def batches(n: int, size: int = 500) -> list[list[Event]]:
    return [runs(size, prefix=f"b{i}-") for i in range(n)]


def test_the_autocheckpoint_setting_reaches_every_connection(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'dw.db'}", sqlite_autocheckpoint=123)
    store = Store.from_settings(settings)
    with store.read() as a, store.read() as b:
        for conn in (a, b):
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 123


def test_a_checkpoint_over_the_limit_makes_the_next_commit_rewind_the_log(
    tmp_path: Path,
) -> None:
    store = sqlite_store(tmp_path / "dw.db", autocheckpoint=0)  # nobody else checkpoints
    for batch in batches(4):
        store.insert_events(batch)
    grown = wal_frames(store)
    assert grown > 100
    done = checkpoint_wal(store, restart_frames=100)
    assert (done.frames, done.copied, done.restarted) == (grown, grown, True)
    store.insert_events(runs(10, prefix="after-"))
    assert wal_frames(store) < grown / 4  # the log started again from its first frame
    assert store.count_events() == 4 * 500 + 10


def test_a_short_log_is_copied_without_pausing_writers(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path / "dw.db", autocheckpoint=0)
    store.insert_events(runs(50))
    done = checkpoint_wal(store, restart_frames=10_000)
    assert done.copied == done.frames > 0
    assert not done.restarted


def test_the_checkpointer_keeps_the_log_short_while_batches_keep_coming(tmp_path: Path) -> None:
    work = batches(60)
    unchecked = sqlite_store(tmp_path / "unchecked.db", autocheckpoint=0)
    for batch in work:
        unchecked.insert_events(batch)
    without = wal_frames(unchecked)

    store = sqlite_store(tmp_path / "checked.db", autocheckpoint=0)
    stop = threading.Event()
    checkpointer = WalCheckpointer(store, interval=0.005, restart_frames=500)
    thread = threading.Thread(target=checkpointer.run, args=(stop,))
    thread.start()
    try:
        for batch in work:
            store.insert_events(batch)
            # batches arrive over the network, not in a tight loop that holds the GIL: on a
            # loaded machine such a loop starved the checkpointer thread for dozens of batches
            time.sleep(0.002)
    finally:
        stop.set()
        thread.join()
    assert store.count_events() == unchecked.count_events() == 60 * 500
    # rewound each time it passed 500 frames: at most that plus what arrived meanwhile
    assert wal_frames(store) < without / 4
    wal_bytes = {p.name: p.stat().st_size for p in tmp_path.glob("*.db-wal")}
    assert wal_bytes["checked.db-wal"] < wal_bytes["unchecked.db-wal"] / 3
