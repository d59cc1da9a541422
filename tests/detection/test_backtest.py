"""``driftwarden backtest``: the replay decides what the live scheduler decides, offline.

Finding counts are never pinned here (the charts are being recalibrated): the replay is
compared with a live run on the same events, and the drifting case asserts that a critical
and a trip exist, after the drift and only on the drifting workflow.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from collectors.events import Event
from monitor.cli.main import app
from monitor.detection.backtest import (
    BacktestInputError,
    BacktestResult,
    load_events,
    pass_times,
    replay,
)
from monitor.detection.scheduler import Detection
from monitor.ingest.service import IngestService
from monitor.settings import FileConfig, Settings, load_config
from monitor.store import Store
from monitor.store import schema as t
from monitor.store.migrate import upgrade
from monitor.switch.policies import run_policies
from monitor.switch.service import SwitchService, Wanted
from monitor.telemetry.metrics import Metrics

T0 = 1_790_000_000.0
DAY = 86_400.0
STEP = 3600.0  # one detection pass per simulated hour: 49 passes for 2 days
CONFIG = """
[workflows.drifting]
baseline = { edit_rate = 0.2 }

[workflows.calm]
baseline = { edit_rate = 0.2 }

[[policies]]
name = "edits"
signal = "edited"
mode = "review"

[[policies]]
name = "edits-shadow"
signal = "edited"
mode = "manual"
dry_run = true

[[policies]]
name = "edits-twice"
workflow = "drift*"
signal = "edited"
consecutive = 2
disable = ["crm_write"]
"""


def reviews(
    workflow: str, days: float, per_day: int, rates: tuple[float, float], seed: int
) -> list[dict[str, Any]]:
    """Review events at ``per_day`` a day (jittered); the edit probability is
    ``rates[0]`` for the first day and ``rates[1]`` after it."""
    rng = random.Random(seed)
    gap = DAY / per_day
    out = []
    for i in range(int(days * per_day)):
        ts = T0 + i * gap + rng.random() * gap / 2
        p = rates[0] if ts - T0 < DAY else rates[1]
        decision = "edited" if rng.random() < p else "approved"
        out.append(
            {
                "id": f"{workflow}-{i}",
                "type": "review",
                "workflow": workflow,
                "ts": ts,
                "decision": decision,
            }
        )
    return out


def write_events(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two days: "drifting" goes from an edit rate of 0.20 to 0.45 after a day,
    "calm" stays at 0.20; ~1,000 reviews a day each, in two files (the replay merges)."""
    d = tmp_path_factory.mktemp("backtest")
    drifting = write_events(d / "drifting.jsonl", reviews("drifting", 2, 1000, (0.2, 0.45), 1))
    write_events(d / "calm.jsonl", reviews("calm", 2, 1000, (0.2, 0.2), 2))
    (d / "driftwarden.toml").write_text(CONFIG)
    return drifting, d / "calm.jsonl"


@pytest.fixture(scope="module")
def result(files: tuple[Path, Path]) -> BacktestResult:
    config = load_config(files[0].parent / "driftwarden.toml")
    return replay(load_events(list(files)), Settings(), config, STEP, files=list(map(str, files)))


def live_run(store: Store, events: list[Event], config: FileConfig) -> tuple[list[Any], list[Any]]:
    """The daemon's loop, in-process on a real store: at each pass time the events that
    have happened are ingested (received then), then a pass, its policies, compaction."""
    settings = Settings(database_url=store.url, detect_interval=STEP)
    now = [0.0]
    switches = SwitchService(store, config, clock=lambda: now[0])
    detection = Detection(store, settings, config)
    ingest = IngestService(store, Metrics())
    trips = []
    fed = 0
    for at in pass_times(events[0].epoch, events[-1].epoch, STEP):
        now[0] = at
        batch = [e for e in events[fed:] if e.epoch <= at]
        fed += len(batch)
        if batch:
            ingest.ingest(batch, received_at=at)
        found = detection.run_once(now=at).findings
        for change in run_policies(switches, found, config.policies, at):
            proposed = change.proposed
            trips.append(
                (
                    at,
                    proposed.workflow,
                    change.source.removeprefix("policy:"),
                    change.dry_run,
                    change.changed,
                    proposed.mode,
                    proposed.disabled_actions,
                )
            )
        detection.compact_if_due()
    # every status change is a findings row of its own (history kept, created at the pass)
    with store.read() as conn:
        rows = conn.execute(
            t.findings.select().order_by(t.findings.c.created_at, t.findings.c.id)
        ).mappings()
        changes = [
            (r["created_at"], r["workflow"], r["signal"], r["detector"], r["status"]) for r in rows
        ]
    return sorted(changes), trips


