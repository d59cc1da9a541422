"""``driftwarden db upgrade|prune``: the database schema and retention."""

from __future__ import annotations

import time

import typer

from monitor.cli.common import DB_OPTION, err, out, parse_age, settings_from
from monitor.store import Store, StoreUnavailable
from monitor.store.migrate import current_revision, upgrade
from monitor.store.retention import prune

db_app = typer.Typer(help="Database schema and retention.", no_args_is_help=True)


def _store(db: str | None) -> Store:
    return Store.from_settings(settings_from(database_url=db))


@db_app.command("upgrade")
def db_upgrade(db: str | None = DB_OPTION) -> None:
    """Create or migrate the schema to the current version.

    Example: [bold]driftwarden db upgrade --db postgresql+psycopg://dw@db/dw[/bold]
    """
    store = _store(db)
    try:
        upgrade(store)
        out.print(f"[green]schema at {current_revision(store)}[/green] ({store.dialect})")
    except StoreUnavailable as exc:
        err.print(f"[red]cannot reach the database:[/red] {exc}")
        raise typer.Exit(2) from None


@db_app.command("prune")
def db_prune(
    older_than: str = typer.Option("30d", help="age of data to delete, e.g. 30d, 12h"),
    db: str | None = DB_OPTION,
) -> None:
    """Delete raw events, rollups and finding history older than the given age.

    Switch state and the audit log are never pruned.
    Example: [bold]driftwarden db prune --older-than 30d[/bold]
    """
    store = _store(db)
    deleted = prune(store, time.time() - parse_age(older_than))
    for table, count in deleted.items():
        out.print(f"{table}: {count} row(s) deleted")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
