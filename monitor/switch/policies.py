"""Policies: which findings (or Alertmanager alerts) trip which switch.

The evaluation is pure: findings + policies + the consecutive-pass counts of the previous
pass -> actions + new counts. A policy trips once, on the pass where its condition has
held for ``consecutive`` passes in a row; while the condition keeps holding it does not
trip again, so a human who loosens the switch on purpose is not overruled every pass
(the condition must clear and come back first). A pass where nothing matches resets the
count. ``unknown`` (too little data) only matches when a policy lists it.

``run_policies`` is the one call the detection scheduler makes after each pass:

    run_policies(switches, findings, file_config.policies, now=time.time())
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Final

from sqlalchemy import delete, select

from detectors.types import Finding
from monitor.settings import PolicyConfig
from monitor.store import schema as t
from monitor.switch.service import ChangeResult, Mode, SwitchService

PolicyState = dict[tuple[str, str], int]  # (policy, workflow) -> consecutive passes
POLICY_ACTOR = "driftwarden"
# A switch reason is read in the audit log, notifications and `driftwarden switch show`:
# the triggering finding's summary (MAX_LEN 160, detectors.summary) fits whole; a policy
# matching every signal of a workflow could list dozens, so the list is cut.
REASON_SUMMARY_CHARS: Final = 200
REASON_EVIDENCE_CHARS: Final = 300


@dataclass(frozen=True, slots=True)
class Action:
    """What one policy asks for one workflow."""

    policy: str
    workflow: str
    mode: Mode | None
    disable: tuple[str, ...]
    reason: str
    dry_run: bool = False
    notify: bool = True
    evidence: tuple[str, ...] = field(default=())  # "signal/detector=status" that matched

    @property
    def source(self) -> str:
        return f"policy:{self.policy}"


@dataclass(frozen=True, slots=True)
class PolicyPass:
    actions: list[Action]
    state: PolicyState


def finding_matches(policy: PolicyConfig, finding: Finding) -> bool:
    """Finding policies are those without ``alertname``; globs are case-sensitive."""
    return (
        policy.alertname is None
        and finding.status.value in policy.status
        and fnmatchcase(finding.workflow, policy.workflow)
        and fnmatchcase(finding.signal, policy.signal)
        and fnmatchcase(finding.detector, policy.detector)
    )


def alert_policies(
    policies: Sequence[PolicyConfig], alertname: str, workflow: str
) -> list[PolicyConfig]:
    """Policies that act on an Alertmanager alert of this name for this workflow."""
    return [
        p
        for p in policies
        if p.alertname is not None
        and p.alertname == alertname
        and fnmatchcase(workflow, p.workflow)
    ]


def evaluate_policies(
    findings: Iterable[Finding],
    policies: Sequence[PolicyConfig],
    policy_state: Mapping[tuple[str, str], int],
    now: float,
) -> PolicyPass:
    """One detection pass: the actions to apply and the counts to keep.

    >>> from detectors.types import Status
    >>> p = PolicyConfig(name="edits", signal="edited", mode="review", consecutive=2)
    >>> f = [Finding("invoices", "edited", "cusum", Status.CRITICAL, value=0.35)]
    >>> first = evaluate_policies(f, [p], {}, now=0.0)
    >>> first.actions, first.state
    ([], {('edits', 'invoices'): 1})
    >>> [a.mode for a in evaluate_policies(f, [p], first.state, now=30.0).actions]
    ['review']
    """
    matched: dict[tuple[str, str], list[Finding]] = {}
    by_name = {p.name: p for p in policies}
    for finding in findings:
        for policy in policies:
            if finding_matches(policy, finding):
                matched.setdefault((policy.name, finding.workflow), []).append(finding)
    state: PolicyState = {}
    actions: list[Action] = []
    for key in sorted(matched):
        name, workflow = key
        policy = by_name[name]
        count = policy_state.get(key, 0) + 1
        state[key] = count
        if count == policy.consecutive:
            actions.append(_action(policy, workflow, matched[key], count))
    return PolicyPass(actions, state)


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _action(policy: PolicyConfig, workflow: str, found: list[Finding], count: int) -> Action:
    evidence = tuple(sorted(f"{f.signal}/{f.detector}={f.status.value}" for f in found))
    # the worst matching finding explains the trip (then by name, so the choice is stable)
    first = min(found, key=lambda f: (-f.status.severity, f.signal, f.detector))
    if first.summary:
        detail = _bounded(first.summary, REASON_SUMMARY_CHARS)
    else:  # a finding built outside a detection pass carries no sentence
        detail = f"{first.signal} " + (
            f"value {first.value:.4g}" if first.value is not None else "no value"
        )
        if first.baseline is not None:
            detail += f" vs baseline {first.baseline:.4g}"
    passes = "pass" if count == 1 else f"{count} consecutive passes"
    listed = _bounded(", ".join(evidence), REASON_EVIDENCE_CHARS)
    reason = f"policy {policy.name}: {listed} for {passes} ({detail})"
    return Action(
        policy.name,
        workflow,
        policy.mode,
        tuple(policy.disable),
        reason,
        policy.dry_run,
        policy.notify,
        evidence,
    )


def apply_actions(service: SwitchService, actions: Iterable[Action]) -> list[ChangeResult]:
    """Apply (toward safety only) or, for dry runs, record and count."""
    results = []
    for action in actions:
        result = service.tighten(
            action.workflow,
            mode=action.mode,
            disable=frozenset(action.disable),
            actor=POLICY_ACTOR,
            source=action.source,
            reason=action.reason,
            dry_run=action.dry_run,
            notify=action.notify,
        )
        if action.dry_run and service.metrics is not None:
            service.metrics.policy_would_trip(action.policy)
        results.append(result)
    return results


def load_policy_state(service: SwitchService) -> PolicyState:
    with service.store.read() as conn:
        rows = conn.execute(select(t.policy_state)).mappings()
        return {(r["policy"], r["workflow"]): int(r["consecutive"]) for r in rows}


def save_policy_state(service: SwitchService, state: PolicyState, now: float) -> None:
    rows: list[dict[str, Any]] = [
        {"policy": p, "workflow": w, "consecutive": n, "updated_at": now}
        for (p, w), n in sorted(state.items())
    ]
    with service.store.write() as conn:
        conn.execute(delete(t.policy_state))
        if rows:
            conn.execute(t.policy_state.insert(), rows)


def run_policies(
    service: SwitchService,
    findings: Iterable[Finding],
    policies: Sequence[PolicyConfig],
    now: float,
) -> list[ChangeResult]:
    """Load counts, evaluate, apply, then save counts. The counts are saved only after
    the actions committed, so a pass that fails (store down) trips again next pass."""
    result = evaluate_policies(findings, policies, load_policy_state(service), now)
    applied = apply_actions(service, result.actions)
    save_policy_state(service, result.state, now)
    return applied
