"""Silence benchmark: false ``no_data`` warnings on healthy traffic, and delay after a stop.

Seeded traffic per workflow: Poisson events per minute around a daily and weekly volume
profile (a nightly lull at 10 % of the day's mean, a peak near 2x, weekends at 30 %), a
day-to-day volume multiplier (gamma, CV 0.2), and a random phase per workflow (its hour of
week), so lulls and weekends fall at every UTC hour. A detection pass runs every
``--step`` simulated seconds (300) on the minutes written since the last pass, through
``detectors.silence.evaluate`` with the state round-tripped as the engine does.

* healthy: 30 days each, WARN episodes counted (an interval: exact Poisson, 95 %), per
  workflow-month;
* stopped: the same traffic stops for good at a uniform time in days 15-29 (hour-of-week
  profile) or days 2-13 (hour of day, weekdays/weekends apart); delay = first WARN - stop.

    python bench/silence.py                 # 200 workflows x 30 days at 1000 and 50 a day
    python bench/silence.py --workflows 20  # quicker
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from detectors.config import DetectionConfig
from detectors.family import WorkflowInput
from detectors.silence import KEY, evaluate
from detectors.types import Rollup, Status

T0 = 1_793_577_600  # Monday 2026-11-02 00:00 UTC
DAY = 86_400
# relative volume per local hour of a weekday (mean 1 over the day): a lull at night
NIGHT_TO_NOON = (0.1, 0.1, 0.1, 0.1, 0.1, 0.2, 0.4, 0.8, 1.3, 1.7, 1.9, 2.0)
NOON_TO_NIGHT = (2.0, 2.0, 1.9, 1.8, 1.6, 1.4, 1.2, 1.0, 0.8, 0.6, 0.4, 0.2)
DAY_SHAPE = np.array([*NIGHT_TO_NOON, *NOON_TO_NIGHT])
DAY_SHAPE = DAY_SHAPE / DAY_SHAPE.mean()
WEEKEND = 0.3
DAY_CV = 0.2


def minute_counts(rng: np.random.Generator, per_day: float, days: int) -> np.ndarray:
    """Events per minute from T0 for ``days`` days, one workflow."""
    phase = int(rng.integers(0, 168))  # the workflow's local hour of week at T0
    minutes = np.arange(days * 1440)
    local_hour = (minutes // 60 + phase) % 168
    weekday = local_hour // 24
    shape = DAY_SHAPE[local_hour % 24] * np.where(weekday >= 5, WEEKEND, 1.0)
    shape = shape / shape.mean()
    local_day = (minutes // 60 + phase) // 24
    day_mult = rng.gamma(1 / DAY_CV**2, DAY_CV**2, size=int(local_day.max()) + 1)
    counts: np.ndarray = rng.poisson(per_day / 1440 * shape * day_mult[local_day])
    return counts


@dataclass(frozen=True, slots=True)
class Run:
    warns: int  # WARN episodes
    first_warn: float | None  # epoch of the first WARN after ``stop`` (stopped runs)
    stop: float | None


def replay(counts: np.ndarray, step: int, stop: float | None) -> Run:
    """Run passes every ``step`` seconds over one workflow's minutes (zero after ``stop``)."""
    cfg = DetectionConfig()
    states: dict[tuple[str, str], dict[str, object]] = {}
    status = Status.UNKNOWN
    warns = 0
    first_warn = None
    nz = np.flatnonzero(counts)
    buckets = (T0 + 60 * nz).tolist()
    values = counts[nz].tolist()
    i = 0
    end = T0 + 60 * len(counts)
    for now in range(T0 + step, end + 1, step):
        rows = []
        while i < len(buckets) and buckets[i] + 60 <= now:
            if stop is None or buckets[i] < stop:
                rows.append(Rollup("wf", "runs", buckets[i], values[i], values[i]))
            i += 1
        found, new = evaluate(WorkflowInput("wf", {"runs": rows}, states, cfg, float(now)))
        if not found:
            continue  # no event yet
        f = found[0]
        states = {KEY: dict(new[KEY])}
        if f.status is Status.WARN and status is not Status.WARN:
            warns += 1
            if stop is not None and now >= stop and first_warn is None:
                first_warn = float(now)
                break  # the delay is measured; the rest of a dead stream adds nothing
        status = f.status
    return Run(warns, first_warn, stop)


def _one(args: tuple[int, float, int, int, str]) -> Run:
    seed, per_day, days, step, mode = args
    rng = np.random.default_rng(seed)
    counts = minute_counts(rng, per_day, days)
    stop = None
    if mode == "stop_week":
        stop = float(T0 + int(rng.integers(15 * DAY, 29 * DAY)))
    elif mode == "stop_day":
        stop = float(T0 + int(rng.integers(2 * DAY, 13 * DAY)))
    return replay(counts, step, stop)


def run_many(
    workflows: int, per_day: float, days: int, step: int, mode: str, seed: int, jobs: int = 1
) -> list[Run]:
    args = [(seed * 100_003 + k, per_day, days, step, mode) for k in range(workflows)]
    if jobs <= 1:
        return [_one(a) for a in args]
    with ProcessPoolExecutor(jobs) as pool:
        return list(pool.map(_one, args, chunksize=4))


def poisson_interval(k: int, level: float = 0.95) -> tuple[float, float]:
    """Exact (Garwood) interval for a Poisson count."""
    from scipy import stats

    a = (1 - level) / 2
    lo = 0.0 if k == 0 else float(stats.chi2.ppf(a, 2 * k) / 2)
    return lo, float(stats.chi2.ppf(1 - a, 2 * k + 2) / 2)


def delays(runs: Sequence[Run]) -> dict[str, float]:
    got = sorted(
        (r.first_warn - r.stop) / 3600
        for r in runs
        if r.first_warn is not None and r.stop is not None
    )
    missed = len(runs) - len(got)
    q = np.quantile(got, [0.5, 0.9]) if got else [math.nan, math.nan]
    return {
        "median_h": float(q[0]),
        "p90_h": float(q[1]),
        "max_h": got[-1] if got else math.nan,
        "missed": missed,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workflows", type=int, default=200)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--step", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    for per_day in (1000.0, 50.0):
        t = time.perf_counter()
        healthy = run_many(
            args.workflows, per_day, args.days, args.step, "healthy", args.seed, args.jobs
        )
        warns = sum(r.warns for r in healthy)
        months = args.workflows * args.days / 30
        lo, hi = poisson_interval(warns)
        print(
            f"{per_day:>6.0f}/day healthy: {warns} false warns in {months:.0f} workflow-months"
            f" = {warns / months:.4f} (95 % {lo / months:.4f}-{hi / months:.4f})"
            f"  [{time.perf_counter() - t:.0f} s]"
        )
        for mode in ("stop_week", "stop_day"):
            runs = run_many(
                args.workflows, per_day, args.days, args.step, mode, args.seed + 7, args.jobs
            )
            early = sum(r.warns - (r.first_warn is not None) for r in runs)
            d = delays(runs)
            print(
                f"{per_day:>6.0f}/day {mode}: delay median {d['median_h']:.2f} h, p90 "
                f"{d['p90_h']:.2f} h, max {d['max_h']:.2f} h, missed {d['missed']}, "
                f"warns before the stop {early}"
            )


if __name__ == "__main__":
    main()
