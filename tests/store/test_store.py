"""The store on a real SQLite file and the real PostgreSQL: idempotency and rollups."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import func, select

from collectors.events import MAX_BATCH_EVENTS, Event, convert_event, encode_event
from detectors import signals as sig
from monitor.store import Store
from monitor.store import schema as t
from monitor.store.retention import compact_rollups, prune

T0 = 1_795_000_020.0  # 20 s into a minute


def runs(n: int, prefix: str = "r", **extra: object) -> list[Event]:
    return [
        convert_event(
            {
                "id": f"{prefix}{i}",
                "type": "run",
                "workflow": "wf",
                "ts": T0 + i * 0.01,
                "status": "error" if i % 10 == 0 else "ok",
                "latency_ms": 100.0 + i,
                **extra,
            },
            T0 + 100,
        )
        for i in range(n)
    ]


def rollup_totals(store: Store, signal: str) -> tuple[int, int, float]:
    r = t.rollups.c
    with store.read() as conn:
        row = conn.execute(
            select(func.sum(r.count), func.sum(r.successes), func.sum(r.sum)).where(
                r.signal == signal
            )
        ).one()
    return int(row[0] or 0), int(row[1] or 0), float(row[2] or 0.0)


def test_duplicate_batch_is_stored_once_and_rolled_up_once(store: Store) -> None:
    batch = runs(1000)
    first = store.insert_events(batch)
    second = store.insert_events(batch)
    assert (first.accepted, first.duplicates) == (1000, 0)
    assert (second.accepted, second.duplicates) == (0, 1000)
    assert store.count_events() == 1000
    assert rollup_totals(store, sig.RUNS) == (1000, 900, 0.0)
    assert rollup_totals(store, sig.ERRORS)[:2] == (1000, 100)
    count, _, total = rollup_totals(store, sig.LATENCY_MS)
    assert count == 1000 and total == sum(100.0 + i for i in range(1000))


def test_a_full_batch_is_stored_whole_across_several_insert_statements(store: Store) -> None:
    # 10,000 events x 6 columns is more than SQLite's 32,766 variables per statement
    batch = runs(MAX_BATCH_EVENTS, latency_ms=5.0)
    assert store.insert_events(batch).accepted == MAX_BATCH_EVENTS
    with store.read() as conn:
        ids = {r[0] for r in conn.execute(select(t.events.c.id))}
        payload = conn.execute(select(t.events.c.payload).where(t.events.c.id == "r9999")).one()
    assert ids == {e.id for e in batch}
    assert orjson.loads(payload[0])["latency_ms"] == 5.0
    assert rollup_totals(store, sig.LATENCY_MS) == (MAX_BATCH_EVENTS, 0, 5.0 * MAX_BATCH_EVENTS)
    assert store.insert_events(batch).duplicates == MAX_BATCH_EVENTS


def test_ids_and_texts_that_need_escaping_are_stored_verbatim(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PostgreSQL gets COPY's text format, where backslash, tab and newline are special
    odd = ["back\\slash", "tab\there", "new\nline", "cr\rlf", "\\N", "naïve ☃", 'q"uote']
    batch = [
        convert_event(
            {
                "id": f"id {text}",
                "type": "review",
                "workflow": "wf",
                "ts": T0,
                "decision": "edited",
                "before": f"draft {text}",
                "after": f"final {text}\\",
                "attributes": {"note": text, text: [text]},
            },
            T0 + 1,
        )
        for text in odd
    ]
    if store.takes_copy:  # a fresh batch goes in by COPY alone, not by the fallback
        monkeypatch.setattr(store, "_insert_new_postgres", lambda *a: pytest.fail("fallback"))
    assert store.insert_events(batch).accepted == len(odd)
    monkeypatch.undo()
    with store.read() as conn:
        stored = dict(conn.execute(select(t.events.c.id, t.events.c.payload)).all())
    assert stored == {e.id: encode_event(e).decode() for e in batch}
    resent = store.insert_events([*batch, *runs(3)])  # one stored id: the COPY gives way
    assert (resent.accepted, resent.duplicates) == (3, len(odd))


def test_duplicates_inside_one_batch_count_once(store: Store) -> None:
    batch = runs(10) + runs(10)
    result = store.insert_events(batch)
    assert (result.accepted, result.duplicates) == (10, 10)
    assert rollup_totals(store, sig.RUNS)[0] == 10


def test_partially_overlapping_batches_add_only_new_events(store: Store) -> None:
    store.insert_events(runs(50))
    result = store.insert_events(runs(80))
    assert (result.accepted, result.duplicates) == (30, 50)
    # the metrics count the 30 new ones only: r50..r79, of which r50, r60, r70 failed
    assert result.tally.sums["events_ingested", "wf", "run"] == 30
    assert result.tally.sums["runs", "wf", "error"] == 3
    assert rollup_totals(store, sig.RUNS)[0] == 80


def test_rollups_are_bucketed_per_minute(store: Store) -> None:
    events = [
        convert_event({"id": f"m{i}", "type": "run", "workflow": "wf", "ts": T0 + 60 * i}, T0 + 999)
        for i in range(3)
    ]
    store.insert_events(events)
    with store.read() as conn:
        buckets = sorted(
            b
            for (b,) in conn.execute(
                select(t.rollups.c.bucket).where(t.rollups.c.signal == sig.RUNS)
            )
        )
    start = int(T0 // 60) * 60
    assert buckets == [start, start + 60, start + 120]


def test_review_and_cost_signals_are_rolled_up(store: Store) -> None:
    now = T0 + 100
    events = [
        convert_event(
            {
                "id": "v1",
                "type": "review",
                "workflow": "wf",
                "ts": T0,
                "decision": "edited",
                "edit_ratio": 0.25,
            },
            now,
        ),
        convert_event(
            {"id": "v2", "type": "review", "workflow": "wf", "ts": T0, "decision": "rejected"}, now
        ),
        convert_event(
            {
                "id": "v3",
                "type": "review",
                "workflow": "wf",
                "ts": T0,
                "decision": "approved",
                "time_saved_s": 120,
            },
            now,
        ),
        convert_event(
            {
                "id": "c1",
                "type": "cost",
                "workflow": "wf",
                "ts": T0,
                "model": "m",
                "input_tokens": 100,
                "output_tokens": 20,
                "cost_usd": 0.5,
            },
            now,
        ),
        convert_event({"id": "c2", "type": "cost", "workflow": "wf", "ts": T0, "model": "m"}, now),
    ]
    store.insert_events(events)
    assert rollup_totals(store, sig.EDITED)[:2] == (3, 2)
    assert rollup_totals(store, sig.REJECTED)[:2] == (3, 1)
    assert rollup_totals(store, sig.EDIT_RATIO) == (1, 0, 0.25)
    assert rollup_totals(store, sig.SPEND_USD) == (1, 0, 0.5)
    assert rollup_totals(store, sig.TOKENS)[2] == 120.0
    assert rollup_totals(store, sig.UNPRICED)[:2] == (1, 1)


def test_model_versions_and_active_users_are_recorded(store: Store) -> None:
    store.insert_events(runs(5, model_version="v1", user="ana", team="ops"))
    store.insert_events(runs(3, prefix="s", model_version="v2", user="bo"))
    with store.read() as conn:
        versions = conn.execute(
            select(t.versions.c.model_version, t.versions.c.count).order_by(
                t.versions.c.model_version
            )
        ).all()
        users = conn.execute(select(func.count()).select_from(t.actors)).scalar_one()
    assert [tuple(v) for v in versions] == [("v1", 5), ("v2", 3)]
    assert users == 2


def test_each_batch_gets_a_higher_rollup_sequence(store: Store) -> None:
    store.insert_events(runs(5))
    store.insert_events(runs(5, prefix="b"))
    with store.read() as conn:
        seqs = sorted({s for (s,) in conn.execute(select(t.rollups.c.seq))})
    assert len(seqs) == 2 and seqs[1] > seqs[0]


def top_seq(store: Store) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.max(t.rollups.c.seq))).scalar_one())


def rollup_rows(store: Store, signal: str | None = None) -> int:
    """Rollup rows (deltas and folded ones), of one signal or of all."""
    query = select(func.count()).select_from(t.rollups)
    if signal is not None:
        query = query.where(t.rollups.c.signal == signal)
    with store.read() as conn:
        return int(conn.execute(query).scalar_one())


def test_compaction_folds_deltas_without_changing_totals(store: Store) -> None:
    for k in range(4):
        store.insert_events(runs(25, prefix=f"b{k}-"))
    before = rollup_totals(store, sig.RUNS)
    folded = compact_rollups(store, top_seq(store))
    assert folded > 0
    assert rollup_totals(store, sig.RUNS) == before
    assert rollup_rows(store, sig.RUNS) == 1


def test_compaction_looks_only_at_buckets_written_since_the_last_one(store: Store) -> None:
    for k in range(3):
        store.insert_events(runs(25, prefix=f"a{k}-"))
    first = top_seq(store)
    assert compact_rollups(store, first) > 0
    assert compact_rollups(store, first) == 0  # nothing new: nothing scanned or folded
    # a late delta into the same (already folded) buckets is folded with them next time
    store.insert_events(runs(25, prefix="late-"))
    before = rollup_totals(store, sig.RUNS)
    assert compact_rollups(store, top_seq(store)) > 0
    assert rollup_totals(store, sig.RUNS) == before
    assert rollup_rows(store, sig.RUNS) == 1


def test_prune_deletes_old_events_and_rollups_only(store: Store) -> None:
    old = [
        convert_event({"id": "old", "type": "run", "workflow": "wf", "ts": T0 - 90 * 86_400}, T0)
    ]
    store.insert_events(old)
    store.insert_events(runs(5))
    deleted = prune(store, T0 - 30 * 86_400)
    assert deleted["events"] == 1
    assert store.count_events() == 5
    assert rollup_totals(store, sig.RUNS)[0] == 5


def test_every_run_signal_is_rolled_up(store: Store) -> None:
    now = T0 + 100
    rows = [
        {
            "status": "ok",
            "retries": 0,
            "action": "crm_write",
            "team": "ops",
            "groundedness": 0.9,
            "confidence": 0.5,
            "validation": "passed",
            "escalated": False,
        },
        {
            "status": "error",
            "retries": 2,
            "action": "crm_write",
            "team": "ops",
            "groundedness": 0.7,
            "validation": "failed",
            "escalated": True,
        },
        {"status": "timeout", "retries": 1, "action": "send_email", "team": "sales"},
    ]
    store.insert_events(
        [
            convert_event({"id": f"x{i}", "type": "run", "workflow": "wf", "ts": T0, **row}, now)
            for i, row in enumerate(rows)
        ]
    )
    assert rollup_totals(store, sig.TIMEOUTS)[:2] == (3, 1)
    assert rollup_totals(store, sig.RETRIES) == (3, 2, 3.0)
    assert rollup_totals(store, sig.ACTION_ERRORS_PREFIX + "crm_write")[:2] == (2, 1)
    assert rollup_totals(store, sig.ACTION_ERRORS_PREFIX + "send_email")[:2] == (1, 1)
    assert rollup_totals(store, sig.TEAM_RUNS_PREFIX + "ops")[:2] == (2, 1)
    assert rollup_totals(store, sig.GROUNDEDNESS) == (2, 0, 1.6)
    assert rollup_totals(store, sig.CONFIDENCE) == (1, 0, 0.5)
    assert rollup_totals(store, sig.VALIDATION_FAILED)[:2] == (2, 1)
    assert rollup_totals(store, sig.ESCALATED)[:2] == (2, 1)
