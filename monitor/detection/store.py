"""What a detection pass reads from and writes to the store.

A pass reads the rollup deltas written after the saved watermark (``seq``), the detector
states, the model versions and active users; it writes the findings, the new states and
the new watermark in ONE transaction, so a crash at any point either keeps the whole pass
or none of it: after a restart the next pass continues exactly where the last committed
one stopped (no re-alarm on old data, no forgotten evidence).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, and_, bindparam, func, select, update

from detectors.summary import summarize
from detectors.types import Finding, Rollup, Status
from monitor.store import Store
from monitor.store import schema as t

WATERMARK = "detection"
LAST_PASS = "last_detection"
EPOCH = "detection_epoch"  # random token of the last saved pass (see Detection._states)
RollupKey = tuple[str, str]
StateKey = tuple[str, str, str]
States = dict[StateKey, dict[str, Any]]


@dataclass(slots=True)
class PassInput:
    rollups: dict[RollupKey, list[Rollup]]
    watermark: int  # highest seq included
    more: bool = False  # rows with seq > watermark were left for the next chunk


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS).decode()


def load_new_rollups(
    store: Store, after: int, limit: int, workflow: str | None = None
) -> PassInput:
    """Up to about ``limit`` rollup rows with ``seq > after``, whole seqs only, in seq order.

    ``more`` says a further call is needed: the chunk stops before the seq that would take
    it past ``limit``, so a short chunk does not mean the backlog is read. One seq larger
    than ``limit`` is read whole (never an empty chunk that would not move the watermark).
    """
    r = t.rollups.c
    with store.read() as conn:
        top = conn.execute(
            select(r.seq).where(r.seq > after).order_by(r.seq).offset(limit).limit(1)
        ).scalar()
        if (
            top is not None
            and top == conn.execute(select(func.min(r.seq)).where(r.seq > after)).scalar()
        ):
            top = conn.execute(select(func.min(r.seq)).where(r.seq > top)).scalar()
        query = select(
            r.workflow, r.signal, r.bucket, r["count"], r.successes, r.sum, r.sumsq, r.min, r.max
        ).where(r.seq > after)
        if top is not None:
            query = query.where(r.seq < top)  # stop before a seq that would be cut in half
        if workflow is not None:
            query = query.where(r.workflow == workflow)
        rows = conn.execute(query.order_by(r.seq, r.bucket)).tuples().all()
        newest = conn.execute(select(func.max(r.seq))).scalar() if top is None else top - 1
    out: dict[RollupKey, list[Rollup]] = defaultdict(list)
    for wf, signal, bucket, n, k, s, ss, lo, hi in rows:
        out[(wf, signal)].append(
            Rollup(wf, signal, int(bucket), int(n), int(k), float(s), float(ss), lo, hi)
        )
    return PassInput(dict(out), max(after, int(newest or 0)), more=top is not None)


def load_states(store: Store) -> tuple[States, int]:
    """All detector states and the watermark they correspond to."""
    d = t.detector_state.c
    with store.read() as conn:
        rows = conn.execute(select(d.workflow, d.signal, d.detector, d.state)).all()
        watermark = store.counter(conn, WATERMARK)
    return {(w, s, det): orjson.loads(st) for w, s, det, st in rows}, watermark


def load_epoch(store: Store) -> int:
    with store.read() as conn:
        return store.counter(conn, EPOCH)


def load_versions(store: Store) -> dict[str, list[str]]:
    """Every (model, model_version, prompt_version) seen per workflow, as labels."""
    v = t.versions.c
    out: dict[str, list[str]] = defaultdict(list)
    with store.read() as conn:
        for wf, model, mv, pv in conn.execute(
            select(v.workflow, v.model, v.model_version, v.prompt_version)
        ):
            out[wf].append(f"{model or '-'}@{mv or '-'}/{pv or '-'}")
    return dict(out)


def load_active_users(store: Store, now: float, days: int = 35) -> dict[str, dict[str, int]]:
    """Per workflow: ``"YYYY-MM-DD" -> distinct users`` for the last ``days`` days."""
    a = t.actors.c
    first = int(now // 86_400) - days
    with store.read() as conn:
        rows = conn.execute(
            select(a.workflow, a.day, func.count())
            .where(a.day >= first)
            .group_by(a.workflow, a.day)
        ).all()
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for wf, day, users in rows:
        out[wf][(dt.date(1970, 1, 1) + dt.timedelta(days=int(day))).isoformat()] = int(users)
    return dict(out)


def load_window(store: Store, workflow: str, start: float, end: float) -> dict[str, list[Rollup]]:
    """Rollups of a named baseline window, one per signal and bucket."""
    r = t.rollups.c
    with store.read() as conn:
        rows = conn.execute(
            select(r.signal, r.bucket, *t.merged_rollup_columns())
            .where(and_(r.workflow == workflow, r.bucket >= start, r.bucket < end))
            .group_by(r.signal, r.bucket)
            .order_by(r.bucket)
        ).all()
    out: dict[str, list[Rollup]] = defaultdict(list)
    for signal, bucket, n, k, s, ss, lo, hi in rows:
        out[signal].append(
            Rollup(workflow, signal, int(bucket), int(n), int(k), float(s), float(ss), lo, hi)
        )
    return dict(out)


def save_pass(
    store: Store,
    findings: Sequence[Finding],
    states: Mapping[StateKey, dict[str, Any]],
    watermark: int,
    now: float,
    epoch: int = 0,
) -> None:
    """Persist one pass atomically: states, watermark, epoch, findings (history kept)."""
    with store.write() as conn:
        _save_states(store, conn, states, watermark, now)
        store.set_counter(conn, WATERMARK, watermark)
        store.set_counter(conn, LAST_PASS, int(now))
        store.set_counter(conn, EPOCH, epoch)
        _save_findings(conn, findings, now)


def _save_states(
    store: Store, conn: Connection, states: Mapping[StateKey, dict[str, Any]], seq: int, now: float
) -> None:
    if not states:
        return
    ins = store.insert(t.detector_state)
    stmt = ins.on_conflict_do_update(
        index_elements=["workflow", "signal", "detector"],
        set_={
            "state": ins.excluded.state,
            "last_seq": ins.excluded.last_seq,
            "updated_at": ins.excluded.updated_at,
        },
    )
    conn.execute(
        stmt,
        [
            {
                "workflow": w,
                "signal": s,
                "detector": d,
                "state": _json(st),
                "last_seq": seq,
                "updated_at": now,
            }
            for (w, s, d), st in states.items()
        ],
    )


def _finding_row(f: Finding, now: float) -> dict[str, Any]:
    return {
        "workflow": f.workflow,
        "signal": f.signal,
        "detector": f.detector,
        "status": f.status.value,
        "value": f.value,
        "baseline": f.baseline,
        "statistic": f.statistic,
        "threshold": f.threshold,
        "p_value": f.p_value,
        "window": f.window,
        "since": f.since,
        "samples": f.samples,
        "evidence": _json(f.evidence),
        "created_at": now,
        "current": 1,
        "summary": f.summary,
    }


_UPDATED = (
    "value",
    "baseline",
    "statistic",
    "threshold",
    "p_value",
    "window",
    "since",
    "samples",
    "evidence",
    "summary",
)


def _save_findings(conn: Connection, findings: Iterable[Finding], now: float) -> None:
    """Update the current row in place while the status holds; on a status change keep
    the old row as history and insert a new current one."""
    f_ = t.findings.c
    current = {
        (w, s, d): (fid, status)
        for fid, w, s, d, status in conn.execute(
            select(f_.id, f_.workflow, f_.signal, f_.detector, f_.status).where(f_.current == 1)
        )
    }
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    retire: list[int] = []
    for f in findings:
        row = _finding_row(f, now)
        found = current.get((f.workflow, f.signal, f.detector))
        if found is not None and found[1] == f.status.value:
            updates.append({"_id": found[0], **{k: row[k] for k in _UPDATED}})
            continue
        if found is not None:
            retire.append(found[0])
        inserts.append(row)
    if updates:  # one statement, executed many times: no per-row statement building
        conn.execute(
            update(t.findings)
            .where(f_.id == bindparam("_id"))
            .values({k: bindparam(k) for k in _UPDATED}),
            updates,
        )
    if retire:
        conn.execute(update(t.findings).where(f_.id.in_(retire)).values(current=0))
    if inserts:
        conn.execute(t.findings.insert(), inserts)


def current_findings(
    store: Store,
    workflow: str | None = None,
    status: str | None = None,
    signal: str | None = None,
) -> list[dict[str, Any]]:
    f_ = t.findings.c
    query = select(t.findings).where(f_.current == 1)
    if workflow:
        query = query.where(f_.workflow == workflow)
    if status:
        query = query.where(f_.status == status)
    if signal:
        query = query.where(f_.signal == signal)
    with store.read() as conn:
        rows = conn.execute(query.order_by(f_.workflow, f_.signal, f_.detector)).mappings().all()
    out = [{**dict(r), "evidence": orjson.loads(r["evidence"])} for r in rows]
    for row in out:
        if not row["summary"]:
            # written before summaries existed (schema 0001): word it now, until the next
            # pass stores one (a pass updates current rows in place)
            row["summary"] = summarize(finding_from_row(row))
    return out


def finding_from_row(row: Mapping[str, Any]) -> Finding:
    return Finding(
        row["workflow"],
        row["signal"],
        row["detector"],
        Status(row["status"]),
        row["value"],
        row["baseline"],
        row["statistic"],
        row["threshold"],
        row["p_value"],
        row["window"],
        row["since"],
        int(row["samples"] or 0),
        dict(row["evidence"]),
        str(row.get("summary") or ""),
    )


def last_pass_time(store: Store) -> float | None:
    with store.read() as conn:
        value = store.counter(conn, LAST_PASS)
    return float(value) if value else None
