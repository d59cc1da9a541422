"""Retention (prune) and rollup compaction."""

from __future__ import annotations

from sqlalchemy import and_, delete, func, select

from monitor.store import schema as t
from monitor.store.writer import Store


def prune(store: Store, before: float) -> dict[str, int]:
    """Delete raw events, rollups, activity and superseded findings older than ``before``.

    Switch state, the audit log and current findings are kept: they are the record of what
    the daemon did and must outlive the data that caused it.
    """
    with store.write() as conn:
        counts = {
            "events": conn.execute(delete(t.events).where(t.events.c.ts < before)).rowcount,
            "rollups": conn.execute(
                delete(t.rollups).where(t.rollups.c.bucket < int(before))
            ).rowcount,
            "actors": conn.execute(
                delete(t.actors).where(t.actors.c.day < int(before // 86_400))
            ).rowcount,
            "findings": conn.execute(
                delete(t.findings).where(
                    and_(t.findings.c.created_at < before, t.findings.c.current == 0)
                )
            ).rowcount,
        }
    return {k: int(v or 0) for k, v in counts.items()}


def compact_rollups(store: Store, watermark: int) -> int:
    """Fold each bucket's delta rows with ``seq <= watermark`` into one row.

    Safe only when every reader has consumed up to ``watermark`` (the detection scheduler
    passes the minimum ``last_seq`` of its states): the folded row keeps the largest seq,
    so a reader that already read the parts does not read them again.
    """
    r = t.rollups.c
    groups = (
        select(
            r.workflow,
            r.signal,
            r.bucket,
            func.sum(r.count),
            func.sum(r.successes),
            func.sum(r.sum),
            func.sum(r.sumsq),
            func.min(r.min),
            func.max(r.max),
            func.max(r.seq),
        )
        .where(r.seq <= watermark)
        .group_by(r.workflow, r.signal, r.bucket)
        .having(func.count() > 1)
    )
    folded = 0
    with store.write() as conn:
        rows = conn.execute(groups).all()
        for wf, signal, bucket, n, k, s, ss, lo, hi, seq in rows:
            folded += conn.execute(
                delete(t.rollups).where(
                    and_(
                        r.workflow == wf, r.signal == signal, r.bucket == bucket, r.seq <= watermark
                    )
                )
            ).rowcount
            conn.execute(
                t.rollups.insert(),
                {
                    "workflow": wf,
                    "signal": signal,
                    "bucket": bucket,
                    "count": n,
                    "successes": k,
                    "sum": s,
                    "sumsq": ss,
                    "min": lo,
                    "max": hi,
                    "seq": seq,
                },
            )
    return folded
