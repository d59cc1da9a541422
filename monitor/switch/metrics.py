"""Kill-switch metrics (names fixed by docs/metrics.md), registered on the registry of the
daemon's ``Metrics``. Built once per registry by ``monitor.wiring`` (a registry rejects a
second copy); kept apart from monitor/telemetry/metrics.py so the switch owns its exports."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from prometheus_client import Counter, Gauge

from monitor.telemetry.metrics import Metrics

MODES: Final = ("auto", "review", "manual")


class SwitchMetrics:
    """driftwarden_switch_mode, _action_disabled, _switch_changes_total,
    _policy_would_trip_total."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        r = metrics.registry
        self.mode = Gauge(
            "driftwarden_switch_mode",
            "1 for the workflow's current switch mode, 0 for the others.",
            ["workflow", "mode"],
            registry=r,
        )
        self.action_disabled = Gauge(
            "driftwarden_action_disabled",
            "1 when the workflow's action is disabled.",
            ["workflow", "action"],
            registry=r,
        )
        self.changes = Counter(
            "driftwarden_switch_changes",
            "Switch changes committed, by who made them.",
            ["workflow", "source"],
            registry=r,
        )
        self.would_trip = Counter(
            "driftwarden_policy_would_trip",
            "Dry-run policies that would have changed a switch.",
            ["policy"],
            registry=r,
        )

    def show(
        self, workflow: str, mode: str, disabled: Iterable[str], known: Iterable[str] = ()
    ) -> None:
        """Export one workflow's state; ``known`` actions not in ``disabled`` read 0."""
        wf = self._metrics.workflow_label(workflow)
        for m in MODES:
            self.mode.labels(wf, m).set(1 if m == mode else 0)
        off = set(disabled)
        for action in off | set(known):
            self.action_disabled.labels(wf, action).set(1 if action in off else 0)

    def changed(self, workflow: str, source: str) -> None:
        self.changes.labels(self._metrics.workflow_label(workflow), source).inc()

    def policy_would_trip(self, policy: str) -> None:
        self.would_trip.labels(policy).inc()
