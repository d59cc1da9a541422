"""A seeded traffic simulator: three workflows, one of which drifts after a while.

Used by ``driftwarden serve --demo`` (in-process), ``driftwarden demo --url`` (over HTTP,
the docker-compose demo profile) and by tests and benchmarks that need realistic traffic.

>>> sim = Simulator(seed=1, drift_after_s=0)
>>> events = sim.events_between(1_795_000_000.0, 1_795_000_010.0)
>>> sorted({e["workflow"] for e in events})
['crm-updates', 'invoice-triage', 'support-replies']
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Final

from monitor.settings import FileConfig, WorkflowConfig


@dataclass(frozen=True, slots=True)
class Profile:
    workflow: str
    runs_per_s: float
    edit_rate: float
    drifted_edit_rate: float
    error_rate: float
    drifted_error_rate: float
    groundedness: float
    drifted_groundedness: float
    action: str | None
    model: str
    teams: tuple[str, ...]


# invoice-triage drifts 0.20 -> 0.45 at 3 runs/s: about 0.11 nats per review on a chart
# designed for 0.30, so even a threshold of 25 nats (a per-chart ARL0 in the billions) is
# crossed ~230 reviews, about 80 s, after the drift (tests/test_demo_e2e.py). The calm
# workflows run at 0.5/s each: 4 runs/s in all, as before (tests cut 20 minutes of demo
# traffic into one batch, which must stay under the 10,000-event limit).
PROFILES = (
    Profile(
        "invoice-triage",
        3.0,
        0.20,
        0.45,
        0.01,
        0.01,
        0.85,
        0.78,
        None,
        "gpt-4o-mini",
        ("finance", "ap"),
    ),
    Profile(
        "support-replies",
        0.5,
        0.10,
        0.10,
        0.02,
        0.02,
        0.90,
        0.90,
        "send_email",
        "gpt-4o",
        ("support",),
    ),
    Profile(
        "crm-updates",
        0.5,
        0.05,
        0.05,
        0.01,
        0.06,
        0.95,
        0.95,
        "crm_write",
        "gpt-4o-mini",
        ("sales",),
    ),
)


# The demo's own baselines, declared: a learned baseline would be learned from whatever
# traffic comes first, and with a short --demo-drift-after that is the drift itself. Only
# rates are declared, because the simulator draws them exactly (a review is "edited" with
# probability edit_rate, a run errors with error_rate); its scores are clipped normals,
# which a declared mean and sd would describe only roughly, so those are learned.
DECLARED: Final = (("edit_rate", "edited"), ("error_rate", "errors"))  # (config key, signal)


def demo_baselines(profile: Profile) -> dict[str, float]:
    return {"edit_rate": profile.edit_rate, "error_rate": profile.error_rate}


def with_demo_config(user: FileConfig, profiles: tuple[Profile, ...] = PROFILES) -> FileConfig:
    """``user`` with the demo's declared baselines merged UNDER it: a baseline the user
    declares for a demo workflow (by config key or by signal name) wins, and nothing else
    of the user's config changes.

    >>> cfg = with_demo_config(FileConfig(workflows={"crm-updates": WorkflowConfig(
    ...     baseline={"edited": 0.07}, monthly_budget_usd=50)}))
    >>> cfg.workflows["invoice-triage"].baseline
    {'edit_rate': 0.2, 'error_rate': 0.01}
    >>> cfg.workflows["crm-updates"].baseline, cfg.workflows["crm-updates"].monthly_budget_usd
    ({'error_rate': 0.01, 'edited': 0.07}, 50.0)
    """
    workflows = dict(user.workflows)
    for p in profiles:
        mine = workflows.get(p.workflow, WorkflowConfig())
        spelled = set(mine.baseline)
        demo = {
            key: value
            for key, value in demo_baselines(p).items()
            if not spelled & {key, *(sig for k, sig in DECLARED if k == key)}
        }
        workflows[p.workflow] = mine.model_copy(update={"baseline": {**demo, **mine.baseline}})
    return user.model_copy(update={"workflows": workflows})


class Simulator:
    """Generates canonical event dicts for a time interval; deterministic for a seed."""

    def __init__(
        self,
        seed: int = 0,
        drift_after_s: float = 600.0,
        start: float | None = None,
        profiles: tuple[Profile, ...] = PROFILES,
        speed: float = 1.0,
    ) -> None:
        self.rng = random.Random(seed)
        self.drift_after_s = drift_after_s
        self.start = start
        self.profiles = profiles
        self.speed = speed
        self.seq = 0
        self._carry: dict[str, float] = {}

    def drifted(self, now: float) -> bool:
        if self.start is None:
            self.start = now
        return now - self.start >= self.drift_after_s

    def events_between(self, t0: float, t1: float) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        drifted = self.drifted(t0)
        for p in self.profiles:
            expected = p.runs_per_s * (t1 - t0) * self.speed + self._carry.get(p.workflow, 0.0)
            n = int(expected)
            self._carry[p.workflow] = expected - n
            for _ in range(n):
                ts = self.rng.uniform(t0, t1)
                out.extend(self._one_run(p, ts, drifted))
        return out

    def _one_run(self, p: Profile, ts: float, drifted: bool) -> list[dict[str, Any]]:
        rng = self.rng
        self.seq += 1
        rid = f"demo-{p.workflow}-{self.seq}"
        team = rng.choice(p.teams)
        user = f"{team}-user-{rng.randint(1, 12)}"
        error_rate = p.drifted_error_rate if drifted else p.error_rate
        u = rng.random()
        status = "error" if u < error_rate else ("timeout" if u < error_rate * 1.3 else "ok")
        grounded = p.drifted_groundedness if drifted else p.groundedness
        tokens_in, tokens_out = rng.randint(400, 1600), rng.randint(50, 400)
        run: dict[str, Any] = {
            "id": rid,
            "type": "run",
            "workflow": p.workflow,
            "ts": ts,
            "team": team,
            "user": user,
            "status": status,
            "retries": 1 if rng.random() < 0.05 else 0,
            "latency_ms": round(rng.lognormvariate(6.5, 0.4), 1),
            "model": p.model,
            "model_version": "2024-07-18",
            "prompt_version": "v3",
            "groundedness": round(min(1.0, max(0.0, rng.gauss(grounded, 0.10))), 4),
            "confidence": round(min(1.0, max(0.0, rng.gauss(0.8, 0.1))), 4),
            "validation": "failed" if rng.random() < 0.03 else "passed",
            "escalated": rng.random() < 0.05,
            "input_tokens": tokens_in,
            "output_tokens": tokens_out,
            "cost_usd": round(tokens_in * 1.5e-7 + tokens_out * 6e-7, 8),
        }
        if p.action:
            run["action"] = p.action
        if status != "ok":
            return [run]
        edit_rate = p.drifted_edit_rate if drifted else p.edit_rate
        v = rng.random()
        decision = (
            "approved" if v >= edit_rate else ("rejected" if v < edit_rate * 0.2 else "edited")
        )
        review = {
            "id": rid + ":review",
            "type": "review",
            "workflow": p.workflow,
            "ts": ts + 30,
            "team": team,
            "user": user,
            "decision": decision,
            "edit_ratio": 0.0 if decision == "approved" else round(rng.uniform(0.05, 0.6), 4),
            "review_ms": round(rng.uniform(5_000, 60_000)),
            "time_saved_s": 240.0,
            "reviewer": f"{team}-lead",
        }
        return [run, review]