def test_the_replay_decides_what_the_live_scheduler_decides(
    store: Store, files: tuple[Path, Path], result: BacktestResult
) -> None:
    config = load_config(files[0].parent / "driftwarden.toml")
    live_changes, live_trips = live_run(store, load_events(list(files)), config)

    ours = sorted((c.at, c.workflow, c.signal, c.detector, c.status) for c in result.findings)
    assert ours == live_changes
    assert [
        (tr.at, tr.workflow, tr.policy, tr.dry_run, tr.switch_changed) for tr in result.trips
    ] == [trip[:5] for trip in live_trips]
    for tr, (*_, mode, disabled) in zip(result.trips, live_trips, strict=True):
        # what the live switch became (or, dry run, would have become) is what was asked
        assert tr.mode in (None, mode) and set(tr.disabled_actions) <= set(disabled)
    # the comparison has something to compare: a trip, criticals and a return to ok
    assert any(tr.switch_changed for tr in result.trips)
    assert {c.status for c in result.findings} >= {"critical", "ok"}


def test_a_drift_shows_its_critical_and_the_trips_and_a_calm_workflow_shows_none(
    result: BacktestResult,
) -> None:
    drift_at = T0 + DAY
    crit = [c for c in result.findings if c.status == "critical"]
    assert any((c.workflow, c.signal) == ("drifting", "edited") for c in crit)
    assert all(c.workflow == "drifting" and c.at >= drift_at for c in crit)
    row = next(s for s in result.summary if (s.workflow, s.signal) == ("drifting", "edited"))
    assert row.criticals >= 1 and row.trips >= 1
    assert row.first_alarm == min(c.at for c in crit if c.signal == "edited")
    assert row.first_alarm is not None and row.first_alarm - drift_at <= DAY / 2

    by_policy = {tr.policy: tr for tr in result.trips if tr.workflow == "drifting"}
    real, shadow = by_policy["edits"], by_policy["edits-shadow"]
    assert (real.mode, real.dry_run, real.switch_changed) == ("review", False, True)
    assert real.signals == ("edited",) and real.at >= row.first_alarm
    assert (shadow.mode, shadow.dry_run, shadow.switch_changed) == ("manual", True, False)
    # consecutive = 2: one pass after the first match
    assert by_policy["edits-twice"].at == by_policy["edits"].at + STEP
    assert by_policy["edits-twice"].disabled_actions == ("crm_write",)

    assert not [tr for tr in result.trips if tr.workflow == "calm"]
    calm = [s for s in result.summary if s.workflow == "calm"]
    assert calm and all(s.criticals == 0 and s.trips == 0 for s in calm)
    # the budget in force is reported as configured
    assert result.budget.false_alarms_per_month == Settings().false_alarms_per_workflow_month


