"""Retention (prune) and rollup compaction."""

from __future__ import annotations

from sqlalchemy import and_, delete, func, select, tuple_

from monitor.store import schema as t
from monitor.store.database import ROLLUP_COLUMNS, Store

COMPACTED_SEQ = "rollups_compacted"  # sequences row: deltas up to here are folded


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
    """Fold each bucket's delta rows with ``seq <= watermark`` into one row; return how
    many rows fewer the table has.

    Safe only when every reader has consumed up to ``watermark`` (the detection scheduler
    passes the minimum ``last_seq`` of its states): the folded row keeps the largest seq,
    so a reader that already read the parts does not read them again. Only buckets that
    received a delta since the previous compaction are touched, in three set-based
    statements, so the cost follows the new rows, not the size of the table.
    """
    r = t.rollups.c
    key = (r.workflow, r.signal, r.bucket)
    with store.write() as conn:
        since = store.counter(conn, COMPACTED_SEQ)
        if watermark <= since:
            return 0
        touched = select(*key).where(r.seq > since, r.seq <= watermark).distinct()
        in_touched = and_(r.seq <= watermark, tuple_(*key).in_(touched))
        folded = conn.execute(
            select(*key, *t.merged_rollup_columns(), func.max(r.seq))
            .where(in_touched)
            .group_by(*key)
        ).all()
        deleted = conn.execute(delete(t.rollups).where(in_touched)).rowcount
        if folded:
            conn.execute(
                t.rollups.insert(),
                [dict(zip(ROLLUP_COLUMNS, row, strict=True)) for row in folded],
            )
        store.set_counter(conn, COMPACTED_SEQ, watermark)
    return int(deleted or 0) - len(folded)
