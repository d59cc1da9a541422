"""``driftwarden switch ...`` and ``driftwarden audit`` against a running app."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from monitor.cli import switch as cli_switch
from monitor.cli.main import app
from tests.support.daemon import free_port
from tests.support.switches import CONTROL, READ

runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_consoles(monkeypatch: pytest.MonkeyPatch) -> None:
    """The module's consoles were sized at import; CliRunner's pipe would make them 80 wide."""
    for console in (cli_switch.out, cli_switch.err):
        monkeypatch.setattr(console, "width", 200)


def cli(url: str, *args: str, token: str = CONTROL) -> tuple[int, str]:
    result = runner.invoke(
        app, list(args), env={"DRIFTWARDEN_URL": url, "DRIFTWARDEN_TOKEN": token, "COLUMNS": "200"}
    )
    return result.exit_code, result.output


def test_set_disable_enable_show_list_and_audit(daemon: str) -> None:
    url = daemon
    assert cli(url, "switch", "set", "invoices", "--mode", "review", "-r", "edit rate up")[0] == 0
    assert cli(url, "switch", "disable", "invoices", "send_email", "--reason", "bad mails")[0] == 0
    code, out = cli(url, "switch", "show", "invoices", token=READ)
    assert code == 0 and "review" in out and "send_email" in out and "bad mails" in out
    assert cli(url, "switch", "enable", "invoices", "send_email", "-r", "fixed")[0] == 0
    code, out = cli(url, "switch", "list")
    assert code == 0 and "invoices" in out and "send_email" not in out
    code, out = cli(url, "audit", "--workflow", "invoices")
    assert code == 0
    assert out.index("enabled send_email") < out.index("disabled send_email")
    assert "auto -> review" in out and "edit rate up" in out


def test_errors_are_explained(daemon: str) -> None:
    url = daemon
    code, out = cli(url, "switch", "set", "wf", "--mode", "manual", "-r", "x", token=READ)
    assert code == 1 and "control token" in out
    code, out = cli(url, "switch", "set", "wf", "--mode", "manual", "-r", "x", token="nope")
    assert code == 1 and "not allowed" in out
    cli(url, "switch", "set", "wf", "--mode", "manual", "-r", "x")
    code, out = cli(url, "switch", "set", "wf", "--mode", "auto", "-r", "x", "--if-version", "0")
    assert code == 1 and "changed since you read it" in out and "version 1" in out
    code, out = cli(url, "switch", "set", "wf", "--mode", "off", "-r", "x")
    assert code == 2 and "auto, review or manual" in out
    code, out = cli(url, "switch", "disable", "wf", "bad action!", "-r", "x")
    assert code == 1 and "disable" in out


def test_unreachable_daemon_is_a_clear_error() -> None:
    code, out = cli(f"http://127.0.0.1:{free_port()}", "switch", "list")
    assert code == 1 and "cannot reach driftwarden" in out
