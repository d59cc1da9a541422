"""The log lines an operator reads at 3 a.m.: a finding going critical, a switch change,
and one line per pass counted by status."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from structlog.testing import capture_logs

from detectors.types import Status
from monitor.detection.pass_logs import critical_log_listener, status_counts
from monitor.detection.scheduler import Detection, DetectionLoop, Leadership
from monitor.settings import FileConfig
from monitor.store import Store
from monitor.switch.service import SwitchService, Wanted
from tests.detection.test_scheduler import feed, reviews, settings

KEY = ("wf", "edited", "cusum")


def _critical_lines(logs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [e for e in logs if e["event"] == "finding critical"]


def test_one_line_per_change_to_critical_with_its_summary_even_across_a_restart(
    store: Store,
) -> None:
    events = reviews("wf", [(3000, 0.20), (3000, 0.45)], seed=7)
    detection = Detection(store, settings(store), FileConfig())
    detection.listeners.append(critical_log_listener(store))
    statuses: list[tuple[float, str, str]] = []

    def remember(result, now: float) -> None:  # type: ignore[no-untyped-def]
        for f in result.findings:
            if (f.workflow, f.signal, f.detector) == KEY:
                statuses.append((now, f.status.value, f.summary))

    half = 4500  # well after the drift started: the restart falls inside the episode
    with capture_logs() as logs:
        feed(store, detection, events[:half], remember)
        # a new process: nothing in memory, the chart is still critical
        restarted = Detection(Store(store.url), settings(store), FileConfig())
        restarted.listeners.append(critical_log_listener(restarted.store))
        feed(restarted.store, restarted, events[half:], remember)
    ours = [e for e in _critical_lines(logs) if (e["workflow"], e["signal"], e["detector"]) == KEY]
    # the passes where the status became critical, from the findings themselves
    became = [
        (now, summary)
        for i, (now, status, summary) in enumerate(statuses)
        if status == "critical" and (i == 0 or statuses[i - 1][1] != "critical")
    ]
    assert became, "the drift never went critical: nothing to log"
    assert [e["summary"] for e in ours] == [summary for _, summary in became]
    assert all(e["log_level"] == "info" and e["since"] for e in ours)
    assert statuses[half // 100][1] == "critical"  # the first pass after the restart


def test_the_pass_line_counts_findings_by_status(store: Store) -> None:
    events = reviews("wf", [(600, 0.2)], seed=1) + reviews("calm", [(50, 0.2)], seed=2)
    store.insert_events(events, events[-1].epoch)
    loop = DetectionLoop(Detection(store, settings(store), FileConfig()), Leadership(store))
    with capture_logs() as logs:
        result = loop.tick()
    loop.leadership.release()
    assert result is not None
    (line,) = [e for e in logs if e["event"] == "detection pass"]
    counted = Counter(f.status.value for f in result.findings)
    assert {s.value: line[s.value] for s in Status} == {s.value: counted[s.value] for s in Status}
    assert "findings" not in line and sum(counted.values()) == len(result.findings) > 0


def test_status_counts_names_every_status() -> None:
    assert set(status_counts([])) == {s.value for s in Status}


def test_a_switch_change_logs_from_and_to_with_who_and_why(sqlite_store: Store) -> None:
    svc = SwitchService(sqlite_store)
    with capture_logs() as logs:
        svc.tighten(
            "wf", mode="review", actor="driftwarden", source="policy:edits", reason="edit rate"
        )
        svc.tighten("wf", mode="review", actor="driftwarden", source="policy:edits", reason="x")
        svc.tighten(
            "wf",
            mode="manual",
            disable=frozenset({"crm_write"}),
            actor="driftwarden",
            source="policy:shadow",
            reason="shadow",
            dry_run=True,
        )
        svc.set_by_human("wf", Wanted(mode="auto"), actor="alice", reason="false alarm")
    lines = [e for e in logs if e["event"].startswith("switch")]
    assert [(e["event"], e["mode"], e["actor"], e["source"], e["reason"]) for e in lines] == [
        ("switch changed", "auto -> review", "driftwarden", "policy:edits", "edit rate"),
        ("switch dry run: would change", "review -> manual", "driftwarden", "policy:shadow",
         "shadow"),
        ("switch changed", "review -> auto", "alice", "human", "false alarm"),
    ]  # fmt: skip
    assert lines[1]["disabled_actions"] == ["crm_write"] and lines[1]["disabled_before"] == []
    assert all(e["log_level"] == "info" and e["workflow"] == "wf" for e in lines)
