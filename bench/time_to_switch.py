"""Kill-switch benchmarks against a real ``driftwarden serve`` (SQLite), in one run.

    python bench/time_to_switch.py                 # both parts
    python bench/time_to_switch.py --part reads    # switch read latency only
    python bench/time_to_switch.py --part trip --runs 20

reads: open-loop load of ``--rate`` requests/s for ``--seconds`` on loopback, round-robin
over GET /healthz (the reference: same server, same client, no store), GET
/v1/switches/{workflow} and POST /ofrep/v1/evaluate/flags/{workflow}.mode. Reports p50/p99
client-side latency per endpoint and the ratio to the reference.

trip: each run feeds review events for its own workflow at ``--event-rate`` events/s,
edit rate 0.20 (the declared baseline) for a warm-up, then 0.35, and polls OFREP until the
switch reads ``review`` (policy: edited/cusum critical -> review, consecutive 1,
detect_interval 5 s). The detector's own delay in events is read back from its saved
chart (``alarm_at``); overhead = time to switch - delay / event rate = what the daemon
adds on top of the statistics (waiting for the next pass, the pass, the policy, the
read). Runs go in rounds of ``--parallel`` workflows with seeded random start offsets.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import select

from monitor.store import Store
from monitor.store import schema as t
from tests.support.daemon import Daemon

TOKEN = "bench-control"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DETECT_INTERVAL = 5.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- part 1: read latency -----------------------------------------------------------------
def read_latency(url: str, rate: float, seconds: float, threads: int = 6) -> dict[str, list[float]]:
    httpx.put(
        f"{url}/v1/switches/invoices",
        headers=AUTH,
        json={"mode": "review", "disable": ["send_email"], "reason": "bench"},
    ).raise_for_status()
    kinds = ["healthz", "get", "ofrep"]
    total = int(rate * seconds)
    lat: dict[str, list[float]] = {k: [] for k in kinds}
    late = [0]
    lock = threading.Lock()
    counter = iter(range(total))
    start = time.perf_counter() + 0.5

    def worker() -> None:
        with httpx.Client(base_url=url, headers=AUTH, timeout=10) as http:
            for kind in kinds:  # warm the connection and code paths
                request(http, kind)
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                due = start + i / rate
                wait = due - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                elif wait < -0.005:
                    late[0] += 1
                kind = kinds[i % len(kinds)]
                t0 = time.perf_counter()
                request(http, kind)
                lat[kind].append((time.perf_counter() - t0) * 1000)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    lat["_late"] = [float(late[0])]
    return lat


def request(http: httpx.Client, kind: str) -> None:
    if kind == "healthz":
        r = http.get("/healthz")
    elif kind == "get":
        r = http.get("/v1/switches/invoices")
    else:
        r = http.post("/ofrep/v1/evaluate/flags/invoices.mode", json={"context": {}})
    r.raise_for_status()


def report_reads(lat: dict[str, list[float]], rate: float, seconds: float) -> None:
    ref50, ref99 = pct(lat["healthz"], 0.5), pct(lat["healthz"], 0.99)
    print(
        f"\nswitch reads: {rate:.0f} req/s for {seconds:.0f} s, round-robin, "
        f"{int(lat['_late'][0])} requests started >5 ms late"
    )
    print("| endpoint | n | p50 ms | p99 ms | p50 / healthz | p99 / healthz |")
    print("|---|---|---|---|---|---|")
    names = {
        "healthz": "GET /healthz (reference)",
        "get": "GET /v1/switches/{wf}",
        "ofrep": "POST /ofrep/v1/evaluate/flags/{wf}.mode",
    }
    for kind, name in names.items():
        v = lat[kind]
        p50, p99 = pct(v, 0.5), pct(v, 0.99)
        print(
            f"| {name} | {len(v)} | {p50:.2f} | {p99:.2f} | {p50 / ref50:.2f} | {p99 / ref99:.2f} |"
        )


# -- part 2: time to switch ------------------------------------------------------------------
def trip_config(path: Path, workflows: list[str]) -> None:
    lines = [
        "[[policies]]",
        'name = "edit-drift"',
        'signal = "edited"',
        'detector = "cusum"',
        'mode = "review"',
        "consecutive = 1",
        "",
    ]
    for wf in workflows:
        lines += [f'[workflows."{wf}"]', "baseline = { edited = 0.20 }", ""]
    path.write_text("\n".join(lines))


def one_run(
    url: str,
    wf: str,
    seed: int,
    event_rate: float,
    warmup_s: float,
    offset: float,
    out: dict[str, dict[str, float]],
) -> None:
    rng = random.Random(seed)
    time.sleep(offset)
    batch = 5
    period = batch / event_rate
    sent = drifted_sent = 0
    t_drift = None
    t_switch = None
    stop = threading.Event()

    def poll() -> None:
        nonlocal t_switch
        with httpx.Client(base_url=url, headers=AUTH, timeout=5) as http:
            while not stop.is_set():
                r = http.post(f"/ofrep/v1/evaluate/flags/{wf}.mode", json={"context": {}})
                if r.json().get("value") == "review":
                    t_switch = time.perf_counter()
                    stop.set()
                    return
                time.sleep(0.02)

    with httpx.Client(base_url=url, headers=AUTH, timeout=10) as http:
        start = time.perf_counter()
        poller = threading.Thread(target=poll)
        poller.start()
        while not stop.is_set() and time.perf_counter() - start < warmup_s + 180:
            due = start + (sent // batch) * period
            if (wait := due - time.perf_counter()) > 0:
                time.sleep(wait)
            drifting = time.perf_counter() - start >= warmup_s
            if drifting and t_drift is None:
                t_drift = time.perf_counter()
            p = 0.35 if drifting else 0.20
            now = time.time()
            events = [
                {
                    "id": f"{wf}-{sent + j}",
                    "type": "review",
                    "workflow": wf,
                    "ts": now,
                    "decision": "edited" if rng.random() < p else "approved",
                }
                for j in range(batch)
            ]
            http.post(
                "/v1/events",
                content=orjson.dumps(events),
                headers={"Content-Type": "application/json"},
            ).raise_for_status()
            sent += batch
            drifted_sent += batch if drifting else 0
        stop.set()
        poller.join()
    out[wf] = {
        "warmup_events": float(sent - drifted_sent),
        "time_to_switch": (t_switch - t_drift) if t_switch and t_drift else float("nan"),
    }


def alarm_at(store: Store, wf: str) -> int | None:
    with store.read() as conn:
        row = conn.execute(
            select(t.detector_state.c.state).where(
                t.detector_state.c.workflow == wf,
                t.detector_state.c.signal == "edited",
                t.detector_state.c.detector == "cusum",
            )
        ).scalar()
    if row is None:
        return None
    return find_alarm(json.loads(row).get("chart", {}))


def find_alarm(chart: dict[str, object]) -> int | None:
    """``alarm_at`` of the chart, or of its upward half when it is two-sided."""
    alarm_at = chart.get("alarm_at")
    if isinstance(alarm_at, int):
        return alarm_at
    for value in chart.values():
        if isinstance(value, dict) and (found := find_alarm(value)) is not None:
            return found
    return None


def time_to_switch(runs: int, parallel: int, event_rate: float, warmup_s: float, seed: int) -> None:
    workflows = [f"bench-{i}" for i in range(runs)]
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{tmp}/dw.db"
        cfg = Path(tmp) / "dw.toml"
        trip_config(cfg, workflows)
        env = {
            "DRIFTWARDEN_CONTROL_TOKENS": TOKEN,
            "DRIFTWARDEN_CONFIG": str(cfg),
            "DRIFTWARDEN_DETECT_INTERVAL": str(DETECT_INTERVAL),
        }
        results: dict[str, dict[str, float]] = {}
        rng = random.Random(seed)
        with Daemon(db, env=env, log_path=Path(tmp) / "daemon.log") as daemon:
            for first in range(0, runs, parallel):
                group = workflows[first : first + parallel]
                threads = [
                    threading.Thread(
                        target=one_run,
                        args=(
                            daemon.url,
                            wf,
                            seed * 1000 + i + first,
                            event_rate,
                            warmup_s,
                            rng.uniform(0, DETECT_INTERVAL),
                            results,
                        ),
                    )
                    for i, wf in enumerate(group)
                ]
                for th in threads:
                    th.start()
                for th in threads:
                    th.join()
        store = Store(db)
        rows = []
        for wf in workflows:
            r = results[wf]
            at = alarm_at(store, wf)
            delay = (at - r["warmup_events"]) if at is not None else float("nan")
            rows.append((wf, r["time_to_switch"], delay, r["time_to_switch"] - delay / event_rate))
        store.dispose()
    print(
        f"\ntime to switch: {runs} runs ({parallel} at a time), {event_rate:.0f} review "
        f"events/s, edit rate 0.20 -> 0.35 after {warmup_s:.0f} s, detect_interval "
        f"{DETECT_INTERVAL:.0f} s, policy edited/cusum critical -> review"
    )
    print("| run | time to switch s | detector delay events | delay / rate s | overhead s |")
    print("|---|---|---|---|---|")
    for wf, tts, delay, over in rows:
        print(f"| {wf} | {tts:.2f} | {delay:.0f} | {delay / event_rate:.2f} | {over:.2f} |")
    overs = [o for *_, o in rows if o == o]
    if overs:
        print(
            f"overhead: mean {statistics.mean(overs):.2f} s, median "
            f"{statistics.median(overs):.2f} s, max {max(overs):.2f} s "
            f"(target <= {DETECT_INTERVAL + 1:.0f} s); runs without a switch: "
            f"{len(rows) - len(overs)}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["reads", "trip", "all"], default="all")
    ap.add_argument("--rate", type=float, default=500.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--event-rate", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    if args.part in ("reads", "all"):
        with tempfile.TemporaryDirectory() as tmp:
            env = {"DRIFTWARDEN_CONTROL_TOKENS": TOKEN, "DRIFTWARDEN_DETECTION": "false"}
            with Daemon(f"sqlite:///{tmp}/dw.db", env=env) as daemon:
                lat = read_latency(daemon.url, args.rate, args.seconds)
        report_reads(lat, args.rate, args.seconds)
    if args.part in ("trip", "all"):
        time_to_switch(args.runs, args.parallel, args.event_rate, args.warmup, args.seed)


if __name__ == "__main__":
    main()
