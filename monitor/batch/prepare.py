"""A validated batch made ready to store: rows, rollup deltas and metric counts (pure).

Everything here is per-event Python work, so it is done where the batch is parsed (a parse
process when the daemon has them, see ``monitor.ingest.parse_pool``); the process that owns the
database connection then only writes.

Example:
    >>> from collectors.events import convert_event
    >>> ev = convert_event({"id": "a", "type": "run", "workflow": "wf",
    ...                     "ts": 1_780_000_000, "status": "ok"})
    >>> batch = prepare([ev, ev], received_at=1_780_000_001.0)
    >>> [row[:5] for row in batch.rows], batch.in_batch_duplicates
    ([('a', 'run', 'wf', 1780000000.0, 1780000001.0)], 1)
    >>> [r[:5] for r in batch.rollups if r[1] == "runs"]  # workflow, signal, minute, n, ok
    [('wf', 'runs', 1779999960, 1, 1)]
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

import msgspec

from collectors.events import Cost, Event, Kpi, Review, Run, encode_event
from monitor.batch.rollups import rollup
from monitor.batch.tally import Tally, tally

EVENT_COLUMNS = ("id", "type", "workflow", "ts", "received_at", "payload")
EventRow = tuple[str, str, str, float, float, str]  # in EVENT_COLUMNS order
KIND: dict[type[Event], str] = {kind: kind.__name__.lower() for kind in (Run, Review, Cost, Kpi)}
_EVENT = msgspec.json.Decoder(Event)


# the derived tables' rows (columns as in ``monitor.store.schema``; rollups get their seq
# when written); plain tuples, which cross a process boundary at C speed
RollupRow = tuple[str, str, int, int, int, float, float, float | None, float | None]
VersionRow = tuple[str, str, str, str, float, float, int]
ActorRow = tuple[str, int, str, str]


@dataclass(slots=True)
class Prepared:
    rows: list[EventRow]  # one per distinct id, first occurrence wins
    # what ``rows`` add to the derived tables and metrics, as if every one of them is new
    rollups: list[RollupRow]
    versions: list[VersionRow]
    actors: list[ActorRow]
    tally: Tally
    in_batch_duplicates: int  # events of the batch whose id came earlier in it
    copy: bytes | None = None  # ``rows`` as PostgreSQL COPY input, when asked for


def prepare(events: Sequence[Event], received_at: float, *, for_copy: bool = False) -> Prepared:
    """``for_copy`` also formats the rows for PostgreSQL's COPY (the store's fast path)."""
    unique: dict[str, Event] = {}
    for ev in events:
        unique.setdefault(ev.id, ev)
    kept = unique.values()
    rows = [
        (ev.id, KIND[type(ev)], ev.workflow, ev.epoch, received_at, encode_event(ev).decode())
        for ev in kept
    ]
    batch = _derive(rows, kept, len(events) - len(unique))
    if for_copy:
        batch.copy = copy_text(rows)
    return batch


def restrict(batch: Prepared, ids: set[str]) -> Prepared:
    """The part of ``batch`` whose ids are in ``ids`` (the rows the store did insert).

    Rollups and counts are recomputed from the stored canonical JSON: a resent batch is the
    exception, so the parse step does not keep its events around for it.
    """
    rows = [row for row in batch.rows if row[0] in ids]
    return _derive(rows, list(decode_rows(rows)), batch.in_batch_duplicates)


def _derive(rows: list[EventRow], events: Collection[Event], duplicates: int) -> Prepared:
    derived = rollup(events)
    return Prepared(
        rows,
        rollups=[
            (wf, signal, bucket, a.count, a.successes, a.sum, a.sumsq, a.min, a.max)
            for (wf, signal, bucket), a in derived.aggs.items()
        ],
        versions=[
            (*key, seen.first, seen.last, seen.count) for key, seen in derived.versions.items()
        ],
        actors=[(wf, day, user, team) for (wf, day, user), team in derived.actors.items()],
        tally=tally(events),
        in_batch_duplicates=duplicates,
    )


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(rows: Sequence[EventRow]) -> bytes:
    r"""``rows`` in COPY's text format: one line each, tab between columns, and backslash,
    tab, newline and carriage return escaped with a backslash (floats print exactly).

    >>> copy_text([("a\tb", "run", "wf", 60.5, 61.0, '{"x":"\\"q\\""}')])
    b'a\\tb\trun\twf\t60.5\t61.0\t{"x":"\\\\"q\\\\""}\n'
    """
    return "".join(
        [
            # JSON has no raw tab or line break (msgspec escapes them inside strings), so
            # the payload only needs its backslashes doubled: str.replace runs at memchr
            # speed where translate() costs microseconds per payload
            f"{_escaped(i)}\t{k}\t{_escaped(w)}\t{t!r}\t{r!r}\t{p.replace(BS, BS2)}\n"
            for i, k, w, t, r, p in rows
        ]
    ).encode()


BS, BS2 = "\\", "\\\\"


def _escaped(text: str) -> str:
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return text.translate(_COPY_ESCAPES)
    return text


def decode_rows(rows: Iterable[EventRow]) -> Iterable[Event]:
    """The events back from their canonical JSON (already validated: no checks again)."""
    for row in rows:
        event: Event = _EVENT.decode(row[5])
        yield event
