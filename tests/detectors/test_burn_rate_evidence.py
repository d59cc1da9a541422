"""Burn-rate pages need evidence: seeded traffic against the rule in detectors.stats.burn_rate.

Each test below was seen failing with the evidence rule removed (``rule_decision`` back to
the workbook's point estimates: ``k / n >= factor * budget`` in both windows), except the
outage test, which guards the other side: it fails when the rule is made too strict (the
short window tested at ``1e-4`` like the long one, or the null moved to ``factor * budget``).
"""

from __future__ import annotations

import numpy as np
import pytest

from detectors import health
from detectors.config import DetectionConfig
from detectors.family import WorkflowInput
from detectors.stats.burn_rate import (
    DEFAULT_RULES,
    evaluate_burn_rates,
    rule_decision,
    window_label,
)
from detectors.types import Rollup, Status

MINUTE = 60
DAY_MIN = 1440
SLO = 0.99


def _profile(minutes: int) -> np.ndarray:
    """Relative traffic per minute: nights at 15 % of the peak-free mean, a midday peak."""
    hour = (np.arange(minutes) // 60) % 24
    shape = 0.15 + 1.7 * np.clip(np.sin((hour - 6) / 12 * np.pi), 0.0, None)
    return np.asarray(shape / shape.mean())


def _traffic(
    rng: np.random.Generator, minutes: int, per_day: float, p: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray]:
    trials = rng.poisson(per_day / DAY_MIN * _profile(minutes))
    return trials, rng.binomial(trials, p)


def _burn(
    rollups: list[Rollup], states: dict[tuple[str, str], dict[str, object]], now: float
) -> tuple[Status, dict[tuple[str, str], dict[str, object]], dict[str, object], int]:
    inp = WorkflowInput("wf", {"errors": rollups}, states, DetectionConfig(slo=SLO), now)
    f, state = health.burn_rate_finding(inp, "errors")
    return f.status, {("errors", "burn_rate"): state}, f.evidence, f.samples


def test_tiny_windows_never_page_whatever_they_hold() -> None:
    # every window holds the same n runs with k bad (all in the last minute): 1 timeout in
    # 3 runs is a 33x burn, 3 in 3 a 100x one; neither is evidence of an outage
    for n in range(1, 30):
        for k in range(n + 1):
            r = evaluate_burn_rates([(3540, n, k)], slo=SLO, now=3600)
            assert r.status not in ("critical", "warn"), (n, k, r.fired)
    r = evaluate_burn_rates([(3540, 3, 1)], slo=SLO, now=3600)
    assert r.burn_rates["5m"] == pytest.approx(100 / 3)
    assert r.status == "unknown"
    assert "too few runs" in (r.reason or "")


def test_a_new_workflow_with_a_handful_of_errors_does_not_page() -> None:
    # a new workflow: one run every 2 minutes, and 4 of its first ~45 runs fail, the first
    # at once. The plain workbook rule pages on run 1 (1 of 1: 100x).
    failing = {0, 6, 20, 38}
    states: dict[tuple[str, str], dict[str, object]] = {}
    seen: list[Status] = []
    for minute in range(0, 90, 2):
        run = minute // 2
        batch = [Rollup("wf", "errors", minute * MINUTE, 1, int(run in failing))]
        status, states, evidence, _ = _burn(batch, states, (minute + 1) * MINUTE)
        seen.append(status)
        assert status is not Status.CRITICAL, (minute, evidence["windows"])
    assert Status.UNKNOWN in seen  # learning: too few runs to judge the SLO


def test_an_empty_short_window_cannot_page_and_says_why() -> None:
    # 25 minutes at 30 % errors, then nothing for the last 35 minutes
    rows = [(m * MINUTE, 20, 6) for m in range(0, 25)]
    r = evaluate_burn_rates(rows, slo=SLO, now=60 * MINUTE)
    assert r.burn_rates["1h"] == pytest.approx(30.0)
    assert r.trials["5m"] == r.trials["30m"] == 0
    assert r.decisions["page_1h"] == r.decisions["page_6h"] == "no_recent"
    assert r.status == "warn"  # only the tickets, whose 2 h / 6 h short windows hold it
    assert r.fired == ["ticket_1d", "ticket_3d"]
    # one more run, bad, in the last 5 minutes: the burn is current again
    r = evaluate_burn_rates([*rows, (58 * MINUTE, 1, 1)], slo=SLO, now=60 * MINUTE)
    assert r.status == "critical"
    assert r.fired[0] == "page_1h"
    # seven hours later no short window holds a run: no verdict at all, and it says why
    r = evaluate_burn_rates(rows, slo=SLO, now=7 * 3600)
    assert r.status == "unknown"
    assert r.reason == "burning over 1d but no runs in the last 2h"


def _plain_page_minute(trials: np.ndarray, bad: np.ndarray, passes: np.ndarray) -> int | None:
    """First pass at which the workbook's point-estimate page rules hold (no evidence)."""
    ct = np.concatenate([[0], np.cumsum(trials)])
    cb = np.concatenate([[0], np.cumsum(bad)])
    for t in passes:
        for rule in (r for r in DEFAULT_RULES if r.severity == "critical"):
            ok = True
            for w in (rule.long_s // MINUTE, rule.short_s // MINUTE):
                n, k = ct[t] - ct[max(t - w, 0)], cb[t] - cb[max(t - w, 0)]
                ok &= bool(n > 0 and k / n >= rule.factor * (1 - SLO) * (1 - 1e-9))
            if ok:
                return int(t)
    return None


@pytest.mark.parametrize("seed", range(8))
def test_a_real_outage_pages_within_a_short_window_of_the_plain_rule(seed: int) -> None:
    # 1,000 runs a day at 0.5 % errors for two days, then 20 % from noon of day 3
    rng = np.random.default_rng(seed)
    onset = 2 * DAY_MIN + 12 * 60
    minutes = onset + 4 * 60
    p = np.where(np.arange(minutes) < onset, 0.005, 0.20)
    trials, bad = _traffic(rng, minutes, 1000.0, p)
    passes = np.arange(onset + 1, minutes + 1)  # a pass every minute after the onset
    plain = _plain_page_minute(trials, bad, passes)
    assert plain is not None
    rollups = [
        Rollup("wf", "errors", m * MINUTE, int(trials[m]), int(bad[m]))
        for m in range(minutes)
        if trials[m]
    ]
    by_minute: dict[int, list[Rollup]] = {}
    for r in rollups:
        by_minute.setdefault(r.bucket // MINUTE, []).append(r)
    history = [r for r in rollups if r.bucket < onset * MINUTE]
    status, states, _, _ = _burn(history, {}, onset * MINUTE)
    assert status is Status.OK
    paged = None
    for t in passes:
        at = float(t)
        status, states, evidence, samples = _burn(
            by_minute.get(int(t) - 1, []), states, at * MINUTE
        )
        if status is Status.CRITICAL:
            paged = int(t)
            break
    assert paged is not None, "the outage never paged"
    # the evidence rule may cost at most one short window (5 minutes) over the plain rule
    assert paged - plain <= 5, (paged - onset, plain - onset)
    rule = next(r for r in DEFAULT_RULES if r.name == evidence["rule"])
    long_w, short_w = window_label(rule.long_s), window_label(rule.short_s)
    windows, recent = evidence["windows"], evidence["recent"]
    assert isinstance(windows, dict) and isinstance(recent, dict)
    assert samples == windows[long_w][0] >= 30
    assert [recent["samples"], recent["events"]] == windows[short_w]
    assert recent["window_s"] == rule.short_s
    assert recent["samples"] >= 1


def _healthy_pages(days: int, per_day: float, seed: int, pass_min: int = 5) -> int:
    """Pages of a workflow at exactly the SLO's error rate, one pass every ``pass_min``.

    Window counts come from prefix sums (the window arithmetic has its own exact tests in
    test_stats_window.py); every pass applies ``rule_decision`` to every page rule.
    """
    rng = np.random.default_rng(seed)
    warm = 3 * DAY_MIN  # three days first, so the long windows are full
    trials, bad = _traffic(rng, warm + days * DAY_MIN, per_day, 1 - SLO)
    ct = np.concatenate([[0], np.cumsum(trials)])
    cb = np.concatenate([[0], np.cumsum(bad)])
    pages, paging = 0, False
    pages_rules = [r for r in DEFAULT_RULES if r.severity == "critical"]
    for t in range(warm, warm + days * DAY_MIN + 1, pass_min):

        def nk(seconds: int, t: int = t) -> tuple[int, int]:
            start = max(t - seconds // MINUTE, 0)
            return int(ct[t] - ct[start]), int(cb[t] - cb[start])

        now = any(
            rule_decision(r, nk(r.long_s), nk(r.short_s), 1 - SLO) == "fired" for r in pages_rules
        )
        pages += int(now and not paging)  # one page per episode
        paging = now
    return pages


def test_a_healthy_workflow_at_the_slo_rate_never_pages() -> None:
    # 200 workflow-days at 1,000 runs a day, errors at exactly 1 - slo, a pass every 5 min.
    # Measured: 0 pages in 200 days (the plain workbook rule: ~0.25 a day, 50 here).
    pages = sum(_healthy_pages(20, 1000.0, seed) for seed in range(10))
    assert pages == 0, f"{pages} false pages in 200 workflow-days"
    # low and high traffic, fewer days each
    assert sum(_healthy_pages(10, 100.0, 100 + seed) for seed in range(5)) == 0
    assert sum(_healthy_pages(10, 10_000.0, 200 + seed) for seed in range(5)) == 0
