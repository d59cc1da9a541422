"""The column-wise rollup and metric counting agree with a plain per-event reference."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from collectors.events import Cost, Run
from detectors import signals as sig
from monitor.batch.rollups import rollup
from monitor.batch.tally import tally
from monitor.telemetry.metrics import Metrics

T0 = 1_795_424_400.0

runs = st.builds(
    Run,
    id=st.uuids().map(str),
    workflow=st.sampled_from(["a", "b"]),
    ts=st.floats(T0, T0 + 180),
    status=st.sampled_from(["ok", "error", "timeout"]),
    retries=st.integers(0, 3),
    latency_ms=st.none() | st.floats(0, 5000),
    action=st.none() | st.sampled_from(["crm_write", "send_email"]),
    model=st.none() | st.sampled_from(["m1", "m2"]),
    prompt_version=st.none() | st.sampled_from(["p1", "p2"]),
    groundedness=st.none() | st.floats(0, 1),
    confidence=st.none() | st.floats(0, 1),
    validation=st.none() | st.sampled_from(["passed", "failed"]),
    escalated=st.none() | st.booleans(),
    input_tokens=st.none() | st.integers(0, 5000),
    output_tokens=st.none() | st.integers(0, 5000),
    cost_usd=st.none() | st.floats(0, 1),
    team=st.none() | st.sampled_from(["ops", "sales"]),
)


Agg = list[float | None]  # count, successes, sum, sumsq, min, max


def reference(events: list[Run]) -> dict[tuple[str, str, int], Agg]:
    """(workflow, signal, minute) -> [count, successes, sum, sumsq, min, max], one event at
    a time, the obvious way."""
    out: dict[tuple[str, str, int], Any] = {}

    def rate(key: tuple[str, str, int], hit: bool) -> None:
        agg = out.setdefault(key, [0, 0, 0.0, 0.0, None, None])
        agg[0] += 1
        agg[1] += hit

    def value(key: tuple[str, str, int], v: float) -> None:
        agg = out.setdefault(key, [0, 0, 0.0, 0.0, None, None])
        agg[0] += 1
        agg[2] += v
        agg[3] += v * v
        agg[4] = v if agg[4] is None else min(agg[4], v)
        agg[5] = v if agg[5] is None else max(agg[5], v)

    for r in events:
        b = int(r.epoch // 60) * 60
        wf = r.workflow
        rate((wf, sig.RUNS, b), r.status == "ok")
        rate((wf, sig.ERRORS, b), r.status == "error")
        rate((wf, sig.TIMEOUTS, b), r.status == "timeout")
        value((wf, sig.RETRIES, b), r.retries)
        out[(wf, sig.RETRIES, b)][1] += r.retries > 0
        for signal, v in (
            (sig.LATENCY_MS, r.latency_ms),
            (sig.GROUNDEDNESS, r.groundedness),
            (sig.CONFIDENCE, r.confidence),
            (sig.SPEND_USD, r.cost_usd),
        ):
            if v is not None:
                value((wf, signal, b), v)
        if r.input_tokens is not None or r.output_tokens is not None:
            value((wf, sig.TOKENS, b), (r.input_tokens or 0) + (r.output_tokens or 0))
        if r.validation is not None:
            rate((wf, sig.VALIDATION_FAILED, b), r.validation == "failed")
        if r.escalated is not None:
            rate((wf, sig.ESCALATED, b), r.escalated)
        if r.action:
            rate((wf, sig.ACTION_ERRORS_PREFIX + r.action, b), r.status != "ok")
        if r.team:
            rate((wf, sig.TEAM_RUNS_PREFIX + r.team, b), r.status == "ok")
    return out


@settings(max_examples=150, deadline=None)
@given(st.lists(runs, max_size=60))
def test_run_rollup_matches_the_per_event_reference(events: list[Run]) -> None:
    got = rollup(events)
    want = reference(events)
    assert set(got.aggs) == set(want)
    for key, (count, successes, total, sumsq, low, high) in want.items():
        agg = got.aggs[key]
        assert (agg.count, agg.successes) == (count, successes), key
        assert total is not None and sumsq is not None, key
        assert math.isclose(agg.sum, total, rel_tol=1e-9, abs_tol=1e-9), key
        assert math.isclose(agg.sumsq, sumsq, rel_tol=1e-9, abs_tol=1e-9), key
        assert (agg.min, agg.max) == (low, high), key


@settings(max_examples=100, deadline=None)
@given(st.lists(runs, max_size=60))
def test_versions_seen_match_the_per_event_reference(events: list[Run]) -> None:
    want: dict[tuple[str, str, str, str], list[float]] = defaultdict(list)
    for r in events:
        if r.model or r.model_version or r.prompt_version:
            key = (r.workflow, r.model or "", r.model_version or "", r.prompt_version or "")
            want[key].append(r.epoch)
    got = rollup(events).versions
    assert set(got) == set(want)
    for key, times in want.items():
        assert (got[key].first, got[key].last, got[key].count) == (
            min(times),
            max(times),
            len(times),
        )


def test_spend_is_counted_per_model_when_a_workflow_mixes_models() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.add(
        tally(
            [
                Run(id="1", workflow="wf", ts=T0, model="m1", cost_usd=0.5, input_tokens=10),
                Run(id="2", workflow="wf", ts=T0, model="m2", cost_usd=0.25, output_tokens=7),
                Run(id="3", workflow="wf", ts=T0, model="m1", cost_usd=0.125, status="error"),
                Cost(id="4", workflow="wf", ts=T0, model="m3"),
            ]
        )
    )

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("driftwarden_cost_usd_total", workflow="wf", model="m1") == 0.625
    assert value("driftwarden_cost_usd_total", workflow="wf", model="m2") == 0.25
    assert value("driftwarden_tokens_total", workflow="wf", model="m1", direction="input") == 10
    assert value("driftwarden_tokens_total", workflow="wf", model="m2", direction="output") == 7
    assert value("driftwarden_runs_total", workflow="wf", status="error") == 1
    assert value("driftwarden_events_ingested_total", workflow="wf", type="run") == 3
    assert value("driftwarden_events_ingested_total", workflow="wf", type="cost") == 1
    assert value("driftwarden_cost_unpriced_total", model="m3") == 1


def test_workflows_past_the_label_cap_are_counted_as_other(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        "monitor.telemetry.metrics.MAX_KEPT_SERIES", 2
    )  # most series looked up afresh
    registry = CollectorRegistry()
    metrics = Metrics(registry, max_workflows=2)
    for batch in (["a", "b", "c"], ["c", "a", "d"]):
        metrics.add(tally([Run(id=f"{wf}{i}", workflow=wf, ts=T0) for i, wf in enumerate(batch)]))

    def runs(workflow: str) -> float | None:
        return registry.get_sample_value(
            "driftwarden_runs_total", {"workflow": workflow, "status": "ok"}
        )

    assert (runs("a"), runs("b"), runs("_other")) == (2.0, 1.0, 3.0)
    assert runs("c") is None and runs("d") is None
    assert len(metrics._series) == 2  # the kept children stop at the bound
