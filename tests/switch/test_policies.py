"""Policies: pure evaluation over findings, consecutive passes, dry runs, persistence."""

from __future__ import annotations

from typing import Any

from detectors.types import Finding, Status
from monitor.settings import PolicyConfig
from monitor.store import Store
from monitor.switch.metrics import SwitchMetrics
from monitor.switch.policies import (
    alert_policies,
    evaluate_policies,
    load_policy_state,
    run_policies,
)
from monitor.switch.service import SwitchService
from monitor.telemetry.metrics import Metrics

EDITS = PolicyConfig(name="edits", signal="edited", mode="review", consecutive=2)


def finding(
    status: Status, workflow: str = "invoices", signal: str = "edited", detector: str = "cusum"
) -> Finding:
    return Finding(workflow, signal, detector, status, value=0.35, baseline=0.2)


def passes(policies: list[PolicyConfig], *rounds: list[Finding]) -> list[list[Any]]:
    """Run several passes; the actions of each."""
    state: dict[tuple[str, str], int] = {}
    out = []
    for i, findings in enumerate(rounds):
        result = evaluate_policies(findings, policies, state, now=30.0 * i)
        state = result.state
        out.append(result.actions)
    return out


def test_critical_finding_trips_review_after_the_configured_consecutive_passes() -> None:
    crit = [finding(Status.CRITICAL)]
    first, second = passes([EDITS], crit, crit)
    assert first == []
    [action] = second
    assert (action.workflow, action.mode, action.policy, action.source) == (
        "invoices",
        "review",
        "edits",
        "policy:edits",
    )
    assert action.evidence == ("edited/cusum=critical",)
    assert "0.35" in action.reason and "baseline 0.2" in action.reason


def test_warn_unknown_and_no_findings_never_trip_by_default() -> None:
    policy = PolicyConfig(name="p", mode="manual")
    rounds = [[finding(Status.WARN)], [finding(Status.UNKNOWN)], [], [finding(Status.OK)]] * 3
    assert all(actions == [] for actions in passes([policy], *rounds))


def test_unknown_trips_only_when_the_policy_lists_it() -> None:
    policy = PolicyConfig(name="dead-feed", signal="runs", status=["unknown"], mode="review")
    [actions] = passes([policy], [finding(Status.UNKNOWN, signal="runs")])
    assert [a.mode for a in actions] == ["review"]


def test_a_broken_streak_starts_counting_again() -> None:
    crit, ok = [finding(Status.CRITICAL)], [finding(Status.OK)]
    results = passes([EDITS], crit, ok, crit, crit)
    assert [len(a) for a in results] == [0, 0, 0, 1]


def test_a_policy_trips_once_while_its_condition_keeps_holding() -> None:
    policy = PolicyConfig(name="p", mode="review")
    crit = [finding(Status.CRITICAL)]
    results = passes([policy], crit, crit, crit, [], crit)
    assert [len(a) for a in results] == [1, 0, 0, 0, 1]


def test_globs_select_workflow_signal_and_detector() -> None:
    policy = PolicyConfig(
        name="p",
        workflow="inv*",
        signal="action_errors.*",
        detector="burn_rate",
        disable=["crm_write"],
    )
    findings = [
        finding(
            Status.CRITICAL,
            workflow="invoices",
            signal="action_errors.crm_write",
            detector="burn_rate",
        ),
        finding(
            Status.CRITICAL,
            workflow="support",
            signal="action_errors.crm_write",
            detector="burn_rate",
        ),
        finding(
            Status.CRITICAL, workflow="invoices", signal="action_errors.crm_write", detector="cusum"
        ),
        finding(Status.CRITICAL, workflow="invoices", signal="errors", detector="burn_rate"),
    ]
    [actions] = passes([policy], findings)
    assert [(a.workflow, a.disable, a.mode) for a in actions] == [
        ("invoices", ("crm_write",), None)
    ]


def test_alert_policies_do_not_match_findings_and_are_found_by_alertname() -> None:
    policy = PolicyConfig(
        name="cost", alertname="LLMCostBudgetBurn", mode="review", workflow="inv*"
    )
    [actions] = passes([policy], [finding(Status.CRITICAL)])
    assert actions == []
    assert alert_policies([policy], "LLMCostBudgetBurn", "invoices") == [policy]
    assert alert_policies([policy], "LLMCostBudgetBurn", "support") == []
    assert alert_policies([policy], "Other", "invoices") == []


def test_run_policies_trips_the_switch_and_keeps_counts_across_restarts(
    sqlite_store: Store,
) -> None:
    crit = [finding(Status.CRITICAL)]
    run_policies(SwitchService(sqlite_store), crit, [EDITS], now=0.0)
    assert load_policy_state(SwitchService(sqlite_store)) == {("edits", "invoices"): 1}
    # a new service (a restarted daemon) continues the streak from the database
    svc = SwitchService(sqlite_store)
    [result] = run_policies(svc, crit, [EDITS], now=30.0)
    assert result.changed and svc.get("invoices").mode == "review"
    [entry] = svc.audit("invoices")
    assert (entry.source, entry.actor, entry.dry_run) == ("policy:edits", "driftwarden", False)
    run_policies(svc, [], [EDITS], now=60.0)
    assert load_policy_state(svc) == {}
    assert svc.get("invoices").mode == "review"  # findings clearing never loosens


def test_dry_run_policy_records_and_counts_but_changes_nothing(sqlite_store: Store) -> None:
    metrics = Metrics()
    svc = SwitchService(sqlite_store, metrics=SwitchMetrics(metrics))
    policy = PolicyConfig(name="shadow", mode="manual", disable=["send_email"], dry_run=True)
    [result] = run_policies(svc, [finding(Status.CRITICAL)], [policy], now=0.0)
    assert result.dry_run and not result.changed
    state = svc.get("invoices")
    assert (state.mode, state.disabled_actions, state.version) == ("auto", (), 0)
    [entry] = svc.audit("invoices")
    assert entry.dry_run and entry.after == {
        "mode": "manual",
        "disabled_actions": ["send_email"],
        "version": 1,
    }
    read = metrics.registry.get_sample_value
    assert read("driftwarden_policy_would_trip_total", {"policy": "shadow"}) == 1
    assert (
        read(
            "driftwarden_switch_changes_total", {"workflow": "invoices", "source": "policy:shadow"}
        )
        is None
    )
