"""Detection configuration: one frozen dataclass the daemon builds from its settings.

Defaults and where they come from:

* ``arl0 = 10_000`` observations between false alarms per chart (DESIGN.md
  ``DRIFTWARDEN_ARL0``); two-sided charts give each side ``2 x arl0``.
* Learning: the first ``learn_rate_obs = 500`` observations of a rate (standard error of a
  0.20 rate: 0.018) and ``learn_mean_obs = 100`` of a mean (0.1 sd) form the baseline.
  A rare rate keeps learning until it has seen ``learn_rate_events = 10`` events (or its
  upper confidence bound is within half of ``rate_abs_floor``), at most
  ``learn_rate_max_obs = 20_000`` observations: a 1 % error rate learned from 500 runs is
  5 +- 2.2 errors, and a baseline guessed 50 % low trips the chart on noise.
* Design shift: rates ``p1 = p0 x (1 + rate_rel_shift)`` but at least ``rate_abs_floor``
  away from ``p0`` (so a 0.2 % error rate is not watched for a 0.3 % rise); means move by
  ``mean_shift_sd = 0.7`` sd (groundedness 0.85 -> 0.78 with sd 0.10 in detection-limits.md).
* ``guard_se = 1``: a LEARNED baseline is moved one standard error towards the alarm side,
  because an under-estimated ``p0`` (or an over-estimated ``mu0`` for a falling chart)
  inflates false alarms far more than the guard slows detection.
* ``clip = 2.5`` sd winsorising for heavy-tailed values (latency, cost, tokens).
* Thresholds are calibrated for the rollup size (the lower quartile of recent rollups,
  rounded down to 8/16/32/64; detectors.sequential.design_batch), because a chart that
  only looks at bucket ends is far more conservative than its per-observation ARL0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from detectors import signals


def is_rate_signal(signal: str) -> bool:
    """Rates count events among trials; everything else declared is a value signal."""
    return signal in signals.RATE_SIGNALS or signal.startswith(signals.ACTION_ERRORS_PREFIX)


@dataclass(frozen=True, slots=True)
class DeclaredBaseline:
    """A baseline the workflow owner states, e.g. ``edit_rate = 0.18``.

    ``sd`` (per-observation standard deviation) is required for value signals.
    """

    value: float
    sd: float | None = None


@dataclass(frozen=True, slots=True)
class DetectionConfig:
    # expected false CRITICAL findings per workflow per 30 days, all signals together
    false_alarms_per_month: float = 0.1
    warn_false_alarms_per_month: float = 2.0  # the same for WARN
    budget_by_workflow: Mapping[str, float] = field(default_factory=dict)  # overrides
    arl0: float = 10_000.0  # floor on a chart's in-control ARL (observations)
    learn_rate_obs: int = 500
    learn_mean_obs: int = 100
    learn_rate_events: int = 10
    learn_rate_max_obs: int = 20_000
    rate_rel_shift: float = 0.5
    rate_abs_floor: float = 0.01
    mean_shift_sd: float = 0.7
    guard_se: float = 1.0
    clip: float = 2.5
    window_s: int = 3600  # window test and reported value cover the last hour
    min_window_obs: int = 30
    fdr_q: float = 0.05  # Benjamini-Hochberg across workflows x signals in one pass
    slo: float = 0.99  # success objective for error and timeout burn rates
    spend_z_warn: float = 3.5  # robust z of an hour's spend vs the same hour-of-week
    adoption_z_warn: float = 3.0  # robust z of a day's runs/users (a drop)
    min_history_days: int = 7
    version_warn_s: int = 86_400  # how long a model_version change stays WARN
    # declared baselines: (workflow or "*", signal) -> value
    declared: Mapping[tuple[str, str], DeclaredBaseline] = field(default_factory=dict)
    budgets_usd: Mapping[str, float] = field(default_factory=dict)  # workflow -> per month
    slo_by_workflow: Mapping[str, float] = field(default_factory=dict)  # overrides ``slo``
    # workflows whose owners keep their baselines across model/prompt version changes
    keep_baseline_on_version_change: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        positive = {
            "arl0": self.arl0 - 1.0,
            "learn_rate_obs": self.learn_rate_obs,
            "learn_mean_obs": self.learn_mean_obs - 1,
            "rate_rel_shift": self.rate_rel_shift,
            "mean_shift_sd": self.mean_shift_sd,
            "clip": self.clip - self.mean_shift_sd / 2,
            "window_s": self.window_s,
            "version_warn_s": self.version_warn_s,
        }
        for name, margin in positive.items():
            if not (isinstance(margin, int | float) and math.isfinite(margin) and margin > 0):
                raise ValueError(f"{name} is out of range: {getattr(self, name)!r}")
        if self.learn_rate_max_obs < self.learn_rate_obs:
            raise ValueError(
                f"learn_rate_max_obs ({self.learn_rate_max_obs}) must be >= learn_rate_obs"
            )
        names = ("rate_abs_floor", "guard_se", "min_window_obs", "min_history_days")
        for name in (*names, "learn_rate_events"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be >= 0, got {v!r}")
        if not 0.0 < self.fdr_q < 1.0:
            raise ValueError(f"fdr_q must be in (0, 1), got {self.fdr_q!r}")
        for where, slo in (("slo", self.slo), *self.slo_by_workflow.items()):
            if not 0.0 < slo < 1.0:
                raise ValueError(f"slo for {where} must be in (0, 1), e.g. 0.99, got {slo!r}")
        for (wf, sig), b in self.declared.items():
            where = f"declared[{wf}, {sig}]"
            if not math.isfinite(b.value):
                raise ValueError(f"{where}.value must be finite, got {b.value!r}")
            if b.sd is not None and not b.sd > 0:
                raise ValueError(f"{where}.sd must be > 0, got {b.sd!r}")
            if is_rate_signal(sig) and not 0.0 < b.value < 1.0:
                raise ValueError(f"{where}.value is a rate and must be in (0, 1), got {b.value!r}")
            if not is_rate_signal(sig) and b.sd is None:
                raise ValueError(f"{where}.sd is required for a value signal")
        for wf, budget in self.budgets_usd.items():
            if not (math.isfinite(budget) and budget > 0):
                raise ValueError(f"budgets_usd[{wf}] must be > 0, got {budget!r}")

    def budget_for(self, workflow: str) -> float:
        """False critical findings per 30 days this workflow accepts (all signals)."""
        return self.budget_by_workflow.get(workflow, self.false_alarms_per_month)

    def slo_for(self, workflow: str) -> float:
        return self.slo_by_workflow.get(workflow, self.slo)

    def declared_for(self, workflow: str, signal: str) -> DeclaredBaseline | None:
        return self.declared.get((workflow, signal)) or self.declared.get(("*", signal))
