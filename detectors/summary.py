"""One sentence per finding that a team lead understands (``Finding.summary``).

``summarize(finding, now)`` reads the finding's fields and evidence and says what was
measured, over how large a recent sample, against which baseline (and where it came from),
how close the detector is to alarm, and when the change started. An ``unknown`` finding
says why it is unknown. Times are UTC, ``HH:MM``, with the date when it is not ``now``'s.

It is pure and never raises: evidence keys may be missing or of the wrong type (older
states, other detectors' conventions), fields may be None or NaN; the sentence then says
less. Sentences are at most ``MAX_LEN`` characters: optional clauses are dropped first.

Example:
    >>> from detectors.types import Status
    >>> f = Finding("invoices", "edited", "cusum", Status.CRITICAL, value=0.31, baseline=0.2,
    ...             statistic=6.1, threshold=5.4, since=1_795_424_400.0, samples=412,
    ...             evidence={"baseline_source": "declared"})
    >>> for clause in summarize(f, now=1_795_428_000.0).split("; "):
    ...     print(clause)
    edit rate 0.31 over the last 412 reviews vs baseline 0.20 (declared)
    CUSUM 6.1 >= threshold 5.4
    started about 09:00 UTC
    >>> learning = Finding("invoices", "errors", "cusum", Status.UNKNOWN, samples=120,
    ...                    evidence={"reason": "learning baseline", "learned": 120, "needed": 500})
    >>> summarize(learning)
    'error rate: learning the baseline: 120 of 500 runs'
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from detectors import signals as sig
from detectors.types import Finding, Status

MAX_LEN: Final = 160
_NAME_MAX: Final = 40  # a team, action or KPI name longer than this is shortened
_LATEST_EPOCH: Final = 253_402_300_799.0  # 9999-12-31T23:59:59Z: datetime's range

NAMES: Final[Mapping[str, str]] = {
    sig.EDITED: "edit rate",
    sig.REJECTED: "rejection rate",
    sig.APPROVED: "approval rate",
    sig.VALIDATION_FAILED: "validation failure rate",
    sig.ESCALATED: "escalation rate",
    sig.ERRORS: "error rate",
    sig.TIMEOUTS: "timeout rate",
    sig.RETRIES: "retry rate",
    sig.LATENCY_MS: "mean latency (ms)",
    sig.GROUNDEDNESS: "groundedness",
    sig.CONFIDENCE: "confidence",
    sig.EDIT_RATIO: "mean edit ratio",
    sig.REVIEW_MS: "mean review time (ms)",
    sig.TIME_SAVED_S: "time saved per review (s)",
    sig.SPEND_USD: "cost per priced call",
    sig.TOKENS: "tokens per priced call",
    sig.UNPRICED: "unpriced calls",
    sig.RUNS: "runs",
    "cost_per_run": "cost per run",
    "active_users": "active users",
    "model_version": "model/prompt version",
    "events": "events",
}
_PREFIXES: Final = (
    (sig.TEAM_RUNS_PREFIX, "runs of team {}"),
    (sig.ACTION_ERRORS_PREFIX, "failure rate of action {}"),
    (sig.KPI_PREFIX, "KPI {}"),
)
# what one observation of a signal is: the unit of "over the last N ..."
_REVIEW_SIGNALS: Final = frozenset(
    {sig.EDITED, sig.REJECTED, sig.APPROVED, sig.EDIT_RATIO, sig.REVIEW_MS, sig.TIME_SAVED_S}
)
_PRICED_SIGNALS: Final = frozenset({sig.SPEND_USD, sig.TOKENS, sig.UNPRICED})
_RUN_SIGNALS: Final = frozenset(
    {
        sig.RUNS,
        sig.ERRORS,
        sig.TIMEOUTS,
        sig.RETRIES,
        sig.LATENCY_MS,
        sig.GROUNDEDNESS,
        sig.CONFIDENCE,
        sig.VALIDATION_FAILED,
        sig.ESCALATED,
        "cost_per_run",
    }
)
_MONEY_SIGNALS: Final = frozenset({sig.SPEND_USD, "cost_per_run"})
_SOURCES: Final = {
    "declared": "declared",
    "window": "from the baseline window",
    "learned": "learned",
    "previous_version": "previous model version",
}


# --- reading evidence without trusting it -------------------------------------------


def _float(data: Any, key: str) -> float | None:
    """A finite number at ``data[key]``, else None (missing, bool, text, NaN, huge int)."""
    v = data.get(key) if isinstance(data, Mapping) else None
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    try:
        x = float(v)
    except OverflowError:  # an int beyond double range
        return None
    return x if math.isfinite(x) else None


def _int(data: Any, key: str) -> int | None:
    """A count at ``data[key]``, rounded (expected delays are fractional observations)."""
    x = _float(data, key)
    return round(x) if x is not None and abs(x) < 1e15 else None


def _str(data: Any, key: str) -> str | None:
    v = data.get(key) if isinstance(data, Mapping) else None
    return v if isinstance(v, str) and v else None


def _strs(data: Any, key: str) -> list[str]:
    v = data.get(key) if isinstance(data, Mapping) else None
    if not isinstance(v, list | tuple):
        return []
    return [x for x in v if isinstance(x, str) and x]


def _finite(x: Any) -> float | None:
    return _float({"x": x}, "x")


# --- wording -------------------------------------------------------------------------


def _shorten(text: str, limit: int = _NAME_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def signal_name(signal: str) -> str:
    """The name a reader knows: ``edited`` -> "edit rate", ``team_runs.ap`` -> "runs of team
    ap"; unknown signals keep their own name."""
    if signal in NAMES:
        return NAMES[signal]
    for prefix, pattern in _PREFIXES:
        if signal.startswith(prefix) and len(signal) > len(prefix):
            return pattern.format(_shorten(signal[len(prefix) :]))
    return _shorten(signal or "signal")


