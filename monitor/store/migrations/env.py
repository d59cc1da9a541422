"""Alembic environment: runs on the connection handed over by monitor.store.migrate."""

from __future__ import annotations

from alembic import context

from monitor.store.schema import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `driftwarden db upgrade`")
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
