"""Small builder for Grafana dashboard JSON (schemaVersion 42), used by dashboards/generate.py.

Every panel, query and variable uses the Prometheus data source picked by the `datasource`
template variable; `$workflow` (multi-select with "All") filters by workflow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 42
DS: dict[str, str] = {"type": "prometheus", "uid": "${datasource}"}
WF = 'workflow=~"$workflow"'
RATE = "$__rate_interval"
WORKFLOW_QUERY = "label_values(driftwarden_events_ingested_total, workflow)"
STATUS_MAPPING: list[dict[str, Any]] = [
    {
        "type": "value",
        "options": {
            "-1": {"text": "unknown", "color": "blue", "index": 0},
            "0": {"text": "ok", "color": "green", "index": 1},
            "1": {"text": "warn", "color": "orange", "index": 2},
            "2": {"text": "critical", "color": "red", "index": 3},
        },
    }
]


@dataclass(frozen=True)
class Panel:
    """One panel; `queries` are (PromQL, legend) pairs. Tables and stats query one instant."""

    title: str
    queries: list[tuple[str, str]]
    kind: str = "timeseries"  # timeseries | stat | table | bargauge
    unit: str = "short"
    description: str = ""
    width: int = 12
    height: int = 8
    mappings: list[dict[str, Any]] = field(default_factory=list)
    max_value: float | None = None


def rate_sum(metric: str, by: str, scale: str = "", selector: str = WF) -> str:
    """`sum by (<by>) (rate(metric{workflow=~"$workflow"}[$__rate_interval]))<scale>`."""
    return f"sum by ({by}) (rate({metric}{{{selector}}}[{RATE}])){scale}"


def sig(metric: str, signal: str) -> str:
    return f'{metric}{{{WF}, signal="{signal}"}}'


def vs_baseline(title: str, signal: str, *extra: tuple[str, str], description: str = "") -> Panel:
    """A ratio signal: the daemon's recent value against its baseline, plus extra queries."""
    queries = [
        (sig("driftwarden_signal_value", signal), "{{workflow}} recent"),
        (sig("driftwarden_signal_baseline", signal), "{{workflow}} baseline"),
        *extra,
    ]
    return Panel(title, queries, unit="percentunit", max_value=1, description=description)


def findings(title: str, signal_regex: str, width: int = 12) -> Panel:
    expr = f'driftwarden_finding_status{{{WF}, signal=~"{signal_regex}"}}'
    return Panel(title, [(expr, "")], "table", width=width, mappings=STATUS_MAPPING)


def _target(ref: str, expr: str, legend: str, kind: str) -> dict[str, Any]:
    instant = kind != "timeseries"
    return {
        "datasource": DS,
        "refId": ref,
        "expr": expr,
        "legendFormat": legend or "__auto",
        "range": not instant,
        "instant": instant,
        "format": "table" if kind == "table" else "time_series",
        "editorMode": "code",
    }


_OPTIONS: dict[str, dict[str, Any]] = {
    "timeseries": {
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
        "tooltip": {"mode": "multi", "sort": "desc"},
    },
    "stat": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}},
    "bargauge": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}},
    "table": {"showHeader": True},
}


def _panel(pid: int, x: int, y: int, p: Panel) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": p.unit, "mappings": p.mappings}
    if p.unit == "percentunit":
        defaults["min"] = 0
    if p.max_value is not None:
        defaults["max"] = p.max_value
    panel: dict[str, Any] = {
        "id": pid,
        "type": p.kind,
        "title": p.title,
        "description": p.description,
        "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": p.width, "h": p.height},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": _OPTIONS[p.kind],
        "targets": [
            _target(chr(ord("A") + i), expr, legend, p.kind)
            for i, (expr, legend) in enumerate(p.queries)
        ],
    }
    if p.kind == "table":  # one row per series: its labels as columns, no timestamp
        hidden = {"Time": True, "__name__": True}
        panel["transformations"] = [{"id": "organize", "options": {"excludeByName": hidden}}]
    return panel


def _templating() -> dict[str, Any]:
    datasource = {
        "type": "datasource",
        "name": "datasource",
        "label": "Data source",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "refresh": 1,
        "regex": "",
    }
    workflow = {
        "type": "query",
        "name": "workflow",
        "label": "Workflow",
        "datasource": DS,
        "definition": WORKFLOW_QUERY,
        "query": {"query": WORKFLOW_QUERY, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "refresh": 2,  # on time-range change: new workflows appear without a reload
        "multi": True,
        "includeAll": True,
        "current": {},
        "sort": 1,
        "hide": 0,
        "regex": "",
    }
    return {"list": [datasource, workflow]}


def _annotation(name: str, expr: str, color: str) -> dict[str, Any]:
    return {
        "name": name,
        "datasource": DS,
        "enable": True,
        "iconColor": color,
        "expr": expr,
        "step": "60s",
        "titleFormat": name,
        "textFormat": "{{workflow}}",
        "tagKeys": "workflow",
        "useValueForTime": False,
    }


def dashboard(
    uid: str,
    title: str,
    panels: list[Panel],
    annotations: list[tuple[str, str, str]] | None = None,
) -> dict[str, Any]:
    """The dashboard JSON; panels flow left to right in rows of 24 grid units."""
    laid_out: list[dict[str, Any]] = []
    x = y = row_h = 0
    for pid, p in enumerate(panels, start=1):
        if x + p.width > 24:
            x, y, row_h = 0, y + row_h, 0
        laid_out.append(_panel(pid, x, y, p))
        x, row_h = x + p.width, max(row_h, p.height)
    link = {
        "type": "dashboards",
        "tags": ["driftwarden"],
        "asDropdown": True,
        "title": "driftwarden",
        "includeVars": True,
        "keepTime": True,
    }
    return {
        "uid": uid,
        "title": title,
        "tags": ["driftwarden"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "refresh": "30s",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "links": [link],
        "templating": _templating(),
        "annotations": {"list": [_annotation(*a) for a in annotations or []]},
        "panels": laid_out,
    }
