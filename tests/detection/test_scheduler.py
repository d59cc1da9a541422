"""Detection passes over the real store: restarts, policies tripping switches, leadership."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from structlog.testing import capture_logs

from collectors.events import Event, convert_event
from monitor.demo import Simulator
from monitor.detection.scheduler import Detection, Leadership, PassResult
from monitor.settings import FileConfig, PolicyConfig, Settings, WorkflowConfig
from monitor.store import Store
from monitor.store import schema as t
from monitor.store.migrate import upgrade
from monitor.switch.policies import run_policies
from monitor.switch.service import SwitchService
from tests.store.test_store import rollup_rows, rollup_totals, top_seq
from tests.support.daemon import Daemon

T0 = 1_790_000_000.0
PER_PASS = 100  # events between two passes: the "detection interval" in events
# The chart tests below send a review a second (60 a minute) with a pass every 5 simulated
# minutes, as a daemon with ``detect_interval = 300`` would see a busy workflow. The edit
# rate is declared (a learned baseline is conservative for its first days: see
# test_detectors_engine), and the drifts are 0.20 -> 0.45.
EVERY_5_MIN = 300
DECLARED = WorkflowConfig(baseline={"edited": 0.20})


def reviews(
    workflow: str, rates: list[tuple[int, float]], seed: int, t0: float = T0
) -> list[Event]:
    """Review events, one per second; ``rates`` = [(count, edit probability), ...]."""
    rng = random.Random(seed)
    out: list[Event] = []
    i = 0
    for count, p in rates:
        for _ in range(count):
            decision = "edited" if rng.random() < p else "approved"
            out.append(
                convert_event(
                    {
                        "id": f"{workflow}-{i}",
                        "type": "review",
                        "workflow": workflow,
                        "ts": t0 + i,
                        "decision": decision,
                    },
                    t0 + 10**6,
                )
            )
            i += 1
    return out


def feed(
    store: Store,
    detection: Detection,
    events: list[Event],
    after_pass: Callable[[PassResult, float], None] | None = None,
    per_pass: int = PER_PASS,
) -> list[float]:
    """Insert in chunks of ``per_pass`` and run a pass after each; returns pass times."""
    times = []
    for start in range(0, len(events), per_pass):
        chunk = events[start : start + per_pass]
        store.insert_events(chunk, chunk[-1].epoch)
        now = chunk[-1].epoch + 1
        result = detection.run_once(now=now)
        times.append(now)
        if after_pass is not None:
            after_pass(result, now)
    return times


def settings(store: Store, arl0: float = 10_000.0) -> Settings:
    return Settings(database_url=store.url, arl0=arl0)


def status_of(detection_result: PassResult, workflow: str, signal: str = "edited") -> str:
    for f in detection_result.findings:
        if (f.workflow, f.signal, f.detector) == (workflow, signal, "cusum"):
            return str(f.status.value)
    return "absent"


def test_a_restart_mid_stream_neither_repeats_an_alarm_nor_loses_state(
    store: Store, tmp_path: Path
) -> None:
    events = reviews("wf", [(3600, 0.20), (3600, 0.45)], seed=7)
    cfg = FileConfig(workflows={"wf": DECLARED})
    # restart between two passes (a pass is the unit of work), 20 minutes into the drift:
    # the first daemon has already raised the alarm, the second must carry the episode on
    half = 16 * EVERY_5_MIN
    first = Detection(store, settings(store), cfg)
    before: list[str] = []
    feed(
        store,
        first,
        events[:half],
        lambda result, now: before.append(status_of(result, "wf")),
        per_pass=EVERY_5_MIN,
    )
    assert before[:12].count("critical") == 0 and before[-1] == "critical"
    restarted_store = Store(store.url)  # a new process: nothing in memory survives
    second = Detection(restarted_store, settings(store), cfg)
    after: list[str] = []
    feed(
        restarted_store,
        second,
        events[half:],
        lambda result, now: after.append(status_of(result, "wf")),
        per_pass=EVERY_5_MIN,
    )
    assert set(after) == {"critical"}  # the episode goes on across the restart
    final = second.run_once(now=events[-1].epoch + 2)
    assert status_of(final, "wf") == "critical"

    # the same stream without a restart must reach the same statistic
    reference_store, ref = reference_detection(tmp_path, cfg)
    feed(reference_store, ref, events, per_pass=EVERY_5_MIN)
    ref_final = ref.run_once(now=events[-1].epoch + 2)
    ours = {(f.signal, f.detector): (f.status, f.statistic, f.since) for f in final.findings}
    theirs = {(f.signal, f.detector): (f.status, f.statistic, f.since) for f in ref_final.findings}
    assert ours == theirs
    # exactly one transition to critical was recorded for the chart
    with store.read() as conn:
        criticals = conn.execute(
            select(func.count())
            .select_from(t.findings)
            .where(
                t.findings.c.signal == "edited",
                t.findings.c.detector == "cusum",
                t.findings.c.status == "critical",
            )
        ).scalar_one()
    assert criticals == 1


def charts(result: PassResult) -> dict[tuple[str, str, str], tuple[str, float | None, int | None]]:
    return {
        (f.workflow, f.signal, f.detector): (f.status.value, f.statistic, f.samples)
        for f in result.findings
    }


def reference_detection(tmp_path: Path, cfg: FileConfig | None = None) -> tuple[Store, Detection]:
    """A second store (SQLite file) and a Detection on it, to replay a stream against."""
    ref_store = Store(f"sqlite:///{tmp_path / 'reference.db'}")
    upgrade(ref_store)
    return ref_store, Detection(ref_store, settings(ref_store), cfg or FileConfig())


def test_one_pass_reads_a_backlog_larger_than_one_chunk(store: Store, tmp_path: Path) -> None:
    # the drift fills the last 16 minutes: the pass charts the live part of the backlog
    events = reviews("wf", [(2000, 0.20), (1000, 0.45)], seed=3)
    cfg = FileConfig(workflows={"wf": DECLARED})
    ref_store, ref = reference_detection(tmp_path, cfg)
    for start in range(0, len(events), PER_PASS):  # 30 write batches: 30 rollup seqs
        for s in (store, ref_store):
            s.insert_events(events[start : start + PER_PASS], events[-1].epoch)
    now = events[-1].epoch + 1
    small = Detection(store, settings(store), cfg, rows_per_chunk=7)
    with capture_logs() as logs:
        result = small.run_once(now=now)
    progress = [e["rollups_read"] for e in logs if e["event"] == "detection reading backlog"]
    assert len(progress) >= 3 and progress == sorted(progress)
    assert progress[-1] < rollup_rows(store)
    assert result.rollups_read == rollup_rows(store) > 7 * 3
    assert result.watermark == top_seq(store)
    assert small.run_once(now=now).rollups_read == 0  # nothing was left for a later pass

    assert charts(result) == charts(ref.run_once(now=now))
    assert status_of(result, "wf") == "critical"


def test_states_kept_in_memory_give_way_to_a_pass_saved_by_another_daemon(
    store: Store, tmp_path: Path
) -> None:
    events = reviews("wf", [(1500, 0.20), (1500, 0.45)], seed=5)
    cfg = FileConfig(workflows={"wf": DECLARED})
    ref_store, ref = reference_detection(tmp_path, cfg)
    a = Detection(store, settings(store), cfg)
    b = Detection(Store(store.url), settings(store), cfg)
    results = []
    for i, start in enumerate(range(0, len(events), PER_PASS)):
        chunk = events[start : start + PER_PASS]
        for s in (store, ref_store):
            s.insert_events(chunk, chunk[-1].epoch)
        now = chunk[-1].epoch + 1
        # leadership moves back and forth: a, a, b, a, a, b, ...
        results.append((a if i % 3 != 2 else b).run_once(now=now))
        assert charts(results[-1]) == charts(ref.run_once(now=now)), f"pass {i}"
    assert any(status_of(r, "wf") == "critical" for r in results)


def test_a_pass_on_kept_states_equals_one_on_states_read_back_from_the_store(
    store: Store, tmp_path: Path
) -> None:
    """Kept states skip the JSON round trip, so they must not depend on it (tuples, int
    keys, numpy numbers would): every family and detector, on the demo's traffic."""
    sim = Simulator(seed=2, drift_after_s=2400, start=T0)
    ref_store, _ = reference_detection(tmp_path)
    kept = Detection(store, settings(store), FileConfig())
    t = T0
    for i in range(16):  # 16 passes, 5 simulated minutes each; the drift starts at pass 8
        events = [convert_event(e, t + 600) for e in sim.events_between(t, t + 300)]
        t += 300
        for s in (store, ref_store):
            s.insert_events(events, t)
        ours = kept.run_once(now=t)
        # a new Detection has nothing in memory: it reads every state from the store
        theirs = Detection(ref_store, settings(ref_store), FileConfig()).run_once(now=t)
        assert [asdict(f) for f in ours.findings] == [asdict(f) for f in theirs.findings], i
    assert {f.detector for f in ours.findings} >= {"cusum", "burn_rate", "version_change"}
    assert any(f.status.value != "ok" for f in ours.findings)


