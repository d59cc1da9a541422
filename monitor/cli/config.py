"""``driftwarden config check``: validate the TOML config file."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from monitor.cli.common import err, out, settings_from
from monitor.settings import ConfigError, load_config

config_app = typer.Typer(help="Validate configuration.", no_args_is_help=True)


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


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
