"""``driftwarden check``: one detection pass, printed as a table."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from detectors.types import Finding, Status

out = Console()
err = Console(stderr=True)
STYLE = {"ok": "green", "warn": "yellow", "critical": "bold red", "unknown": "dim"}


def check(
    workflow: str | None = typer.Option(None, help="only this workflow"),
    db: str | None = typer.Option(
        None, "--db", help="SQLAlchemy URL [env DRIFTWARDEN_DATABASE_URL]"
    ),
    config: str | None = typer.Option(None, help="TOML config [env DRIFTWARDEN_CONFIG]"),
    show_ok: bool = typer.Option(False, "--all", help="also list ok and unknown findings"),
) -> None:
    """Run one detection pass now and print the findings.

    Exit code: 0 all ok, 1 any warn or critical, 2 error. When a daemon is already the
    detection leader for this database, the pass is evaluated without saving, so the
    daemon's state is untouched.
    Example: [bold]driftwarden check --workflow invoice-triage[/bold]
    """
    from monitor.cli import settings_from
    from monitor.scheduler import Detection, Leadership
    from monitor.settings import ConfigError
    from monitor.store import Store, StoreUnavailable

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


def _print(findings: list[Finding], show_ok: bool) -> None:
    table = Table(title="driftwarden findings")
    for col in (
        "workflow",
        "signal",
        "detector",
        "status",
        "value",
        "baseline",
        "statistic",
        "threshold",
        "samples",
    ):
        table.add_column(col)
    shown = [f for f in findings if show_ok or f.status in (Status.WARN, Status.CRITICAL)]
    for f in sorted(shown, key=lambda f: (-f.status.severity, f.workflow, f.signal)):
        table.add_row(
            f.workflow,
            f.signal,
            f.detector,
            f"[{STYLE[f.status.value]}]{f.status.value}[/]",
            _num(f.value),
            _num(f.baseline),
            _num(f.statistic),
            _num(f.threshold),
            str(f.samples),
        )
    out.print(table)
    counts = {s.value: sum(f.status is s for f in findings) for s in Status}
    out.print("  ".join(f"{k}: {v}" for k, v in counts.items()))


def _num(x: float | None) -> str:
    return "" if x is None else f"{x:.4g}"


def register(app: typer.Typer) -> None:
    app.command()(check)
