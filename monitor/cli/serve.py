"""``driftwarden serve``: the daemon (HTTP API, ingest, detection scheduler, kill switches)."""

from __future__ import annotations

from pathlib import Path

import structlog
import typer
from rich.markup import escape

from monitor import __version__
from monitor.cli.common import err, settings_from
from monitor.demo import with_demo_config
from monitor.runtime import StartupError, access_note, check_bind, prepare_store
from monitor.settings import ConfigError
from monitor.store import DriverMissing, Store
from monitor.telemetry.logging import configure


def serve(
    host: str | None = typer.Option(None, help="listen address [env DRIFTWARDEN_HOST]"),
    port: int | None = typer.Option(None, help="listen port [env DRIFTWARDEN_PORT]"),
    db: str | None = typer.Option(
        None, "--db", help="SQLAlchemy URL [env DRIFTWARDEN_DATABASE_URL]"
    ),
    config: Path | None = typer.Option(None, help="TOML config file [env DRIFTWARDEN_CONFIG]"),
    detect_interval: float | None = typer.Option(None, help="seconds between detection passes"),
    insecure: bool = typer.Option(False, help="allow a non-loopback address with no tokens"),
    migrate: bool | None = typer.Option(
        None, "--migrate/--no-migrate", help="run migrations at start (default: SQLite only)"
    ),
    demo: bool = typer.Option(False, help="feed simulated traffic (one workflow drifts)"),
    demo_drift_after: float = typer.Option(600.0, help="seconds before the demo drifts"),
    log_format: str | None = typer.Option(None, help="json or console"),
) -> None:
    """Run the daemon: HTTP API, ingest, detection scheduler, kill switches.

    Example: [bold]driftwarden serve --demo[/bold]  (SQLite at ./driftwarden.db, port 8000)
    """
    # Imported when the daemon starts, not for every command: the HTTP stack and the
    # services take most of a second to import, which `driftwarden --help` need not wait.
    import uvicorn

    from monitor.api.app import create_app
    from monitor.wiring import background_tasks

    settings = settings_from(
        host=host,
        port=port,
        database_url=db,
        config=config,
        detect_interval=detect_interval,
        log_format=log_format,
    )
    configure(settings.log_format, settings.log_level)
    try:
        check_bind(settings, insecure)
        file_config = settings.load_file()
        if demo:  # declared demo baselines, under the user's: see monitor.demo.DECLARED
            file_config = with_demo_config(file_config)
        store = Store.from_settings(settings)
        prepare_store(store, migrate)
    except (StartupError, ConfigError, DriverMissing) as exc:
        err.print(f"[red]cannot start:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    tasks = background_tasks(settings, file_config, demo_drift_after if demo else None)
    application = create_app(settings, store, tasks=tasks, file_config=file_config)
    structlog.get_logger("driftwarden").info(
        "starting",
        version=__version__,
        host=settings.host,
        port=settings.port,
        store=store.dialect,
        auth=access_note(settings),
    )
    uvicorn.run(
        application,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=10,
    )


def register(app: typer.Typer) -> None:
    app.command()(serve)
