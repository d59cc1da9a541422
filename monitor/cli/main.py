"""The ``driftwarden`` command line (typer + rich): every command group mounted on one app."""

from __future__ import annotations

import os

# Threshold calibration solves many small linear systems; a multi-threaded BLAS spends
# more time waking threads than solving (10x slower on 2 cores). Must precede numpy.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import typer

from monitor import __version__
from monitor.cli import backtest, check, config, data, db, serve, switch
from monitor.cli.common import out

app = typer.Typer(
    help="driftwarden: monitoring, drift detection and kill switches for AI workflows.\n\n"
    "Start with `driftwarden serve --demo` and open http://127.0.0.1:8000/docs.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


def version() -> None:
    """Print the version."""
    out.print(f"driftwarden {__version__}")


# in the order `driftwarden --help` lists them
serve.register(app)
app.command()(version)
for group in (config, data, db, switch, check, backtest):
    group.register(app)


def main() -> None:
    app(prog_name="driftwarden")


if __name__ == "__main__":
    main()
