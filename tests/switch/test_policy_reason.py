"""A switch trip's reason carries the triggering finding's summary, bounded in length."""

from __future__ import annotations

from detectors.types import Finding, Status
from monitor.settings import PolicyConfig
from monitor.switch.policies import REASON_EVIDENCE_CHARS, REASON_SUMMARY_CHARS, evaluate_policies

ANY_CRITICAL = PolicyConfig(name="any", mode="review")


def trip(found: list[Finding]) -> str:
    [action] = evaluate_policies(found, [ANY_CRITICAL], {}, now=0.0).actions
    return action.reason


def test_the_reason_quotes_the_worst_matching_findings_summary() -> None:
    said = (
        "edit rate 0.31 over the last 412 reviews vs baseline 0.20 (declared); "
        "CUSUM 6.1 >= threshold 5.4; started about 09:10 UTC"
    )
    policy = PolicyConfig(name="edits", status=["warn", "critical"], mode="review")
    found = [
        Finding("invoices", "approved", "cusum", Status.WARN, summary="approval rate dipped"),
        Finding("invoices", "edited", "cusum", Status.CRITICAL, value=0.31, summary=said),
    ]
    [action] = evaluate_policies(found, [policy], {}, now=0.0).actions
    assert action.reason == (
        f"policy edits: approved/cusum=warn, edited/cusum=critical for pass ({said})"
    )


def test_a_long_summary_and_a_long_match_list_are_cut_to_their_bounds() -> None:
    found = [
        Finding("invoices", f"kpi.{'k' * 40}{i:02d}", "cusum", Status.CRITICAL, summary="s" * 500)
        for i in range(30)
    ]
    reason = trip(found)
    assert len(reason) <= len("policy any:  for pass ()") + REASON_SUMMARY_CHARS + (
        REASON_EVIDENCE_CHARS
    )
    assert "s" * (REASON_SUMMARY_CHARS - 1) + "…)" in reason
    assert "kpi." + "k" * 40 + "00/cusum=critical" in reason


def test_a_finding_without_a_summary_still_gives_its_value_and_baseline() -> None:
    reason = trip([Finding("invoices", "edited", "cusum", Status.CRITICAL, 0.35, 0.2)])
    assert reason.endswith("(edited value 0.35 vs baseline 0.2)")
