"""The ``driftwarden`` command line (typer + rich)."""

from __future__ import annotations

import os

# Threshold calibration solves many small linear systems; a multi-threaded BLAS spends
# more time waking threads than solving (10x slower on 2 cores). Must precede numpy.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from monitor import __version__
from monitor.settings import ConfigError, Settings, load_config

app = typer.Typer(
    help="driftwarden: monitoring, drift detection and kill switches for AI workflows.\n\n"
    "Start with `driftwarden serve --demo` and open http://127.0.0.1:8000/docs.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
config_app = typer.Typer(help="Validate configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")
err = Console(stderr=True)
out = Console()


def settings_from(**overrides: Any) -> Settings:
    """Settings from the environment with CLI flags (those not None) on top."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except Exception as exc:  # pydantic ValidationError: show it plainly and stop
        err.print(f"[red]invalid settings:[/red] {exc}")
        raise typer.Exit(2) from None


@app.command()
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
    import uvicorn

    from monitor.api.app import create_app
    from monitor.logging import configure
    from monitor.runtime import (
        StartupError,
        access_note,
        check_bind,
        demo_feeder,
        prepare_store,
        thread_hook,
    )
    from monitor.store import Store

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
            from monitor.demo import with_demo_config

            file_config = with_demo_config(file_config)
        store = Store.from_settings(settings)
        prepare_store(store, migrate)
    except (StartupError, ConfigError) as exc:
        err.print(f"[red]cannot start:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    hooks = _hooks(settings, file_config)
    if demo:
        hooks.append(thread_hook("demo", lambda a: demo_feeder(a.state, 0, demo_drift_after)))
    application = create_app(settings, store, hooks=hooks)
    application.state.file_config = file_config  # detection and policies read it at start
    import structlog

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


def _hooks(settings: Settings, file_config: Any) -> list[Any]:
    """Background tasks for serve: WAL checkpoints (SQLite), tailers from config, then
    detection (unless disabled)."""
    from monitor.runtime import thread_hook

    hooks: list[Any] = []
    if settings.is_sqlite:
        from monitor.store.checkpoint import Checkpointer

        hooks.append(thread_hook("wal-checkpoint", lambda a: Checkpointer(a.state.store).run))
    for spec in file_config.tail:
        hooks.append(thread_hook(f"tail:{spec.path}", _tail_task(spec.path)))
    if settings.detection:
        # imported only when used: detection brings numpy and scipy (about 30 MB)
        from monitor.scheduler import detection_hook

        hooks.append(detection_hook(settings))
    return hooks


def _tail_task(path: str) -> Any:
    def make(application: Any) -> Any:
        from collectors.tail import Tailer

        return Tailer(path, application.state.ingest).run

    return make


@app.command()
def version() -> None:
    """Print the version."""
    out.print(f"driftwarden {__version__}")


@config_app.command("check")
def config_check(
    file: Path | None = typer.Argument(None, help="TOML file [default: $DRIFTWARDEN_CONFIG]"),
) -> None:
    """Validate a config file and print every problem with its key path.

    Example: [bold]driftwarden config check driftwarden.toml[/bold]
    """
    path = file or settings_from().config
    if path is None:
        err.print("[red]no config file:[/red] give a path or set DRIFTWARDEN_CONFIG")
        raise typer.Exit(2)
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        err.print(f"[red]{escape(str(exc.path))}: {len(exc.problems)} problem(s)[/red]")
        for key, message in exc.problems:
            err.print(f"  [bold]{escape(key or '(file)')}[/bold]: {escape(message)}")
        raise typer.Exit(1) from None
    out.print(
        f"[green]ok[/green] {escape(str(path))}: workflows {len(cfg.workflows)}, "
        f"policies {len(cfg.policies)}, tailed files {len(cfg.tail)}"
    )


def _register_subcommands() -> None:
    from monitor import cli_data

    cli_data.register(app)
    for module, name in (
        ("monitor.cli_switch", "register"),
        ("monitor.cli_check", "register"),
        ("monitor.cli_backtest", "register"),
    ):
        try:
            mod = __import__(module, fromlist=[name])
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        getattr(mod, name)(app)


_register_subcommands()


def main() -> None:
    app(prog_name="driftwarden")


if __name__ == "__main__":
    main()
