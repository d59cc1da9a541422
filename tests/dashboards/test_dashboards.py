"""Grafana dashboards: static checks, and (slow) every query against a real Prometheus.

The slow test starts a real driftwarden daemon, feeds it simulated traffic with a drift,
lets a real Prometheus (Debian `prometheus` package) scrape it with our recording rules, and
runs every panel query with the variables substituted; each must return data.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]  # the repository
DASHBOARDS = ROOT / "dashboards"
FILES = sorted(DASHBOARDS.glob("*.json"))
DS = {"type": "prometheus", "uid": "${datasource}"}
# Everything the daemon exports (the metrics contract) plus Prometheus' own `up`.
EXPORTED = {
    "up",
    "driftwarden_events_ingested_total",
    "driftwarden_events_rejected_total",
    "driftwarden_runs_total",
    "driftwarden_retries_total",
    "driftwarden_validations_total",
    "driftwarden_reviews_total",
    "driftwarden_cost_usd_total",
    "driftwarden_tokens_total",
    "driftwarden_cost_unpriced_total",
    "driftwarden_time_saved_seconds_total",
    "driftwarden_team_runs_total",
    "driftwarden_switch_changes_total",
    "driftwarden_policy_would_trip_total",
    "driftwarden_run_latency_seconds_bucket",
    "driftwarden_signal_value",
    "driftwarden_signal_baseline",
    "driftwarden_signal_samples",
    "driftwarden_finding_status",
    "driftwarden_detector_statistic",
    "driftwarden_detector_threshold",
    "driftwarden_budget_projected_usd",
    "driftwarden_budget_usd",
    "driftwarden_active_users",
    "driftwarden_last_detection_timestamp_seconds",
    "driftwarden_switch_mode",
    "driftwarden_action_disabled",
}
VARIABLE_RE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
METRIC_RE = re.compile(r"\b(driftwarden_\w+|workflow:\w+:\w+|up)\b(?=\s*[{\[)]|\s*$|\s)")


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dw_generate", DASHBOARDS / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, expr) for every panel target and annotation query."""
    found = [
        (f"{p['title']}/{t['refId']}", t["expr"]) for p in dashboard["panels"] for t in p["targets"]
    ]
    found += [(f"annotation {a['name']}", a["expr"]) for a in dashboard["annotations"]["list"]]
    return found


def substitute(expr: str, workflow: str = ".+", rate_interval: str = "1m") -> str:
    """Replace the template variables the way Grafana would for one selection."""
    expr = expr.replace("$__rate_interval", rate_interval)
    return expr.replace("${workflow}", workflow).replace("$workflow", workflow)


def recording_rules() -> set[str]:
    rules = yaml.safe_load((ROOT / "alerts" / "driftwarden.rules.yml").read_text())
    return {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}


def test_the_five_dashboards_exist_with_unique_uids() -> None:
    titles = {_load(p)["uid"]: _load(p)["title"] for p in FILES}
    assert sorted(titles) == [
        "driftwarden-adoption",
        "driftwarden-cost",
        "driftwarden-health",
        "driftwarden-overview",
        "driftwarden-quality",
    ]


