"""One detection pass: route every workflow's rollups to the signal families.

``run_pass`` is pure: the scheduler loads the new rollups and the saved states from the
store, calls it, and persists the findings and the new states. A state is a JSON-safe dict
per ``(workflow, signal, detector)``; the engine adds ``_status``/``_since`` to each so a
finding's ``since`` survives restarts.

After the families ran, the window tests of all CUSUM findings in the pass go through
Benjamini-Hochberg (workflows x signals) as evidence only (``window_significant``): the
status is the charts' (see ``_apply_fdr``).

Example (30 minutes of reviews at 20 a minute: the edit rate is learned from the first few
hundred and charted; the workflow's silence detector still learns its usual event rate):
    >>> from detectors.config import DetectionConfig
    >>> from detectors.types import Rollup
    >>> ups = {("wf", "edited"): [Rollup("wf", "edited", 60 * i, 20, 4) for i in range(30)]}
    >>> findings, states = run_pass(ups, {}, DetectionConfig(), now=1800.0)
    >>> [(f.signal, f.detector, f.status.value) for f in findings]
    [('edited', 'cusum', 'ok'), ('events', 'no_data', 'unknown')]
    >>> findings[0].evidence["baseline_source"], findings[0].baseline
    ('learned', 0.2)
    >>> sorted(states)
    [('wf', 'edited', 'cusum'), ('wf', 'events', 'no_data')]
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Final

from detectors import adoption, cost, health, quality, silence
from detectors import signals as sig
from detectors.baseline import relearn, version_change_finding
from detectors.config import DetectionConfig
from detectors.family import States, WorkflowInput
from detectors.stats.window import benjamini_hochberg
from detectors.summary import summarize
from detectors.types import Finding, Rollup, Status

RollupKey = tuple[str, str]  # (workflow, signal)
StateKey = tuple[str, str, str]  # (workflow, signal, detector)
Family = Callable[[WorkflowInput], tuple[list[Finding], States]]

FAMILIES: Final[dict[str, Family]] = {
    "quality": quality.evaluate,
    "health": health.evaluate,
    "cost": cost.evaluate,
    "adoption": adoption.evaluate,
    "silence": silence.evaluate,
}
VERSION_KEY: Final = ("model_version", "version_change")
RELEARN_DETECTORS: Final = frozenset({"cusum", "ratio"})


def family_of(signal: str) -> str | None:
    """Which family watches ``signal`` (None: stored but not watched, e.g. ``review_ms``)."""
    if signal in quality.SIGNALS:
        return "quality"
    if signal in health.SIGNALS or signal.startswith(sig.ACTION_ERRORS_PREFIX):
        return "health"
    if signal in cost.SIGNALS or signal == sig.RUNS:
        return "cost"
    if (
        signal in adoption.SIGNALS
        or signal.startswith(sig.TEAM_RUNS_PREFIX)
        or signal.startswith(sig.KPI_PREFIX)
    ):
        return "adoption"
    return None


def _check_rollup(key: RollupKey, r: Rollup) -> None:
    where = f"rollup {key[0]}/{key[1]} bucket {r.bucket}"
    if (r.workflow, r.signal) != key:
        raise ValueError(f"{where}: workflow/signal {r.workflow}/{r.signal} do not match the key")
    if r.count < 0 or not 0 <= r.successes <= max(r.count, 0):
        raise ValueError(f"{where}: need count >= 0 and 0 <= successes <= count")
    if not (math.isfinite(r.sum) and math.isfinite(r.sumsq)):
        raise ValueError(f"{where}: sum and sumsq must be finite")


def _versions(
    workflow: str,
    current: Collection[str],
    state: dict[str, Any],
    config: DetectionConfig,
    now: float,
) -> tuple[Finding, dict[str, Any], bool]:
    """Version-change finding, new state, and whether the workflow must re-learn."""
    previous = state.get("versions", [])
    changed = version_change_finding(workflow, previous, current, now)
    new_state = dict(state)
    if current:
        new_state["versions"] = sorted(set(current))
    if changed is not None:
        new_state["changed_at"] = now
        new_state["change"] = changed.evidence
        return changed, new_state, True
    changed_at = state.get("changed_at")
    recent = changed_at is not None and now - changed_at < config.version_warn_s
    finding = Finding(
        workflow,
        "model_version",
        "version_change",
        Status.WARN if recent else Status.OK,
        samples=len(new_state.get("versions", [])),
        evidence={"detector": "version_change", "current": new_state.get("versions", [])},
    )
    if recent:
        finding.evidence.update(state.get("change", {}))
    return finding, new_state, False


def _apply_fdr(findings: list[Finding], q: float) -> None:
    """Benjamini-Hochberg over the window tests of the pass, as evidence only: the window
    tests assume binomial/iid data and real signals are overdispersed, so a significant
    hour is reported (``window_significant``) but does not raise the status (the charts'
    WARN level has its own budget)."""
    tested = [f for f in findings if f.detector == "cusum" and f.p_value is not None]
    if not tested:
        return
    rejected = benjamini_hochberg([f.p_value for f in tested if f.p_value is not None], q)
    for f, rej in zip(tested, rejected, strict=True):
        f.evidence["fdr_q"] = q
        f.evidence["window_significant"] = rej


CUSUM_SIGNALS: Final = frozenset(
    {*quality.SIGNALS, *(s.signal for s in health.SPECS), *(s.signal for s in cost.SPECS)}
    | {s.signal for s in adoption.SPECS}
)
CUSUM_PREFIXES: Final = (sig.ACTION_ERRORS_PREFIX, sig.KPI_PREFIX)


def count_charts(
    rollups: Mapping[str, Sequence[Rollup]], states: Mapping[tuple[str, str], dict[str, Any]]
) -> int:
    """How many CUSUM chart sets a workflow has (its budget is shared among them)."""
    names = set(rollups) | {s for s, d in states if d == "cusum"}
    return sum(1 for s in names if s in CUSUM_SIGNALS or s.startswith(CUSUM_PREFIXES))


def run_pass(
    rollups_by_key: Mapping[RollupKey, Sequence[Rollup]],
    states: Mapping[StateKey, dict[str, Any]],
    config: DetectionConfig,
    now: float,
    *,
    model_versions: Mapping[str, Collection[str]] | None = None,
    active_users: Mapping[str, Mapping[str, int]] | None = None,
    baseline_rollups: Mapping[RollupKey, Sequence[Rollup]] | None = None,
) -> tuple[list[Finding], dict[StateKey, dict[str, Any]]]:
    """Run every family on every workflow; returns all findings and all new states.

    ``model_versions``: versions seen per workflow in the pass window; a new one is a WARN
    finding; the charts compare it with the previous version's baseline (they re-learn only
    for workflows in ``config.relearn_on_version_change``). ``active_users``: per workflow,
    ``"YYYY-MM-DD" -> users``. ``baseline_rollups``: the named baseline window, if any.
    """
    by_wf: dict[str, dict[str, list[Rollup]]] = defaultdict(dict)
    for key, rows in rollups_by_key.items():
        for r in rows:
            _check_rollup(key, r)
        by_wf[key[0]].setdefault(key[1], []).extend(rows)
    st_wf: dict[str, dict[tuple[str, str], dict[str, Any]]] = defaultdict(dict)
    for (wf, signal, det), st in states.items():
        st_wf[wf][(signal, det)] = st
    windows: dict[str, dict[str, list[Rollup]]] = defaultdict(dict)
    for (wf, signal), rows in (baseline_rollups or {}).items():
        windows[wf][signal] = list(rows)
    versions = model_versions or {}
    users = active_users or {}

    findings: list[Finding] = []
    new_states: dict[StateKey, dict[str, Any]] = {}
    workflows = sorted(set(by_wf) | set(st_wf) | set(versions) | set(users))
    for wf in workflows:
        wf_states = dict(st_wf.get(wf, {}))
        current = sorted(versions.get(wf, ()))
        if current or VERSION_KEY in wf_states:
            vf, vstate, must_relearn = _versions(
                wf, current, wf_states.get(VERSION_KEY, {}), config, now
            )
            findings.append(vf)
            wf_states[VERSION_KEY] = vstate
            if must_relearn and wf in config.relearn_on_version_change:
                # only charts and ratios hold a baseline; burn-rate history stays (by
                # default the charts compare the new version with the old baseline)
                wf_states = {
                    k: relearn(v) if k[1] in RELEARN_DETECTORS else v for k, v in wf_states.items()
                }
        inp = WorkflowInput(
            workflow=wf,
            rollups=by_wf.get(wf, {}),
            states=wf_states,
            config=config,
            now=now,
            model_version=",".join(current) or None,
            baseline_rollups=windows.get(wf, {}),
            active_users=users.get(wf, {}),
            charts=count_charts(by_wf.get(wf, {}), wf_states),
        )
        produced: States = {}
        for family in FAMILIES.values():
            fs, sts = family(inp)
            findings.extend(fs)
            produced.update(sts)
        for key, old in wf_states.items():
            new_states[(wf, *key)] = old  # untouched states are carried over
        for key, fresh in produced.items():
            new_states[(wf, *key)] = fresh

    _apply_fdr(findings, config.fdr_q)
    for f in findings:
        key3 = (f.workflow, f.signal, f.detector)
        st = dict(new_states.get(key3, {}))
        if st.get("_status") != f.status.value or st.get("_since") is None:
            st["_status"], st["_since"] = f.status.value, now
        if f.since is None:  # a chart sets its own estimated change point
            f.since = st["_since"]
        new_states[key3] = st
    for f in findings:  # last: the sentence reads the final status, since and evidence
        f.summary = summarize(f, now)
    return findings, new_states
