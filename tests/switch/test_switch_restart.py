"""Switch state lives in the database: a SIGKILLed daemon comes back with it, and its
gauges show it before anyone reads a switch."""

from __future__ import annotations

from pathlib import Path

import httpx

from monitor.store import Store
from tests.support.daemon import Daemon
from tests.support.switches import AUTH, CONTROL


def test_switch_state_survives_sigkill_of_the_daemon(store: Store, tmp_path: Path) -> None:
    env = {"DRIFTWARDEN_CONTROL_TOKENS": CONTROL, "DRIFTWARDEN_DETECTION": "false"}
    log = tmp_path / "daemon.log"
    with Daemon(store.url, env=env, log_path=log) as first:
        r = httpx.put(
            f"{first.url}/v1/switches/invoices",
            headers=AUTH,
            timeout=10,
            json={"mode": "manual", "disable": ["send_email"], "reason": "incident"},
        )
        assert r.status_code == 200
        first.kill()  # no shutdown handlers
    with Daemon(store.url, env=env, log_path=log) as second:
        # the gauges are loaded at startup, before anyone reads a switch
        metrics = httpx.get(f"{second.url}/metrics", timeout=10).text
        state = httpx.get(f"{second.url}/v1/switches/invoices", headers=AUTH, timeout=10).json()
    assert 'driftwarden_switch_mode{mode="manual",workflow="invoices"} 1.0' in metrics
    assert 'driftwarden_action_disabled{action="send_email",workflow="invoices"} 1.0' in metrics
    assert (state["mode"], state["disabled_actions"], state["version"], state["reason"]) == (
        "manual",
        ["send_email"],
        1,
        "incident",
    )
