"""Cost of one detection pass vs the number of stored events (SQLite).

    python bench/detect_pass.py                       # 100 workflows, 1 M then 10 M events
    python bench/detect_pass.py --sizes 200000,1000000

The store is filled through the real ingest path (validation, rollups, same transaction)
with 100 workflows of run and review traffic. Each size is spread over the same
simulated span (``--span-minutes``). After the catch-up pass that reads all history, each
measured pass follows one more minute of traffic (100 workflows x 60 runs
and reviews). If the cost of a pass grows with new buckets and not with stored events, the
steady-state pass time is the same at every size. Reference in the same run: a full scan
``SELECT count(*) FROM events``, which is what a detector reading raw events would pay.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Literal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors.events import Event, Review, Run
from monitor.detection.scheduler import Detection
from monitor.settings import FileConfig, Settings
from monitor.store import Store
from monitor.store.migrate import upgrade

WORKFLOWS = 100
START = time.time() - 40 * 86_400


class Traffic:
    """Runs and reviews for WORKFLOWS workflows, one simulated second at a time."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self.n = 0
        self.t = START

    def minute(self, per_workflow: int) -> list[Event]:
        out: list[Event] = []
        rng = self.rng
        for w in range(WORKFLOWS):
            wf = f"wf-{w:03d}"
            for _ in range(per_workflow // 2):
                self.n += 1
                ts = self.t + rng.random() * 60
                status: Literal["ok", "error"] = "error" if rng.random() < 0.01 else "ok"
                out.append(
                    Run(
                        id=f"r{self.n}",
                        workflow=wf,
                        ts=ts,
                        status=status,
                        latency_ms=rng.lognormvariate(6, 0.4),
                        groundedness=min(1.0, max(0.0, rng.gauss(0.85, 0.1))),
                    )
                )
                out.append(
                    Review(
                        id=f"v{self.n}",
                        workflow=wf,
                        ts=ts,
                        decision="edited" if rng.random() < 0.2 else "approved",
                    )
                )
        self.t += 60
        return out


def fill(store: Store, traffic: Traffic, target: int, span_minutes: int) -> float:
    """Store events up to ``target``, spread over ``span_minutes`` of simulated time.

    Every size gets the same span, so detector state that covers a time window (3 days of
    burn-rate buckets, the 1 h test window) holds as much at 1 M events as at 10 M, and the
    passes differ only in the events stored behind them.
    """
    started = time.perf_counter()
    stored = store.count_events()
    per_workflow = max(2, round((target - stored) / (WORKFLOWS * span_minutes) / 2) * 2)
    while stored < target:
        batch = traffic.minute(per_workflow)
        stored += store.insert_events(batch, traffic.t).accepted
        if stored % 1_000_000 < len(batch):
            print(f"    {stored:,} events stored", flush=True)
    return time.perf_counter() - started


def scan_seconds(path: Path) -> float:
    conn = sqlite3.connect(path)
    started = time.perf_counter()
    conn.execute("SELECT count(*), sum(length(payload)) FROM events").fetchone()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--passes", type=int, default=10)
    parser.add_argument(
        "--span-minutes",
        type=int,
        default=500,
        help="simulated time each size is spread over (default 500: 8 h 20 min)",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"detection pass benchmark: {WORKFLOWS} workflows, SQLite, {time.strftime('%Y-%m-%d')}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        store = Store(f"sqlite:///{path}")
        upgrade(store)
        traffic = Traffic()
        detection = Detection(store, Settings(database_url=store.url), FileConfig())
        for size in sizes:
            print(f"  filling to {size:,} events ...", flush=True)
            fill_s = fill(store, traffic, size, args.span_minutes)
            catch_up = detection.run_once(now=traffic.t)
            times, rollups, compactions = [], [], []
            for _ in range(args.passes):
                store.insert_events(traffic.minute(60), traffic.t)
                result = detection.run_once(now=traffic.t)
                times.append(result.seconds)
                rollups.append(result.rollups_read)
                compacted = detection.compact_if_due()
                if compacted is not None:
                    compactions.append(compacted)
                    print(f"    (compaction after pass {len(times)})", flush=True)
            scan = scan_seconds(path)
            print(f"  {store.count_events():>12,} events stored (fill {fill_s:,.0f} s)")
            print(
                f"    catch-up pass       : {catch_up.seconds:7.3f} s over "
                f"{catch_up.rollups_read:,} rollup rows"
            )
            print(
                f"    steady pass, median : {statistics.median(times):7.3f} s  "
                f"(max {max(times):.3f} s at pass {times.index(max(times)) + 1}, "
                f"{statistics.median(rollups):,.0f} new rollup rows)"
            )
            print("    every pass (s)      : " + " ".join(f"{x:.2f}" for x in times))
            print(
                "    compaction (own job): "
                + (", ".join(f"{c:.3f} s" for c in compactions) or "not due")
            )
            print(
                f"    reference full scan : {scan:7.3f} s  "
                f"(ratio pass/scan {statistics.median(times) / scan:.3f})"
            )


if __name__ == "__main__":
    main()
