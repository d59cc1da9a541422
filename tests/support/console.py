"""Data and a browser for the console tests: three hours of demo traffic posted over HTTP
(the drifting workflow's edit rate doubles for the last hour; the model version changes
half-way), and headless Debian chromium driven by playwright (never a downloaded browser).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

import httpx

from monitor.demo import PROFILES, Simulator

CHROMIUM: Final = Path("/usr/bin/chromium")  # apt-get install chromium (.ci/run does)
ARTIFACTS: Final = Path(__file__).parents[1] / "artifacts"
HOURS: Final = 3.0
DRIFT_AFTER_S: Final = 2 * 3600.0
NEW_VERSION_AFTER_S: Final = 1.5 * 3600.0
NEW_VERSION: Final = "2024-11-20"
CONFIG: Final = """
[workflows.invoice-triage]
baseline = { edited = 0.20, errors = 0.01 }
[workflows.support-replies]
baseline = { edited = 0.10, errors = 0.02 }
[workflows.crm-updates]
baseline = { edited = 0.05, errors = 0.01 }
"""


def demo_history(now: float, seed: int = 3) -> list[dict[str, Any]]:
    """``HOURS`` of the demo's traffic ending a minute before ``now``, at a sixth of its
    rate (small enough for two batches), drifting after ``DRIFT_AFTER_S``."""
    start = now - HOURS * 3600
    profiles = tuple(replace(p, runs_per_s=p.runs_per_s / 6) for p in PROFILES)
    sim = Simulator(seed=seed, drift_after_s=DRIFT_AFTER_S, start=start, profiles=profiles)
    out: list[dict[str, Any]] = []
    at = start
    while at < now - 60:
        for event in sim.events_between(at, min(at + 60, now - 60)):
            if event["ts"] > start + NEW_VERSION_AFTER_S and "model_version" in event:
                event["model_version"] = NEW_VERSION
            event["ts"] = min(event["ts"], now - 1)  # a review lands 30 s after its run
            out.append(event)
        at += 60
    return out


def post_history(url: str, token: str, events: list[dict[str, Any]]) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    for i in range(0, len(events), 8000):
        resp = httpx.post(
            f"{url}/v1/events", json=events[i : i + 8000], headers=headers, timeout=60
        )
        resp.raise_for_status()
        assert resp.json()["rejected_count"] == 0, resp.json()["rejected"][:3]


def wait_for(check: Any, timeout: float = 120.0, interval: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(interval)
    raise AssertionError(f"not true after {timeout}s: {check}")
