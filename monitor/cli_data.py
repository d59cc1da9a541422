"""CLI commands that move data: ingest, tail, db upgrade/prune, demo."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

err = Console(stderr=True)
out = Console()
db_app = typer.Typer(help="Database schema and retention.", no_args_is_help=True)

DB_OPTION = typer.Option(None, "--db", help="SQLAlchemy URL [env DRIFTWARDEN_DATABASE_URL]")


def _store(db: str | None):  # type: ignore[no-untyped-def]
    from monitor.cli import settings_from
    from monitor.store import Store

    settings = settings_from(database_url=db)
    return settings, Store.from_settings(settings)


def _service(db: str | None, migrate: bool = True):  # type: ignore[no-untyped-def]
    from monitor.ingest import IngestService
    from monitor.metrics import Metrics
    from monitor.runtime import StartupError, prepare_store

    settings, store = _store(db)
    try:
        prepare_store(store, migrate if store.dialect == "sqlite" else None)
    except StartupError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    return IngestService(store, Metrics(max_workflows=settings.max_workflows))


def ingest(
    files: list[Path] = typer.Argument(..., exists=True, dir_okay=False, help="files to import"),
    format: str = typer.Option(
        "native", "--format", "-f", help="native (JSONL/JSON), openai, litellm or csv"
    ),
    option: list[str] = typer.Option(
        [],
        "--option",
        "-o",
        help="format option KEY=VALUE, e.g. workflow=billing or, for csv, map.cost_usd=usd",
    ),
    db: str | None = DB_OPTION,
) -> None:
    """Import event files into the store (idempotent: re-importing adds nothing).

    Example: [bold]driftwarden ingest events.jsonl[/bold]
    """
    from collectors.files import Summary, ingest_file
    from monitor.store import StoreUnavailable

    options = dict(o.split("=", 1) for o in option if "=" in o)
    service = _service(db)
    total = Summary()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    ) as progress:
        for path in files:
            task = progress.add_task(path.name, total=path.stat().st_size)
            try:
                summary = ingest_file(path, service, format, options, _advancer(progress, task))
            except StoreUnavailable as exc:
                err.print(
                    f"[red]store unavailable:[/red] {exc} (nothing after the last "
                    "committed batch was stored; re-run the same command)"
                )
                raise typer.Exit(2) from None
            except ValueError as exc:
                err.print(f"[red]{path}: {exc}[/red]")
                raise typer.Exit(2) from None
            total.accepted += summary.accepted
            total.duplicates += summary.duplicates
            total.rejected_count += summary.rejected_count
            total.rejected.extend(r for r in summary.rejected[:10])
    _print_summary(total)
    if total.rejected_count:
        raise typer.Exit(1)


def _advancer(progress: Progress, task: TaskID) -> Callable[[int], None]:
    return lambda n: progress.advance(task, n)


def _print_summary(total: object) -> None:
    from collectors.files import Summary

    assert isinstance(total, Summary)
    table = Table(title="ingest summary")
    for col in ("accepted", "duplicates", "rejected"):
        table.add_column(col, justify="right")
    table.add_row(str(total.accepted), str(total.duplicates), str(total.rejected_count))
    out.print(table)
    for rej in total.rejected[:10]:
        err.print(f"  line {rej.index}: {rej.error}")


def tail(
    path: Path = typer.Argument(..., help="JSONL file to follow (it may not exist yet)"),
    db: str | None = DB_OPTION,
    poll: float = typer.Option(0.5, help="seconds between polls"),
) -> None:
    """Follow a growing JSONL file; survives rotation and restarts (checkpoint in the store).

    Example: [bold]driftwarden tail /var/log/invoice-triage/events.jsonl[/bold]
    """
    from collectors.tail import Tailer

    tailer = Tailer(path, _service(db), poll_s=poll)
    stop = threading.Event()
    err.print(f"following {tailer.key} (Ctrl-C to stop)")
    try:
        tailer.run(stop)
    except KeyboardInterrupt:
        stop.set()
    err.print(f"stopped: {tailer.stats}")


@db_app.command("upgrade")
def db_upgrade(db: str | None = DB_OPTION) -> None:
    """Create or migrate the schema to the current version.

    Example: [bold]driftwarden db upgrade --db postgresql+psycopg://dw@db/dw[/bold]
    """
    from monitor.store import StoreUnavailable
    from monitor.store.migrate import current_revision, upgrade

    _, store = _store(db)
    try:
        upgrade(store)
        out.print(f"[green]schema at {current_revision(store)}[/green] ({store.dialect})")
    except StoreUnavailable as exc:
        err.print(f"[red]cannot reach the database:[/red] {exc}")
        raise typer.Exit(2) from None


def parse_age(text: str) -> float:
    """``30d``, ``12h``, ``90m`` or ``45s`` as seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if not match:
        raise typer.BadParameter(f"{text!r}: use a number and a unit, e.g. 30d, 12h, 90m")
    scale = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}[match.group(2)]
    return float(match.group(1)) * scale


@db_app.command("prune")
def db_prune(
    older_than: str = typer.Option("30d", help="age of data to delete, e.g. 30d, 12h"),
    db: str | None = DB_OPTION,
) -> None:
    """Delete raw events, rollups and finding history older than the given age.

    Switch state and the audit log are never pruned.
    Example: [bold]driftwarden db prune --older-than 30d[/bold]
    """
    from monitor.store.retention import prune

    _, store = _store(db)
    deleted = prune(store, time.time() - parse_age(older_than))
    for table, count in deleted.items():
        out.print(f"{table}: {count} row(s) deleted")


def demo(
    url: str = typer.Option("http://127.0.0.1:8000", help="daemon base URL"),
    token: str | None = typer.Option(None, envvar="DRIFTWARDEN_TOKEN", help="ingest token"),
    drift_after: float = typer.Option(600.0, help="seconds before invoice-triage drifts"),
    seed: int = typer.Option(0),
    duration: float = typer.Option(0.0, help="stop after N seconds (0 = run forever)"),
) -> None:
    """Send simulated traffic for three workflows to a running daemon; one drifts.

    Example: [bold]driftwarden demo --url http://127.0.0.1:8000 --drift-after 120[/bold]
    """
    import httpx

    from monitor.demo import Simulator

    sim = Simulator(seed=seed, drift_after_s=drift_after)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    started = last = time.time()
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        while not duration or time.time() - started < duration:
            time.sleep(1.0)
            now = time.time()
            batch = sim.events_between(last, now)
            try:
                resp = client.post("/v1/events", json=batch)
                if resp.status_code != 200:
                    err.print(f"daemon answered {resp.status_code}: {resp.text[:200]}")
                    continue  # keep `last`: the same interval is re-generated next time
            except httpx.HTTPError as exc:
                err.print(f"cannot reach {url}: {exc}")
                continue
            last = now


def register(app: typer.Typer) -> None:
    app.command()(ingest)
    app.command()(tail)
    app.command()(demo)
    app.add_typer(db_app, name="db")
