"""``driftwarden check``: one detection pass, printed as a table."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from detectors.summary import summarize
from detectors.types import Finding, Status
from monitor.cli.common import settings_from
from monitor.settings import ConfigError
from monitor.store import Store, StoreUnavailable

out = Console()
err = Console(stderr=True)
STYLE = {"ok": "green", "warn": "yellow", "critical": "bold red", "unknown": "dim"}


def check(
    workflow: str | None = typer.Option(None, help="only this workflow"),
    db: str | None = typer.Option(
        None, "--db", help="SQLAlchemy URL [env DRIFTWARDEN_DATABASE_URL]"
    ),
    config: str | None = typer.Option(None, help="TOML config [env DRIFTWARDEN_CONFIG]"),
    show_ok: bool = typer.Option(False, "--all", help="also list ok findings"),
) -> None:
    """Run one detection pass now and print the findings.

    Exit code: 0 no warn or critical, 1 any warn or critical, 2 error. When a daemon is already the
    detection leader for this database, the pass is evaluated without saving, so the
    daemon's state is untouched.
    Example: [bold]driftwarden check --workflow invoice-triage[/bold]
    """
    # imported when the command runs: detection brings numpy and scipy, which the other
    # commands (and `driftwarden --help`) need not load
    from monitor.detection.scheduler import Detection, Leadership

    settings = settings_from(database_url=db, config=config)
    try:
        store = Store.from_settings(settings)
        detection = Detection(store, settings, settings.load_file())
        leader = Leadership(store)
        persist = leader.acquire()
        try:
            result = detection.run_once(persist=persist)
        finally:
            leader.release()
    except (StoreUnavailable, ConfigError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    findings = [f for f in result.findings if workflow is None or f.workflow == workflow]
    _print(findings, show_ok)
    if not persist:
        err.print("[dim]a running daemon leads detection: this pass was not saved[/dim]")
    bad = any(f.status in (Status.WARN, Status.CRITICAL) for f in findings)
    raise typer.Exit(1 if bad else 0)


def _print(findings: list[Finding], show_ok: bool, console: Console | None = None) -> None:
    """Worst first; ok rows only with ``--all``. Unknown rows are listed by default: they
    are not healthy (learning, silent), and their summary says why.

    The summary wraps inside its cell, so the table reads at 80 columns; long names fold
    instead of being cut (rich's default overflow is an ellipsis).
    """
    console = console or out
    table = Table(title="driftwarden findings", show_lines=True)
    # workflow, signal and detector stacked in one narrow column leave the summary about
    # 45 of 80 columns; no min_width anywhere, or rich crops the table instead of wrapping
    table.add_column("workflow / signal", overflow="fold", max_width=24)
    table.add_column("status", no_wrap=True)
    table.add_column("summary", overflow="fold", ratio=1)
    shown = [f for f in findings if show_ok or f.status is not Status.OK]
    for f in sorted(shown, key=lambda f: (-f.status.severity, f.workflow, f.signal, f.detector)):
        table.add_row(
            escape(f"{f.workflow}\n{f.signal}\n{f.detector}"),
            f"[{STYLE[f.status.value]}]{f.status.value}[/]",
            escape(f.summary or summarize(f)),
        )
    console.print(table)
    counts = {s.value: sum(f.status is s for f in findings) for s in Status}
    console.print("  ".join(f"{k}: {v}" for k, v in counts.items()))


def register(app: typer.Typer) -> None:
    app.command()(check)
