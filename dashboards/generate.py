"""Generate the driftwarden Grafana dashboards as plain JSON.

    /work/venv/bin/python dashboards/generate.py     # rewrites dashboards/*.json

Plain JSON (see builder.py) rather than grafana-foundation-sdk: no extra dependency and a
reviewable output. Queries use the metric names the daemon exports and the recording rules of
alerts/driftwarden.rules.yml. tests/test_dashboards.py checks that the committed JSON is
exactly this script's output.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from builder import WF, Panel, dashboard, findings, rate_sum, sig, vs_baseline

PCT: dict[str, Any] = {"unit": "percentunit", "max_value": 1}
STATUSES = (("2", "critical"), ("1", "warn"), ("0", "ok"), ("-1", "unknown"))
QUALITY_SIGNALS = "edited|rejected|edit_ratio|groundedness|confidence|validation_failed|escalated"
HEALTH_SIGNALS = "runs|errors|timeouts|retries|latency_ms|action_errors[.].+"


def overview() -> dict[str, Any]:
    stat: dict[str, Any] = {"kind": "stat", "width": 6, "height": 5}
    changes = f"sum by (workflow, source) (increase(driftwarden_switch_changes_total{{{WF}}}"
    return dashboard(
        "driftwarden-overview",
        "driftwarden / Overview",
        [
            Panel(
                "Workflows not in auto mode",
                [('count(driftwarden_switch_mode{mode!="auto"} == 1) or vector(0)', "not auto")],
                **stat,
            ),
            Panel(
                "Critical findings",
                [(f"count(driftwarden_finding_status{{{WF}}} == 2) or vector(0)", "critical")],
                **stat,
            ),
            Panel(
                "Seconds since last detection pass",
                [("time() - max(driftwarden_last_detection_timestamp_seconds)", "age")],
                unit="s",
                **stat,
            ),
            Panel("driftwarden targets up", [('sum(up{job="driftwarden"})', "up")], **stat),
            Panel(
                "Switch mode by workflow",
                [(f"max by (workflow, mode) (driftwarden_switch_mode{{{WF}}}) == 1", "")],
                "table",
                description="One row per workflow with its current mode (auto, review, manual).",
            ),
            Panel(
                "Findings by status",
                [
                    (f"count(driftwarden_finding_status{{{WF}}} == {v}) or vector(0)", name)
                    for v, name in STATUSES
                ],
                "bargauge",
            ),
            Panel(
                "Events ingested per second",
                [(rate_sum("driftwarden_events_ingested_total", "type"), "{{type}}")],
                unit="reqps",
            ),
            Panel(
                "Events rejected per second",
                [(rate_sum("driftwarden_events_rejected_total", "reason", selector=""), "")],
                unit="reqps",
            ),
            Panel(
                "Spend (USD/h)",
                [(rate_sum("driftwarden_cost_usd_total", "workflow", " * 3600"), "{{workflow}}")],
                unit="currencyUSD",
            ),
            Panel(
                "Switch changes (last 24h)",
                [(f"{changes}[1d]))", "{{workflow}} {{source}}")],
                "bargauge",
                description="By source: human, alert:<alertname>, policy:<name>.",
            ),
            Panel(
                "Dry-run policies that would have tripped (last 24h)",
                [("sum by (policy) (increase(driftwarden_policy_would_trip_total[1d]))", "")],
                "bargauge",
                description="Policies with dry_run = true record what they would have done.",
            ),
            findings("All findings", ".+", width=24),
        ],
    )


def quality() -> dict[str, Any]:
    cusum = f'{WF}, detector="cusum"'
    return dashboard(
        "driftwarden-quality",
        "driftwarden / Workflow quality",
        [
            vs_baseline(
                "Edit rate vs baseline",
                "edited",
                (f"workflow:driftwarden_reviews_edited:ratio_rate1h{{{WF}}}", "{{workflow}} 1h"),
                description="Share of reviews edited or rejected.",
            ),
            vs_baseline(
                "Rejection rate vs baseline",
                "rejected",
                (f"workflow:driftwarden_reviews_rejected:ratio_rate1h{{{WF}}}", "{{workflow}} 1h"),
            ),
            vs_baseline("Groundedness vs baseline", "groundedness"),
            Panel(
                "Validation failures",
                [
                    (
                        f"workflow:driftwarden_validations_failed:ratio_rate30m{{{WF}}}",
                        "{{workflow}} 30m",
                    ),
                    (sig("driftwarden_signal_value", "validation_failed"), "{{workflow}} recent"),
                ],
                **PCT,
            ),
            Panel(
                "CUSUM statistic vs threshold",
                [
                    (f"driftwarden_detector_statistic{{{cusum}}}", "{{workflow}} {{signal}}"),
                    (f"driftwarden_detector_threshold{{{cusum}}}", "{{workflow}} {{signal}} h"),
                ],
                description="The detector alarms when the statistic crosses its threshold h.",
            ),
            vs_baseline("Mean edit ratio vs baseline", "edit_ratio"),
            findings("Quality findings", QUALITY_SIGNALS, width=24),
        ],
        annotations=[
            (
                "Switch changes",
                f"increase(driftwarden_switch_changes_total{{{WF}}}[2m]) > 0",
                "red",
            ),
            (
                "Model version changes",
                f"max by (workflow) ({sig('driftwarden_finding_status', 'model_version')}) > 0",
                "purple",
            ),
        ],
    )


def health() -> dict[str, Any]:
    buckets = rate_sum("driftwarden_run_latency_seconds_bucket", "workflow, le")
    burn = "workflow:driftwarden_error_budget_burn:rate"
    return dashboard(
        "driftwarden-health",
        "driftwarden / Health",
        [
            Panel(
                "Runs per second by status",
                [
                    (
                        rate_sum("driftwarden_runs_total", "workflow, status"),
                        "{{workflow}} {{status}}",
                    )
                ],
                unit="reqps",
            ),
            Panel(
                "Error and timeout ratio",
                [
                    (
                        f"workflow:driftwarden_runs_errors:ratio_rate5m{{{WF}}}",
                        "{{workflow}} errors 5m",
                    ),
                    (
                        f"workflow:driftwarden_runs_timeouts:ratio_rate30m{{{WF}}}",
                        "{{workflow}} timeouts 30m",
                    ),
                ],
                **PCT,
            ),
            Panel(
                "Error budget burn rate (99% SLO)",
                [
                    (f"{burn}{w}{{{WF}}}", f"{{{{workflow}}}} {w}")
                    for w in ("5m", "30m", "1h", "6h")
                ],
                description="Fast alert: 1h and 5m above 14.4. Slow alert: 6h and 30m above 6.",
            ),
            Panel(
                "Retries per run",
                [(f"workflow:driftwarden_retries_per_run:ratio_rate30m{{{WF}}}", "{{workflow}}")],
            ),
            Panel(
                "Run latency p50 / p95",
                [
                    (f"histogram_quantile(0.5, {buckets})", "{{workflow}} p50"),
                    (f"histogram_quantile(0.95, {buckets})", "{{workflow}} p95"),
                ],
                unit="s",
            ),
            findings("Health findings", HEALTH_SIGNALS),
        ],
    )


def cost() -> dict[str, Any]:
    return dashboard(
        "driftwarden-cost",
        "driftwarden / Cost",
        [
            Panel(
                "Spend by workflow and model (USD/h)",
                [
                    (
                        rate_sum("driftwarden_cost_usd_total", "workflow, model", " * 3600"),
                        "{{workflow}} {{model}}",
                    )
                ],
                unit="currencyUSD",
            ),
            Panel(
                "Cost per run (USD)",
                [
                    (
                        f"workflow:driftwarden_cost_per_run_usd:ratio_rate1h{{{WF}}}",
                        "{{workflow}} 1h",
                    ),
                    (sig("driftwarden_signal_value", "cost_per_run"), "{{workflow}} recent"),
                ],
                unit="currencyUSD",
            ),
            Panel(
                "Tokens per second",
                [(rate_sum("driftwarden_tokens_total", "workflow, direction"), "")],
            ),
            Panel(
                "Tokens per run",
                [(f"workflow:driftwarden_tokens_per_run:ratio_rate1h{{{WF}}}", "{{workflow}} 1h")],
            ),
            Panel(
                "Projected month spend vs budget (USD)",
                [
                    (f"driftwarden_budget_projected_usd{{{WF}}}", "{{workflow}} projected"),
                    (f"driftwarden_budget_usd{{{WF}}}", "{{workflow}} budget"),
                ],
                unit="currencyUSD",
                description="The budget line is absent for workflows without a budget.",
            ),
            Panel(
                "Unpriced cost records per second",
                [(rate_sum("driftwarden_cost_unpriced_total", "model", selector=""), "{{model}}")],
                description="Models with no known price: their spend is missing from the panels.",
            ),
        ],
    )


def adoption() -> dict[str, Any]:
    team_runs = f"sum by (workflow, team) (increase(driftwarden_team_runs_total{{{WF}}}[1d]))"
    saved = f"sum by (workflow) (increase(driftwarden_time_saved_seconds_total{{{WF}}}[1d]))"
    return dashboard(
        "driftwarden-adoption",
        "driftwarden / Adoption",
        [
            Panel("Runs by team (last 24h)", [(team_runs, "{{workflow}} {{team}}")], "bargauge"),
            Panel("Active users today", [(f"driftwarden_active_users{{{WF}}}", "{{workflow}}")]),
            vs_baseline(
                "Approval rate vs baseline",
                "approved",
                (f"workflow:driftwarden_reviews_approved:ratio_rate1h{{{WF}}}", "{{workflow}} 1h"),
            ),
            Panel(
                "Review decisions per second",
                [(rate_sum("driftwarden_reviews_total", "decision"), "{{decision}}")],
                unit="reqps",
            ),
            Panel("Time saved (hours, last 24h)", [(f"{saved} / 3600", "{{workflow}}")], unit="h"),
            Panel(
                "Business KPIs",
                [
                    (
                        f'driftwarden_signal_value{{{WF}, signal=~"kpi[.].+"}}',
                        "{{workflow}} {{signal}}",
                    )
                ],
            ),
        ],
    )


DASHBOARDS: dict[str, Callable[[], dict[str, Any]]] = {
    "overview.json": overview,
    "quality.json": quality,
    "health.json": health,
    "cost.json": cost,
    "adoption.json": adoption,
}


def render(name: str) -> str:
    return json.dumps(DASHBOARDS[name](), indent=2, sort_keys=True) + "\n"


def main() -> None:
    here = Path(__file__).resolve().parent
    for name in DASHBOARDS:
        (here / name).write_text(render(name))


if __name__ == "__main__":
    main()
