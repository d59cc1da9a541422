"""What the console reads from the store beyond the API's own reads: rollups summed into
chart steps, and when each model/prompt version was first seen.

Rollup rows are per-minute deltas (several per bucket until compaction folds them); the
sum over a step of count, successes and sum is the same however the deltas were split,
so a chart never depends on compaction. ``bucket - bucket % step`` is integer arithmetic
on both SQLite and PostgreSQL (``/`` would be true division in SQLAlchemy 2).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select

from monitor.store import Store
from monitor.store import schema as t


@dataclass(frozen=True, slots=True)
class StepTotals:
    """One signal's rollups summed over one chart step."""

    count: int
    successes: int
    sum: float


# (workflow, signal) -> step start -> totals
Series = dict[tuple[str, str], dict[int, StepTotals]]


def load_steps(
    store: Store,
    workflows: Sequence[str],
    signals: Sequence[str] | None,
    start: float,
    end: float,
    step: int,
) -> Series:
    """Rollups of ``workflows`` (and ``signals``; None: all) with ``start <= bucket < end``,
    summed per ``step`` seconds (steps start at multiples of ``step``)."""
    if not workflows:
        return {}
    r = t.rollups.c
    step_start = (r.bucket - r.bucket % step).label("step")
    query = (
        select(
            r.workflow,
            r.signal,
            step_start,
            func.sum(r["count"]),
            func.sum(r.successes),
            func.sum(r.sum),
        )
        .where(r.workflow.in_(list(workflows)), r.bucket >= int(start), r.bucket < end)
        .group_by(r.workflow, r.signal, step_start)
    )
    if signals is not None:
        query = query.where(r.signal.in_(list(signals)))
    out: Series = defaultdict(dict)
    with store.read() as conn:
        for wf, signal, at, n, k, s in conn.execute(query):
            out[(wf, signal)][int(at)] = StepTotals(int(n or 0), int(k or 0), float(s or 0.0))
    return dict(out)


@dataclass(frozen=True, slots=True)
class VersionSeen:
    label: str  # model@model_version/prompt_version
    first_seen: float


def load_version_history(store: Store, workflow: str) -> list[VersionSeen]:
    """Every model/prompt version the workflow ran, oldest first."""
    v = t.versions.c
    query = (
        select(v.model, v.model_version, v.prompt_version, v.first_seen)
        .where(v.workflow == workflow)
        .order_by(v.first_seen)
    )
    with store.read() as conn:
        return [
            VersionSeen(f"{model or '-'}@{mv or '-'}/{pv or '-'}", float(first))
            for model, mv, pv, first in conn.execute(query)
        ]
