"""`driftwarden check`: worst first, a summary column that says why, readable at 80 columns."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from detectors.summary import summarize
from detectors.types import Finding, Status
from monitor.cli.check import _print
from monitor.detection import store as ds
from monitor.detection.scheduler import Detection
from monitor.settings import Settings, load_config
from monitor.store import Store
from monitor.store.migrate import upgrade
from tests.detection.test_scheduler import feed, reviews

NOW = 1_795_428_000.0  # 2026-11-23 10:00 UTC


def rows(table: str) -> list[tuple[str, str, str]]:
    """(first column, status, summary) per table row, wrapped cells joined again."""
    out: list[tuple[str, str, str]] = []
    cells: list[list[str]] = []
    for line in table.splitlines():
        if line.startswith("│"):
            parts = [p.strip() for p in line.strip("│").split("│")]
            if not cells:
                cells = [[] for _ in parts]
            for acc, part in zip(cells, parts, strict=True):
                if part:
                    acc.append(part)
        elif cells:  # a rule between rows (or the bottom): the row is complete
            first, status, summary = (" ".join(c) for c in cells)
            out.append((first, status, summary))
            cells = []
    return out


def render(findings: list[Finding], show_ok: bool = True) -> str:
    console = Console(width=80, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    _print(findings, show_ok, console)
    return console.export_text()


def test_rows_go_worst_first_and_long_summaries_wrap_inside_80_columns() -> None:
    found = [
        Finding("crm", "errors", "burn_rate", Status.OK, value=0.5, threshold=14.4,
                samples=3000, evidence={"slo": 0.99, "burn_rates": {"1h": 0.5}}),
        Finding("support-replies", "groundedness", "cusum", Status.UNKNOWN, samples=120,
                evidence={"reason": "learning baseline", "learned": 120, "needed": 500}),
        Finding("invoice-triage-for-the-finance-department-emea", "edited", "cusum",
                Status.CRITICAL, value=0.31, baseline=0.2, statistic=6.1, threshold=5.4,
                samples=412, since=NOW - 3000, evidence={"baseline_source": "declared"}),
        Finding("crm", "team_runs.ap", "daily_robust_z", Status.WARN, value=12, baseline=340,
                statistic=-8.1, threshold=-3, window="2026-11-22T00:00Z/2026-11-23T00:00Z"),
    ]  # fmt: skip
    for f in found:
        f.summary = summarize(f, NOW)
    table = render(found)
    assert max(len(line) for line in table.splitlines()) <= 80
    got = rows(table)
    assert [status for _, status, _ in got] == ["critical", "warn", "unknown", "ok"]
    by_status = {status: summary for _, status, summary in got}
    for f in found:  # whole, not cut: the wrapped lines join back into the sentence
        assert by_status[f.status.value] == f.summary
    assert got[0][0].replace(" ", "") == "invoice-triage-for-the-finance-department-emeaeditedcusum"
    assert "learning the baseline: 120 of 500 runs" in by_status["unknown"]


def test_ok_rows_need_all_but_unknown_rows_are_always_listed() -> None:
    found = [
        Finding("a", "edited", "cusum", Status.OK, summary="fine"),
        Finding("b", "edited", "cusum", Status.UNKNOWN, summary="edit rate: learning"),
    ]
    assert [s for _, s, _ in rows(render(found, show_ok=False))] == ["unknown"]
    assert [s for _, s, _ in rows(render(found, show_ok=True))] == ["unknown", "ok"]


@pytest.mark.slow
def test_the_check_command_prints_every_summary_within_80_columns(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'dw.db'}"
    config = tmp_path / "dw.toml"
    config.write_text("[workflows.invoices]\nbaseline = { edit_rate = 0.2 }\n")
    store = Store(db)
    upgrade(store)
    detection = Detection(store, Settings(database_url=db), load_config(config))
    # recent data (the command judges at the wall clock): a drift, and a chart learning
    recent = time.time() - 1200
    feed(store, detection, reviews("invoices", [(400, 0.2), (400, 0.5)], seed=1, t0=recent))
    feed(store, detection, reviews("newbie", [(40, 0.2)], seed=2, t0=recent + 900))
    env = {**os.environ, "COLUMNS": "80", "DRIFTWARDEN_LOG_FORMAT": "json"}
    command = ["check", "--all", "--db", db, "--config", str(config)]
    done = subprocess.run(
        [sys.executable, "-m", "monitor", *command],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    lines = done.stdout.splitlines()
    table = lines[next(i for i, line in enumerate(lines) if "driftwarden findings" in line) :]
    assert max(len(line) for line in table) <= 80  # (log lines before it are not ours)
    got = rows("\n".join(table))
    stored = ds.current_findings(store)  # the pass check ran and saved
    assert sorted(s for _, _, s in got) == sorted(r["summary"] for r in stored)
    severity = [Status(s).severity for _, s, _ in got]
    assert severity == sorted(severity, reverse=True)
    assert any("(declared); CUSUM" in s for _, _, s in got)
    assert any(s.startswith("edit rate: learning the baseline: 40 of") for _, _, s in got)
    store.dispose()
