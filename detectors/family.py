"""What every signal family receives for one workflow, and the shared chart loop.

A family is a pure function ``(WorkflowInput) -> (findings, new states)``; states are keyed
by ``(signal, detector)`` and are JSON-safe dicts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from detectors.baseline import Baseline, learn_from_rollups
from detectors.config import DetectionConfig
from detectors.sequential import SignalSpec, run_chart
from detectors.types import Finding, Rollup

StateKey = tuple[str, str]  # (signal, detector)
States = dict[StateKey, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class WorkflowInput:
    workflow: str
    rollups: Mapping[str, Sequence[Rollup]]  # signal -> new rollups (deltas, write order)
    states: Mapping[StateKey, dict[str, Any]]
    config: DetectionConfig
    now: float
    model_version: str | None = None
    # rollups of the named baseline window, per signal (supplied by the scheduler)
    baseline_rollups: Mapping[str, Sequence[Rollup]] = field(default_factory=dict)
    active_users: Mapping[str, int] = field(default_factory=dict)  # "YYYY-MM-DD" -> users
    charts: int = 1  # CUSUM chart sets of the workflow: they share its false-alarm budget

    def signals(self, names: Iterable[str] = (), prefix: str | None = None) -> list[str]:
        """Signals among ``names`` (or starting with ``prefix``) with data or saved state."""
        seen = set(self.rollups) | {s for s, _ in self.states}
        wanted = set(names) & seen
        if prefix is not None:
            wanted |= {s for s in seen if s.startswith(prefix)}
        return sorted(wanted)


def fixed_baseline(inp: WorkflowInput, spec: SignalSpec) -> Baseline | None:
    """Declared baseline, else one learned from the named window, else None (auto-learn)."""
    declared = inp.config.declared_for(inp.workflow, spec.signal)
    if declared is not None:
        if spec.kind == "mean" and declared.sd is None:
            raise ValueError(
                f"declared[{inp.workflow}, {spec.signal}].sd is required for a value signal"
            )
        return Baseline(spec.kind, declared.value, declared.sd, None, "declared")
    window = inp.baseline_rollups.get(spec.signal)
    if window and sum(r.count for r in window) >= 2:
        return learn_from_rollups(window, spec.kind, "window")
    return None


def run_specs(inp: WorkflowInput, specs: Sequence[SignalSpec]) -> tuple[list[Finding], States]:
    """Run a CUSUM chart for each spec whose signal has data or state."""
    findings: list[Finding] = []
    states: States = {}
    for spec in specs:
        if spec.signal not in inp.signals([spec.signal]):
            continue
        key = (spec.signal, "cusum")
        finding, state = run_chart(
            inp.workflow,
            spec,
            inp.rollups.get(spec.signal, ()),
            inp.states.get(key, {}),
            inp.config,
            inp.now,
            fixed_baseline(inp, spec),
            inp.model_version,
            inp.charts,
        )
        findings.append(finding)
        states[key] = state
    return findings, states
