"""The false-alarm budget in force per workflow, as ``/v1/workflows`` and ``/metrics`` report it.

The budget comes from the configuration (``DRIFTWARDEN_FALSE_ALARMS_PER_WORKFLOW_MONTH``,
``false_alarms_per_month`` under ``[workflows.<name>]``, the same rule as
``DetectionConfig.budget_for``); how the detectors spent it (the number of charts, each
chart's ARL0) comes from the CUSUM findings' ``evidence["budget"]``, when they carry it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from monitor.settings import FileConfig, Settings


@dataclass(frozen=True, slots=True)
class ChartBudget:
    """One chart's share, read back from its finding's evidence."""

    signal: str
    detector: str
    arl0: float | None  # in-control run length, observations
    obs_per_day: float | None


@dataclass(frozen=True, slots=True)
class BudgetInForce:
    false_alarms_per_month: float  # expected false CRITICAL findings per 30 days
    warn_false_alarms_per_month: float
    source: Literal["default", "workflow"]  # workflow: set in its [workflows.<name>] table


def budget_in_force(settings: Settings, file_config: FileConfig, workflow: str) -> BudgetInForce:
    wf = file_config.workflows.get(workflow)
    own = wf.false_alarms_per_month if wf is not None else None
    return BudgetInForce(
        own if own is not None else settings.false_alarms_per_workflow_month,
        settings.warn_false_alarms_per_workflow_month,
        "workflow" if own is not None else "default",
    )


def false_alarm_budgets(
    settings: Settings, file_config: FileConfig, workflows: Iterable[str]
) -> dict[str, float]:
    """Critical false alarms per 30 days in force for ``workflows`` and every configured one."""
    names = set(workflows) | set(file_config.workflows)
    return {
        name: budget_in_force(settings, file_config, name).false_alarms_per_month
        for name in sorted(names)
    }


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def chart_budgets(findings: Sequence[Mapping[str, Any]]) -> tuple[int | None, list[ChartBudget]]:
    """The chart count and per-chart ARL0 the CUSUM findings report (None: none reports)."""
    charts: int | None = None
    out: list[ChartBudget] = []
    for f in findings:
        budget = (f.get("evidence") or {}).get("budget")
        if f.get("detector") != "cusum" or not isinstance(budget, Mapping):
            continue
        count = _number(budget.get("charts"))
        if count is not None:
            charts = max(charts or 0, int(count))
        out.append(
            ChartBudget(
                str(f["signal"]),
                str(f["detector"]),
                _number(budget.get("arl0")),
                _number(budget.get("obs_per_day")),
            )
        )
    return charts, out


def budget_report(budget: BudgetInForce, findings: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The ``budget`` object of one workflow in ``GET /v1/workflows``."""
    charts, per_chart = chart_budgets(findings)
    return {
        "false_alarms_per_month": budget.false_alarms_per_month,
        "warn_false_alarms_per_month": budget.warn_false_alarms_per_month,
        "source": budget.source,
        "charts": charts,
        "per_chart": [
            {
                "signal": c.signal,
                "detector": c.detector,
                "arl0": c.arl0,
                "obs_per_day": c.obs_per_day,
            }
            for c in per_chart
        ],
    }