def test_drift_trips_review_in_the_pass_the_detector_alarms(store: Store) -> None:
    cfg = FileConfig(
        workflows={
            "drifting": DECLARED,
            "calm": DECLARED,
            "silent": DECLARED,
        },
        policies=[PolicyConfig(name="edit-drift", signal="edited", mode="review")],
    )
    switches = SwitchService(store, cfg)
    detection = Detection(store, settings(store, arl0=1e6), cfg)
    alarm_pass: list[float] = []
    trip_pass: list[float] = []

    def after(result: PassResult, now: float) -> None:
        run_policies(switches, result.findings, cfg.policies, now)
        if not alarm_pass and status_of(result, "drifting") == "critical":
            alarm_pass.append(now)
        if not trip_pass and switches.get("drifting").mode == "review":
            trip_pass.append(now)
        assert switches.get("calm").mode == "auto"
        assert switches.get("silent").mode == "auto"

    drifting = reviews("drifting", [(3600, 0.20), (1800, 0.45)], seed=11)
    calm = reviews("calm", [(5400, 0.20)], seed=12)
    merged = sorted(drifting + calm, key=lambda e: (e.epoch, e.id))
    # two workflows, a review a second each: a pass every 5 simulated minutes
    feed(store, detection, merged, after, per_pass=2 * EVERY_5_MIN)
    assert alarm_pass, "the detector never alarmed on a 0.20 -> 0.45 edit rate"
    assert T0 + 3600 < alarm_pass[0] <= T0 + 3600 + 900  # within 15 minutes of the drift
    assert trip_pass == alarm_pass  # same pass: within one detection interval
    audit = switches.audit("drifting")
    assert audit[0].source == "policy:edit-drift" and audit[0].after["mode"] == "review"
    assert switches.audit("calm") == [] and switches.audit("silent") == []