def _unit(signal: str) -> tuple[str, str]:
    """(singular, plural) of one observation of ``signal``."""
    if signal in _REVIEW_SIGNALS:
        return "review", "reviews"
    if signal in _PRICED_SIGNALS:
        return "priced call", "priced calls"
    if signal in _RUN_SIGNALS or signal.startswith(
        (sig.ACTION_ERRORS_PREFIX, sig.TEAM_RUNS_PREFIX)
    ):
        return "run", "runs"
    if signal.startswith(sig.KPI_PREFIX):
        return "value", "values"
    return "observation", "observations"


def _count(n: int, unit: tuple[str, str]) -> str:
    return f"{n:,} {unit[0] if n == 1 else unit[1]}"


def _num(x: float | None, money: bool = False) -> str:
    """Enough digits to compare: 0.20, 0.012, 812, 1,234; "n/a" for None or NaN."""
    x = _finite(x)
    if x is None:
        return "n/a"
    a = abs(x)
    if a >= 1e6:
        s = f"{x:.3g}"
    elif x == int(x) and (a >= 1 or x == 0) and not money:
        s = f"{int(x):,}"
    elif a >= 100:
        s = f"{x:,.0f}"
    elif a >= 10 and not money:  # money keeps its cents below $100
        s = f"{x:.1f}"
    elif a >= 0.1 or a == 0:
        s = f"{x:.2f}"
    else:
        s = f"{x:#.2g}"  # two significant digits, kept: 0.0080 beside 0.012
    if money:
        return f"-${s[1:]}" if s.startswith("-") else f"${s}"
    return s


def _stat(x: float | None) -> str:
    x = _finite(x)
    return "n/a" if x is None else (f"{x:.1f}" if abs(x) < 1000 else _num(x))


def _times(x: float | None) -> str:
    x = _finite(x)
    return "n/a" if x is None else (f"{x:.1f}x" if abs(x) < 1000 else f"{_num(x)}x")


def _percent(p: float) -> str:
    return f"{p * 100:.4g}%"


def _moment(ts: float | None) -> dt.datetime | None:
    ts = _finite(ts)
    if ts is None or not 0 <= ts <= _LATEST_EPOCH:
        return None
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC)


