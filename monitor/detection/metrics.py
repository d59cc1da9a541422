"""Detection gauges, read from the store at scrape time.

Reading the persisted findings (instead of setting gauges in the leader's memory) means
every replica exports the same values, and a restarted daemon exports them at once.
A store outage yields ``driftwarden_findings_scrape_ok 0`` and the findings last read, each
with status unknown, rather than an error.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from detectors.types import Status
from monitor.detection import store as ds
from monitor.store import Store, StoreUnavailable

CACHE_S = 2.0
# workflows seen in the findings -> false critical findings per 30 days in force for them
# and for every configured workflow (``monitor.detection.alarm_budget.false_alarm_budgets``)
AlarmBudgets = Callable[[Iterable[str]], Mapping[str, float]]


class FindingsCollector(Collector):
    def __init__(
        self,
        store: Store,
        budgets: dict[str, float] | None = None,
        alarm_budgets: AlarmBudgets | None = None,
    ) -> None:
        self.store = store
        self.budgets = budgets or {}
        # a callable, not a dict: read at scrape time, the config the app holds now
        self.alarm_budgets = alarm_budgets
        self._lock = threading.Lock()
        self._cached: tuple[float, list[dict[str, Any]], float | None] | None = None

    def _load(self) -> tuple[list[dict[str, Any]], float | None]:
        with self._lock:
            now = time.monotonic()
            if self._cached and now - self._cached[0] < CACHE_S:
                return self._cached[1], self._cached[2]
            rows = ds.current_findings(self.store)
            last = ds.last_pass_time(self.store)
            self._cached = (now, rows, last)
            return rows, last

    def collect(self) -> Iterator[GaugeMetricFamily]:
        ok = GaugeMetricFamily(
            "driftwarden_findings_scrape_ok", "1 when findings could be read from the store"
        )
        try:
            rows, last = self._load()
        except StoreUnavailable:
            ok.add_metric([], 0)
            yield ok
            kept = self._cached
            if kept is not None:
                # the findings last read, each now unknown: nobody can say while the store
                # is away, and a series that vanished would look like one that resolved
                unknown = [{**r, "status": Status.UNKNOWN.value} for r in kept[1]]
                yield from self._families(unknown, kept[2])
            return
        ok.add_metric([], 1)
        yield ok
        yield from self._families(rows, last)

    def _families(
        self, rows: list[dict[str, Any]], last: float | None
    ) -> Iterator[GaugeMetricFamily]:
        wf_sig = ["workflow", "signal"]
        wf_sig_det = ["workflow", "signal", "detector"]
        value = GaugeMetricFamily(
            "driftwarden_signal_value", "Current signal estimate.", labels=wf_sig
        )
        baseline = GaugeMetricFamily(
            "driftwarden_signal_baseline", "Signal baseline.", labels=wf_sig
        )
        samples = GaugeMetricFamily(
            "driftwarden_signal_samples", "Observations in the recent window.", labels=wf_sig
        )
        status = GaugeMetricFamily(
            "driftwarden_finding_status", "0 ok, 1 warn, 2 critical, -1 unknown.", labels=wf_sig_det
        )
        stat = GaugeMetricFamily(
            "driftwarden_detector_statistic", "Detector statistic (e.g. CUSUM).", labels=wf_sig_det
        )
        thresh = GaugeMetricFamily(
            "driftwarden_detector_threshold",
            "Detector alarm threshold (e.g. CUSUM h).",
            labels=wf_sig_det,
        )
        projected = GaugeMetricFamily(
            "driftwarden_budget_projected_usd", "Projected month spend.", labels=["workflow"]
        )
        users = GaugeMetricFamily(
            "driftwarden_active_users", "Distinct users today.", labels=["workflow"]
        )
        preferred: dict[tuple[str, str], dict[str, Any]] = {}
        for r in rows:
            w, s, d = r["workflow"], r["signal"], r["detector"]
            status.add_metric([w, s, d], Status(r["status"]).gauge_value)
            if r["statistic"] is not None:
                stat.add_metric([w, s, d], r["statistic"])
            if r["threshold"] is not None:
                thresh.add_metric([w, s, d], r["threshold"])
            if d == "projection" and r["value"] is not None:
                projected.add_metric([w], r["value"])
            if s == "active_users" and r["value"] is not None:
                users.add_metric([w], r["value"])
            if (w, s) not in preferred or d == "cusum":  # one value per signal: the CUSUM's
                preferred[(w, s)] = r
        for (w, s), r in preferred.items():
            if r["value"] is not None:
                value.add_metric([w, s], r["value"])
            if r["baseline"] is not None:
                baseline.add_metric([w, s], r["baseline"])
            samples.add_metric([w, s], r["samples"] or 0)
        budget = GaugeMetricFamily(
            "driftwarden_budget_usd", "Configured monthly budget.", labels=["workflow"]
        )
        for w, usd in sorted(self.budgets.items()):
            budget.add_metric([w], usd)
        yield from (value, baseline, samples, status, stat, thresh, projected, users, budget)
        if self.alarm_budgets is not None:
            # no _other cap, like every detection gauge here: one series per workflow is
            # fewer than finding_status already exports for it
            alarms = GaugeMetricFamily(
                "driftwarden_false_alarm_budget",
                "Expected false critical findings per 30 days in force (all signals).",
                labels=["workflow"],
            )
            for w, per_month in sorted(self.alarm_budgets({r["workflow"] for r in rows}).items()):
                alarms.add_metric([w], per_month)
            yield alarms
        if last is not None:
            ts = GaugeMetricFamily(
                "driftwarden_last_detection_timestamp_seconds",
                "Unix time of the last finished detection pass.",
            )
            ts.add_metric([], last)
            yield ts

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())  # dynamic: never collected at registration time