def test_only_one_leader_per_postgres_database(pg_url: str, _pg_store: Store) -> None:
    a, b = Leadership(Store(pg_url)), Leadership(Store(pg_url))
    assert a.acquire() is True
    assert b.acquire() is False
    assert a.acquire() is True  # re-entrant for the holder
    a.release()  # the leader's session ends, as when its process dies
    assert b.acquire() is True
    b.release()


def test_only_one_leader_per_sqlite_file(sqlite_store: Store) -> None:
    a, b = Leadership(Store(sqlite_store.url)), Leadership(Store(sqlite_store.url))
    assert a.acquire() is True
    assert b.acquire() is False
    a.release()
    assert b.acquire() is True
    b.release()


def _leaders(paths: list[Path]) -> list[int]:
    return [
        i for i, p in enumerate(paths) if p.exists() and "became detection leader" in p.read_text()
    ]


@pytest.mark.slow
def test_a_second_daemon_takes_over_detection_when_the_leader_dies(
    pg_url: str, _pg_store: Store, tmp_path: Path
) -> None:
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    env = {"DRIFTWARDEN_DETECT_INTERVAL": "1"}
    daemons = [Daemon(pg_url, env=env, log_path=log).start() for log in logs]
    try:
        deadline = time.monotonic() + 15
        while not _leaders(logs) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2.5)  # two more intervals: the other one must still not lead
        leaders = _leaders(logs)
        assert len(leaders) == 1
        leader = leaders[0]
        follower = 1 - leader
        daemons[leader].kill()
        killed_at = time.monotonic()
        while follower not in _leaders(logs) and time.monotonic() - killed_at < 10:
            time.sleep(0.1)
        assert follower in _leaders(logs)
        assert time.monotonic() - killed_at <= 2 * 1 + 1.5  # two intervals, plus start slack
        before = httpx.get(daemons[follower].url + "/metrics").text
        assert "driftwarden_last_detection_timestamp_seconds" in before
    finally:
        for d in daemons:
            d.stop()


def test_compaction_runs_after_passes_not_inside_them(store: Store) -> None:
    from monitor.detection.scheduler import COMPACT_EVERY

    detection = Detection(store, settings(store), FileConfig())
    events = reviews("wf", [(PER_PASS * COMPACT_EVERY, 0.2)], seed=5)
    # two inserts per minute bucket (PER_PASS reviews span 100 s): deltas to fold
    feed(store, detection, events[:-PER_PASS])
    assert detection.compact_if_due() is None  # one pass short of due
    rows_before, (edited_before, _, _) = rollup_rows(store), rollup_totals(store, "edited")
    feed(store, detection, events[-PER_PASS:])
    assert detection.compact_if_due() is not None
    assert detection.compact_if_due() is None  # not due again until COMPACT_EVERY more
    assert rollup_rows(store) < rows_before
    assert rollup_totals(store, "edited")[0] == edited_before + PER_PASS