def clock(ts: float | None, now: float | None) -> str | None:
    """``HH:MM UTC``, with the date in front unless ``ts`` falls on ``now``'s day (UTC);
    None for a missing or impossible time."""
    t = _moment(ts)
    if t is None:
        return None
    today = _moment(now)
    if today is not None and today.date() == t.date():
        return t.strftime("%H:%M UTC")
    return t.strftime("%Y-%m-%d %H:%M UTC")


def duration(seconds: float | None) -> str | None:
    """45 s, 12 min, 2 h 10 min, 3 d 4 h."""
    s = _finite(seconds)
    if s is None or s < 0:
        return None
    if s < 90:
        return f"{s:.0f} s"
    minutes = round(s / 60)
    if minutes < 120:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days:,} d {hours} h" if hours else f"{days:,} d"


def _last(seconds: int | None) -> str:
    """ "the last hour", "the last 30 min"; "the recent window" when its length is unknown."""
    if seconds == 3600:
        return "the last hour"
    if seconds == 86_400:
        return "the last day"
    span = duration(seconds) if seconds else None
    return f"the last {span}" if span else "the recent window"


def _window_start(window: str | None) -> dt.datetime | None:
    """Start of an ISO window "2026-11-23T08:00Z/2026-11-23T09:00Z" (detectors' format)."""
    if not window or "/" not in window:
        return None
    try:
        return dt.datetime.strptime(window.split("/", 1)[0], "%Y-%m-%dT%H:%MZ").replace(
            tzinfo=dt.UTC
        )
    except ValueError:
        return None


def _labels(items: Sequence[str]) -> str:
    if not items:
        return "none"
    more = f" (+{len(items) - 1} more)" if len(items) > 1 else ""
    return _shorten(items[0]) + more


def _fit(core: Sequence[str], optional: Sequence[str] = ()) -> str:
    """Join clauses with "; ", adding optional ones while the sentence stays within
    MAX_LEN; whitespace (newlines in a name) becomes single spaces."""
    text = " ".join("; ".join(c for c in core if c).split())
    for clause in optional:
        candidate = f"{text}; {' '.join(clause.split())}" if text else clause
        if clause and len(candidate) <= MAX_LEN:
            text = candidate
    return text if len(text) <= MAX_LEN else text[: MAX_LEN - 1] + "…"


# --- one composer per detector -------------------------------------------------------

Composer = Callable[[Finding, Mapping[str, Any], float | None], str]


def _source(ev: Mapping[str, Any], unit: tuple[str, str]) -> str | None:
    src = _str(ev, "baseline_source")
    n = _int(ev, "baseline_samples")
    if src is None:
        return None
    text = _SOURCES.get(src, _shorten(src))
    if n is not None and n > 0 and src != "declared":
        sep = " from " if src == "learned" else ", "
        text += f"{sep}{_count(n, unit)}"
    return text


def _unknown(f: Finding, ev: Mapping[str, Any], name: str, unit: tuple[str, str]) -> str:
    """Why a finding cannot be judged yet, in its own words where the detector gave some."""
    reason = _str(ev, "reason") or ""
    learned, needed = _int(ev, "learned"), _int(ev, "needed")
    recent = ev.get("recent")
    if "learn" in reason.lower() or (learned is not None and needed is not None):
        if learned is not None and needed is not None:
            return f"{name}: learning the baseline: {learned:,} of {_count(needed, unit)}"
        if learned is not None:
            return f"{name}: learning the baseline ({_count(learned, unit)} so far)"
        return f"{name}: learning the baseline"
    if reason.lower().startswith("no ") and ("window" in reason or "data" in reason):
        return f"{name}: no {unit[1]} in {_last(_int(recent, 'window_s'))}"
    if reason:
        return f"{name}: {_shorten(reason, 100)}"
    if f.samples == 0 and (_int(recent, "samples") or 0) == 0:
        return f"{name}: no {unit[1]} in {_last(_int(recent, 'window_s'))}"
    return f"{name}: not enough data to judge yet"


