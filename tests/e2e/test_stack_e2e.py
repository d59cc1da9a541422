"""The monitoring stack: docker-compose.yml checks, and (slow) the full alert loop.

Slow test: a real daemon fed with a workflow whose runs start failing, a real Prometheus with
our rules (every `for:` shortened to 1s, 1s scrape/evaluation), a real Alertmanager with our
example config (webhook aimed at the test daemon, control token from a credentials file).
The burn-rate alert must fire, Alertmanager must post it to /v1/alertmanager, the switch must
move to `manual`, and the audit log must name the alert as the source.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]  # the repository
COMPOSE = ROOT / "docker-compose.yml"
PROM_CONFIG = ROOT / "alerts" / "prometheus.yml"
SETTINGS_ENV = {
    "DRIFTWARDEN_DATABASE_URL",
    "DRIFTWARDEN_CONFIG",
    "DRIFTWARDEN_HOST",
    "DRIFTWARDEN_PORT",
    "DRIFTWARDEN_INGEST_TOKENS",
    "DRIFTWARDEN_READ_TOKENS",
    "DRIFTWARDEN_CONTROL_TOKENS",
    "DRIFTWARDEN_DETECT_INTERVAL",
    "DRIFTWARDEN_ARL0",
    "DRIFTWARDEN_LOG_FORMAT",
}


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def _bind_mounts(service: dict[str, Any]) -> dict[str, str]:
    """host path -> container path for the `./...` volumes of a service."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            mounts[source] = target
    return mounts


# -- docker-compose.yml (no Docker engine here: static checks) -------------------------------
def test_compose_has_the_four_services_and_a_demo_profile() -> None:
    services = _compose()["services"]
    assert set(services) == {"driftwarden", "demo", "prometheus", "alertmanager", "grafana"}
    assert services["driftwarden"]["build"] == "."
    assert (ROOT / "Dockerfile").is_file()
    assert services["demo"]["profiles"] == ["demo"]
    assert services["demo"]["image"] == services["driftwarden"]["image"]
    # the image's ENTRYPOINT is `driftwarden`, so commands start with the subcommand
    assert services["driftwarden"]["command"][0] == "serve"
    assert services["demo"]["command"][:3] == ["demo", "--url", "http://driftwarden:8000"]


def test_compose_mounts_only_files_and_folders_that_exist() -> None:
    mounts = {
        src: dst
        for service in _compose()["services"].values()
        for src, dst in _bind_mounts(service).items()
    }
    assert len(mounts) >= 6
    for source in mounts:
        assert (ROOT / source).exists(), source


def test_compose_driftwarden_uses_only_documented_settings() -> None:
    service = _compose()["services"]["driftwarden"]
    names = {k for k in service["environment"] if k.startswith("DRIFTWARDEN_")}
    assert names <= SETTINGS_ENV, names - SETTINGS_ENV
    # bound to 0.0.0.0 inside the container, so it must have tokens
    assert {"DRIFTWARDEN_INGEST_TOKENS", "DRIFTWARDEN_CONTROL_TOKENS"} <= names


def test_compose_prometheus_loads_our_rules_and_scrapes_the_daemon_as_job_driftwarden() -> None:
    mounts = _bind_mounts(_compose()["services"]["prometheus"])
    assert mounts["./alerts/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    config = yaml.safe_load(PROM_CONFIG.read_text())
    assert config["rule_files"] == [mounts["./alerts/driftwarden.rules.yml"]]
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "driftwarden"]
    assert job["static_configs"][0]["targets"] == ["driftwarden:8000"]
    am = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert am == ["alertmanager:9093"]


