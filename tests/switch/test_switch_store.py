"""SwitchService on the real stores (SQLite file and PostgreSQL): state, CAS, audit."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from monitor.settings import FileConfig, WorkflowConfig
from monitor.store import Store
from monitor.switch.metrics import SwitchMetrics
from monitor.switch.service import SwitchService, VersionConflict, Wanted
from monitor.telemetry.metrics import Metrics


def service(store: Store, **config: object) -> SwitchService:
    return SwitchService(store, FileConfig.model_validate(config))


def test_unknown_workflow_reads_as_configured_default_mode(store: Store) -> None:
    svc = SwitchService(
        store,
        FileConfig(default_mode="review", workflows={"crm": WorkflowConfig(default_mode="manual")}),
    )
    assert svc.get("crm").mode == "manual"
    assert svc.get("other").mode == "review"
    assert svc.get("other").version == 0
    assert [s.workflow for s in svc.all()] == ["crm"]  # configured ones are listed


def test_human_change_is_persisted_versioned_and_audited(store: Store) -> None:
    svc = service(store)
    result = svc.set_by_human("invoices", Wanted(mode="review"), actor="alice", reason="edits up")
    assert result.changed and result.after.version == 1
    again = service(store).get("invoices")  # a new service: read from the database
    assert (again.mode, again.version, again.updated_by, again.reason, again.source) == (
        "review",
        1,
        "alice",
        "edits up",
        "human",
    )
    [entry] = svc.audit("invoices")
    assert entry.before == {"mode": "auto", "disabled_actions": [], "version": 0}
    assert entry.after == {"mode": "review", "disabled_actions": [], "version": 1}
    assert (entry.actor, entry.reason, entry.dry_run) == ("alice", "edits up", False)


def test_automation_cannot_loosen_but_a_human_can_with_a_reason(store: Store) -> None:
    svc = service(store)
    svc.tighten(
        "wf",
        mode="manual",
        disable=frozenset({"send_email"}),
        actor="driftwarden",
        source="policy:p",
        reason="critical",
    )
    weaker = svc.tighten("wf", mode="review", actor="driftwarden", source="policy:q", reason="r")
    assert not weaker.changed
    assert (weaker.after.mode, weaker.after.disabled_actions) == ("manual", ("send_email",))
    with pytest.raises(ValueError, match="reason"):
        svc.set_by_human("wf", Wanted(mode="auto"), actor="bob", reason="  ")
    back = svc.set_by_human(
        "wf",
        Wanted(mode="auto", enable=frozenset({"send_email"})),
        actor="bob",
        reason="fixed the prompt",
    )
    assert (back.after.mode, back.after.disabled_actions, back.after.version) == ("auto", (), 2)
    entries = svc.audit("wf")
    assert [(e.source, e.after["mode"]) for e in entries] == [
        ("human", "auto"),
        ("policy:p", "manual"),
    ]


def test_stale_expected_version_is_a_conflict_and_changes_nothing(store: Store) -> None:
    svc = service(store)
    svc.set_by_human("wf", Wanted(mode="review"), actor="a", reason="r")
    with pytest.raises(VersionConflict) as err:
        svc.set_by_human("wf", Wanted(mode="auto"), actor="b", reason="r", expected_version=0)
    assert err.value.current.version == 1
    assert svc.get("wf").mode == "review"
    assert len(svc.audit("wf")) == 1


def test_writers_racing_on_the_same_version_let_exactly_one_win(store: Store) -> None:
    svc = service(store)
    barrier = threading.Barrier(8)

    def write(i: int) -> bool:
        barrier.wait()
        try:
            svc.set_by_human(
                "wf",
                Wanted(disable=frozenset({f"a{i}"})),
                actor=f"u{i}",
                reason="r",
                expected_version=0,
            )
        except VersionConflict:
            return False
        return True

    with ThreadPoolExecutor(8) as pool:
        wins = list(pool.map(write, range(8)))
    assert wins.count(True) == 1
    state = svc.get("wf")
    assert state.version == 1 and len(state.disabled_actions) == 1
    assert len(svc.audit("wf")) == 1


def test_concurrent_read_modify_write_never_loses_an_update(store: Store) -> None:
    svc = service(store)
    conflicts = []

    def worker(i: int) -> None:
        for k in range(5):
            while True:
                current = svc.get("wf")
                try:
                    svc.set_by_human(
                        "wf",
                        Wanted(
                            disabled_actions=frozenset({*current.disabled_actions, f"a{i}_{k}"})
                        ),
                        actor=f"u{i}",
                        reason="r",
                        expected_version=current.version,
                    )
                    break
                except VersionConflict:
                    conflicts.append(i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    state = svc.get("wf")
    assert set(state.disabled_actions) == {f"a{i}_{k}" for i in range(6) for k in range(5)}
    assert state.version == 30
    assert len(svc.audit("wf", limit=1000)) == 30


def test_automated_changes_racing_without_versions_all_land(store: Store) -> None:
    svc = service(store)
    with ThreadPoolExecutor(6) as pool:
        list(
            pool.map(
                lambda i: svc.tighten(
                    "wf", disable=frozenset({f"x{i}"}), actor="d", source="alert:A", reason="r"
                ),
                range(12),
            )
        )
    assert set(svc.get("wf").disabled_actions) == {f"x{i}" for i in range(12)}
    assert svc.get("wf").version == 12


def test_same_dedup_key_delivered_concurrently_is_applied_once(store: Store) -> None:
    svc = service(store)
    barrier = threading.Barrier(5)

    def deliver(_: int) -> bool:
        barrier.wait()
        return svc.tighten(
            "wf",
            mode="review",
            actor="am",
            source="alert:A",
            reason="firing",
            dedup_key="am:fp:start:firing",
            always_audit=True,
        ).duplicate

    with ThreadPoolExecutor(5) as pool:
        duplicates = list(pool.map(deliver, range(5)))
    assert duplicates.count(False) == 1
    assert len(svc.audit("wf")) == 1
    assert svc.get("wf").version == 1


def test_dry_run_is_audited_but_changes_nothing(store: Store) -> None:
    svc = service(store)
    result = svc.tighten(
        "wf", mode="manual", actor="d", source="policy:p", reason="r", dry_run=True
    )
    assert result.dry_run and result.would_change and not result.changed
    assert svc.get("wf").version == 0 and svc.get("wf").mode == "auto"
    [entry] = svc.audit("wf")
    assert entry.dry_run and entry.after["mode"] == "manual" and entry.before["mode"] == "auto"


def test_audit_filters_by_workflow_and_time(store: Store) -> None:
    now = [1000.0]
    svc = SwitchService(store, clock=lambda: now[0])
    for wf, at in (("a", 1000.0), ("b", 2000.0), ("a", 3000.0)):
        now[0] = at
        svc.tighten(wf, disable=frozenset({f"x{at:.0f}"}), actor="d", source="s", reason="r")
    assert [e.at for e in svc.audit("a")] == [3000.0, 1000.0]
    assert [e.workflow for e in svc.audit(since=1500.0, until=3000.0)] == ["b"]
    assert len(svc.audit(limit=2)) == 2


def test_gauges_are_loaded_from_persisted_state(store: Store) -> None:
    service(store).tighten(
        "wf", mode="review", disable=frozenset({"crm_write"}), actor="d", source="s", reason="r"
    )
    metrics = Metrics()
    fresh = SwitchService(store, metrics=SwitchMetrics(metrics))  # as after a restart
    fresh.load_gauges()
    read = metrics.registry.get_sample_value
    assert read("driftwarden_switch_mode", {"workflow": "wf", "mode": "review"}) == 1
    assert read("driftwarden_switch_mode", {"workflow": "wf", "mode": "auto"}) == 0
    assert read("driftwarden_action_disabled", {"workflow": "wf", "action": "crm_write"}) == 1


def test_a_late_report_of_an_older_commit_does_not_roll_the_cached_state_back(
    store: Store,
) -> None:
    """Racing commits report to the cache in any order (seen: 12 racing writers, the cache
    kept version 11 and a read missed the action disabled by version 12)."""
    svc = service(store)
    older = svc.tighten("wf", disable=frozenset({"a"}), actor="d", source="alert:A", reason="r")
    svc.tighten("wf", disable=frozenset({"b"}), actor="d", source="alert:A", reason="r")
    svc._committed(older)  # the slower thread reports last
    now = svc.get("wf")
    assert now.version == 2
    assert set(now.disabled_actions) == {"a", "b"}
