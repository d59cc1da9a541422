"""What each console chart plots: a measure turns a workflow's step totals into one value
per step, and names the finding whose baseline it is drawn against.

The five headline measures are the ones a team lead asks about first; every other rolled-up
signal is charted on the workflow page by its kind (a rate, a mean, or a count per day).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from detectors import signals as sig
from monitor.console.charts import Point
from monitor.console.series import StepTotals

DAY: Final = 86_400.0
Steps = Mapping[str, Mapping[int, StepTotals]]  # signal -> step start -> totals


@dataclass(frozen=True, slots=True)
class Measure:
    key: str  # the chart's id in the page (and the signal name for non-headline charts)
    title: str
    signals: tuple[str, ...]  # rolled-up signals it reads
    finding_signal: str | None  # the findings drawn with it (baseline, change point)
    value: Callable[[Steps, int, float], float | None]  # (steps, step start, step length)
    fmt: Callable[[float], str]


def _rate(signal: str) -> Callable[[Steps, int, float], float | None]:
    def value(steps: Steps, at: int, _length: float) -> float | None:
        found = steps.get(signal, {}).get(at)
        return found.successes / found.count if found and found.count else None

    return value


def _mean(signal: str) -> Callable[[Steps, int, float], float | None]:
    def value(steps: Steps, at: int, _length: float) -> float | None:
        found = steps.get(signal, {}).get(at)
        return found.sum / found.count if found and found.count else None

    return value


def _per_day(signal: str) -> Callable[[Steps, int, float], float | None]:
    """Count per day; a step with no rows is 0 (no runs), not missing."""

    def value(steps: Steps, at: int, length: float) -> float | None:
        found = steps.get(signal, {}).get(at)
        return (found.count if found else 0) * DAY / length

    return value


def _cost_per_run(steps: Steps, at: int, _length: float) -> float | None:
    runs = steps.get(sig.RUNS, {}).get(at)
    spend = steps.get(sig.SPEND_USD, {}).get(at)
    if not runs or not runs.count:
        return None
    return (spend.sum if spend else 0.0) / runs.count


def percent(v: float) -> str:
    return f"{v * 100:.1f}%"


def usd(v: float) -> str:
    return f"${v:.2g}" if abs(v) < 0.01 else f"${v:,.2f}"


def plain(v: float) -> str:
    return f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"


HEADLINES: Final = (
    Measure("edit-rate", "Edit rate", (sig.EDITED,), sig.EDITED, _rate(sig.EDITED), percent),
    Measure(
        "groundedness",
        "Groundedness",
        (sig.GROUNDEDNESS,),
        sig.GROUNDEDNESS,
        _mean(sig.GROUNDEDNESS),
        plain,
    ),
    Measure("error-rate", "Error rate", (sig.ERRORS,), sig.ERRORS, _rate(sig.ERRORS), percent),
    Measure(
        "cost-per-run",
        "Cost per run",
        (sig.RUNS, sig.SPEND_USD),
        "cost_per_run",
        _cost_per_run,
        usd,
    ),
    Measure("runs-per-day", "Runs per day", (sig.RUNS,), None, _per_day(sig.RUNS), plain),
)
HEADLINE_SIGNALS: Final = frozenset(s for m in HEADLINES for s in m.signals)
# rolled up but charted through a headline, or counters with no per-run meaning
NOT_CHARTED: Final = HEADLINE_SIGNALS | {sig.UNPRICED}


def measure_for(signal: str) -> Measure:
    """The chart of any other rolled-up signal, by its kind."""
    if signal in sig.RATE_SIGNALS or signal.startswith(sig.ACTION_ERRORS_PREFIX):
        return Measure(signal, signal, (signal,), signal, _rate(signal), percent)
    if signal.startswith(sig.TEAM_RUNS_PREFIX):
        return Measure(signal, f"{signal} per day", (signal,), signal, _per_day(signal), plain)
    return Measure(signal, signal, (signal,), signal, _mean(signal), plain)


def plot(measure: Measure, steps: Steps, start: float, end: float, step: int) -> list[Point]:
    """One point per step in ``[start, end)``, at the middle of the part of the step inside
    the range; a step cut by either end is measured over that part only (a per-day count
    would read low otherwise)."""
    out = []
    first = int(start) - int(start) % step
    for at in range(first, int(end), step):
        begin, finish = max(float(at), start), min(float(at + step), end)
        if finish <= begin:
            continue
        out.append(Point((begin + finish) / 2, measure.value(steps, at, finish - begin)))
    return out
