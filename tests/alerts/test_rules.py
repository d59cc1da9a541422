"""Prometheus rules and the example Alertmanager config, checked by the real tools.

promtool and amtool come from Debian's `prometheus` and `prometheus-alertmanager` packages.
A missing binary fails these tests (it does not skip them): CI must install the packages.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]  # the repository
ALERTS = ROOT / "alerts"
RULES = ALERTS / "driftwarden.rules.yml"
RULE_TESTS = sorted((ALERTS / "tests").glob("*.yml"))
AM_CONFIG = ALERTS / "alertmanager.yml"
RUNBOOK = ALERTS / "RUNBOOK.md"
ALLOWED_ACTIONS = {"review", "manual"}  # plus disable:<action>, built by label_replace


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} not on PATH: apt-get install -y prometheus prometheus-alertmanager"
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def _alert_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]


def _github_slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_rules_file_passes_promtool_check_with_all_lints_fatal() -> None:
    proc = _run(_tool("promtool"), "check", "rules", "--lint=all", "--lint-fatal", str(RULES))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_rule_unit_test_files_exist() -> None:
    assert {p.name for p in RULE_TESTS} >= {
        "quality.yml",
        "health.yml",
        "cost.yml",
        "adoption.yml",
        "daemon.yml",
    }


@pytest.mark.parametrize("test_file", RULE_TESTS, ids=lambda p: p.name)
def test_promtool_rule_unit_tests_pass(test_file: Path) -> None:
    proc = _run(_tool("promtool"), "test", "rules", str(test_file))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_every_alert_is_unit_tested_both_firing_and_not_firing() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for test_file in RULE_TESTS:
        for group in yaml.safe_load(test_file.read_text())["tests"]:
            for case in group.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else silent).add(case["alertname"])
    names = {r["alert"] for r in _alert_rules()}
    assert names - firing == set(), "alerts never tested firing"
    assert names - silent == set(), "alerts never tested silent"


def test_every_alert_has_severity_workflow_and_runbook_annotations() -> None:
    for rule in _alert_rules():
        labels, notes = rule.get("labels", {}), rule.get("annotations", {})
        name = rule["alert"]
        assert labels.get("severity") in {"critical", "warning", "info"}, name
        for key in ("summary", "description", "runbook_url"):
            assert notes.get(key), f"{name}: annotation {key} missing"


def test_every_firing_alert_in_the_unit_tests_carries_a_workflow_label() -> None:
    checked = 0
    for test_file in RULE_TESTS:
        for group in yaml.safe_load(test_file.read_text())["tests"]:
            for case in group.get("alert_rule_test", []):
                for alert in case.get("exp_alerts") or []:
                    assert alert["exp_labels"].get("workflow"), (test_file.name, case)
                    checked += 1
    assert checked >= len(_alert_rules())


def test_every_runbook_url_points_at_an_existing_runbook_section() -> None:
    anchors = {
        _github_slug(line.lstrip("#"))
        for line in RUNBOOK.read_text().splitlines()
        if line.startswith("## ")
    }
    for rule in _alert_rules():
        url = rule["annotations"]["runbook_url"]
        assert url.split("#")[0].endswith("alerts/RUNBOOK.md"), url
        assert url.split("#")[1] in anchors, f"{rule['alert']}: no section for {url}"


def test_acting_alerts_carry_a_known_driftwarden_action() -> None:
    acting = {}
    for rule in _alert_rules():
        action = rule.get("labels", {}).get("driftwarden_action")
        if action is not None:
            assert action in ALLOWED_ACTIONS, rule["alert"]
            acting[rule["alert"]] = action
        elif re.search(r"\bdriftwarden_action\b", rule["expr"]):
            assert '"disable:$1"' in rule["expr"], rule["alert"]
            acting[rule["alert"]] = "disable:<action>"
    assert acting == {
        "QualityDrift": "review",
        "ValidationFailures": "review",
        "ErrorBudgetBurnFast": "manual",
        "ActionFailing": "disable:<action>",
    }


def test_rules_avoid_fields_debian_prometheus_2_42_rejects() -> None:
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        assert "query_offset" not in group, group["name"]
    for test_file in RULE_TESTS:
        assert "fuzzy_compare" not in test_file.read_text(), test_file.name


def test_alertmanager_config_passes_amtool_check() -> None:
    proc = _run(_tool("amtool"), "check-config", str(AM_CONFIG))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (["severity=critical", "driftwarden_action=review"], "driftwarden,pager"),
        (["severity=warning", "driftwarden_action=disable:send_email"], "driftwarden,chat"),
        (["severity=critical"], "pager"),
        (["severity=warning"], "chat"),
        (["severity=info"], "chat"),
    ],
)
def test_alertmanager_routes_acting_alerts_to_the_webhook_and_severity_to_people(
    labels: list[str], receivers: str
) -> None:
    proc = _run(
        _tool("amtool"),
        "config",
        "routes",
        "test",
        f"--config.file={AM_CONFIG}",
        "alertname=QualityDrift",
        "workflow=invoices",
        *labels,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == receivers


def test_alertmanager_webhook_targets_the_daemon_with_a_bearer_token() -> None:
    config = yaml.safe_load(AM_CONFIG.read_text())
    (receiver,) = [r for r in config["receivers"] if r["name"] == "driftwarden"]
    (hook,) = receiver["webhook_configs"]
    assert hook["url"] == "http://driftwarden:8000/v1/alertmanager"
    auth = hook["http_config"]["authorization"]
    assert auth["type"] == "Bearer"
    assert auth.get("credentials_file") or auth.get("credentials")
