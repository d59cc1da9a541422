"""`serve --demo`: the drifting workflow's edit rate goes critical, the calm ones do not.

A real daemon on SQLite, the demo feeding it live; the drift starts after DRIFT_AFTER
seconds. The demo declares its rate baselines (monitor.demo.with_demo_config), so the chart
watches from the first review and cannot learn the drift as normal.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.support.daemon import Daemon

DRIFT_AFTER = 15.0  # seconds of healthy traffic first
DEADLINE = 300.0  # seconds after the start: the drift must be critical by then
DRIFTING, CALM = "invoice-triage", ("support-replies", "crm-updates")


def edit_charts(url: str) -> dict[str, dict[str, object]]:
    resp = httpx.get(f"{url}/v1/findings", params={"signal": "edited"}, timeout=10)
    resp.raise_for_status()
    return {f["workflow"]: f for f in resp.json()["findings"] if f["detector"] == "cusum"}


@pytest.mark.slow
def test_the_demo_drift_turns_the_edit_rate_critical_and_only_there(tmp_path: Path) -> None:
    args = ["--demo", "--demo-drift-after", str(DRIFT_AFTER), "--detect-interval", "2"]
    with Daemon(
        f"sqlite:///{tmp_path / 'dw.db'}", args=args, log_path=tmp_path / "daemon.log"
    ) as daemon:
        started = time.monotonic()
        critical: dict[str, object] | None = None
        seen: list[dict[str, dict[str, object]]] = []
        while critical is None and time.monotonic() - started < DEADLINE:
            time.sleep(2.0)
            charts = edit_charts(daemon.url)
            seen.append(charts)
            for name in CALM:  # calm traffic never trips its declared-baseline chart
                assert charts.get(name, {}).get("status") != "critical", charts[name]
            if charts.get(DRIFTING, {}).get("status") == "critical":
                critical = charts[DRIFTING]
        elapsed = time.monotonic() - started
    assert critical is not None, f"not critical after {DEADLINE}s: {seen[-1:]}"
    assert elapsed > DRIFT_AFTER  # (before the drift, declared 0.20 on 0.20 traffic: calm)
    summary = str(critical["summary"])
    assert "vs baseline 0.20 (declared)" in summary, summary
    assert {name for name in CALM if name in seen[-1]} == set(CALM)
    print(f"edit rate critical {elapsed - DRIFT_AFTER:.0f}s after the drift: {summary}")
