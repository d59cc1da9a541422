"""The command line as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitor.cli.common import parse_age
from monitor.cli.main import app
from monitor.runtime import access_note, is_loopback
from monitor.settings import Settings
from monitor.store import Store
from monitor.store.migrate import current_revision, head_revision
from tests.support.daemon import free_port

runner = CliRunner()


def flat(text: str) -> str:
    """Output with rich's line wrapping undone."""
    return " ".join(text.split())


def test_version_prints_the_package_version() -> None:
    from monitor import __version__

    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_config_check_lists_every_bad_key_with_its_path(tmp_path: Path) -> None:
    cfg = tmp_path / "dw.toml"
    cfg.write_text(
        "[workflows.invoice-triage]\nmonthly_budget_usd = -1\n"
        "[workflows.BadName]\n"
        '[[policies]]\nname = "p"\nmode = "off"\n'
    )
    result = runner.invoke(app, ["config", "check", str(cfg)])
    assert result.exit_code == 1
    text = flat(result.output)
    assert "workflows.invoice-triage.monthly_budget_usd" in text
    assert "workflows.BadName" in text
    assert "policies.0.mode" in text


def test_config_check_accepts_a_good_file(tmp_path: Path) -> None:
    cfg = tmp_path / "dw.toml"
    cfg.write_text(
        "[workflows.invoice-triage]\nbaseline = { edited = 0.18 }\nmonthly_budget_usd = 500\n"
        '[[policies]]\nname = "edit-drift"\nsignal = "edited"\nmode = "review"\n'
    )
    result = runner.invoke(app, ["config", "check", str(cfg)])
    assert result.exit_code == 0, result.output
    assert "workflows 1, policies 1" in flat(result.output)


def test_ingest_is_idempotent_and_reports_bad_lines_by_number(tmp_path: Path) -> None:
    data = tmp_path / "events.jsonl"
    lines = [json.dumps({"id": f"e{i}", "type": "run", "workflow": "wf"}) for i in range(5)]
    lines.insert(2, json.dumps({"id": "bad", "type": "run", "workflow": "wf", "retries": -2}))
    data.write_text("\n".join(lines) + "\n")
    db = f"sqlite:///{tmp_path / 'dw.db'}"
    first = runner.invoke(app, ["ingest", str(data), "--db", db])
    assert first.exit_code == 1  # some lines were rejected
    assert "line 3: retries" in flat(first.output)
    second = runner.invoke(app, ["ingest", str(data), "--db", db])
    assert Store(db).count_events() == 5
    assert "│        0 │          5 │        1 │" in second.output


def test_db_upgrade_brings_schema_to_head(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'dw.db'}"
    result = runner.invoke(app, ["db", "upgrade", "--db", db])
    assert result.exit_code == 0
    assert current_revision(Store(db)) == head_revision()


def test_serve_refuses_a_public_address_without_tokens(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["serve", "--host", "0.0.0.0", "--db", f"sqlite:///{tmp_path / 'x.db'}"]
    )
    assert result.exit_code == 2
    assert "--insecure" in flat(result.output)


@pytest.mark.parametrize(("text", "seconds"), [("30d", 2_592_000), ("12h", 43_200), ("90m", 5400)])
def test_ages_parse_to_seconds(text: str, seconds: float) -> None:
    assert parse_age(text) == seconds


@pytest.mark.parametrize("how", ["flag", "env"])
def test_serve_refuses_an_empty_host_which_would_listen_everywhere(
    tmp_path: Path, how: str
) -> None:
    env = {**os.environ, "DRIFTWARDEN_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    args = [sys.executable, "-m", "monitor", "serve", "--port", str(free_port())]
    if how == "flag":
        args += ["--host", ""]
    else:
        env["DRIFTWARDEN_HOST"] = ""
    # before the fix the daemon started on 0.0.0.0 and [::]: the timeout ends it
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2, done.stderr
    assert "listen address is empty" in flat(done.stderr)
    assert "every interface" in flat(done.stderr)


def test_the_start_line_says_open_loopback_only_on_loopback() -> None:
    assert not is_loopback("")
    assert access_note(Settings(host="127.0.0.1")) == "open (loopback)"
    assert access_note(Settings(host="::1")) == "open (loopback)"
    assert "insecure" in access_note(Settings(host="0.0.0.0"))
    with_tokens = Settings(host="0.0.0.0", read_tokens=["r"])
    assert access_note(with_tokens) == "tokens"
