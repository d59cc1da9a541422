"""Baselines: declared, learned from a named window, or learned from the first N observations.

Also the design shift of a chart (``p1`` for a rate, ``delta`` for a mean) and the
model-version bookkeeping (re-learn on change, report the change as a Finding).

Example:
    >>> learner = BaselineLearner("rate")
    >>> learner.add(400, 80)
    >>> learner.add(100, 20)
    >>> b = learner.baseline("learned")
    >>> b.value, b.samples
    (0.2, 500)
    >>> rate_design(0.2, "up", rel_shift=0.5, abs_floor=0.01)
    0.30000000000000004
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from detectors.types import Finding, Rollup, Status

Kind = Literal["rate", "mean"]
Direction = Literal["up", "down", "both"]


@dataclass(frozen=True, slots=True)
class Baseline:
    """In-control level of a signal. ``sd`` is per observation (means); ``samples`` is how
    many observations it was learned from (``None`` when declared)."""

    kind: Kind
    value: float
    sd: float | None
    samples: int | None
    source: str  # "declared" / "window" / "learned"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Baseline:
        return cls(data["kind"], data["value"], data["sd"], data["samples"], data["source"])


class BaselineLearner:
    """Accumulates ``(n, k)`` for a rate or ``(n, sum, sumsq)`` for a mean."""

    def __init__(self, kind: Kind, n: int = 0, total: float = 0.0, total_sq: float = 0.0):
        if kind not in ("rate", "mean"):
            raise ValueError(f"kind must be 'rate' or 'mean', got {kind!r}")
        self.kind: Kind = kind
        self.n, self.total, self.total_sq = n, total, total_sq

    def add(self, n: int, total: float, total_sq: float = 0.0) -> None:
        self.n += n
        self.total += total
        self.total_sq += total_sq

    def add_rollup(self, r: Rollup) -> None:
        self.add(r.count, float(r.successes) if self.kind == "rate" else r.sum, r.sumsq)

    def baseline(self, source: str) -> Baseline:
        if self.n < 2:
            raise ValueError(f"baseline: need at least 2 observations, have {self.n}")
        mean = self.total / self.n
        if self.kind == "rate":
            return Baseline("rate", mean, None, self.n, source)
        var = max(0.0, (self.total_sq - self.n * mean * mean) / (self.n - 1))
        return Baseline("mean", mean, math.sqrt(var), self.n, source)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "n": self.n, "total": self.total, "total_sq": self.total_sq}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BaselineLearner:
        return cls(data["kind"], data["n"], data["total"], data["total_sq"])


def learn_from_rollups(rollups: Iterable[Rollup], kind: Kind, source: str = "window") -> Baseline:
    """Baseline from a named window of rollups (e.g. the week before a release)."""
    learner = BaselineLearner(kind)
    for r in rollups:
        learner.add_rollup(r)
    return learner.baseline(source)


def guarded_level(b: Baseline, direction: Direction, guard_se: float) -> float:
    """The level the chart is designed around: a learned value moved ``guard_se`` standard
    errors towards the alarm side; declared values are taken as they are."""
    if b.samples is None or guard_se == 0 or direction == "both":
        return b.value
    if b.kind == "rate":
        # (k + 0.5) / (n + 1) keeps a learned 0 % rate watchable (p0 must be > 0).
        p = (b.value * b.samples + 0.5) / (b.samples + 1)
        se = math.sqrt(p * (1 - p) / b.samples)
    else:
        p, se = b.value, (b.sd or 0.0) / math.sqrt(b.samples)
    level = p + guard_se * se if direction == "up" else p - guard_se * se
    return min(max(level, 1e-6), 1 - 1e-6) if b.kind == "rate" else level


def rate_design(p0: float, direction: Direction, rel_shift: float, abs_floor: float) -> float:
    """``p1`` for a one-sided rate chart: ``p0 x (1 +- rel_shift)``, at least ``abs_floor``
    from ``p0``, kept inside (0, 1)."""
    if direction == "up":
        p1 = max(p0 * (1 + rel_shift), p0 + abs_floor)
        return min(p1, 1 - (1 - p0) / 4)  # never design for certainty
    p1 = min(p0 * (1 - min(rel_shift, 0.9)), p0 - abs_floor)
    return max(p1, p0 / 4)


def relearn(state: dict[str, Any]) -> dict[str, Any]:
    """State of a chart after a model change: baseline and chart dropped, learning again.

    Keeps only the status bookkeeping so ``since`` stays meaningful.
    """
    return {k: v for k, v in state.items() if k.startswith("_")}


def version_change_finding(
    workflow: str,
    previous: Collection[str],
    current: Collection[str],
    now: float,
) -> Finding | None:
    """A WARN finding when versions appear that were not seen before (pinned model change)."""
    new = sorted(set(current) - set(previous))
    if not previous or not new:
        return None
    return Finding(
        workflow=workflow,
        signal="model_version",
        detector="version_change",
        status=Status.WARN,
        since=now,
        samples=len(set(current)),
        evidence={
            "detector": "version_change",
            "previous": sorted(previous),
            "current": sorted(current),
            "new": new,
        },
    )
