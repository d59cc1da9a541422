"""Detection configuration: one frozen dataclass the daemon builds from its settings.

Defaults and where they come from:

* ``false_alarms_per_month = 0.1``: expected false CRITICAL findings per workflow per 30
  days across all its signals (``DRIFTWARDEN_FALSE_ALARMS_PER_WORKFLOW_MONTH``). Each chart
  gets ``budget / (charts + 2)`` (two shares are kept for the burn-rate and adoption rules,
  whose own evidence rules keep them far below it) and turns it into an in-control ARL in
  observations from its own observation rate: ``30 x obs_per_day / share``, at least
  ``arl0``. WARN has its own looser budget (``warn_false_alarms_per_month = 2``).
* Learning: a rate learns until its standard error is within ``learn_rate_rel_se`` (20 %)
  of the rate and it has ``learn_rate_obs`` observations (a 20 % edit rate: 300 reviews; a
  1 % error rate: 2,475 runs, at most ``learn_rate_max_obs``); a mean learns
  ``learn_mean_obs = 500`` observations (se 0.045 sd). The remaining uncertainty is in the
  threshold (detectors.stats.mixture), not in a shifted baseline.
* Day-to-day variation: estimated from complete days, shrunk towards
  ``rate_day_sd_prior = 0.10`` (relative to the rate) and ``mean_day_sd_prior = 0.12`` sd
  while few days exist (detectors.dispersion): safe for the overdispersed traffic of
  bench/false_alarms.py (12 % relative day-to-day sd of rates, 0.15 sd of score means),
  which the 0.08 / 0.06 first tried were not (17 false criticals in 2.3 workflow-months,
  all in the first week).
* ``clip = 2.5`` sd winsorising for heavy-tailed values (latency, cost, tokens).
* ``live_s = 900`` (the daemon uses ``max(900, 3 x detect_interval)``): a bucket older than
  this (backfill, a backlog after downtime) or more than ``future_skew_s = 300`` s in the
  future feeds the day totals, the learning and the baselines, never the live charts, so
  it cannot raise a critical finding about the present.
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
    learn_rate_obs: int = 300
    learn_rate_rel_se: float = 0.20
    learn_mean_obs: int = 500
    learn_rate_max_obs: int = 20_000
    rate_day_sd_prior: float = 0.10
    mean_day_sd_prior: float = 0.12
    rate_rel_shift: float = 0.5  # cost_per_run ratio rule
    clip: float = 2.5
    live_s: int = 900
    future_skew_s: int = 300
    window_s: int = 3600  # window test and reported value cover the last hour
    min_window_obs: int = 30
    fdr_q: float = 0.05  # Benjamini-Hochberg across workflows x signals in one pass
    slo: float = 0.99  # success objective for error and timeout burn rates
    adoption_z_warn: float = 3.0  # robust z of a day's runs/users (a drop)
    version_warn_s: int = 86_400  # how long a model_version change stays WARN
    # declared baselines: (workflow or "*", signal) -> value
    declared: Mapping[tuple[str, str], DeclaredBaseline] = field(default_factory=dict)
    budgets_usd: Mapping[str, float] = field(default_factory=dict)  # workflow -> per month
    slo_by_workflow: Mapping[str, float] = field(default_factory=dict)  # overrides ``slo``
    # workflows whose charts re-learn from scratch on a model/prompt version change (the
    # default compares the new version with the previous version's baseline while its own
    # is learned)
    relearn_on_version_change: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        positive = {
            "arl0": self.arl0 - 1.0,
            "learn_rate_obs": self.learn_rate_obs,
            "learn_mean_obs": self.learn_mean_obs - 1,
            "rate_rel_shift": self.rate_rel_shift,
            "learn_rate_rel_se": self.learn_rate_rel_se,
            "clip": self.clip - 1.4,  # above half the largest mean design shift (2.8 sd)
            "window_s": self.window_s,
            "live_s": self.live_s,
            "false_alarms_per_month": self.false_alarms_per_month,
            "warn_false_alarms_per_month": self.warn_false_alarms_per_month,
            "version_warn_s": self.version_warn_s,
        }
        for name, margin in positive.items():
            if not (isinstance(margin, int | float) and math.isfinite(margin) and margin > 0):
                raise ValueError(f"{name} is out of range: {getattr(self, name)!r}")
        if self.learn_rate_max_obs < self.learn_rate_obs:
            raise ValueError(
                f"learn_rate_max_obs ({self.learn_rate_max_obs}) must be >= learn_rate_obs"
            )
        names = ("rate_day_sd_prior", "mean_day_sd_prior", "min_window_obs")
        for name in (*names, "future_skew_s"):
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
        for wf, fa in self.budget_by_workflow.items():
            if not (math.isfinite(fa) and fa > 0):
                raise ValueError(f"budget_by_workflow[{wf}] must be > 0, got {fa!r}")
        for wf, budget in self.budgets_usd.items():
            if not (math.isfinite(budget) and budget > 0):
                raise ValueError(f"budgets_usd[{wf}] must be > 0, got {budget!r}")

    def budget_for(self, workflow: str) -> float:
        """False critical findings per 30 days this workflow accepts (all signals)."""
        return self.budget_by_workflow.get(workflow, self.false_alarms_per_month)

    def warn_budget_for(self, workflow: str) -> float:
        """False WARN findings per 30 days this workflow accepts: the WARN budget, scaled as
        the workflow's own critical budget is scaled from the default."""
        return self.warn_false_alarms_per_month * (
            self.budget_for(workflow) / self.false_alarms_per_month
        )

    def slo_for(self, workflow: str) -> float:
        return self.slo_by_workflow.get(workflow, self.slo)

    def declared_for(self, workflow: str, signal: str) -> DeclaredBaseline | None:
        return self.declared.get((workflow, signal)) or self.declared.get(("*", signal))
