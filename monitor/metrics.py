"""Prometheus metrics (names fixed by DESIGN.md). One ``Metrics`` per registry, so tests
can read values back from a fresh ``CollectorRegistry``."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, disable_created_metrics
from prometheus_client.exposition import generate_latest

from monitor.batch_histogram import BatchHistogram
from monitor.events import Cost, Event, Review, Run

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

        Totals are summed per label set first: one ``inc`` per series per batch instead of
        several per event (labels() + inc cost microseconds each, the batch has thousands).
        Keys start with the counter's attribute name: hashing the Counter object itself is
        several times slower.
        """
        sums: defaultdict[tuple[str, ...], float] = defaultdict(float)
        latencies: defaultdict[str, list[float]] = defaultdict(list)
        for ev in events:
            wf = self.workflow_label(ev.workflow)
            if isinstance(ev, Run):
                sums["events_ingested", wf, "run"] += 1
                sums["runs", wf, ev.status] += 1
                if ev.retries:
                    sums["retries", wf] += ev.retries
                if ev.validation is not None:
                    sums["validations", wf, ev.validation] += 1
                if ev.latency_ms is not None:
                    latencies[wf].append(ev.latency_ms / 1000.0)
                if ev.team:
                    sums["team_runs", wf, ev.team] += 1
                _spend(sums, wf, ev.model, ev.cost_usd, ev.input_tokens, ev.output_tokens)
            elif isinstance(ev, Review):
                sums["events_ingested", wf, "review"] += 1
                sums["reviews", wf, ev.decision] += 1
                if ev.time_saved_s is not None and ev.time_saved_s > 0:
                    sums["time_saved", wf] += ev.time_saved_s
            elif isinstance(ev, Cost):
                sums["events_ingested", wf, "cost"] += 1
                _spend(sums, wf, ev.model, ev.cost_usd, ev.input_tokens, ev.output_tokens)
                if ev.cost_usd is None:
                    sums["cost_unpriced", ev.model or "unknown"] += 1
            else:  # KPIs are exported through the detection gauges, not as counters
                sums["events_ingested", wf, type(ev).__name__.lower()] += 1
        for (name, *labels), amount in sums.items():
            counter: Counter = getattr(self, name)
            counter.labels(*labels).inc(amount)
        for wf, values in latencies.items():
            self.run_latency.observe_many((wf,), values)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def _spend(
    sums: defaultdict[tuple[str, ...], float],
    wf: str,
    model: str | None,
    cost: float | None,
    t_in: int | None,
    t_out: int | None,
) -> None:
    label = model or "unknown"
    if cost:
        sums["cost_usd", wf, label] += cost
    if t_in:
        sums["tokens", wf, label, "input"] += t_in
    if t_out:
        sums["tokens", wf, label, "output"] += t_out