def _cusum(f: Finding, ev: Mapping[str, Any], now: float | None) -> str:
    name, unit = signal_name(f.signal), _unit(f.signal)
    money = f.signal in _MONEY_SIGNALS
    recent = ev.get("recent")
    n = _int(recent, "samples")
    n = max(f.samples, 0) if n is None else max(n, 0)
    value = _float(recent, "value")
    value = _finite(f.value) if value is None else value
    baseline = _finite(f.baseline)
    if f.status is Status.UNKNOWN or baseline is None:
        why = _unknown(f, ev, name, unit)
        if baseline is None:
            return _fit([why])
        return _fit([why], [f"baseline {_num(baseline, money)}"])
    source = _source(ev, unit)
    # a judged chart with an empty recent window (data stopped after the verdict) says so
    # rather than printing "n/a over the last 0 ..."
    measured = (
        f"{name} {_num(value, money)} over the last {_count(n, unit)}"
        if value is not None
        else f"{name}: no {unit[1]} in {_last(_int(recent, 'window_s'))}"
    )
    head = f"{measured} vs baseline {_num(baseline, money)}" + (f" ({source})" if source else "")
    stat, threshold = _finite(f.statistic), _finite(f.threshold)
    optional: list[str] = []
    delay = _int(ev, "expected_delay_obs")
    if f.status is Status.CRITICAL:
        # during an episode the statistic may dip under the threshold again (the finding
        # stays critical until recovery): say it crossed, not that it is above
        dipped = stat is not None and threshold is not None and stat < threshold
        chart = f"CUSUM {_stat(stat)} >= threshold {_stat(threshold)}"
        if dipped:
            chart = f"CUSUM crossed threshold {_stat(threshold)} (now {_stat(stat)})"
        started = clock(_float(ev, "changepoint") or f.since, now)
        core = [head, chart, f"started about {started}" if started else ""]
    elif f.status is Status.WARN:
        warn_at = _float(ev, "warn_threshold")
        chart = f"CUSUM {_stat(stat)}" + (f", warn at {_stat(warn_at)}" if warn_at else "")
        chart += f", alarm at {_stat(threshold)}"
        core = [head, chart]
        if ev.get("window_significant") is True:
            optional.append("the last hour differs significantly from the baseline")
        if delay is not None and delay > 0:
            optional.append(f"expected delay ~{_count(delay, unit)}")
    else:
        core = [head, f"CUSUM {_stat(stat)}, alarm at {_stat(threshold)}"]
    historic = clock(_float(ev, "historic_alarm"), now)
    if historic:
        optional.append(f"old data crossed at {historic} but describes the past")
    return _fit(core, optional)


def _burn_rate(f: Finding, ev: Mapping[str, Any], now: float | None) -> str:
    name, unit = signal_name(f.signal), _unit(f.signal)
    slo = _float(ev, "slo")
    burn_rates = ev.get("burn_rates")
    burn = _finite(f.value)
    burn = _float(burn_rates, "1h") if burn is None else burn
    slo_text = f"the {_percent(slo)} SLO" if slo is not None and 0 < slo < 1 else "the SLO"
    reason = _str(ev, "reason")
    if f.status is Status.UNKNOWN or burn is None:
        if reason:
            return _fit([f"{name}: {_shorten(reason, 100)}"])
        return _fit([f"{name}: no {unit[1]} in the last 3 days to judge {slo_text}"])
    rate = f" {_num(burn * (1 - slo))}" if slo is not None and 0 < slo < 1 else ""
    # the verdict rests on one rule's long window (burn_rate.evaluate_burn_rates' "rule")
    rule = _str(ev, "rule")
    span = rule.split("_")[-1] if rule else "1h"
    span_text = {"1h": "hour", "6h": "6 hours", "1d": "day", "3d": "3 days"}.get(span, span)
    head = f"{name}{rate} over the last {span_text} burns {slo_text}'s error budget {_times(burn)}"
    fired = _strs(ev, "fired")
    optional = [f"{_count(max(f.samples, 0), unit)} in that window"]
    if reason:
        optional.insert(0, _shorten(reason, 100))
    if fired and f.status in (Status.CRITICAL, Status.WARN):
        return _fit([head, "fired: " + ", ".join(_shorten(x, 20) for x in fired[:4])], optional)
    threshold = _finite(f.threshold)
    page = f"pages at {_times(threshold)}" if threshold is not None else ""
    return _fit([head, page], optional)


