"""Table definitions (SQLAlchemy Core). Alembic migrations create exactly these.

Times are stored as epoch seconds (float) or minute-bucket starts (int): portable between
SQLite and PostgreSQL, cheap to compare, and what the detectors work in.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
)

from detectors.signals import SIGNAL_MAX_LENGTH

metadata = MetaData()

events = Table(
    "events",
    metadata,
    Column("id", String(128), primary_key=True),  # the idempotency key
    Column("type", String(16), nullable=False),
    Column("workflow", String(64), nullable=False),
    Column("ts", Float, nullable=False),
    Column("received_at", Float, nullable=False),
    Column("payload", Text, nullable=False),  # canonical JSON of the event
)
Index("ix_events_workflow_ts", events.c.workflow, events.c.ts)
Index("ix_events_received_at", events.c.received_at)

rollups = Table(
    "rollups",
    metadata,
    Column("workflow", String(64), primary_key=True),
    Column("signal", String(SIGNAL_MAX_LENGTH), primary_key=True),
    Column("bucket", BigInteger, primary_key=True),  # minute start, epoch seconds
    Column("count", BigInteger, nullable=False),
    Column("successes", BigInteger, nullable=False),
    Column("sum", Float, nullable=False),
    Column("sumsq", Float, nullable=False),
    Column("min", Float),
    Column("max", Float),
    # Rows are deltas: one per (key, write batch). Detectors read "rows with seq > N",
    # so late events landing in an old bucket are seen exactly once; compaction later
    # folds a bucket's deltas into one row (monitor/store/compaction.py).
    Column("seq", BigInteger, primary_key=True),
)
Index("ix_rollups_seq", rollups.c.seq)


def merged_rollup_columns() -> tuple[Any, ...]:
    """count, successes, sum, sumsq, min, max of several delta rows of one bucket."""
    r = rollups.c
    return (
        func.sum(r.count),
        func.sum(r.successes),
        func.sum(r.sum),
        func.sum(r.sumsq),
        func.min(r.min),
        func.max(r.max),
    )


# pinned-model drift: one row per (workflow, model_version, prompt_version) seen
versions = Table(
    "versions",
    metadata,
    Column("workflow", String(64), primary_key=True),
    Column("model", String(128), primary_key=True),
    Column("model_version", String(128), primary_key=True),
    Column("prompt_version", String(128), primary_key=True),
    Column("first_seen", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
    Column("count", BigInteger, nullable=False),
)

# adoption: distinct active users per workflow and day
actors = Table(
    "actors",
    metadata,
    Column("workflow", String(64), primary_key=True),
    Column("day", Integer, primary_key=True),  # epoch day
    Column("user", String(128), primary_key=True),
    Column("team", String(64), nullable=False, default=""),
)

sequences = Table(
    "sequences",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

# where each tailed file was read up to (the SQL name predates the word "position";
# "checkpoint" now means only SQLite's WAL checkpoint, monitor/store/wal.py)
tail_positions = Table(
    "tail_checkpoints",
    metadata,
    Column("path", String(1024), primary_key=True),
    Column("inode", BigInteger, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("updated_at", Float, nullable=False),
)

findings = Table(
    "findings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workflow", String(64), nullable=False),
    Column("signal", String(SIGNAL_MAX_LENGTH), nullable=False),
    Column("detector", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("value", Float),
    Column("baseline", Float),
    Column("statistic", Float),
    Column("threshold", Float),
    Column("p_value", Float),
    Column("window", String(128)),
    Column("since", Float),
    Column("samples", BigInteger, nullable=False, default=0),
    Column("evidence", Text, nullable=False, default="{}"),
    Column("created_at", Float, nullable=False),
    Column("current", Integer, nullable=False, default=1),  # 1 = latest for its key
    # one sentence for people (detectors.summary); rows from before 0002 hold ""
    Column("summary", Text, nullable=False, default="", server_default=""),
)
Index("ix_findings_key", findings.c.workflow, findings.c.signal, findings.c.detector)
Index("ix_findings_current", findings.c.current, findings.c.status)

detector_state = Table(
    "detector_state",
    metadata,
    Column("workflow", String(64), primary_key=True),
    Column("signal", String(SIGNAL_MAX_LENGTH), primary_key=True),
    Column("detector", String(32), primary_key=True),
    Column("state", Text, nullable=False),  # JSON
    Column("last_seq", BigInteger, nullable=False, default=0),
    Column("updated_at", Float, nullable=False),
)

switches = Table(
    "switches",
    metadata,
    Column("workflow", String(64), primary_key=True),
    Column("mode", String(16), nullable=False),
    Column("disabled_actions", Text, nullable=False, default="[]"),  # sorted JSON list
    Column("version", BigInteger, nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("updated_by", String(128), nullable=False, default=""),
    Column("updated_at", Float, nullable=False),
    Column("source", String(128), nullable=False, default="human"),
)

audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workflow", String(64), nullable=False),
    Column("at", Float, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("source", String(128), nullable=False),
    Column("reason", Text, nullable=False),
    Column("before", Text, nullable=False),  # JSON snapshot
    Column("after", Text, nullable=False),  # JSON snapshot
    Column("dedup_key", String(256), unique=True),  # e.g. alert fingerprint + startsAt
    Column("dry_run", Integer, nullable=False, default=0),
)
Index("ix_audit_workflow_at", audit.c.workflow, audit.c.at)

# policy bookkeeping: consecutive passes a policy's condition has held
policy_state = Table(
    "policy_state",
    metadata,
    Column("policy", String(128), primary_key=True),
    Column("workflow", String(64), primary_key=True),
    Column("consecutive", Integer, nullable=False),
    Column("updated_at", Float, nullable=False),
)
