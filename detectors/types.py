"""Plain data types shared between the store (which produces them) and the detectors.

Detectors import nothing from ``monitor``; the store hands them these dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


@dataclass(frozen=True, slots=True)
class Rollup:
    """Aggregate of one signal of one workflow over one minute bucket.

    For a rate signal ``count`` is the number of trials and ``successes`` the number of
    "events" (an edit, an error); for a value signal ``sum``/``sumsq``/``min``/``max``
    describe the ``count`` observed values.
    """

    workflow: str
    signal: str
    bucket: int  # bucket start, epoch seconds, a multiple of 60
    count: int
    successes: int = 0
    sum: float = 0.0
    sumsq: float = 0.0
    min: float | None = None
    max: float | None = None

    @property
    def mean(self) -> float | None:
        return self.sum / self.count if self.count else None

    @property
    def rate(self) -> float | None:
        return self.successes / self.count if self.count else None


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    CRITICAL = "critical"
    UNKNOWN = "unknown"

    @property
    def gauge_value(self) -> int:
        """The value exported in ``driftwarden_finding_status`` (docs/design.md)."""
        return {"ok": 0, "warn": 1, "critical": 2, "unknown": -1}[self.value]

    @property
    def severity(self) -> int:
        """Ordering for "worst of": ok < unknown < warn < critical. Unknown (learning, no
        recent data) ranks above ok: a workflow that went quiet or is still learning must
        not read as healthy."""
        return {"ok": 0, "unknown": 1, "warn": 2, "critical": 3}[self.value]


def worst(statuses: list[Status]) -> Status:
    """The most severe status (ok < unknown < warn < critical); an empty list is UNKNOWN
    (no data is never ok)."""
    if not statuses:
        return Status.UNKNOWN
    return max(statuses, key=lambda s: s.severity)


@dataclass(slots=True)
class Finding:
    """The verdict of one detector on one signal of one workflow (docs/design.md "A Finding")."""

    workflow: str
    signal: str
    detector: str
    status: Status
    value: float | None = None
    baseline: float | None = None
    statistic: float | None = None
    threshold: float | None = None
    p_value: float | None = None
    window: str | None = None  # e.g. "2026-11-23T08:00Z/2026-11-23T09:00Z" or "cusum"
    since: float | None = None  # epoch seconds when the current status began
    samples: int = 0
    evidence: dict[str, Any] = field(default_factory=dict)
    # one sentence a team lead understands (detectors.summary.summarize fills it)
    summary: str = ""