def test_committed_dashboards_are_exactly_the_generator_output() -> None:
    generate = _generator()
    assert sorted(generate.DASHBOARDS) == [p.name for p in FILES]
    for path in FILES:
        assert path.read_text() == generate.render(path.name), (
            f"{path.name} is stale: run python dashboards/generate.py"
        )


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_dashboard_parses_with_schema_42_and_both_template_variables(path: Path) -> None:
    dashboard = _load(path)
    assert dashboard["schemaVersion"] == 42
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["workflow"]["type"] == "query"
    assert variables["workflow"]["datasource"] == DS
    assert variables["workflow"]["includeAll"] is True
    assert dashboard["panels"], "no panels"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_dashboard_uses_only_variables_it_defines(path: Path) -> None:
    dashboard = _load(path)
    defined = {v["name"] for v in dashboard["templating"]["list"]}
    used: set[str] = set()
    for node in _walk(dashboard):
        if isinstance(node, str):
            for match in VARIABLE_RE.finditer(node):
                used.add(next(g for g in match.groups() if g))
    builtins = {u for u in used if u.startswith("__")}
    assert used - builtins <= defined
    assert builtins <= {"__rate_interval", "__interval", "__range"}
    assert "workflow" in used and "datasource" in used


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_dashboard_panel_ids_are_unique_and_panels_fit_the_grid(path: Path) -> None:
    panels = _load(path)["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for p in panels:
        grid = p["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, p["title"]
        assert all(t["refId"] for t in p["targets"]), p["title"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_dashboard_has_no_hard_coded_datasource_uid(path: Path) -> None:
    refs = [
        n["datasource"] for n in _walk(_load(path)) if isinstance(n, dict) and "datasource" in n
    ]
    assert refs, "no datasource references at all"
    assert all(ref == DS for ref in refs), [r for r in refs if r != DS]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_dashboard_queries_use_only_exported_metrics_and_our_recording_rules(path: Path) -> None:
    known = EXPORTED | recording_rules()
    for where, expr in queries(_load(path)):
        metrics = set(METRIC_RE.findall(expr))
        assert metrics, f"{where}: no metric in {expr}"
        assert metrics <= known, f"{where}: unknown {metrics - known}"
        assert 'workflow=~"$workflow"' in expr or "workflow" not in expr, where


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: apt-get install -y prometheus"
    rules = [
        {"record": f"check:q{i}", "expr": substitute(expr)}
        for i, (_, expr) in enumerate(q for p in FILES for q in queries(_load(p)))
    ]
    rule_file = tmp_path / "queries.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    proc = subprocess.run(
        [promtool, "check", "rules", str(rule_file)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(rules)} rules found" in proc.stdout


def test_provisioning_points_grafana_at_the_dashboards_and_prometheus() -> None:
    prov = DASHBOARDS / "provisioning"
    (provider,) = yaml.safe_load((prov / "dashboards" / "driftwarden.yml").read_text())["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/driftwarden"
    (source,) = yaml.safe_load((prov / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"


# -- slow: every query against a real Prometheus scraping a real daemon ---------------------
DAEMON_CONFIG = """
[workflows.invoice-triage]
monthly_budget_usd = 0.05

[workflows.support-replies]
monthly_budget_usd = 500

[[policies]]
name = "groundedness-dry-run"
signal = "groundedness"
mode = "review"
dry_run = true
"""


def _feed(daemon_url: str, token: str, seconds: float) -> None:
    """Healthy traffic, then invoice-triage drifts; plus rejected and unpriced events."""
    from tests.support.stack import Traffic, post_events

    invoices = Traffic("invoice-triage", seed=1)
    support = Traffic("support-replies", seed=2, model="gpt-4o")
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if time.monotonic() - start > seconds / 2:  # the drift: more edits, less grounded
            invoices.edit_rate, invoices.groundedness, invoices.error_rate = 0.7, 0.6, 0.2
        events = invoices.batch(20) + support.batch(10)
        events.append(support.cost(model="acme-unpriced-llm", priced=False))
        events.append({"id": "bad", "type": "run", "workflow": "Not A Workflow!"})
        post_events(daemon_url, token, events)
        time.sleep(0.5)


@dataclass(frozen=True)
class Scraped:
    prom: Any  # tests.support.stack.Prometheus, imported lazily like the rest of the slow machinery
    daemon_url: str


@pytest.fixture(scope="module")
def scraped_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scraped]:
    from tests.support.daemon import Daemon
    from tests.support.stack import RULES, Prometheus

    work = tmp_path_factory.mktemp("dashboards-stack")
    config = work / "driftwarden.toml"
    config.write_text(DAEMON_CONFIG)
    env = {
        "DRIFTWARDEN_INGEST_TOKENS": "ingest-t",
        "DRIFTWARDEN_CONTROL_TOKENS": "control-t",
        "DRIFTWARDEN_DETECT_INTERVAL": "1",
        "DRIFTWARDEN_CONFIG": str(config),
    }
    daemon = Daemon(f"sqlite:///{work / 'dw.db'}", env=env, log_path=work / "daemon.log")
    with daemon, Prometheus(work, target=f"127.0.0.1:{daemon.port}", rules=[RULES]) as prom:
        _feed(daemon.url, "ingest-t", seconds=20)
        # a human moves a switch, so the switch gauges and change counters have values
        resp = httpx.put(
            f"{daemon.url}/v1/switches/support-replies",
            json={"mode": "review", "disable": ["send_email"], "reason": "dashboard test"},
            headers={"Authorization": "Bearer control-t"},
            timeout=10,
        )
        assert resp.status_code == 200, resp.text
        _feed(daemon.url, "ingest-t", seconds=6)
        yield Scraped(prom, daemon.url)


@pytest.mark.slow
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_panel_query_returns_data_from_a_real_prometheus(
    path: Path, scraped_prometheus: Scraped
) -> None:
    prom = scraped_prometheus.prom
    dashboard = _load(path)
    selected = "invoice-triage|support-replies"
    panel = {
        f"{where}: {substitute(expr, selected, '10s')}": substitute(expr, selected, "10s")
        for where, expr in queries(dashboard)
        if not where.startswith("annotation")
    }
    deadline = time.monotonic() + 20  # detection gauges appear after the next pass
    empty = [name for name, q in panel.items() if not prom.query(q)]
    while empty and time.monotonic() < deadline:
        time.sleep(1)
        empty = [name for name in empty if not prom.query(panel[name])]
    assert empty == [], "panel queries with no data:\n" + "\n".join(empty)
    # annotation queries must be valid PromQL (they stay empty until something changes)
    for where, expr in queries(dashboard):
        if where.startswith("annotation"):
            prom.query(substitute(expr, selected))


@pytest.mark.slow
def test_daemon_metrics_pass_promtool_check_metrics(scraped_prometheus: Scraped) -> None:
    """Naming lint of what Prometheus scrapes (units, _total suffixes, help text)."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: apt-get install -y prometheus"
    exposition = httpx.get(f"{scraped_prometheus.daemon_url}/metrics", timeout=10).text
    assert "driftwarden_finding_status{" in exposition
    proc = subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