def _hourly_spend(f: Finding, ev: Mapping[str, Any], now: float | None) -> str:
    start = _window_start(f.window)
    hour = f"{start:%H}:00-{(start.hour + 1) % 24:02d}:00" if start else "the last hour"
    value, baseline = _finite(f.value), _finite(f.baseline)
    reason = _str(ev, "reason")
    if f.status is Status.UNKNOWN or value is None or baseline is None:
        return _fit([f"hourly spend: {_shorten(reason or 'not enough history yet', 100)}"])
    seasonal = ev.get("seasonal")
    usual = "" if not isinstance(seasonal, bool) else " (all past hours)"
    if seasonal is True:
        usual = " (same hour of week)"
    z, threshold = _finite(f.statistic), _finite(f.threshold)
    op = ">=" if f.status in (Status.WARN, Status.CRITICAL) else "<"
    return _fit(
        [
            f"hourly spend {_num(value, True)} in {hour} vs usual {_num(baseline, True)}{usual}",
            f"robust z {_stat(z)} {op} {_stat(threshold)}",
        ]
    )


def _projection(f: Finding, ev: Mapping[str, Any], now: float | None) -> str:
    spent, budget = _float(ev, "spent"), _float(ev, "budget")
    budget = _finite(f.baseline) if budget is None else budget
    projected = _finite(f.value)
    reason = _str(ev, "reason")
    if f.status is Status.UNKNOWN or budget is None:
        return _fit([f"monthly spend: {_shorten(reason or 'no spend recorded', 100)}"])
    so_far = f"{_num(spent, True)} spent so far" if spent is not None else ""
    if f.status is Status.CRITICAL and spent is not None:
        over = f"monthly spend {_num(spent, True)} is over the {_num(budget, True)} budget"
        return _fit([over], [f"projected {_num(projected, True)} by month end"])
    verdict = "over" if f.status is Status.WARN else "within"
    head = f"monthly spend projected {_num(projected, True)}, {verdict} the budget"
    return _fit([f"{head} {_num(budget, True)}", so_far])


def _ratio(f: Finding, ev: Mapping[str, Any], now: float | None) -> str:
    name, unit = signal_name(f.signal), _unit(f.signal)
    money = f.signal in _MONEY_SIGNALS
    value, baseline = _finite(f.value), _finite(f.baseline)
    reason = (_str(ev, "reason") or "").lower()
    if f.status is Status.UNKNOWN or value is None or baseline is None:
        if "learn" in reason:
            return _fit([f"{name}: learning the baseline"])
        if reason.startswith("no "):
            return _fit([f"{name}: no {unit[1]} in the last hour"])
        return _fit([_unknown(f, ev, name, unit)])
    source = _source(ev, unit) or "learned"
    head = (
        f"{name} {_num(value, money)} over the last {_count(max(f.samples, 0), unit)} "
        f"vs baseline {_num(baseline, money)} ({source})"
    )
    return _fit([head, f"warn above {_num(_finite(f.threshold), money)}"])


def _daily(f: Finding, ev: Mapping[str, Any], now: float | None) -> str:
    name = signal_name(f.signal)
    start = _window_start(f.window)
    day = f"on {start:%Y-%m-%d}" if start else "on the last day"
    value, baseline = _finite(f.value), _finite(f.baseline)
    reason = _str(ev, "reason")
    if f.status is Status.UNKNOWN or value is None or baseline is None:
        return _fit([f"{name}: {_shorten(reason or 'not enough history yet', 100)}"])
    same = ev.get("same_weekday")
    usual = "" if not isinstance(same, bool) else " (same weekday)" if same else " (recent days)"
    z, threshold = _finite(f.statistic), _finite(f.threshold)
    op = "<=" if f.status in (Status.WARN, Status.CRITICAL) else ">"
    core = [f"{name} {_num(value)} {day} vs usual {_num(baseline)}{usual}"]
    core.append(f"robust z {_stat(z)} {op} {_stat(threshold)}")
    return _fit(core, [reason] if reason else [])


