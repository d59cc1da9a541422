"""Following a JSONL file: rotation and restarts never skip or double a line."""

from __future__ import annotations

import json
import os
from pathlib import Path

from prometheus_client import CollectorRegistry

from monitor.ingest.service import IngestService
from monitor.ingest.tail import Tailer, load_position
from monitor.store import Store
from monitor.telemetry.metrics import Metrics


def service(store: Store) -> IngestService:
    return IngestService(store, Metrics(CollectorRegistry()))


def append(path: Path, start: int, count: int, newline: bool = True) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        for i in range(start, start + count):
            fh.write(json.dumps({"id": f"l{i}", "type": "run", "workflow": "wf"}))
            if newline or i < start + count - 1:
                fh.write("\n")


def test_complete_lines_are_stored_and_a_partial_line_waits(store: Store, tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    append(log, 0, 10)
    append(log, 10, 1, newline=False)
    tailer = Tailer(log, service(store))
    tailer.resume()
    tailer.poll()
    assert store.count_events() == 10
    with open(log, "a") as fh:
        fh.write("\n")
    tailer.poll()
    assert store.count_events() == 11
    assert tailer.stats == {"accepted": 11, "duplicates": 0, "rejected": 0}


def test_rotation_drains_the_old_file_then_follows_the_new(store: Store, tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    append(log, 0, 100)
    tailer = Tailer(log, service(store))
    tailer.resume()
    tailer.poll()
    os.rename(log, tmp_path / "events.jsonl.1")
    append(tmp_path / "events.jsonl.1", 100, 20)  # the writer still had the old file open
    append(log, 120, 30)
    tailer.poll()
    assert store.count_events() == 150
    assert tailer.stats["duplicates"] == 0


def test_restart_resumes_at_the_saved_position_even_after_rotation_while_down(
    store: Store, tmp_path: Path
) -> None:
    log = tmp_path / "events.jsonl"
    append(log, 0, 40)
    first = Tailer(log, service(store))
    first.resume()
    first.poll()
    saved = load_position(store, str(log.resolve()))
    assert saved is not None and saved.offset == log.stat().st_size
    # down: more lines, then rotation, then a new file
    append(log, 40, 25)
    os.rename(log, tmp_path / "events.jsonl.2026-11-23")
    append(log, 65, 10)
    second = Tailer(log, service(store))
    second.resume()
    second.poll()
    assert store.count_events() == 75
    assert second.stats == {"accepted": 35, "duplicates": 0, "rejected": 0}


def test_copytruncate_rotation_starts_again_from_the_top(store: Store, tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    append(log, 0, 30)
    tailer = Tailer(log, service(store))
    tailer.resume()
    tailer.poll()
    with open(log, "w"):
        pass
    append(log, 30, 5)
    tailer.poll()
    assert store.count_events() == 35


def test_bad_lines_are_counted_and_skipped(store: Store, tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    append(log, 0, 3)
    with open(log, "a") as fh:
        fh.write('{"id": "bad", "type": "run"}\nnot json\n')
    append(log, 3, 2)
    tailer = Tailer(log, service(store))
    tailer.resume()
    tailer.poll()
    assert store.count_events() == 5
    assert tailer.stats["rejected"] == 2
