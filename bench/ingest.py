"""Ingest throughput through HTTP vs the raw database ceiling, measured in one run.

    python bench/ingest.py                      # 1,000,000 events, SQLite and PostgreSQL
    python bench/ingest.py --events 200000 --stores sqlite

Through HTTP: a real ``driftwarden serve`` subprocess, N clients posting batches of 1,000
canonical run events. Ceiling: the same rows written straight into the same ``events``
table (SQLite: ``sqlite3.executemany`` with the daemon's pragmas; PostgreSQL: psycopg
``COPY``). The daemon also validates every event, computes and writes the rollups and
updates metrics; the ceiling does none of that, so the ratio is the price of all of it.

The daemon runs as deployed for ingest: detection off (a detection pass would compete for
the two cores and bring numpy and scipy into memory), one parse process (the default).
Peak RSS is reported for the server process and for it with its parse process.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.settings import Settings
from monitor.store import Store
from monitor.store.migrate import upgrade
from tests.support.daemon import Daemon

BATCH = 1000
# the ceiling gets the daemon's SQLite settings (or what DRIFTWARDEN_SQLITE_AUTOCHECKPOINT
# gives both), so the ratio prices our work, not a different configuration
AUTOCHECKPOINT = Settings().sqlite_autocheckpoint
T0 = time.time() - 3600


def make_event(i: int) -> dict[str, object]:
    return {
        "id": f"ev-{i}",
        "type": "run",
        "workflow": f"wf-{i % 20}",
        "ts": T0 + i * 0.001,
        "status": "error" if i % 50 == 0 else "ok",
        "latency_ms": 100.0 + i % 900,
        "model": "gpt-4o-mini",
        "input_tokens": 500 + i % 300,
        "output_tokens": 80,
        "cost_usd": 0.0001,
        "groundedness": 0.9,
        "team": f"team-{i % 4}",
    }


def bodies(n: int) -> list[bytes]:
    return [
        orjson.dumps([make_event(i) for i in range(s, min(n, s + BATCH))])
        for s in range(0, n, BATCH)
    ]


def children(pid: int) -> list[int]:
    """Child processes (the parse processes), whichever thread started them."""
    tasks = Path(f"/proc/{pid}/task")
    found = []
    for task in tasks.iterdir():
        with contextlib.suppress(FileNotFoundError):  # a thread that ended meanwhile
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except FileNotFoundError:  # exited meanwhile
        pass
    return 0.0


def through_http(
    url: str, payloads: list[bytes], clients: int, pid: int
) -> tuple[float, float, float]:
    """events/s, peak RSS of the server process, and of it with its parse processes."""
    queue = list(reversed(payloads))
    lock = threading.Lock()
    peak = [0.0, 0.0]  # server, server + parse processes
    failures: list[str] = []

    def client() -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            while True:
                with lock:
                    if not queue:
                        return
                    body = queue.pop()
                resp = http.post(
                    "/v1/events", content=body, headers={"content-type": "application/json"}
                )
                if resp.status_code != 200 or resp.json()["accepted"] != BATCH:
                    failures.append(resp.text[:200])

    def sample() -> None:
        while any(t.is_alive() for t in threads):
            server = rss_mb(pid)
            peak[0] = max(peak[0], server)
            peak[1] = max(peak[1], server + sum(rss_mb(c) for c in children(pid)))
            time.sleep(0.2)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    sampler = threading.Thread(target=sample)
    sampler.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    sampler.join()
    if failures:
        raise SystemExit(f"{len(failures)} batches failed, e.g. {failures[0]}")
    return len(payloads) * BATCH / elapsed, peak[0], peak[1]


def rows(n: int) -> list[tuple[object, ...]]:
    now = time.time()
    return [
        (
            f"ev-{i}",
            "run",
            f"wf-{i % 20}",
            T0 + i * 0.001,
            now,
            orjson.dumps(make_event(i)).decode(),
        )
        for i in range(n)
    ]


def sqlite_ceiling(path: Path, data: list[tuple[object, ...]]) -> float:
    Store(f"sqlite:///{path}").dispose()
    upgrade(Store(f"sqlite:///{path}"))
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT}")
    started = time.perf_counter()
    for s in range(0, len(data), BATCH):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO events (id, type, workflow, ts, received_at, payload) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            data[s : s + BATCH],
        )
        conn.execute("COMMIT")
    return len(data) / (time.perf_counter() - started)


def postgres_ceiling(url: str, data: list[tuple[object, ...]]) -> float:
    import psycopg

    store = Store(url)
    upgrade(store)
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        conn.execute("TRUNCATE events")
        conn.commit()
        started = time.perf_counter()
        for s in range(0, len(data), BATCH):
            with conn.cursor().copy(
                "COPY events (id, type, workflow, ts, received_at, payload) FROM STDIN"
            ) as copy:
                for row in data[s : s + BATCH]:
                    copy.write_row(row)
            conn.commit()
        return len(data) / (time.perf_counter() - started)


def fresh_pg(base: str) -> str:
    import psycopg

    admin = base.replace("postgresql+psycopg://", "postgresql://")
    name = "dw_bench_ingest"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return base.rsplit("/", 1)[0] + "/" + name


def run(store_kind: str, n: int, clients: int, pg_base: str) -> None:
    payloads = bodies(n)
    data = rows(n)
    with tempfile.TemporaryDirectory() as tmp:
        if store_kind == "sqlite":
            url = f"sqlite:///{Path(tmp) / 'daemon.db'}"
        else:
            url = fresh_pg(pg_base)
        with Daemon(
            url, env={"DRIFTWARDEN_DETECTION": "false"}, log_path=Path(tmp) / "daemon.log"
        ) as daemon:
            assert daemon.proc is not None
            rate, peak, total = through_http(daemon.url, payloads, clients, daemon.proc.pid)
        if store_kind == "sqlite":
            ceiling = sqlite_ceiling(Path(tmp) / "raw.db", data)
            ref = "sqlite3 executemany"
        else:
            ceiling = postgres_ceiling(fresh_pg(pg_base), data)
            ref = "psycopg COPY"
    print(f"{store_kind:8s} events={n:,} clients={clients} batch={BATCH}")
    print(
        f"  through HTTP : {rate:10,.0f} events/s   peak RSS {peak:6.1f} MB server, "
        f"{total:6.1f} MB with its parse process"
    )
    print(f"  ceiling      : {ceiling:10,.0f} events/s   ({ref}, same rows, same table)")
    print(f"  ratio        : {rate / ceiling:10.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument(
        "--pg",
        default=os.environ.get(
            "DRIFTWARDEN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()
    print(f"driftwarden ingest benchmark, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}")
    for kind in args.stores.split(","):
        run(kind.strip(), args.events, args.clients, args.pg)


if __name__ == "__main__":
    main()
