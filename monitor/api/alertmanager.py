"""POST /v1/alertmanager: the Alertmanager webhook (payload version 4) that trips switches.

An alert acts when it carries ``driftwarden_action`` (``review``, ``manual`` or
``disable:<action>[,<action>]``) or when a policy names its ``alertname``; it must then
carry a ``workflow`` label. Each alert instance (fingerprint + startsAt + status) is
applied once: its audit row's unique ``dedup_key`` is committed in the same transaction
as the change, so Alertmanager's retries and HA peers' duplicates change nothing. Resolved
alerts are recorded but never loosen a switch. The answer is 2xx only after commit
(store down -> 503, which Alertmanager retries; a bad label -> 400, which it does not).
Parsing is lenient: unknown fields (``notification_reason``, ``routeLabels``) are ignored.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from monitor.api.auth import require
from monitor.api.body import read_body
from monitor.api.errors import ApiError
from monitor.api.state import services
from monitor.api.switches import WORKFLOW_RE
from monitor.settings import PolicyConfig
from monitor.switch.policies import alert_policies
from monitor.switch.service import ACTION_PATTERN, SAFETY, Mode, SwitchService

router = APIRouter()
MAX_BODY = 4 * 1024 * 1024
ACTION_LABEL = "driftwarden_action"


@dataclass
class AlertPlan:
    """What one alert asks for, validated."""

    index: int
    workflow: str
    alertname: str
    status: str
    dedup_key: str
    summary: str
    mode: Mode | None = None
    disable: set[str] = field(default_factory=set)
    dry_runs: list[PolicyConfig] = field(default_factory=list)

    def ask(self, mode: Mode | None, disable: list[str] | set[str]) -> None:
        if mode is not None and (self.mode is None or SAFETY[mode] > SAFETY[self.mode]):
            self.mode = mode
        self.disable |= set(disable)


class BadAlert(Exception):
    def __init__(self, field: str, error: str) -> None:
        super().__init__(f"{field}: {error}")
        self.field = field
        self.error = error


def parse_action(value: str, where: str) -> tuple[Mode | None, list[str]]:
    value = value.strip()
    if value in ("review", "manual"):
        return value, []  # type: ignore[return-value]
    kind, _, names = value.partition(":")
    actions = [a.strip() for a in names.split(",") if a.strip()]
    if kind == "disable" and actions and all(ACTION_PATTERN.match(a) for a in actions):
        return None, actions
    raise BadAlert(
        where, f"{value!r}: use review, manual or disable:<action> (e.g. disable:send_email)"
    )


def plan_alert(
    index: int, alert: Any, default_status: str, policies: list[PolicyConfig]
) -> AlertPlan | None:
    """The plan for one alert, None when it does not concern switches."""
    where = f"alerts[{index}]"
    if not isinstance(alert, dict):
        raise BadAlert(where, "must be an object")
    labels = alert.get("labels") or {}
    if not isinstance(labels, dict):
        raise BadAlert(f"{where}.labels", "must be an object")
    alertname = str(labels.get("alertname", ""))
    action = labels.get(ACTION_LABEL)
    named = [p for p in policies if p.alertname is not None and p.alertname == alertname]
    if action is None and not named:
        return None
    workflow = labels.get("workflow")
    if not isinstance(workflow, str) or not workflow:
        raise BadAlert(
            f"{where}.labels.workflow",
            "missing: an alert that acts on a switch must carry a workflow label",
        )
    if not WORKFLOW_RE.match(workflow):
        raise BadAlert(f"{where}.labels.workflow", f"{workflow!r} is not a workflow name")
    status = str(alert.get("status") or default_status or "firing")
    if status not in ("firing", "resolved"):
        raise BadAlert(f"{where}.status", f"{status!r}: expected firing or resolved")
    fingerprint = (
        str(alert.get("fingerprint") or "")
        or hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16]
    )
    starts = str(alert.get("startsAt") or "")
    annotations = alert.get("annotations") or {}
    summary = str(annotations.get("summary", "")) if isinstance(annotations, dict) else ""
    # these reach text columns, and PostgreSQL text cannot hold U+0000: a 400, which
    # Alertmanager does not retry, rather than a 500 it would retry forever
    for name, value in (
        ("labels.alertname", alertname),
        ("fingerprint", fingerprint),
        ("startsAt", starts),
        ("annotations.summary", summary),
    ):
        if "\x00" in value:
            raise BadAlert(f"{where}.{name}", "must not contain a NUL character (U+0000)")
    plan = AlertPlan(
        index,
        workflow,
        alertname,
        status,
        f"alertmanager:{fingerprint}:{starts}:{status}"[:256],
        summary,
    )
    if action is not None:
        plan.ask(*parse_action(str(action), f"{where}.labels.{ACTION_LABEL}"))
    for policy in alert_policies(policies, alertname, workflow):
        if policy.dry_run:
            plan.dry_runs.append(policy)
        else:
            plan.ask(policy.mode, policy.disable)
    return plan


def apply_plan(service: SwitchService, plan: AlertPlan, actor: str) -> dict[str, Any]:
    source = f"alert:{plan.alertname or 'unnamed'}"
    what = f"alert {plan.alertname or '(unnamed)'} {plan.status}"
    if plan.summary:
        what += f": {plan.summary}"
    if plan.status == "resolved":
        result = service.record(
            plan.workflow,
            actor=actor,
            source=source,
            dedup_key=plan.dedup_key,
            reason=f"{what} (switch unchanged: loosening is a human act)",
        )
    else:
        result = service.tighten(
            plan.workflow,
            mode=plan.mode,
            disable=frozenset(plan.disable),
            actor=actor,
            source=source,
            reason=what,
            dedup_key=plan.dedup_key,
            always_audit=True,
        )
    for policy in plan.dry_runs if plan.status == "firing" else []:
        dry = service.tighten(
            plan.workflow,
            mode=policy.mode,
            disable=frozenset(policy.disable),
            actor=actor,
            source=f"policy:{policy.name}",
            reason=f"{what} (dry run)",
            dedup_key=f"{plan.dedup_key}:{policy.name}"[:256],
            dry_run=True,
            notify=policy.notify,
        )
        if not dry.duplicate and service.metrics is not None:
            service.metrics.policy_would_trip(policy.name)
    return {
        "index": plan.index,
        "workflow": plan.workflow,
        "alertname": plan.alertname,
        "status": plan.status,
        "duplicate": result.duplicate,
        "changed": result.changed,
        "mode": result.after.mode,
        "disabled_actions": list(result.after.disabled_actions),
    }


@router.post(
    "/v1/alertmanager", summary="Alertmanager webhook: alerts trip switches", response_model=None
)
async def alertmanager_webhook(
    request: Request, caller: str = Depends(require("control"))
) -> JSONResponse:
    raw = await read_body(request, MAX_BODY)
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise ApiError(
            400, "invalid_request", [{"field": "body", "error": f"not JSON: {err}"}]
        ) from None
    if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
        raise ApiError(
            400,
            "invalid_request",
            [
                {
                    "field": "alerts",
                    "error": "expected an Alertmanager v4 payload with an alerts list",
                }
            ],
        )
    service = services(request).switches
    policies = list(services(request).file_config.policies)
    plans, problems, ignored = [], [], 0
    for i, alert in enumerate(payload["alerts"]):
        try:
            plan = plan_alert(i, alert, str(payload.get("status", "")), policies)
        except BadAlert as bad:
            problems.append({"field": bad.field, "error": bad.error})
            continue
        if plan is None:
            ignored += 1
        else:
            plans.append(plan)
    # valid alerts act even when a sibling is malformed: tripping must not wait for a fix
    applied = [await anyio.to_thread.run_sync(apply_plan, service, p, caller) for p in plans]
    if problems:
        raise ApiError(400, "invalid_request", problems)
    return JSONResponse({"applied": applied, "ignored": ignored})
