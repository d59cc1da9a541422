"""What each console page shows, assembled from the same reads the API answers with
(current findings, the switch service, the audit log, the false-alarm budget) plus the
rollups summed into chart steps. Pure assembly: the views render these, nothing else.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from detectors.types import Status, worst
from monitor.api.findings import learning, status_reason
from monitor.console.charts import FULL, SPARK, Marker, line_chart
from monitor.console.measures import HEADLINES, NOT_CHARTED, Measure, measure_for, plot
from monitor.console.series import Series, StepTotals, VersionSeen, load_steps
from monitor.detection import store as ds
from monitor.detection.alarm_budget import budget_in_force, budget_report
from monitor.settings import FileConfig, Settings
from monitor.store import Store
from monitor.switch.state import AuditEntry, SwitchState


@dataclass(frozen=True, slots=True)
class Range:
    name: str
    seconds: int
    step: int  # seconds per chart point


RANGES: Final = {
    r.name: r
    for r in (
        Range("1h", 3_600, 60),
        Range("24h", 86_400, 900),
        Range("7d", 7 * 86_400, 7_200),
        Range("30d", 30 * 86_400, 21_600),
    )
}
OVERVIEW_RANGE: Final = Range("24h", 86_400, 3_600)
_ORDER: Final = {"critical": 0, "warn": 1, "unknown": 2, "ok": 3}  # what matters first


@dataclass(frozen=True, slots=True)
class FindingView:
    workflow: str
    signal: str
    detector: str
    status: str
    summary: str
    statistic: float | None
    threshold: float | None
    since: float | None
    baseline: float | None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> FindingView:
        return cls(
            row["workflow"],
            row["signal"],
            row["detector"],
            row["status"],
            str(row.get("summary") or ""),
            row.get("statistic"),
            row.get("threshold"),
            row.get("since"),
            row.get("baseline"),
        )

    @property
    def fraction(self) -> float | None:
        """How far the statistic is toward its threshold (1.0: at the alarm line)."""
        if self.statistic is None or not self.threshold or self.threshold <= 0:
            return None
        return max(0.0, self.statistic / self.threshold)

    @property
    def bar_percent(self) -> int:
        return round(min(self.fraction or 0.0, 1.5) / 1.5 * 100)  # the bar ends at 1.5x


@dataclass(frozen=True, slots=True)
class ChartView:
    key: str
    title: str
    svg: str
    current: str | None  # the newest step's value, formatted
    baseline: str | None
    status: str
    findings: list[FindingView]


@dataclass(frozen=True, slots=True)
class WorkflowRow:
    name: str
    mode: str
    disabled_actions: tuple[str, ...]
    status: str
    status_reason: str | None
    sparks: list[ChartView]
    findings: list[FindingView]  # critical and warn, critical first


@dataclass(frozen=True, slots=True)
class Overview:
    workflows: list[WorkflowRow]
    findings: list[FindingView]  # every critical and warn finding, critical first
    last_detection: float | None


@dataclass(frozen=True, slots=True)
class WorkflowPage:
    name: str
    range: Range
    switch: SwitchState
    status: str
    status_reason: str | None
    learning: list[dict[str, Any]]
    charts: list[ChartView]
    findings: list[FindingView]
    audit: list[AuditEntry]
    versions: list[VersionSeen]
    budget: dict[str, Any]
    last_detection: float | None


def _sorted(found: Sequence[FindingView]) -> list[FindingView]:
    return sorted(found, key=lambda f: (_ORDER.get(f.status, 9), f.workflow, f.signal))


def _baseline(found: Sequence[FindingView]) -> float | None:
    """The baseline a chart is drawn against: the CUSUM chart's, else any detector's."""
    ranked = sorted(found, key=lambda f: f.detector != "cusum")
    return next((f.baseline for f in ranked if f.baseline is not None), None)


def _chart(
    measure: Measure,
    steps: Mapping[str, Mapping[int, StepTotals]],
    found: Sequence[FindingView],
    span: Range,
    now: float,
    extra_markers: Sequence[Marker] = (),
    small: bool = False,
) -> ChartView:
    start = now - span.seconds
    points = plot(measure, steps, start, now, span.step)
    baseline = _baseline(found)
    markers = [
        Marker(f.since, f"{f.status} since here ({f.detector}): {f.summary}", "since")
        for f in found
        if f.status in ("warn", "critical") and f.since is not None
    ]
    svg = line_chart(
        points,
        start,
        now,
        baseline=baseline,
        markers=[*markers, *extra_markers],
        spec=SPARK if small else FULL,
        title=f"{measure.title} over {span.name}",
        fmt=measure.fmt,
    )
    latest = next((p.v for p in reversed(points) if p.v is not None), None)
    status = worst([Status(f.status) for f in found]).value if found else "unknown"
    return ChartView(
        measure.key,
        measure.title,
        svg,
        None if latest is None else measure.fmt(latest),
        None if baseline is None else measure.fmt(baseline),
        status,
        _sorted(found),
    )


def _by_signal(found: Sequence[FindingView]) -> dict[str, list[FindingView]]:
    out: dict[str, list[FindingView]] = defaultdict(list)
    for f in found:
        out[f.signal].append(f)
    return out


def _steps_of(series: Series, workflow: str) -> dict[str, dict[int, StepTotals]]:
    return {signal: steps for (wf, signal), steps in series.items() if wf == workflow}


def overview(
    store: Store,
    settings: Settings,
    file_config: FileConfig,
    switches: Sequence[SwitchState],
    now: float,
) -> Overview:
    rows = ds.current_findings(store)
    by_wf: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_wf[r["workflow"]].append(r)
    modes = {s.workflow: s for s in switches}
    names = sorted(set(by_wf) | set(file_config.workflows) | set(modes))
    span = OVERVIEW_RANGE
    signals = sorted({s for m in HEADLINES for s in m.signals})
    series = load_steps(store, names, signals, now - span.seconds, now, span.step)
    out = []
    for name in names:
        found = by_wf.get(name, [])
        status = worst([Status(f["status"]) for f in found])
        views = [FindingView.of(f) for f in found]
        per_signal = _by_signal(views)
        steps = _steps_of(series, name)
        switch = modes.get(name) or SwitchState(name, file_config.default_mode)
        out.append(
            WorkflowRow(
                name,
                switch.mode,
                switch.disabled_actions,
                status.value,
                status_reason(status, found),
                [
                    _chart(
                        m, steps, per_signal.get(m.finding_signal or "", []), span, now, (), True
                    )
                    for m in HEADLINES
                ],
                _sorted([f for f in views if f.status in ("critical", "warn")]),
            )
        )
    matter = _sorted([f for row in out for f in row.findings])
    return Overview(out, matter, ds.last_pass_time(store))


def is_known(
    workflow: str, file_config: FileConfig, switch: SwitchState, rows: Sequence[object]
) -> bool:
    """A workflow the daemon has heard of: configured, switched, or with findings."""
    return workflow in file_config.workflows or switch.version > 0 or bool(rows)


def _switch_markers(audit: Sequence[AuditEntry]) -> list[Marker]:
    out = []
    for e in audit:
        if e.dry_run or e.before == e.after:
            continue
        before, after = e.before.get("mode"), e.after.get("mode")
        what = f"{before} -> {after}" if before != after else "actions changed"
        out.append(Marker(e.at, f"switch {what} by {e.actor}: {e.reason}", "switch"))
    return out


def workflow_page(
    store: Store,
    settings: Settings,
    file_config: FileConfig,
    switch: SwitchState,
    audit: list[AuditEntry],
    versions: list[VersionSeen],
    rows: list[dict[str, Any]],
    span: Range,
    now: float,
) -> WorkflowPage:
    name = switch.workflow
    status = worst([Status(f["status"]) for f in rows])
    views = [FindingView.of(f) for f in rows]
    per_signal = _by_signal(views)
    series = load_steps(store, [name], None, now - span.seconds, now, span.step)
    steps = _steps_of(series, name)
    markers = [
        *(Marker(v.first_seen, f"version {v.label} first seen", "version") for v in versions[1:]),
        *_switch_markers(audit),
    ]
    charts = [
        _chart(m, steps, per_signal.get(m.finding_signal or "", []), span, now, markers)
        for m in HEADLINES
    ]
    others = sorted((set(steps) | set(per_signal)) - NOT_CHARTED)
    charts.extend(
        _chart(measure_for(s), steps, per_signal.get(s, []), span, now, markers)
        for s in others
        if s in steps  # a finding with no rollups (events, active users) has no line
    )
    return WorkflowPage(
        name,
        span,
        switch,
        status.value,
        status_reason(status, rows),
        learning(rows),
        charts,
        _sorted(views),
        audit,
        versions,
        budget_report(budget_in_force(settings, file_config, name), rows),
        ds.last_pass_time(store),
    )
