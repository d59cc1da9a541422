"""Baselines: declared, learned from a named window, or learned from the first N observations.

Also :class:`Learning` (the learning period of a chart: hourly chunks, so a change inside
the learning period is found and not learned as normal, and a thinned sample of bucket
means for calibrating a mean chart on its real distribution) and the model-version
bookkeeping (report the change as a Finding).

Example:
    >>> learner = BaselineLearner("rate")
    >>> learner.add(400, 80)
    >>> learner.add(100, 20)
    >>> b = learner.baseline("learned")
    >>> b.value, b.samples
    (0.2, 500)
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
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
        # not dataclasses.asdict: it deep-copies, and states are saved every pass
        return {k: getattr(self, k) for k in ("kind", "value", "sd", "samples", "source")}

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


# bucket means kept to calibrate a mean chart: its tail matters (a latency with 1.5 %
# timeouts at 18 sd: 100 samples gave 13 false criticals in 70 workflow-days, 400 gave 1)
MAX_SAMPLES = 400
SPLIT_Z = 3.5  # |z| of the best split of the learning period that counts as a change
DOUBT_Z = 2.0  # |z| that makes the learning period go on (up to 3x) to settle the question
_CHUNK = 900  # learning chunks of 15 minutes: where a change in learning began
CHUNK_OBS = 50  # ... or of 50 observations, so a burst (a backfill, a busy minute) splits too


@dataclass(slots=True)
class Learning:
    """A chart's learning period: totals per 15 minutes (time order) and a thinned sample of
    bucket means ``[n, mean]`` (every ``stride``-th bucket, at most ``2 x MAX_SAMPLES``)."""

    kind: Kind
    chunks: list[list[float]]  # [chunk start, n, value (events or sum), sumsq]
    samples: list[list[float]]
    stride: int = 1
    seen: int = 0
    _running: tuple[int, float, float] | None = None  # (n, value, sumsq), not saved

    @classmethod
    def new(cls, kind: Kind) -> Learning:
        return cls(kind, [], [])

    @property
    def n(self) -> int:
        return self.totals().n

    def totals(self, chunks: Sequence[list[float]] | None = None) -> BaselineLearner:
        """Totals of ``chunks`` (default: all, kept running: O(1) per rollup)."""
        if chunks is None:
            if self._running is None:
                self._running = self._sum(self.chunks)
            return BaselineLearner(self.kind, *self._running)
        return BaselineLearner(self.kind, *self._sum(chunks))

    @staticmethod
    def _sum(chunks: Sequence[list[float]]) -> tuple[int, float, float]:
        return (
            int(sum(c[1] for c in chunks)),
            sum(c[2] for c in chunks),
            sum(c[3] for c in chunks),
        )

    def add(self, r: Rollup) -> None:
        value = float(r.successes) if self.kind == "rate" else r.sum
        before = self.totals()
        n0 = before.n
        self._running = (n0 + r.count, before.total + value, before.total_sq + r.sumsq)
        hour = r.bucket - r.bucket % _CHUNK
        if self.chunks and self.chunks[-1][0] == hour and self.chunks[-1][1] < CHUNK_OBS:
            last = self.chunks[-1]
            last[1] += r.count
            last[2] += value
            last[3] += r.sumsq
        else:
            self.chunks.append([hour, r.count, value, r.sumsq])
        if self.kind == "mean":
            if self.seen % self.stride == 0:
                # [n, mean, observations before it]: a change found later keeps only the
                # samples from before it
                self.samples.append([r.count, r.sum / r.count, n0])
                if len(self.samples) >= 2 * MAX_SAMPLES:
                    self.samples = self.samples[::2]
                    self.stride *= 2
            self.seen += 1

    def split(self, bad: Direction, prior_sd: float) -> int | None:
        """Index of the first chunk after a change inside the learning period, if the best
        split between chunks is a change beyond ``SPLIT_Z`` (``prior_sd``: day-level sd that
        two segments may differ by without a change, on the value's scale)."""
        z, at = self.best_split(prior_sd)
        return at if at is not None and abs(z) >= SPLIT_Z else None

    def best_split(self, prior_sd: float) -> tuple[float, int | None]:
        """``(z, index)`` of the best split between chunks (``(0, None)`` when none)."""
        if len(self.chunks) < 2:
            return 0.0, None
        total = self.totals()
        n_all = total.n
        if n_all < 2:
            return 0.0, None
        mean_all = total.total / n_all
        if self.kind == "rate":
            var1 = mean_all * (1.0 - mean_all)
        else:
            var1 = max((total.total_sq - n_all * mean_all * mean_all) / (n_all - 1), 0.0)
        best: tuple[float, int] | None = None
        n_a, v_a = 0.0, 0.0
        for i, c in enumerate(self.chunks[:-1]):
            n_a += c[1]
            v_a += c[2]
            n_b, v_b = n_all - n_a, total.total - v_a
            if min(n_a, n_b) < 0.2 * n_all:
                continue
            var = var1 * (1.0 / n_a + 1.0 / n_b) + 2.0 * prior_sd**2
            if var <= 0:
                continue
            z = (v_b / n_b - v_a / n_a) / math.sqrt(var)
            if best is None or abs(z) > abs(best[0]):
                best = (z, i + 1)
        return (0.0, None) if best is None else best

    def thinned(self, before: float = math.inf) -> list[list[float]]:
        """At most ``MAX_SAMPLES`` ``[n, mean]`` samples, evenly over the learning period
        (only those taken before the first ``before`` observations)."""
        kept = [x for x in self.samples if len(x) < 3 or x[2] < before]
        step = max(1, math.ceil(len(kept) / MAX_SAMPLES))
        return [x[:2] for x in kept[::step][:MAX_SAMPLES]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "chunks": self.chunks,
            "samples": self.samples,
            "stride": self.stride,
            "seen": self.seen,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Learning:
        return cls(
            data["kind"],
            [list(c) for c in data["chunks"]],
            [list(x) for x in data.get("samples", [])],
            int(data.get("stride", 1)),
            int(data.get("seen", 0)),
        )


def learn_from_rollups(rollups: Iterable[Rollup], kind: Kind, source: str = "window") -> Baseline:
    """Baseline from a named window of rollups (e.g. the week before a release)."""
    learner = BaselineLearner(kind)
    for r in rollups:
        learner.add_rollup(r)
    return learner.baseline(source)


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