def _version(f: Finding, ev: Mapping[str, Any], now: float | None) -> str:
    new, previous = _strs(ev, "new"), _strs(ev, "previous")
    current = _strs(ev, "current")
    if f.status in (Status.WARN, Status.CRITICAL) and new:
        since = clock(f.since, now)
        core = [f"new model/prompt version {_labels(new)}, before: {_labels(previous)}"]
        return _fit(core, [f"seen since {since}"] if since else [])
    if current:
        return _fit([f"model/prompt version unchanged: {_labels(current)}"])
    reason = _str(ev, "reason")
    return _fit([f"model/prompt version: {_shorten(reason or 'none reported', 100)}"])


def _no_data(f: Finding, ev: Mapping[str, Any], now: float | None) -> str:
    name = signal_name(f.signal)
    silent = duration(_float(ev, "silent_s"))
    expected = _float(ev, "expected_events")
    last = clock(_float(ev, "last_event"), now)
    reason = _str(ev, "reason")
    if f.status in (Status.WARN, Status.CRITICAL):
        head = f"no {name} for {silent}" if silent else f"no {name} recently"
        core = [head + (f", about {_num(expected)} expected at the usual rate" if expected else "")]
        return _fit(core, [f"last one at {last}"] if last else [])
    if f.status is Status.OK:
        head = f"{name} arriving as usual"
        return _fit([head + (f", last at {last}" if last else "")])
    if "learn" in (reason or "").lower():
        learned, needed = _int(ev, "learned"), _int(ev, "needed")
        done = f": {learned:,} of {needed:,}" if learned is not None and needed else ""
        return _fit([f"{name}: learning the usual rate{done}"])
    return _fit([f"{name}: {_shorten(reason or 'too little history to judge silence', 100)}"])


def _generic(f: Finding, ev: Mapping[str, Any], now: float | None) -> str:
    name = signal_name(f.signal)
    reason = _str(ev, "reason")
    if f.status is Status.UNKNOWN and reason:
        return _fit([f"{name}: {_shorten(reason, 100)}"])
    value, baseline = _finite(f.value), _finite(f.baseline)
    head = f"{name} {_shorten(f.detector or 'detector', 30)} {f.status.value}"
    if value is not None:
        head += f": {_num(value)}" + (f" vs baseline {_num(baseline)}" if baseline else "")
    return _fit([head])


COMPOSERS: Final[Mapping[str, Composer]] = {
    "cusum": _cusum,
    "burn_rate": _burn_rate,
    "robust_z": _hourly_spend,
    "projection": _projection,
    "ratio": _ratio,
    "daily_robust_z": _daily,
    "version_change": _version,
    "no_data": _no_data,
}


def compose(f: Finding, now: float | None = None) -> str:
    """The sentence for ``f`` (may raise on a bug in a composer; ``summarize`` does not)."""
    ev = f.evidence if isinstance(f.evidence, Mapping) else {}
    return COMPOSERS.get(f.detector, _generic)(f, ev, now)


def summarize(f: Finding, now: float | None = None) -> str:
    """One sentence (at most MAX_LEN characters) that says what ``f`` found and why.

    A summary is wording, not detection: should a composer fail on evidence nobody
    foresaw, the pass still completes with a plainer sentence built from the fields alone
    (the property test in tests/test_summary.py runs ``compose`` unguarded).
    """
    try:
        return compose(f, now)
    except Exception:  # wording must never stop a detection pass
        return _fit([f"{signal_name(str(f.signal))} {f.detector!s}: {f.status}"])
