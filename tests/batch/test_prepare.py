"""A prepared batch narrowed to the rows the store inserted equals preparing those alone."""

from __future__ import annotations

import time
from typing import Any

import orjson

from collectors.native import parse_batch
from monitor.batch.prepare import Prepared, decode_rows, prepare, restrict
from monitor.demo import Simulator

T0 = time.time() - 3 * 3600


def demo_body(minutes: float = 20) -> bytes:
    """Every event type (runs, reviews with texts, costs, KPIs), plus two invalid events."""
    events: list[dict[str, Any]] = Simulator(seed=5, drift_after_s=600, start=T0).events_between(
        T0, T0 + minutes * 60
    )
    events[3:3] = [{"id": "bad-1", "type": "run"}, {"id": "bad-2", "type": "nope", "workflow": "w"}]
    common = {"workflow": "billing", "ts": T0 + 30, "user": "ana", "team": "ops"}
    events += [
        {"id": "c1", "type": "cost", "model": "gpt-4o-mini", "cost_usd": 0.25, **common},
        {"id": "c2", "type": "cost", "model": "in-house-7", "input_tokens": 900, **common},
        {"id": "k1", "type": "kpi", "name": "handle_time", "value": 3.5, **common},
        {"id": "k1", "type": "kpi", "name": "handle_time", "value": 9.0, **common},  # resent id
    ]
    return orjson.dumps(events)


def derived(batch: Prepared) -> tuple[object, ...]:
    return (
        batch.rows,
        sorted(batch.rollups),
        batch.versions,
        batch.actors,
        dict(batch.tally.sums),
        batch.tally.latencies,
    )


def test_restricting_a_batch_equals_preparing_only_the_kept_events() -> None:
    received = T0 + 3600
    events = parse_batch(demo_body(), "json", received).events
    whole = prepare(events, received)
    kept_ids = {r[0] for i, r in enumerate(whole.rows) if i % 3 == 0 or r[1] in ("cost", "kpi")}
    narrowed = restrict(whole, kept_ids)
    alone = prepare([e for e in events if e.id in kept_ids], received)
    assert derived(narrowed) == derived(alone)
    assert 0 < len(narrowed.rows) < len(whole.rows)
    assert {row[1] for row in narrowed.rows} == {"run", "review", "cost", "kpi"}


def test_stored_json_decodes_to_the_validated_event() -> None:
    received = T0 + 3600
    events = parse_batch(demo_body(), "json", received).events
    rows = prepare(events, received).rows
    unique = list({e.id: e for e in reversed(events)}.values())[::-1]  # first of each id
    assert list(decode_rows(rows)) == unique
    assert orjson.loads(rows[0][5])["id"] == rows[0][0]
