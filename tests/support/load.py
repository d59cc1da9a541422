"""A bounded loopback load on a running daemon: ingest clients and a switch reader, with
the daemon's memory sampled as it goes. It stops by itself after ``seconds``."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson

BATCH = 1000
T0 = time.time() - 3600


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its children (the parse processes), in MB."""
    total = 0.0
    for p in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            continue
    return total


def _children(pid: int) -> list[int]:
    try:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(c) for c in found]


def _batch(client_no: int, batch_no: int) -> bytes:
    base = (client_no * 10_000_000 + batch_no) * BATCH
    return orjson.dumps(
        [
            {
                "id": f"c{client_no}-b{batch_no}-{i}",
                "type": "run",
                "workflow": f"wf-{i % 20}",
                "ts": T0 + (base + i) * 0.0001,
                "status": "error" if i % 50 == 0 else "ok",
                "latency_ms": 100.0 + i % 900,
                "model": "gpt-4o-mini",
                "input_tokens": 500 + i % 300,
                "output_tokens": 80,
                "cost_usd": 0.0001,
                "team": f"team-{i % 4}",
            }
            for i in range(BATCH)
        ]
    )


@dataclass
class Soak:
    """``seconds`` of load; ``curve`` is (seconds since start, RSS MB) every ``every`` s."""

    url: str
    pid: int
    seconds: float
    clients: int = 2
    headers: dict[str, str] = field(default_factory=dict)
    every: float = 2.0
    curve: list[tuple[float, float]] = field(default_factory=list)
    acked: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    reads: list[float] = field(default_factory=list)  # switch read latencies, seconds
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self) -> Soak:
        stop = threading.Event()
        threads = [
            threading.Thread(target=self._ingest, args=(n, stop), daemon=True)
            for n in range(self.clients)
        ]
        threads.append(threading.Thread(target=self._read, args=(stop,), daemon=True))
        started = time.monotonic()
        for thread in threads:
            thread.start()
        while (now := time.monotonic() - started) < self.seconds:
            self.curve.append((round(now, 1), round(rss_mb(self.pid), 1)))
            time.sleep(self.every)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        return self

    def _count(self, status: int, accepted: int = 0) -> None:
        with self._lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1
            self.acked += accepted

    def _ingest(self, client_no: int, stop: threading.Event) -> None:
        headers = {**self.headers, "Content-Type": "application/json"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=30) as client:
            batch_no = 0
            while not stop.is_set():
                body = _batch(client_no, batch_no)
                try:
                    resp = client.post("/v1/events", content=body)
                except httpx.HTTPError:
                    self._count(0)
                    continue
                if resp.status_code == 200:
                    batch_no += 1
                    self._count(200, int(resp.json()["accepted"]))
                else:
                    self._count(resp.status_code)
                    time.sleep(0.05)

    def _read(self, stop: threading.Event) -> None:
        with httpx.Client(base_url=self.url, headers=self.headers, timeout=10) as client:
            n = 0
            while not stop.is_set():
                n += 1
                started = time.monotonic()
                try:
                    client.get(f"/v1/switches/wf-{n % 20}")
                    client.post(f"/ofrep/v1/evaluate/flags/wf-{n % 20}.action.send", json={})
                except httpx.HTTPError:
                    continue
                self.reads.append((time.monotonic() - started) / 2)
                time.sleep(0.005)
