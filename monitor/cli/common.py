"""What every command module shares: the consoles, settings from flags, the --db option."""

from __future__ import annotations

import re
from typing import Any

import typer
from rich.console import Console

from monitor.settings import Settings

err = Console(stderr=True)
out = Console()

DB_OPTION = typer.Option(None, "--db", help="SQLAlchemy URL [env DRIFTWARDEN_DATABASE_URL]")


def settings_from(**overrides: Any) -> Settings:
    """Settings from the environment with CLI flags (those not None) on top."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except Exception as exc:  # pydantic ValidationError: show it plainly and stop
        err.print(f"[red]invalid settings:[/red] {exc}")
        raise typer.Exit(2) from None


def parse_age(text: str) -> float:
    """``30d``, ``12h``, ``90m`` or ``45s`` as seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if not match:
        raise typer.BadParameter(f"{text!r}: use a number and a unit, e.g. 30d, 12h, 90m")
    scale = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}[match.group(2)]
    return float(match.group(1)) * scale