def test_events_are_fed_at_the_first_pass_at_or_after_their_time() -> None:
    from collectors.events import convert_event

    grid = (T0 // STEP + 1) * STEP  # passes fall on whole hours
    offsets = (-100, 0, 1, STEP, STEP + 1)  # passes at grid, grid + 1 h, grid + 2 h
    events = [
        convert_event({"id": str(i), "type": "run", "workflow": "wf", "ts": grid + s}, T0 + 1e5)
        for i, s in enumerate(offsets)
    ]
    fed: list[tuple[float, int]] = []
    original = IngestService.ingest

    def spy(self: IngestService, batch: Any, received_at: float | None = None) -> Any:
        assert received_at is not None
        assert all(received_at - STEP < e.epoch <= received_at for e in batch)
        fed.append((received_at - grid, len(batch)))
        return original(self, batch, received_at=received_at)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(IngestService, "ingest", spy)
        out = replay(events, Settings(), FileConfig(), STEP)
    assert fed == [(0, 2), (STEP, 2), (2 * STEP, 1)]
    assert (out.start, out.end, out.passes, out.events) == (grid, grid + 2 * STEP, 3, 5)


def test_bad_input_names_the_file_and_the_line(tmp_path: Path) -> None:
    good = {"id": "a", "type": "review", "workflow": "wf", "ts": T0, "decision": "edited"}
    lines = [
        json.dumps(good),
        json.dumps({**good, "id": "b", "decision": "maybe"}),
        json.dumps({k: v for k, v in {**good, "id": "c"}.items() if k != "ts"}),
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(BacktestInputError) as caught:
        load_events([path])
    where = [(p[0], p[1]) for p in caught.value.problems]
    assert where == [(str(path), "line 2"), (str(path), "line 3")]
    assert "decision" in caught.value.problems[0][2] and "ts" in caught.value.problems[1][2]


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", "backtest", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "80", **env},
        timeout=120,
        check=False,
    )


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_cli_prints_json_and_leaves_the_live_database_alone(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    live = tmp_path / "live.db"
    live_store = Store(f"sqlite:///{live}")
    upgrade(live_store)
    SwitchService(live_store).set_by_human(
        "drifting", Wanted(mode="review"), actor="alice", reason="a state to keep"
    )
    live_store.dispose()
    before = (_digest(live), sorted(p.name for p in tmp_path.iterdir()))
    env = {"DRIFTWARDEN_DATABASE_URL": f"sqlite:///{live}"}
    config = str(files[0].parent / "driftwarden.toml")
    done = _cli([*map(str, files), "--config", config, "--step", "1h", "--json"], env)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert set(doc) >= {"findings", "trips", "budget", "summary"}
    assert {"ts", "workflow", "signal", "detector", "status", "summary", "since"} <= set(
        doc["findings"][0]
    )
    trip = next(tr for tr in doc["trips"] if tr["policy"] == "edits")
    assert trip["ts"].endswith("Z") and trip["mode"] == "review" and trip["dry_run"] is False
    assert {"false_alarms_per_month", "by_workflow"} <= set(doc["budget"])
    assert {"workflow", "signal", "criticals", "trips", "first_alarm"} <= set(doc["summary"][0])
    assert (_digest(live), sorted(p.name for p in tmp_path.iterdir())) == before

    # the table, in-process (faster): the command restores the logging set-up it changes
    table = CliRunner().invoke(
        app,
        ["backtest", *map(str, files), "--config", config, "--step", "1h"],
        env={**env, "COLUMNS": "80"},
    )
    assert table.exit_code == 0, table.output
    assert "TRIP" in table.stdout and "critical" in table.stdout
    assert max(len(line) for line in table.stdout.splitlines()) <= 80
    assert (_digest(live), sorted(p.name for p in tmp_path.iterdir())) == before


def test_the_cli_exits_2_naming_the_bad_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    good = {"id": "a", "type": "run", "workflow": "wf", "ts": T0}
    bad.write_text(json.dumps(good) + "\n\n" + '{"id": "b", "type": "run"\n')
    done = _cli([str(bad)], {})
    assert done.returncode == 2
    text = " ".join(done.stderr.split())
    assert f"{bad}: line 3" in text and done.stdout == ""

    missing = CliRunner().invoke(app, ["backtest", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 2 and "nope.jsonl" in " ".join(missing.output.split())


def test_a_baseline_window_inside_the_replay_is_pointed_out() -> None:
    from monitor.detection.backtest import window_notes

    config = FileConfig.model_validate(
        {
            "workflows": {
                "early": {"baseline_window": "2026-09-01/2026-09-10"},
                "late": {"baseline_window": "2026-09-01/2026-10-10"},
                "declared": {"baseline": {"edited": 0.2}},
            }
        }
    )
    first_pass = 1_789_000_000.0  # 2026-09-10T00:26:40Z
    (note,) = window_notes(config, first_pass)
    assert note.startswith("late: baseline_window 2026-09-01/2026-10-10")
