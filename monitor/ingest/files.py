"""Import JSONL/NDJSON (or JSON array) files, in batches, with line-numbered errors."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collectors.costlogs import parse_costlog_body
from collectors.native import Parsed, Rejected, split_json, validate_items
from monitor.ingest.service import IngestService

BATCH_LINES = 1000


@dataclass(slots=True)
class Summary:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    rejected_count: int = 0

    def add(self, parsed: Parsed, accepted: int, duplicates: int) -> None:
        self.accepted += accepted
        self.duplicates += duplicates
        self.rejected_count += len(parsed.rejected)
        room = 100 - len(self.rejected)
        if room > 0:
            self.rejected.extend(parsed.rejected[:room])


def _line_batches(path: Path) -> Iterator[tuple[list[tuple[int, bytes]], int]]:
    """Batches of (line number, line) and the bytes they span."""
    batch: list[tuple[int, bytes]] = []
    size = 0
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, 1):
            size += len(line)
            if line.strip():
                batch.append((number, line))
            if len(batch) >= BATCH_LINES:
                yield batch, size
                batch, size = [], 0
    if batch or size:
        yield batch, size


def ingest_file(
    path: Path,
    service: IngestService,
    fmt: str = "native",
    options: dict[str, Any] | None = None,
    advance: Callable[[int], None] = lambda _n: None,
) -> Summary:
    """Store every valid event of ``path``; ``advance`` is told how many bytes were read."""
    summary = Summary()
    if fmt != "native":
        data = path.read_bytes()
        parsed = parse_costlog_body(fmt, data, options or {}, time.time())
        _store(service, parsed, summary)
        advance(len(data))
        return summary
    with open(path, "rb") as fh:
        head = fh.read(64).lstrip()
    if head.startswith(b"["):  # a JSON array file rather than JSON lines
        data = path.read_bytes()
        items = [(i, bytes(raw)) for i, raw in enumerate(split_json(data))]
        for start in range(0, len(items), BATCH_LINES):
            _store(
                service, validate_items(items[start : start + BATCH_LINES], time.time()), summary
            )
        advance(len(data))
        return summary
    for items, size in _line_batches(path):
        _store(service, validate_items(items, time.time()), summary)
        advance(size)
    return summary


def _store(service: IngestService, parsed: Parsed, summary: Summary) -> None:
    result = service.ingest(parsed.events)
    if parsed.rejected:
        service.reject("validation", len(parsed.rejected))
    summary.add(parsed, result.accepted, result.duplicates)
