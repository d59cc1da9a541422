"""What a batch of stored events adds to the ingest counters (pure, no Prometheus).

Counting is done where the batch is parsed (a parse process, see ``monitor.ingest.parse_pool``),
so the server's own interpreter only adds the totals to the metrics. Events are grouped by
type and workflow first and each group is counted column by column (``Counter`` and
``sum`` over lists run at C speed), so a batch costs one addition per series, not several
per event.

Example:
    >>> from collectors.events import convert_event
    >>> run = convert_event({"id": "1", "type": "run", "workflow": "wf",
    ...                      "status": "ok", "latency_ms": 250})
    >>> t = tally([run])
    >>> t.sums[("events_ingested", "wf", "run")], t.sums[("runs", "wf", "ok")]
    (1.0, 1.0)
    >>> t.latencies
    {'wf': [0.25]}
"""

from __future__ import annotations

from collections import Counter as CountOf
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from collectors.events import Cost, Event, Review, Run
from monitor.batch.grouping import group_by

# (counter name, workflow, *other labels) -> amount; "cost_unpriced" is keyed by model only
Sums = defaultdict[tuple[str, ...], float]


@dataclass(slots=True)
class Tally:
    sums: Sums = field(default_factory=lambda: defaultdict(float))
    latencies: dict[str, list[float]] = field(default_factory=dict)  # workflow -> seconds


def tally(events: Iterable[Event]) -> Tally:
    out = Tally()
    sums = out.sums
    runs: dict[str, list[Run]] = {}
    reviews: dict[str, list[Review]] = {}
    costs: dict[str, list[Cost]] = {}
    for ev in events:
        if isinstance(ev, Run):
            runs.setdefault(ev.workflow, []).append(ev)
        elif isinstance(ev, Review):
            reviews.setdefault(ev.workflow, []).append(ev)
        elif isinstance(ev, Cost):
            costs.setdefault(ev.workflow, []).append(ev)
        else:  # KPIs are exported through the detection gauges, not as counters
            sums["events_ingested", ev.workflow, "kpi"] += 1
    for wf, some_runs in runs.items():
        _runs(out, wf, some_runs)
    for wf, some_reviews in reviews.items():
        _reviews(sums, wf, some_reviews)
    for wf, some_costs in costs.items():
        sums["events_ingested", wf, "cost"] += len(some_costs)
        _spend(sums, wf, some_costs)
        for model in [c.model or "unknown" for c in some_costs if c.cost_usd is None]:
            sums["cost_unpriced", model] += 1
    return out


def _runs(out: Tally, wf: str, runs: list[Run]) -> None:
    sums = out.sums
    sums["events_ingested", wf, "run"] += len(runs)
    for status, n in _counts([r.status for r in runs]):
        sums["runs", wf, status] += n
    retries = sum([r.retries for r in runs])
    if retries:
        sums["retries", wf] += retries
    for outcome, n in _counts([r.validation for r in runs if r.validation is not None]):
        sums["validations", wf, outcome] += n
    for team, n in _counts([r.team for r in runs if r.team]):
        sums["team_runs", wf, team] += n
    _spend(sums, wf, runs)
    latencies = [r.latency_ms / 1000.0 for r in runs if r.latency_ms is not None]
    if latencies:
        out.latencies.setdefault(wf, []).extend(latencies)


def _reviews(sums: Sums, wf: str, reviews: list[Review]) -> None:
    sums["events_ingested", wf, "review"] += len(reviews)
    for decision, n in _counts([r.decision for r in reviews]):
        sums["reviews", wf, decision] += n
    saved = sum([r.time_saved_s for r in reviews if r.time_saved_s and r.time_saved_s > 0])
    if saved:
        sums["time_saved", wf] += saved


def _counts(labels: list[str]) -> Iterable[tuple[str, int]]:
    return CountOf(labels).items()


def _spend(sums: Sums, wf: str, records: Sequence[Run | Cost]) -> None:
    """Spend and tokens by model; one model per workflow is the usual case."""
    models = [r.model or "unknown" for r in records]
    for model, some in group_by(models, records).items():
        cost = sum([r.cost_usd for r in some if r.cost_usd])
        if cost:
            sums["cost_usd", wf, model] += cost
        tokens_in = sum([r.input_tokens for r in some if r.input_tokens])
        if tokens_in:
            sums["tokens", wf, model, "input"] += tokens_in
        tokens_out = sum([r.output_tokens for r in some if r.output_tokens])
        if tokens_out:
            sums["tokens", wf, model, "output"] += tokens_out
