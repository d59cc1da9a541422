"""``driftwarden backtest``: replay event files offline and print findings and trips."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from monitor.cli.common import parse_age, settings_from
from monitor.settings import ConfigError

out = Console(emoji=False)  # ids and summaries may hold ":x:"-like text
err = Console(stderr=True, emoji=False)
STYLE = {"ok": "green", "warn": "yellow", "critical": "bold red", "unknown": "dim"}
PROGRESS_FROM = 50  # passes: shorter replays finish before a bar is worth drawing

# typer's rich mode keeps a docstring's line breaks: each paragraph is one line here
HELP = "\n\n".join(
    [
        "Replay events through detection and policies with a simulated clock, offline.",
        "Events are sorted by time and fed, as if live, to the same detection and policy "
        "code the daemon runs, one detection pass per --step, into a throw-away SQLite "
        "store in a temporary directory. No live database or switch is opened and no "
        "webhook is called: policies move a simulated switch. Prints a timeline of "
        "finding changes and of the trips policies would have made, then a summary per "
        "signal (criticals, trips, first alarm) and the false-alarm budget in force.",
        "--json keys: findings (every status change: ts, epoch, workflow, signal, "
        "detector, status, previous, summary, since), trips (ts, epoch, workflow, policy, "
        "mode, disabled_actions, dry_run, switch_changed, signals), budget, summary (per "
        "workflow and signal: criticals, warns, trips, first_alarm), replay. ts, since and "
        "first_alarm are RFC 3339 UTC; epoch, since_epoch and first_alarm_epoch are epoch "
        "seconds.",
        "Exit code: 0 replayed; 2 bad input: a file missing or unreadable, an invalid "
        "event (file and line named), a bad config or option.",
        "Example: [bold]driftwarden backtest last-month.jsonl --config driftwarden.toml "
        "--step 15m --json[/bold]",
    ]
)


def backtest(
    files: list[Path] = typer.Argument(..., help="event files (as for `driftwarden ingest`)"),
    config: Path | None = typer.Option(
        None, help="TOML config: baselines, budgets, policies [env DRIFTWARDEN_CONFIG]"
    ),
    step: str = typer.Option("5m", help="simulated time between detection passes: 30s, 5m, 1h, 1d"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON document"),
    format: str = typer.Option(
        "native", "--format", "-f", help="native (JSONL/JSON), openai, anthropic, litellm or csv"
    ),
    option: list[str] = typer.Option(
        [], "--option", "-o", help="format option KEY=VALUE, as for `driftwarden ingest`"
    ),
    show_all: bool = typer.Option(
        False, "--all", help="list every status change, not only those to or from warn/critical"
    ),
) -> None:
    """Replay events offline (help: ``HELP``)."""
    # imported when the command runs: the replay brings numpy and scipy, which the other
    # commands (and `driftwarden --help`) need not load
    from monitor.detection.backtest import BacktestInputError, load_events, pass_times, replay

    try:
        step_s = parse_age(step)
    except typer.BadParameter as exc:
        _fail(f"--step: {exc.message}")
    if step_s <= 0:
        _fail("--step: must be longer than 0s")
    settings = settings_from(config=config)
    try:
        file_config = settings.load_file()
    except ConfigError as exc:
        _fail(str(exc))
    options = dict(o.split("=", 1) for o in option if "=" in o)
    try:
        events = load_events(files, format, options)
    except BacktestInputError as exc:
        _fail(str(exc))
    if not events:
        _fail(f"{', '.join(map(str, files))}: no events")
    expected = len(pass_times(events[0].epoch, events[-1].epoch, step_s))
    with _progress(enabled=expected >= PROGRESS_FROM) as progress:
        task = progress.add_task("replaying", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        with _warnings_only():
            result = replay(
                events,
                settings,
                file_config,
                step_s,
                files=[str(f) for f in files],
                on_pass=advance,
            )
    for note in result.notes:
        err.print(Text(f"note: {note}", style="yellow"))
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2, allow_nan=False) + "\n")
        return
    _print(result.to_dict(), show_all)


@contextmanager
def _warnings_only() -> Iterator[None]:
    """Ingest and detection log at INFO and DEBUG, by default on stdout: keep only
    warnings, on stderr, so the output (and --json) stays clean. The previous structlog
    set-up comes back afterwards (the command can run inside another program or a test).
    """
    saved = structlog.get_config()
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    try:
        yield
    finally:
        structlog.configure(**saved)


def _fail(message: str) -> Any:
    # Text: no markup, no emoji (":x" in ids); soft wrap: a file path is never cut in two
    err.print(Text(message, style="red"), soft_wrap=True)
    raise typer.Exit(2)


class _NoProgress:
    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *_exc: object) -> None:
        return None

    def add_task(self, *_args: Any, **_kwargs: Any) -> int:
        return 0

    def update(self, *_args: Any, **_kwargs: Any) -> None:
        return None


def _progress(enabled: bool) -> Any:
    """A bar on stderr for a terminal (a pipe gets none: it would only add noise)."""
    if not (enabled and err.is_terminal):
        return _NoProgress()
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("passes"),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )


def _when(ts: str | None) -> str:
    """``11-23 09:10`` (UTC): a timeline row must fit 80 columns."""
    if ts is None:
        return ""
    return datetime.fromisoformat(ts).astimezone(UTC).strftime("%m-%d %H:%M")


def _print(doc: dict[str, Any], show_all: bool) -> None:
    replay = doc["replay"]
    out.print(
        f"replayed {replay['events']} events, {replay['start']} .. {replay['end']}, "
        f"{replay['passes']} passes of {replay['step_s']:g} s (times UTC)"
    )
    # a finding's summary is a sentence: it goes under its status line, in the widest
    # column, so a row stays readable at 80 columns
    rows: list[tuple[str, int, str, str, str]] = []
    for c in doc["findings"]:
        loud = {c["status"], c["previous"]} & {"warn", "critical"}
        if not (show_all or loud):
            continue
        status = f"[{STYLE.get(c['status'], '')}]{c['status']}[/]"
        if c["previous"] is not None:
            status = f"{c['previous']} -> {status}"
        head = f"{escape(c['signal'])}/{escape(c['detector'])}  {status}"
        detail = f"\n[dim]{escape(c['summary'])}[/]" if c["summary"] else ""
        rows.append((c["ts"], 0, _when(c["ts"]), c["workflow"], head + detail))
    for t in doc["trips"]:
        asked = " ".join(
            ([t["mode"]] if t["mode"] else []) + [f"-{a}" for a in t["disabled_actions"]]
        )
        label = "[magenta]would trip (dry run)[/]" if t["dry_run"] else "[bold magenta]TRIP[/]"
        note = "" if t["switch_changed"] or t["dry_run"] else " (the switch was there already)"
        head = f"{label} policy {escape(t['policy'])} -> {escape(asked)}{note}"
        detail = f"\n[dim]on {escape(', '.join(t['signals']))}[/]" if t["signals"] else ""
        rows.append((t["ts"], 1, _when(t["ts"]), t["workflow"], head + detail))
    table = Table(title="timeline (UTC)", box=box.SIMPLE_HEAD)
    table.add_column("time", no_wrap=True)
    table.add_column("workflow", overflow="fold")
    table.add_column("change", overflow="fold")
    for _ts, _order, when, workflow, change in sorted(rows, key=lambda r: (r[0], r[1])):
        table.add_row(when, escape(workflow), change)
    if rows:
        out.print(table)
    else:
        out.print("no finding went to warn or critical; no policy fired")
    _print_summary(doc)


def _print_summary(doc: dict[str, Any]) -> None:
    loud = [s for s in doc["summary"] if s["criticals"] or s["trips"] or s["warns"]]
    table = Table(title="summary per signal")
    for col, justify in (
        ("workflow", "left"),
        ("signal", "left"),
        ("criticals", "right"),
        ("warns", "right"),
        ("trips", "right"),
        ("first alarm", "left"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for s in loud:
        table.add_row(
            escape(s["workflow"]),
            escape(s["signal"]),
            str(s["criticals"]),
            str(s["warns"]),
            str(s["trips"]),
            _when(s["first_alarm"]),
        )
    if loud:
        out.print(table)
    quiet = len(doc["summary"]) - len(loud)
    out.print(f"{quiet} other signal(s): never warn or critical")
    b = doc["budget"]
    overrides = ", ".join(f"{wf} {v:g}" for wf, v in b["by_workflow"].items())
    out.print(
        f"false-alarm budget: {b['false_alarms_per_month']:g} critical and "
        f"{b['warn_false_alarms_per_month']:g} warn per workflow-month"
        + (f" (overrides: {escape(overrides)})" if overrides else "")
    )


def register(app: typer.Typer) -> None:
    app.command(help=HELP)(backtest)
