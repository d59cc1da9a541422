"""Quality signals: edit, rejection, validation-failure and escalation rates (rising is bad),
mean edit ratio (rising is bad), groundedness and confidence (falling is bad).

Rates use the Bernoulli CUSUM, means the Gaussian CUSUM (scores are bounded in [0, 1]
and roughly symmetric around their mean, so no winsorising is needed).

Example:
    >>> from detectors.config import DetectionConfig
    >>> from detectors.family import WorkflowInput
    >>> from detectors.types import Rollup
    >>> ups = [Rollup("wf", "edited", 60 * i, 20, 4) for i in range(10)]
    >>> findings, _ = evaluate(WorkflowInput("wf", {"edited": ups}, {}, DetectionConfig(), 600.0))
    >>> [(f.signal, f.status.value, f.evidence["learned"]) for f in findings]
    [('edited', 'unknown', 200)]
"""

from __future__ import annotations

from typing import Final

from detectors import signals as sig
from detectors.family import States, WorkflowInput, run_specs
from detectors.sequential import SignalSpec
from detectors.types import Finding

SPECS: Final = (
    SignalSpec(sig.EDITED, "rate", "up"),
    SignalSpec(sig.REJECTED, "rate", "up"),
    SignalSpec(sig.VALIDATION_FAILED, "rate", "up"),
    SignalSpec(sig.ESCALATED, "rate", "up"),
    SignalSpec(sig.EDIT_RATIO, "mean", "up"),
    SignalSpec(sig.GROUNDEDNESS, "mean", "down"),
    SignalSpec(sig.CONFIDENCE, "mean", "down"),
)

SIGNALS: Final = frozenset(s.signal for s in SPECS)


def evaluate(inp: WorkflowInput) -> tuple[list[Finding], States]:
    return run_specs(inp, SPECS)
