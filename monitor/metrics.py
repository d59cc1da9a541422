"""Prometheus metrics (names fixed by DESIGN.md). One ``Metrics`` per registry, so tests
can read values back from a fresh ``CollectorRegistry``."""

from __future__ import annotations

import threading
from collections import Counter as CountOf
from collections import defaultdict
from collections.abc import Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, disable_created_metrics
from prometheus_client.exposition import generate_latest

from monitor.batch_histogram import BatchHistogram
from monitor.events import Cost, Event, Review, Run
from monitor.grouping import group_by

# *_created series double the exposition size and no dashboard of ours reads them
disable_created_metrics()  # type: ignore[no-untyped-call]

OTHER = "_other"
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None, max_workflows: int = 500) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.max_workflows = max_workflows
        self._workflows: set[str] = set()
        self._lock = threading.Lock()
        r = self.registry
        self.events_ingested = Counter(
            "driftwarden_events_ingested",
            "Events stored (duplicates not counted).",
            ["workflow", "type"],
            registry=r,
        )
        self.events_rejected = Counter(
            "driftwarden_events_rejected",
            "Events or bodies rejected, by reason.",
            ["reason"],
            registry=r,
        )
        self.runs = Counter(
            "driftwarden_runs", "Workflow runs by status.", ["workflow", "status"], registry=r
        )
        self.retries = Counter(
            "driftwarden_retries", "Retries reported on runs.", ["workflow"], registry=r
        )
        self.validations = Counter(
            "driftwarden_validations",
            "Output validations by result.",
            ["workflow", "result"],
            registry=r,
        )
        self.reviews = Counter(
            "driftwarden_reviews",
            "Human reviews by decision.",
            ["workflow", "decision"],
            registry=r,
        )
        self.cost_usd = Counter(
            "driftwarden_cost_usd", "Model spend in US dollars.", ["workflow", "model"], registry=r
        )
        self.tokens = Counter(
            "driftwarden_tokens", "Model tokens.", ["workflow", "model", "direction"], registry=r
        )
        self.cost_unpriced = Counter(
            "driftwarden_cost_unpriced",
            "Cost records with no known price.",
            ["model"],
            registry=r,
        )
        self.time_saved = Counter(
            "driftwarden_time_saved_seconds",
            "Time saved reported on reviews.",
            ["workflow"],
            registry=r,
        )
        self.team_runs = Counter(
            "driftwarden_team_runs", "Runs by team.", ["workflow", "team"], registry=r
        )
        self.run_latency = BatchHistogram(
            "driftwarden_run_latency_seconds", "Run latency.", ["workflow"], LATENCY_BUCKETS, r
        )
        self.http_errors = Counter(
            "driftwarden_store_errors",
            "Store operations that failed (store unavailable).",
            ["operation"],
            registry=r,
        )

    def workflow_label(self, workflow: str) -> str:
        """The workflow's label value, or ``_other`` past the cardinality cap."""
        if workflow in self._workflows:
            return workflow
        with self._lock:
            if len(self._workflows) < self.max_workflows:
                self._workflows.add(workflow)
                return workflow
        return OTHER

    def observe_stored(self, events: Iterable[Event]) -> None:
        """Count events that were actually stored (call after commit).

        Events are grouped by type and workflow first and each group is counted column by
        column (``Counter`` and ``sum`` over lists run at C speed); then there is one
        ``inc`` per series per batch instead of several per event.
        """
        runs: dict[str, list[Run]] = {}
        reviews: dict[str, list[Review]] = {}
        costs: dict[str, list[Cost]] = {}
        sums: defaultdict[tuple[str, ...], float] = defaultdict(float)
        for ev in events:
            if isinstance(ev, Run):
                runs.setdefault(ev.workflow, []).append(ev)
            elif isinstance(ev, Review):
                reviews.setdefault(ev.workflow, []).append(ev)
            elif isinstance(ev, Cost):
                costs.setdefault(ev.workflow, []).append(ev)
            else:  # KPIs are exported through the detection gauges, not as counters
                sums["events_ingested", self.workflow_label(ev.workflow), "kpi"] += 1
        for workflow, some_runs in runs.items():
            self._runs(sums, self.workflow_label(workflow), some_runs)
        for workflow, some_reviews in reviews.items():
            self._reviews(sums, self.workflow_label(workflow), some_reviews)
        for workflow, some_costs in costs.items():
            wf = self.workflow_label(workflow)
            sums["events_ingested", wf, "cost"] += len(some_costs)
            _spend(sums, wf, some_costs)
            for model in [c.model or "unknown" for c in some_costs if c.cost_usd is None]:
                sums["cost_unpriced", model] += 1
        for (name, *labels), amount in sums.items():
            counter: Counter = getattr(self, name)
            counter.labels(*labels).inc(amount)

    def _runs(self, sums: defaultdict[tuple[str, ...], float], wf: str, runs: list[Run]) -> None:
        sums["events_ingested", wf, "run"] += len(runs)
        for status, n in _tally([r.status for r in runs]):
            sums["runs", wf, status] += n
        retries = sum([r.retries for r in runs])
        if retries:
            sums["retries", wf] += retries
        for outcome, n in _tally([r.validation for r in runs if r.validation is not None]):
            sums["validations", wf, outcome] += n
        for team, n in _tally([r.team for r in runs if r.team]):
            sums["team_runs", wf, team] += n
        _spend(sums, wf, runs)
        latencies = [r.latency_ms / 1000.0 for r in runs if r.latency_ms is not None]
        if latencies:
            self.run_latency.observe_many((wf,), latencies)

    def _reviews(
        self, sums: defaultdict[tuple[str, ...], float], wf: str, reviews: list[Review]
    ) -> None:
        sums["events_ingested", wf, "review"] += len(reviews)
        for decision, n in _tally([r.decision for r in reviews]):
            sums["reviews", wf, decision] += n
        saved = sum([r.time_saved_s for r in reviews if r.time_saved_s and r.time_saved_s > 0])
        if saved:
            sums["time_saved", wf] += saved

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def _tally(labels: list[str]) -> Iterable[tuple[str, int]]:
    return CountOf(labels).items()


def _spend(
    sums: defaultdict[tuple[str, ...], float], wf: str, records: Sequence[Run | Cost]
) -> None:
    """Spend and tokens by model; one model per workflow is the usual case."""
    models = [r.model or "unknown" for r in records]
    for model, some in group_by(models, records).items():
        _spend_one(sums, wf, model, some)


def _spend_one(
    sums: defaultdict[tuple[str, ...], float],
    wf: str,
    model: str,
    records: Sequence[Run | Cost],
) -> None:
    cost = sum([r.cost_usd for r in records if r.cost_usd])
    if cost:
        sums["cost_usd", wf, model] += cost
    tokens_in = sum([r.input_tokens for r in records if r.input_tokens])
    if tokens_in:
        sums["tokens", wf, model, "input"] += tokens_in
    tokens_out = sum([r.output_tokens for r in records if r.output_tokens])
    if tokens_out:
        sums["tokens", wf, model, "output"] += tokens_out
