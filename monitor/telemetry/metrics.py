"""Prometheus metrics of ingest and the store (names fixed by docs/metrics.md). One
``Metrics`` per registry, so tests can read values back from a fresh ``CollectorRegistry``."""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, Counter, disable_created_metrics
from prometheus_client.exposition import generate_latest

from monitor.batch.tally import Tally
from monitor.telemetry.histogram import BatchHistogram

# *_created series double the exposition size and no dashboard of ours reads them
disable_created_metrics()  # type: ignore[no-untyped-call]

OTHER = "_other"
MAX_KEPT_SERIES = 20_000
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None, max_workflows: int = 500) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.max_workflows = max_workflows
        self._workflows: set[str] = set()
        self._lock = threading.Lock()
        self._series: dict[tuple[str, ...], Counter] = {}  # tally key -> its child counter
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
        self.store_errors = Counter(
            "driftwarden_store_errors",
            "Store operations that failed (store unavailable).",
            ["operation"],
            registry=r,
        )
        # the counter each tally key names (``monitor.batch.tally``: its first element)
        self._by_tally_name: dict[str, Counter] = {
            "events_ingested": self.events_ingested,
            "runs": self.runs,
            "retries": self.retries,
            "validations": self.validations,
            "reviews": self.reviews,
            "cost_usd": self.cost_usd,
            "tokens": self.tokens,
            "cost_unpriced": self.cost_unpriced,
            "time_saved": self.time_saved,
            "team_runs": self.team_runs,
        }

    def workflow_label(self, workflow: str) -> str:
        """The workflow's label value, or ``_other`` past the cardinality cap."""
        if workflow in self._workflows:
            return workflow
        with self._lock:
            if len(self._workflows) < self.max_workflows:
                self._workflows.add(workflow)
                return workflow
        return OTHER

    def _series_for(self, key: tuple[str, ...]) -> Counter:
        # ``labels()`` validates and locks on every call: a tenth of the server's share of
        # ingest, so the children are kept (up to a bound: workflow names come from clients)
        name, *labels = key
        if name != "cost_unpriced":  # the one counter without a workflow label
            labels[0] = self.workflow_label(labels[0])
        series = self._by_tally_name[name].labels(*labels)
        if len(self._series) < MAX_KEPT_SERIES:
            self._series[key] = series
        return series

    def add(self, counts: Tally) -> None:
        """Add a batch's tally (``monitor.batch.tally``): one ``inc`` per series per batch."""
        for key, amount in counts.sums.items():
            series = self._series.get(key)
            if series is None:
                series = self._series_for(key)
            series.inc(amount)
        for wf, seconds in counts.latencies.items():
            self.run_latency.observe_many((self.workflow_label(wf),), seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