def test_example_prometheus_config_passes_promtool(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: apt-get install -y prometheus"
    config = yaml.safe_load(PROM_CONFIG.read_text())
    config["rule_files"] = [str(ROOT / "alerts" / "driftwarden.rules.yml")]
    local = tmp_path / "prometheus.yml"
    local.write_text(yaml.safe_dump(config))
    proc = subprocess.run(
        [promtool, "check", "config", str(local)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_compose_alertmanager_rewrites_the_example_token_path_into_a_valid_config(
    tmp_path: Path,
) -> None:
    service = _compose()["services"]["alertmanager"]
    script = service["command"][0]
    example = (ROOT / "alerts" / "alertmanager.yml").read_text()
    old, new = (
        "/etc/alertmanager/driftwarden-control-token",
        "/alertmanager/driftwarden-control-token",
    )
    assert f"s|{old}|{new}|" in script and old in example
    assert _bind_mounts(service)["./alerts/alertmanager.yml"] == "/etc/alertmanager/example.yml"
    rewritten = tmp_path / "alertmanager.yml"
    rewritten.write_text(example.replace(old, new))
    amtool = shutil.which("amtool")
    assert amtool, "amtool missing: apt-get install -y prometheus-alertmanager"
    proc = subprocess.run(
        [amtool, "check-config", str(rewritten)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_compose_grafana_is_provisioned_with_our_dashboards() -> None:
    mounts = _bind_mounts(_compose()["services"]["grafana"])
    provider = yaml.safe_load(
        (ROOT / "dashboards" / "provisioning" / "dashboards" / "driftwarden.yml").read_text()
    )["providers"][0]
    assert mounts["./dashboards"] == provider["options"]["path"]
    assert mounts["./dashboards/provisioning/dashboards"] == "/etc/grafana/provisioning/dashboards"
    assert (
        mounts["./dashboards/provisioning/datasources"] == "/etc/grafana/provisioning/datasources"
    )


# -- slow: the whole loop with real binaries ------------------------------------------------
TOKENS = {"ingest": "ingest-e2e", "read": "read-e2e", "control": "control-e2e"}


def _get(url: str, token: str) -> Any:
    resp = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()


@contextmanager
def alert_loop(tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    """daemon -> Prometheus (fast rules) -> Alertmanager (example config) -> daemon webhook."""
    from tests.support.daemon import Daemon
    from tests.support.stack import Alertmanager, Prometheus, alertmanager_test_config, fast_rules

    config = tmp_path / "driftwarden.toml"
    config.write_text("[workflows.invoice-triage]\n[workflows.support-replies]\n")
    env = {
        "DRIFTWARDEN_INGEST_TOKENS": TOKENS["ingest"],
        "DRIFTWARDEN_READ_TOKENS": TOKENS["read"],
        "DRIFTWARDEN_CONTROL_TOKENS": TOKENS["control"],
        "DRIFTWARDEN_DETECT_INTERVAL": "1",
        "DRIFTWARDEN_CONFIG": str(config),
    }
    token_file = tmp_path / "control-token"
    token_file.write_text(TOKENS["control"])
    daemon = Daemon(f"sqlite:///{tmp_path / 'dw.db'}", env=env, log_path=tmp_path / "daemon.log")
    with daemon:
        for workflow in ("invoice-triage", "support-replies"):
            assert _get(f"{daemon.url}/v1/switches/{workflow}", TOKENS["read"])["mode"] == "auto"
        am_config = alertmanager_test_config(daemon.url, token_file)
        with (
            Alertmanager(tmp_path, am_config) as am,
            Prometheus(
                tmp_path,
                target=f"127.0.0.1:{daemon.port}",
                rules=[fast_rules(tmp_path / "rules.yml")],
                alertmanager=am.url,
            ) as prom,
        ):
            yield daemon, prom


def _clean(workflow: str, seed: int, error_rate: float = 0.0, groundedness: float = 0.9) -> Any:
    """Traffic without incidental failures: with every `for:` cut to 1s, a random blip (say
    3 failed validations in the first 20) would fire an alert that production would not."""
    from tests.support.stack import Traffic

    return Traffic(
        workflow,
        seed=seed,
        error_rate=error_rate,
        timeout_rate=0.0,
        validation_fail_rate=0.0,
        groundedness=groundedness,
    )


def _feed_until_mode(daemon: Any, mode: str, *traffic: Any, timeout: float) -> None:
    from tests.support.stack import post_events, wait_for

    switch_url = f"{daemon.url}/v1/switches/invoice-triage"

    def tripped() -> bool:
        post_events(daemon.url, TOKENS["ingest"], [e for t in traffic for e in t.batch(10)])
        return bool(_get(switch_url, TOKENS["read"])["mode"] == mode)

    wait_for(tripped, timeout=timeout, what=f"invoice-triage switch in {mode} mode")


def _alert_audit(daemon: Any, alertname: str) -> dict[str, Any]:
    """The oldest audit entry of invoice-triage whose source is that alert."""
    audit = _get(f"{daemon.url}/v1/audit?workflow=invoice-triage", TOKENS["read"])["audit"]
    from_alert = [e for e in audit if e["source"] == f"alert:{alertname}"]
    assert from_alert, json.dumps(audit, indent=1)
    entry: dict[str, Any] = from_alert[-1]  # newest first: the change that tripped the switch
    assert entry["dedup_key"].startswith("alertmanager:")
    return entry


@pytest.mark.slow
def test_failing_workflow_fires_burn_alert_that_moves_its_switch_to_manual(
    tmp_path: Path,
) -> None:
    failing = _clean("invoice-triage", 3, error_rate=0.5)  # burn rate 50x a 99% SLO
    healthy = _clean("support-replies", 4, error_rate=0.005)
    with alert_loop(tmp_path) as (daemon, prom):
        _feed_until_mode(daemon, "manual", failing, healthy, timeout=90)
        fired = prom.firing("ErrorBudgetBurnFast")
        healthy_switch = _get(f"{daemon.url}/v1/switches/support-replies", TOKENS["read"])
        entry = _alert_audit(daemon, "ErrorBudgetBurnFast")

    assert [a["workflow"] for a in fired] == ["invoice-triage"], fired
    assert fired[0]["driftwarden_action"] == "manual"
    assert healthy_switch["mode"] == "auto"
    assert (entry["before"]["mode"], entry["after"]["mode"]) == ("auto", "manual")
    assert "invoice-triage burns its error budget" in entry["reason"]  # the alert's summary


@pytest.mark.slow
def test_groundedness_drift_verdict_fires_quality_alert_that_moves_switch_to_review(
    tmp_path: Path,
) -> None:
    """Prometheus cannot run a CUSUM: QualityDrift reads the daemon's critical verdict."""
    from tests.support.stack import post_events

    drifting = _clean("invoice-triage", 5, groundedness=0.9)
    healthy = _clean("support-replies", 6, groundedness=0.9)
    with alert_loop(tmp_path) as (daemon, prom):
        for _ in range(20):  # 200 runs each: enough for the daemon to learn its baselines
            post_events(daemon.url, TOKENS["ingest"], drifting.batch(10) + healthy.batch(10))
        drifting.groundedness = 0.6
        _feed_until_mode(daemon, "review", drifting, healthy, timeout=120)
        fired = prom.firing("QualityDrift")
        healthy_switch = _get(f"{daemon.url}/v1/switches/support-replies", TOKENS["read"])
        entry = _alert_audit(daemon, "QualityDrift")

    assert {(a["workflow"], a["signal"]) for a in fired} == {("invoice-triage", "groundedness")}
    assert healthy_switch["mode"] == "auto"
    assert (entry["before"]["mode"], entry["after"]["mode"]) == ("auto", "review")
    assert "Quality drift on invoice-triage (groundedness)" in entry["reason"]
