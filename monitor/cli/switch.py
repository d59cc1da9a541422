"""``driftwarden switch list|show|set|disable|enable`` and ``driftwarden audit``: talk to a
running daemon over HTTP (``--url``/``--token`` or DRIFTWARDEN_URL/DRIFTWARDEN_TOKEN)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

switch_app = typer.Typer(
    help="Read and set kill switches (mode auto|review|manual, disabled actions).",
    no_args_is_help=True,
)
out = Console()
err = Console(stderr=True)

URL = typer.Option(
    "http://127.0.0.1:8000", "--url", envvar="DRIFTWARDEN_URL", help="daemon address"
)
TOKEN = typer.Option(
    None, "--token", envvar="DRIFTWARDEN_TOKEN", help="bearer token (control for changes)"
)
REASON = typer.Option(..., "--reason", "-r", help="why (kept in the audit log)")


def _fail(message: str) -> NoReturn:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(1)


def _explain(response: httpx.Response, workflow: str | None) -> NoReturn:
    try:
        body = response.json()
    except ValueError:
        body = {"detail": response.text[:300]}
    detail = body.get("detail") if isinstance(body, dict) else body
    status = response.status_code
    if status == 401:
        _fail("the daemon needs a token: pass --token or set DRIFTWARDEN_TOKEN")
    if status == 403:
        _fail(
            "this token is not allowed to do that: changing a switch needs a control token "
            "(one of the daemon's DRIFTWARDEN_CONTROL_TOKENS)"
        )
    if status == 412:
        current = detail.get("current", {}) if isinstance(detail, dict) else {}
        _fail(
            f"the switch changed since you read it: it is now version {current.get('version')} "
            f"(mode {current.get('mode')}). Check `driftwarden switch show {workflow}` and retry."
        )
    if status == 503:
        _fail("the daemon cannot reach its database; retry in a few seconds")
    if status == 400 and isinstance(detail, list):
        _fail(
            "; ".join(f"{d.get('field')}: {d.get('error')}" for d in detail if isinstance(d, dict))
        )
    _fail(f"HTTP {status}: {escape(str(detail))}")


def _call(
    method: str, url: str, path: str, token: str | None, workflow: str | None = None, **kw: Any
) -> Any:
    headers = dict(kw.pop("headers", {}))
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        response = httpx.request(
            method, url.rstrip("/") + path, headers=headers, timeout=10.0, **kw
        )
    except httpx.HTTPError as exc:
        _fail(
            f"cannot reach driftwarden at {url} ({type(exc).__name__}); is `driftwarden serve` "
            "running? Set --url or DRIFTWARDEN_URL."
        )
    if response.status_code >= 400:
        _explain(response, workflow)
    return response.json()


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _mode(mode: str) -> str:
    colour = {"auto": "green", "review": "yellow", "manual": "red"}.get(mode, "white")
    return f"[{colour}]{mode}[/{colour}]"


def _table(states: list[dict[str, Any]]) -> Table:
    table = Table("workflow", "mode", "disabled actions", "version", "source", "updated", "reason")
    for s in states:
        table.add_row(
            escape(s["workflow"]),
            _mode(s["mode"]),
            escape(", ".join(s["disabled_actions"]) or "-"),
            str(s["version"]),
            escape(s["source"]),
            _when(s["updated_at"]),
            escape(s["reason"] or "-"),
        )
    return table


@switch_app.command("list")
def list_switches(url: str = URL, token: str | None = TOKEN) -> None:
    """All switches. Example: [bold]driftwarden switch list[/bold]"""
    states = _call("GET", url, "/v1/switches", token)["switches"]
    if not states:
        out.print("no switches yet: every workflow is at its default mode")
        return
    out.print(_table(states))


@switch_app.command("show")
def show(workflow: str, url: str = URL, token: str | None = TOKEN) -> None:
    """One switch. Example: [bold]driftwarden switch show invoices[/bold]"""
    out.print(_table([_call("GET", url, f"/v1/switches/{workflow}", token, workflow)]))


def _put(
    url: str, token: str | None, workflow: str, body: dict[str, Any], if_version: int | None = None
) -> None:
    headers = {} if if_version is None else {"If-Match": f'"{if_version}"'}
    state = _call(
        "PUT", url, f"/v1/switches/{workflow}", token, workflow, json=body, headers=headers
    )
    verb = "changed" if state.pop("changed", True) else "unchanged (already so)"
    out.print(f"[bold]{escape(workflow)}[/bold] {verb}:")
    out.print(_table([state]))


@switch_app.command("set")
def set_mode(
    workflow: str,
    mode: str = typer.Option(..., "--mode", "-m", help="auto, review or manual"),
    reason: str = REASON,
    if_version: int | None = typer.Option(
        None, "--if-version", help="only if the switch is still at this version (412 otherwise)"
    ),
    url: str = URL,
    token: str | None = TOKEN,
) -> None:
    """Set the mode.

    Example: [bold]driftwarden switch set invoices --mode review -r "edit rate up"[/bold]
    """
    if mode not in ("auto", "review", "manual"):
        err.print(f"[red]error:[/red] --mode {escape(mode)!r}: use auto, review or manual")
        raise typer.Exit(2)
    _put(url, token, workflow, {"mode": mode, "reason": reason}, if_version)


@switch_app.command("disable")
def disable(
    workflow: str, action: str, reason: str = REASON, url: str = URL, token: str | None = TOKEN
) -> None:
    """Disable one action.

    Example: [bold]driftwarden switch disable invoices send_email -r "bad emails"[/bold]
    """
    _put(url, token, workflow, {"disable": [action], "reason": reason})


@switch_app.command("enable")
def enable(
    workflow: str, action: str, reason: str = REASON, url: str = URL, token: str | None = TOKEN
) -> None:
    """Enable one action again.

    Example: [bold]driftwarden switch enable invoices send_email -r "fixed"[/bold]
    """
    _put(url, token, workflow, {"enable": [action], "reason": reason})


def audit(
    workflow: str | None = typer.Option(None, "--workflow", "-w", help="only this workflow"),
    since: str | None = typer.Option(None, help="RFC 3339 or epoch seconds"),
    limit: int = typer.Option(50, min=1, max=1000),
    url: str = URL,
    token: str | None = TOKEN,
) -> None:
    """Switch history, newest first. Example: [bold]driftwarden audit -w invoices[/bold]"""
    params: dict[str, Any] = {"limit": limit}
    if workflow:
        params["workflow"] = workflow
    if since:
        params["since"] = since
    entries = _call("GET", url, "/v1/audit", token, params=params)["audit"]
    table = Table("time", "workflow", "change", "by", "source", "reason")
    for e in entries:
        b, a = e["before"], e["after"]
        change = f"{b['mode']} -> {a['mode']}" if b["mode"] != a["mode"] else a["mode"]
        off = sorted(set(a["disabled_actions"]) - set(b["disabled_actions"]))
        on = sorted(set(b["disabled_actions"]) - set(a["disabled_actions"]))
        change += "".join([f"; disabled {x}" for x in off] + [f"; enabled {x}" for x in on])
        if e["dry_run"]:
            change = f"[dim](dry run)[/dim] {change}"
        table.add_row(
            _when(e["at"]),
            escape(e["workflow"]),
            change,
            escape(e["actor"]),
            escape(e["source"]),
            escape(e["reason"]),
        )
    out.print(table if entries else "no audit entries")


def register(app: typer.Typer) -> None:
    """Mount on the main CLI (monitor/cli/main.py calls this)."""
    app.add_typer(switch_app, name="switch")
    app.command("audit")(audit)
