"""CLI commands that move data in: ingest (import files), tail (follow a file), demo."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from monitor.cli.common import DB_OPTION, err, out, settings_from
from monitor.demo import Simulator
from monitor.ingest.files import Summary, ingest_file
from monitor.ingest.service import IngestService
from monitor.ingest.tail import Tailer
from monitor.runtime import StartupError, prepare_store
from monitor.store import Store, StoreUnavailable
from monitor.telemetry.metrics import Metrics


def _service(db: str | None) -> IngestService:
    """An ingest service on the store ``--db`` names (migrated first on SQLite)."""
    settings = settings_from(database_url=db)
    store = Store.from_settings(settings)
    try:
        prepare_store(store, True if store.dialect == "sqlite" else None)
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


def _print_summary(total: Summary) -> None:
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
    """Follow a growing JSONL file; survives rotation and restarts (position kept in the store).

    Example: [bold]driftwarden tail /var/log/invoice-triage/events.jsonl[/bold]
    """
    tailer = Tailer(path, _service(db), poll_s=poll)
    stop = threading.Event()
    err.print(f"following {tailer.key} (Ctrl-C to stop)")
    try:
        tailer.run(stop)
    except KeyboardInterrupt:
        stop.set()
    err.print(f"stopped: {tailer.stats}")


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
