"""run_pass: routing, status rules, state persistence, baselines, model versions, BH."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from detectors.config import DeclaredBaseline, DetectionConfig
from detectors.engine import family_of, run_pass
from detectors.types import Finding, Rollup, Status

PER = 20  # observations per minute bucket


def rate_rollups(
    rng: np.random.Generator, start: int, stop: int, p: float, signal: str = "edited"
) -> list[Rollup]:
    ks = rng.binomial(PER, p, stop - start)
    return [
        Rollup("wf", signal, 60 * i, PER, int(k))
        for i, k in zip(range(start, stop), ks, strict=True)
    ]


def value_rollups(
    rng: np.random.Generator,
    start: int,
    stop: int,
    mu: float,
    sd: float,
    signal: str,
    per: int = PER,
) -> list[Rollup]:
    out = []
    for i in range(start, stop):
        x = rng.normal(mu, sd, per)
        out.append(Rollup("wf", signal, 60 * i, per, 0, float(x.sum()), float((x * x).sum())))
    return out


def run_stream(
    rollups: Sequence[Rollup],
    config: DetectionConfig,
    pass_every: int = 10,
    states: dict[Any, Any] | None = None,
) -> tuple[list[tuple[float, list[Finding]]], dict[Any, Any]]:
    """Feed rollups pass by pass (``pass_every`` minute buckets per pass, as a scheduler
    running every ``pass_every`` minutes would: the charts see only buckets at most
    ``live_s`` old); returns ``(pass time, findings)`` per pass and the final states."""
    states = states or {}
    by_pass: list[tuple[float, list[Finding]]] = []
    buckets = sorted({r.bucket for r in rollups})
    for i in range(0, len(buckets), pass_every):
        chunk = set(buckets[i : i + pass_every])
        batch: dict[tuple[str, str], list[Rollup]] = {}
        for r in rollups:
            if r.bucket in chunk:
                batch.setdefault((r.workflow, r.signal), []).append(r)
        now = max(chunk) + 60.0
        findings, states = run_pass(batch, states, config, now)
        by_pass.append((now, findings))
    return by_pass, states


def one(findings: list[Finding], signal: str, detector: str = "cusum") -> Finding:
    [f] = [f for f in findings if f.signal == signal and f.detector == detector]
    return f


def test_empty_pass_produces_no_findings_and_no_state() -> None:
    assert run_pass({}, {}, DetectionConfig(), now=1e6) == ([], {})


def test_too_little_data_is_unknown_never_ok() -> None:
    rng = np.random.default_rng(1)
    ups = rate_rollups(rng, 0, 10, 0.2) + value_rollups(rng, 0, 3, 0.85, 0.1, "groundedness")
    findings, _ = run_pass(_group(ups), {}, DetectionConfig(), now=600.0)
    edited, grounded = one(findings, "edited"), one(findings, "groundedness")
    assert edited.status is Status.UNKNOWN
    assert edited.evidence["learned"] == 200
    # a rate learns until its standard error is within ``learn_rate_rel_se`` of itself:
    # (1 - p) / (p rel_se^2) observations, at least ``learn_rate_obs``
    cfg = DetectionConfig()
    p = sum(r.successes for r in ups if r.signal == "edited") / 200
    want = max(int((1 - p) / (p * cfg.learn_rate_rel_se**2)), cfg.learn_rate_obs)
    assert edited.evidence["needed"] == want > 200
    assert grounded.status is Status.UNKNOWN
    assert grounded.evidence["learned"] == 60
    assert grounded.evidence["needed"] == cfg.learn_mean_obs


def test_a_feed_that_stops_becomes_unknown() -> None:
    rng = np.random.default_rng(2)
    _, states = run_stream(rate_rollups(rng, 0, 60, 0.2), DetectionConfig())
    findings, _ = run_pass({}, states, DetectionConfig(), now=60 * 60 + 2 * 3600.0)
    f = one(findings, "edited")
    assert f.status is Status.UNKNOWN
    assert f.evidence["reason"] == "no data in the window"


def test_flat_in_control_stream_of_100k_observations_raises_no_critical() -> None:
    """5,000 buckets of 20 obs each (3.5 days) for a rate and a score, learned baselines,
    defaults, a pass every 10 minutes. The budget (0.1 false criticals per workflow-month)
    makes a false critical here a ~1 % event per seed: a regression check."""
    rng = np.random.default_rng(0)
    ups = rate_rollups(rng, 0, 5000, 0.2)
    ups += value_rollups(np.random.default_rng(0), 0, 5000, 0.85, 0.10, "groundedness")
    passes, _ = run_stream(ups, DetectionConfig())
    charted = [f for _, fs in passes for f in fs if f.detector == "cusum"]
    statuses = [f.status for f in charted]
    assert Status.CRITICAL not in statuses
    assert statuses.count(Status.OK) > 0.9 * len(statuses)
    last = [f for f in passes[-1][1] if f.detector == "cusum"]
    assert {f.signal for f in last} == {"edited", "groundedness"}
    assert all(f.status is Status.OK for f in last)
    assert all(f.evidence["feasible"] > 0 for f in last)  # a working chart says so


def test_edit_rate_jump_goes_critical_and_keeps_its_change_point() -> None:
    # declared at 0.20, 6 h at 0.20, then 0.45 for 4 h (20 reviews a minute)
    cfg = DetectionConfig(declared={("*", "edited"): DeclaredBaseline(0.20)})
    rng = np.random.default_rng(3)
    change = 360 * 60.0
    ups = rate_rollups(rng, 0, 360, 0.2) + rate_rollups(rng, 360, 600, 0.45)
    passes, _ = run_stream(ups, cfg)
    edited = [(t, one(fs, "edited")) for t, fs in passes]
    assert all(f.status is Status.OK for t, f in edited if t <= change)
    first = next(i for i, (_, f) in enumerate(edited) if f.status is Status.CRITICAL)
    t_first, f_first = edited[first]
    assert change < t_first <= change + 3600  # within the hour at 20 reviews a minute
    # one episode: critical from the crossing to the end of the drift, with one change point
    episode = [f for _, f in edited[first:]]
    assert {f.status for f in episode} == {Status.CRITICAL}
    assert {f.since for f in episode} == {f_first.since}
    assert {f.evidence["episode_start"] for f in episode} == {f_first.evidence["episode_start"]}
    # ``since`` is the estimated change point (the crossing chart's last reset), before the
    # crossing that opened the episode, not the pass or the crossing itself
    assert f_first.since is not None
    assert change - 1800 <= f_first.since < f_first.evidence["episode_start"] <= t_first
    f = episode[-1]
    assert f.evidence["detector"] == "cusum_set"
    assert f.evidence["budget"]["arl0"] >= cfg.arl0
    assert f.statistic is not None and f.threshold is not None and f.threshold > 0
    assert f.value == pytest.approx(0.45, abs=0.05)


def test_a_learned_baseline_is_charted_and_catches_a_3x_jump() -> None:
    for seed in range(6):
        rng = np.random.default_rng(seed)
        ups = rate_rollups(rng, 0, 240, 0.2) + rate_rollups(rng, 240, 300, 0.6)
        passes, _ = run_stream(ups, DetectionConfig())
        f = one(passes[-1][1], "edited")
        assert f.evidence["baseline_source"] == "learned"
        assert f.evidence["feasible"] > 0, seed  # an "ok" must come from a working chart
        assert f.status is Status.CRITICAL, seed


def test_saved_state_survives_json_and_gives_identical_findings() -> None:
    # saved while learning, while charting, and during an episode: each restored copy
    # continues exactly like the state kept in memory
    rng = np.random.default_rng(4)
    ups = rate_rollups(rng, 0, 300, 0.2) + rate_rollups(rng, 300, 420, 0.6)

    def seen(passes: list[tuple[float, list[Finding]]]) -> list[list[tuple[Any, ...]]]:
        return [
            [(f.signal, f.status, f.statistic, f.threshold, f.p_value, f.since) for f in fs]
            for _, fs in passes
        ]

    for cut, status in ((10, Status.UNKNOWN), (200, Status.OK), (340, Status.CRITICAL)):
        before, states = run_stream(ups[:cut], DetectionConfig())
        assert one(before[-1][1], "edited").status is status
        saved = {k: json.loads(json.dumps(v)) for k, v in states.items()}
        a, a_states = run_stream(ups[cut:], DetectionConfig(), states=states)
        b, b_states = run_stream(ups[cut:], DetectionConfig(), states=saved)
        assert seen(a) == seen(b), cut
        assert json.loads(json.dumps(a_states[("wf", "edited", "cusum")])) == json.loads(
            json.dumps(b_states[("wf", "edited", "cusum")])
        )
        # not trivial: the restored chart is critical on the drift
        assert one(b[-1][1], "edited").status is Status.CRITICAL


def test_a_mean_signal_with_64_observations_a_bucket_is_charted() -> None:
    # e.g. groundedness scored on 64+ answers a minute (the demo's edit_ratio has 150-190)
    ups = value_rollups(np.random.default_rng(0), 0, 10, 0.85, 0.1, "groundedness", per=64)
    findings, _ = run_pass(_group(ups), {}, DetectionConfig(), now=600.0)
    assert one(findings, "groundedness").status is Status.OK


def test_a_learned_score_is_charted_and_catches_a_large_drop() -> None:
    rng = np.random.default_rng(1)
    ups = value_rollups(rng, 0, 240, 0.85, 0.1, "groundedness")
    ups += value_rollups(rng, 240, 300, 0.6, 0.1, "groundedness")
    passes, _ = run_stream(ups, DetectionConfig())
    f = one(passes[-1][1], "groundedness")
    assert f.evidence["feasible"] > 0
    assert f.status is Status.CRITICAL


def test_a_drift_while_a_declared_score_collects_its_sample_is_caught() -> None:
    cfg = DetectionConfig(declared={("*", "groundedness"): DeclaredBaseline(0.85, sd=0.1)})
    rng = np.random.default_rng(1)
    ups = value_rollups(rng, 0, 60, 0.85, 0.1, "groundedness")
    ups += value_rollups(rng, 60, 500, 0.6, 0.1, "groundedness")
    passes, _ = run_stream(ups, cfg)
    assert one(passes[-1][1], "groundedness").status is Status.CRITICAL


def test_every_family_state_is_json_safe() -> None:
    rng = np.random.default_rng(9)
    ups = rate_rollups(rng, 0, 40, 0.05, "errors") + rate_rollups(rng, 0, 40, 0.8, "approved")
    ups += value_rollups(rng, 0, 40, 900.0, 300.0, "latency_ms")
    ups += value_rollups(rng, 0, 40, 0.02, 0.01, "spend_usd")
    ups += value_rollups(rng, 0, 40, 50.0, 5.0, "kpi.nps")
    ups += [Rollup("wf", "runs", 60 * i, PER, PER) for i in range(40)]
    ups += [Rollup("wf", "team_runs.ops", 60 * i, 3, 3) for i in range(40)]
    cfg = DetectionConfig(budgets_usd={"wf": 100.0})
    findings, states = run_pass(
        _group(ups),
        {},
        cfg,
        now=2400.0,
        model_versions={"wf": {"m1"}},
        active_users={"wf": {"2026-11-20": 3}},
    )
    assert {f.detector for f in findings} >= {
        "cusum",
        "burn_rate",
        "robust_z",
        "projection",
        "ratio",
        "daily_robust_z",
        "version_change",
    }
    for key, state in states.items():
        assert json.loads(json.dumps(state)) == state, key


def test_rollup_pieces_of_one_bucket_count_as_separate_batches() -> None:
    # a bucket written in two pieces may finish the learning with its first piece: the
    # second piece is then charted, not learned
    cfg = DetectionConfig()
    need = max(int(0.8 / (0.2 * cfg.learn_rate_rel_se**2)), cfg.learn_rate_obs)  # a 20 % rate

    def learned(pieces: list[int]) -> int:
        ups = [Rollup("wf", "edited", 0, n, n // 5) for n in pieces]
        _, states = run_pass(_group(ups), {}, cfg, now=60.0)
        return int(states[("wf", "edited", "cusum")]["baseline"]["samples"])

    assert learned([need + 200]) == need + 200  # one batch: all of it
    assert learned([need + 100, 100]) == need + 100  # the first piece finished learning
    assert learned([need - 100, 300]) == need + 200  # the second piece finished it


def _errors(start: int, stop: int, per: int = PER) -> list[Rollup]:
    """One error in every 8 buckets of ``per`` runs: a 1-in-160 error rate."""
    return [Rollup("wf", "errors", 60 * i, per, 1 if i % 8 == 0 else 0) for i in range(start, stop)]


def test_a_rare_rate_learns_until_its_standard_error_is_small() -> None:
    # 4 errors in 500 runs would make a 0.8 % baseline (the old "10 events" rule stopped
    # at 1,460 runs, biased by where the 10th event fell); a 1-in-160 rate learns until its
    # standard error is within ``learn_rate_rel_se`` of itself
    cfg = DetectionConfig()
    findings, states = run_pass(_group(_errors(0, 25)), {}, cfg, now=1560.0)
    f = one(findings, "errors")
    assert f.status is Status.UNKNOWN and f.baseline is None
    assert f.evidence["learned"] == 500 and f.evidence["needed"] > 5 * 500
    more = _errors(25, 2000)
    findings, states = run_pass(_group(more), states, cfg, now=120_060.0)
    f = one(findings, "errors")
    b = states[("wf", "errors", "cusum")]["baseline"]
    p, n = b["value"], b["samples"]
    assert f.baseline == p
    rel_se = math.sqrt(p * (1 - p) / n) / p
    assert rel_se <= cfg.learn_rate_rel_se  # the rule
    assert rel_se > 0.95 * cfg.learn_rate_rel_se  # and it stopped as soon as it was met
    assert p == pytest.approx(1 / 160, rel=0.05)  # unbiased: the true rate


def test_a_rate_with_no_events_learns_until_the_cap() -> None:
    # no event yet: the rule reads the rate as 1/n, which never has a 10 % standard error,
    # so learning stops only at ``learn_rate_max_obs``
    cfg = DetectionConfig(learn_rate_max_obs=2_000)
    rollups = [Rollup("wf", "errors", 60 * i, PER, 0) for i in range(99)]
    findings, states = run_pass(_group(rollups), {}, cfg, now=99 * 60.0)
    f = one(findings, "errors")
    assert f.status is Status.UNKNOWN and f.evidence["learned"] == 1_980
    assert f.evidence["needed"] == 2_000
    rollups = [Rollup("wf", "errors", 60 * i, PER, 0) for i in range(99, 100)]
    findings, _ = run_pass(_group(rollups), states, cfg, now=6000.0)
    f = one(findings, "errors")
    assert f.baseline == 0.0
    assert f.evidence["baseline_samples"] == 2_000


def test_a_rare_rate_stops_learning_at_the_cap() -> None:
    cfg = DetectionConfig(learn_rate_max_obs=600)
    rollups = [Rollup("wf", "errors", 60 * i, PER, 1 if i % 8 == 0 else 0) for i in range(30)]
    findings, _ = run_pass(_group(rollups), {}, cfg, now=1860.0)
    assert one(findings, "errors").baseline == pytest.approx(4 / 600)


def test_declared_baseline_skips_learning() -> None:
    cfg = DetectionConfig(declared={("*", "edited"): DeclaredBaseline(0.18)})
    rng = np.random.default_rng(5)
    findings, _ = run_pass(_group(rate_rollups(rng, 0, 5, 0.18)), {}, cfg, now=300.0)
    f = one(findings, "edited")
    assert f.status is Status.OK  # charted from the first pass, no learning period
    assert f.baseline == 0.18
    assert f.evidence["baseline_source"] == "declared"
    assert f.evidence["baseline_samples"] is None
    assert str(f.evidence["design"]).startswith("0.18->")  # charts designed on the value


def test_changing_a_declared_baseline_restarts_the_chart_on_it() -> None:
    rng = np.random.default_rng(8)
    ups = rate_rollups(rng, 0, 180, 0.30)
    old = DetectionConfig(declared={("*", "edited"): DeclaredBaseline(0.18)})
    passes, states = run_stream(ups[:120], old)
    f = one(passes[-1][1], "edited")
    assert f.status is Status.CRITICAL  # 0.30 vs declared 0.18
    new = DetectionConfig(declared={("*", "edited"): DeclaredBaseline(0.30)})
    passes, states = run_stream(ups[120:], new, states=states)
    restarted = [one(fs, "edited") for _, fs in passes]
    assert all(f.baseline == 0.30 for f in restarted)
    assert all(f.status is Status.OK for f in restarted)  # the old episode is gone
    assert "episode_start" not in restarted[0].evidence
    changepoint = restarted[0].evidence["changepoint"]
    assert changepoint is not None and changepoint >= 120 * 60  # only data since the change


def test_declared_mean_baseline_without_sd_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"declared\[wf, groundedness\]\.sd is required"):
        DetectionConfig(declared={("wf", "groundedness"): DeclaredBaseline(0.85)})
    with pytest.raises(ValueError, match=r"declared\[\*, edited\]\.value is a rate"):
        DetectionConfig(declared={("*", "edited"): DeclaredBaseline(18.0)})


def test_baseline_learned_from_a_named_window() -> None:
    rng = np.random.default_rng(6)
    window = rate_rollups(rng, 0, 100, 0.25)
    findings, _ = run_pass(
        _group(rate_rollups(rng, 100, 102, 0.25)),
        {},
        DetectionConfig(),
        now=102 * 60.0,
        baseline_rollups=_group(window),
    )
    f = one(findings, "edited")
    assert f.evidence["baseline_source"] == "window"
    assert f.baseline == pytest.approx(sum(r.successes for r in window) / 2000)


def test_model_version_change_is_reported_and_compared_with_the_old_baseline() -> None:
    cfg = DetectionConfig()
    rng = np.random.default_rng(7)
    ups = rate_rollups(rng, 0, 30, 0.2)
    states: dict[Any, Any] = {}
    for i in range(3):  # three passes under v1: learned (400 reviews) and charted
        chunk = _group(ups[10 * i : 10 * (i + 1)])
        _, states = run_pass(chunk, states, cfg, 600.0 * (i + 1), model_versions={"wf": {"v1"}})
    learned = states[("wf", "edited", "cusum")]["baseline"]
    assert learned is not None
    findings, states = run_pass(
        _group(rate_rollups(rng, 30, 31, 0.2)), states, cfg, 1860.0, model_versions={"wf": {"v2"}}
    )
    change = one(findings, "model_version", "version_change")
    assert change.status is Status.WARN
    assert change.evidence["new"] == ["v2"]
    assert change.evidence["previous"] == ["v1"]
    edited = one(findings, "edited")
    # not re-learned: v2 is watched against v1's baseline while its own is learned
    assert edited.status is Status.OK
    assert states[("wf", "edited", "cusum")]["baseline"] == learned
    assert edited.evidence["baseline_source"] == "previous_version"
    assert edited.evidence["model_version"] == "v1"
    assert edited.evidence["new_version"] == "v2"
    assert edited.evidence["new_version_learned"] == PER
    # a day later the change is no longer news
    findings, _ = run_pass({}, states, cfg, 1860.0 + 86_400, model_versions={"wf": {"v2"}})
    assert one(findings, "model_version", "version_change").status is Status.OK


def test_a_workflow_set_to_relearn_on_version_change_relearns() -> None:
    cfg = DetectionConfig(relearn_on_version_change=frozenset({"wf"}))
    rng = np.random.default_rng(7)
    _, states = run_pass(
        _group(rate_rollups(rng, 0, 30, 0.2)), {}, cfg, now=1800.0, model_versions={"wf": {"v1"}}
    )
    assert states[("wf", "edited", "cusum")]["baseline"] is not None
    other = ("other", "edited")  # a workflow not in the set keeps its baseline
    _, other_states = run_pass(
        {other: [Rollup("other", "edited", 60 * i, PER, 4) for i in range(30)]},
        {},
        cfg,
        now=1800.0,
        model_versions={"other": {"v1"}},
    )
    findings, states = run_pass(
        {
            **_group(rate_rollups(rng, 30, 31, 0.2)),
            other: [Rollup("other", "edited", 1800, PER, 4)],
        },
        {**states, **other_states},
        cfg,
        1860.0,
        model_versions={"wf": {"v2"}, "other": {"v2"}},
    )
    mine = [f for f in findings if f.workflow == "wf"]
    assert one(mine, "model_version", "version_change").evidence["new"] == ["v2"]
    edited = one(mine, "edited")
    assert edited.status is Status.UNKNOWN  # learning again under v2
    assert edited.evidence["learned"] == PER
    assert edited.evidence["model_version"] == "v2"
    [kept] = [f for f in findings if f.workflow == "other" and f.signal == "edited"]
    assert kept.evidence["baseline_source"] == "previous_version"


def test_a_significant_window_test_is_evidence_and_does_not_raise_ok_to_warn() -> None:
    # the window test assumes iid reviews (real rates are overdispersed): Benjamini-Hochberg
    # reports the significant hour, the status stays with the charts
    cfg = DetectionConfig(arl0=1e12, declared={("*", "edited"): DeclaredBaseline(0.20)})
    ups = [Rollup("wf", "edited", 60 * i, 100, 25) for i in range(10)]  # 25 % vs 20 %
    findings, _ = run_pass(_group(ups), {}, cfg, now=600.0)
    f = one(findings, "edited")
    assert f.statistic is not None and f.threshold is not None
    assert f.statistic < f.threshold / 2
    assert f.p_value is not None and f.p_value < 1e-3
    assert f.evidence["window_significant"] is True
    assert f.evidence["fdr_q"] == cfg.fdr_q
    assert f.status is Status.OK


def test_bad_rollup_is_rejected_naming_the_field() -> None:
    bad = {("wf", "edited"): [Rollup("wf", "edited", 0, 10, 11)]}
    with pytest.raises(ValueError, match="successes"):
        run_pass(bad, {}, DetectionConfig(), now=60.0)
    wrong_key = {("wf", "errors"): [Rollup("wf", "edited", 0, 10, 1)]}
    with pytest.raises(ValueError, match="do not match"):
        run_pass(wrong_key, {}, DetectionConfig(), now=60.0)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"arl0": 0.5}, "arl0"),
        ({"slo": 99.0}, "slo"),
        ({"fdr_q": 0.0}, "fdr_q"),
        ({"budgets_usd": {"wf": -1.0}}, r"budgets_usd\[wf\]"),
        ({"declared": {("*", "x"): DeclaredBaseline(0.5, sd=0.0)}}, r"declared\[\*, x\]\.sd"),
    ],
)
def test_invalid_config_names_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        DetectionConfig(**kwargs)


def test_signals_route_to_their_family() -> None:
    assert family_of("edited") == "quality"
    assert family_of("action_errors.crm_write") == "health"
    assert family_of("spend_usd") == "cost"
    assert family_of("team_runs.sales") == "adoption"
    assert family_of("review_ms") is None


def _group(rollups: Sequence[Rollup]) -> dict[tuple[str, str], list[Rollup]]:
    out: dict[tuple[str, str], list[Rollup]] = {}
    for r in rollups:
        out.setdefault((r.workflow, r.signal), []).append(r)
    return out
