"""False alarms on healthy traffic and detection delays, through ``run_pass`` as scheduled.

    python bench/false_alarms.py --quick                 # smoke run, ~2 minutes on 2 cores
    python bench/false_alarms.py                         # 100 workflows x 30 days + delays
    python bench/false_alarms.py --label after --write   # adds/replaces a RESULTS.md section

Traffic comes from ``bench/traffic.py`` (seeded, vectorised, minute rollups as the store
writes them). Every pass is what ``monitor.detection.scheduler.Detection.run_once`` does in memory:
the rollups new since the last pass (buckets ``[now - pass_every, now)``), the states the
last pass returned, ``now`` = the pass time, ``model_versions`` (every label seen, as
``load_versions``) and ``active_users`` (as ``load_active_users``), ``DetectionConfig``
defaults unless flags say otherwise. Workflows are independent, so they are split over
``--processes`` worker processes; each worker runs its share of the fleet in one
``run_pass`` per pass (the scheduler runs the whole fleet in one: the Benjamini-Hochberg
step then sees fewer tests per pass, see the WARN notes in the output).

1. Healthy traffic: transitions into CRITICAL per (workflow, signal, detector), trips of the
   policy "any critical finding -> review" (one per transition of a workflow from no
   critical finding to at least one; the switch is restored at once), transitions into WARN
   (from ok/unknown), all per workflow-month (30 days) with exact 95 % Poisson intervals
   (chi-square), by signal and detector, against the budget in force; hours to the first
   verdict (first non-unknown finding) per signal.
2. Delays: a step in one parameter on day 5 (10:00 UTC, a Tuesday), after the charts
   learned; the baseline learned or declared; with or without a model version change at the
   change point; delay = observations of that signal from the change to the first pass with
   a critical finding on it (so it includes up to one pass interval of observations), against
   the exact optimum at the per-chart ARL0 in force (``evidence["budget"]["arl0"]`` when the
   engine reports it, else ``config.arl0``). Delay runs simulate only the watched signal (its
   chart sees exactly the rollups it would see in full traffic) and iid days (no
   overdispersion) so the optimum applies; ``--delay-overdispersion`` keeps it.
3. Runtime: engine and simulator seconds per simulated workflow-day.
"""

from __future__ import annotations

import os

# One BLAS thread per process (threshold calibrations solve small systems; two processes
# on two cores with OpenBLAS threads contend badly). Must be set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import datetime as dt
import json
import math
import multiprocessing as mp
import platform
import queue
import shlex
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final, Literal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scipy.stats import chi2

from bench.traffic import DAY, START, Change, TrafficSim, WorkflowProfile, healthy_fleet
from detectors import signals as sig
from detectors.config import DeclaredBaseline, DetectionConfig
from detectors.engine import run_pass
from detectors.stats.calibration import bernoulli_lattice, gaussian_arl, gaussian_threshold
from detectors.types import Finding, Status

ROOT: Final = Path(__file__).resolve().parents[1]
Key3 = tuple[str, str, str]  # workflow, signal, detector
SigDet = tuple[str, str]  # signal, detector
CHANGE_AT = START + 5 * DAY + 10 * 3600  # day 5, 10:00 UTC (a Tuesday); --change-day
NEW_VERSION: Final = "gpt-4o@2024-11-20/v3"
MONTH_DAYS: Final = 30.0


def parse_duration(text: str) -> int:
    """``"5m"``, ``"30s"``, ``"1h"`` or plain seconds -> seconds (a multiple of 60)."""
    units = {"s": 1, "m": 60, "h": 3600}
    value = int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)
    if value <= 0 or value % 60:
        raise argparse.ArgumentTypeError(f"--pass-every must be whole minutes, got {text!r}")
    return value


@dataclass(frozen=True, slots=True)
class Budget:
    """The flags that override ``DetectionConfig`` defaults (None: the default)."""

    false_alarms_per_month: float | None = None
    warn_false_alarms_per_month: float | None = None
    arl0: float | None = None

    def config(
        self,
        declared: Mapping[tuple[str, str], DeclaredBaseline] | None = None,
        pass_every: int = 300,
        slos: Mapping[str, float] | None = None,
    ) -> DetectionConfig:
        # as monitor.detection.scheduler.build_config: "the present" is the last 3 pass intervals
        kw: dict[str, Any] = {
            "declared": dict(declared or {}),
            "live_s": int(max(900, 3 * pass_every)),
            "slo_by_workflow": dict(slos or {}),
        }
        for name in ("false_alarms_per_month", "warn_false_alarms_per_month", "arl0"):
            if getattr(self, name) is not None:
                kw[name] = getattr(self, name)
        return DetectionConfig(**kw)


def poisson_ci(k: int, exposure: float, level: float = 0.95) -> tuple[float, float]:
    """Exact (Garwood) interval for a Poisson rate: ``k`` events over ``exposure``."""
    a = (1.0 - level) / 2.0
    lo = chi2.ppf(a, 2 * k) / 2.0 if k > 0 else 0.0
    hi = chi2.ppf(1.0 - a, 2 * k + 2) / 2.0
    return float(lo) / exposure, float(hi) / exposure


def budget_arl0(f: Finding) -> float | None:
    """The per-chart ARL0 the engine reports (contract: ``evidence["budget"]["arl0"]``)."""
    budget = f.evidence.get("budget")
    if isinstance(budget, dict) and isinstance(budget.get("arl0"), int | float):
        return float(budget["arl0"])
    return None


def is_window_warn(f: Finding) -> bool:
    """A WARN raised by the window test surviving Benjamini-Hochberg, not by the chart."""
    if f.status is not Status.WARN or f.evidence.get("window_significant") is not True:
        return False
    warn_at = f.evidence.get("warn_threshold")
    if not isinstance(warn_at, int | float):
        warn_at = f.threshold / 2 if f.threshold is not None else None
    return f.statistic is None or warn_at is None or f.statistic < warn_at


@dataclass
class Tracker:
    """Status transitions of findings pass by pass (what the benchmark counts)."""

    last: dict[Key3, Status] = field(default_factory=dict)
    tripped: dict[str, bool] = field(default_factory=dict)  # workflow had a critical last pass
    first_verdict: dict[Key3, float] = field(default_factory=dict)
    seen: set[Key3] = field(default_factory=set)
    critical: Counter[SigDet] = field(default_factory=Counter)
    critical_by_week: Counter[int] = field(default_factory=Counter)
    warn_chart: Counter[SigDet] = field(default_factory=Counter)
    warn_window: Counter[SigDet] = field(default_factory=Counter)
    trips: int = 0
    trip_causes: Counter[SigDet] = field(default_factory=Counter)
    arl0: list[float] = field(default_factory=list)

    def observe(self, findings: Iterable[Finding], now: float, start: float) -> None:
        critical_now: dict[str, list[SigDet]] = {}
        for f in findings:
            key = (f.workflow, f.signal, f.detector)
            sd = (f.signal, f.detector)
            before = self.last.get(key, Status.UNKNOWN)
            self.seen.add(key)
            if f.status is not Status.UNKNOWN and key not in self.first_verdict:
                self.first_verdict[key] = now - start
            if f.status is Status.CRITICAL:
                critical_now.setdefault(f.workflow, []).append(sd)
                if before is not Status.CRITICAL:
                    self.critical[sd] += 1
                    self.critical_by_week[int((now - start - 1) // (7 * DAY))] += (
                        1  # a pass ends a bucket
                    )
            elif f.status is Status.WARN and before in (Status.OK, Status.UNKNOWN):
                (self.warn_window if is_window_warn(f) else self.warn_chart)[sd] += 1
            if (
                f.detector == "cusum"
                and (a := budget_arl0(f)) is not None
                and len(self.arl0) < 50_000
            ):
                self.arl0.append(a)
            self.last[key] = f.status
        for wf in {f.workflow for f in findings}:
            hit = wf in critical_now
            if hit and not self.tripped.get(wf, False):
                self.trips += 1
                for sd in set(critical_now[wf]):
                    self.trip_causes[sd] += 1
            self.tripped[wf] = hit


@dataclass(frozen=True, slots=True)
class HealthyJob:
    shard: int
    shards: int
    workflows: int
    days: int
    pass_every: int
    seed: int
    budget: Budget


@dataclass
class HealthyResult:
    workflows: int
    days: int
    tracker: Tracker
    engine_s: float
    sim_s: float
    passes: int
    config_arl0: float
    budget: float
    warn_budget: float


ProgressQueue = Any  # a multiprocessing.Manager().Queue(): (job label, fraction done)


def met_slos(fleet: Sequence[WorkflowProfile]) -> dict[str, float]:
    """Each workflow's SLO as its team would set it: one it meets, with room (the error
    budget 1.5x its worse rate of errors and timeouts, on a 0.1 % grid). A workflow whose
    errors run above its SLO is burning its budget, and a burn-rate ticket is then a true
    alarm (measured at the default 99 % SLO with error rates of 0.5-2 %: 8.5 tickets a
    workflow-month, nearly all on the workflows above 1 %)."""
    return {
        p.name: 1.0 - math.ceil(1.5 * max(p.error_rate, p.timeout_rate) * 1000) / 1000
        for p in fleet
    }


def run_healthy(job: HealthyJob, progress: ProgressQueue | None = None) -> HealthyResult:
    fleet = healthy_fleet(job.workflows, job.seed)[job.shard :: job.shards]
    sim = TrafficSim(fleet, seed=job.seed)
    config = job.budget.config(pass_every=job.pass_every, slos=met_slos(fleet))
    tracker = Tracker()
    states: dict[Key3, dict[str, Any]] = {}
    engine_s = sim_s = 0.0
    passes = job.days * DAY // job.pass_every
    label = f"healthy {job.shard + 1}/{job.shards}"
    for i in range(1, passes + 1):
        now = START + i * job.pass_every
        t0 = time.perf_counter()
        rollups = sim.rollups(now - job.pass_every, now)
        versions, users = sim.model_versions(now), sim.active_users(now)
        t1 = time.perf_counter()
        findings, states = run_pass(
            rollups, states, config, now, model_versions=versions, active_users=users
        )
        t2 = time.perf_counter()
        tracker.observe(findings, now, START)
        sim_s += t1 - t0
        engine_s += t2 - t1
        if progress is not None and i % (DAY // job.pass_every) == 0:
            progress.put((label, i / passes))
    if progress is not None:
        progress.put((label, 1.0))
    return HealthyResult(
        len(fleet),
        job.days,
        tracker,
        engine_s,
        sim_s,
        passes,
        config.arl0,
        config.false_alarms_per_month,
        config.warn_false_alarms_per_month,
    )


# -- delays ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    param: str  # WorkflowProfile field
    signal: str
    before: float
    after: float
    sd: float | None = None  # per-observation sd of a value signal
    design: bool = False  # the engine's design shift (p1 = 1.5 p0; 0.7 sd)

    def optimum(self, arl0: float) -> float:
        """Exact best worst-case delay (observations) at ``arl0`` for this shift.

        Rates: the Bernoulli CUSUM for p0 -> p1 on its exact lattice (Moustakides: optimal
        for Lorden's criterion), zero-state ARL under p1. Means: the Gaussian CUSUM designed
        for the shift d = |mu1 - mu0| / sd, threshold for ``arl0``, zero-state ARL at d.
        """
        if self.after == self.before:
            return math.nan
        if self.sd is None:
            return bernoulli_lattice(self.before, self.after, arl0).arl1
        d = abs(self.after - self.before) / self.sd
        return gaussian_arl(gaussian_threshold(d, arl0).h_std, d / 2, mean_shift=d)


SCENARIOS: Final = (
    Scenario("edit rate 0.20->0.25", "edit_rate", sig.EDITED, 0.20, 0.25),
    Scenario("edit rate 0.20->0.30", "edit_rate", sig.EDITED, 0.20, 0.30, design=True),
    Scenario("edit rate 0.20->0.40", "edit_rate", sig.EDITED, 0.20, 0.40),
    Scenario("edit rate 0.20->0.60", "edit_rate", sig.EDITED, 0.20, 0.60),
    Scenario("groundedness 0.85->0.78", "groundedness", sig.GROUNDEDNESS, 0.85, 0.78, 0.10, True),
    Scenario("errors 0.01->0.05", "error_rate", sig.ERRORS, 0.01, 0.05),
)
NEUTRAL: Final = (
    Scenario("edit rate 0.20 (no shift)", "edit_rate", sig.EDITED, 0.20, 0.20),
    Scenario("groundedness 0.85 (no shift)", "groundedness", sig.GROUNDEDNESS, 0.85, 0.85, 0.10),
    Scenario("errors 0.01 (no shift)", "error_rate", sig.ERRORS, 0.01, 0.01),
)


@dataclass(frozen=True, slots=True)
class DelayJob:
    scenario: Scenario
    baseline: Literal["learned", "declared"]
    version_change: bool
    runs: int
    pass_every: int
    seed: int
    budget: Budget
    overdispersion: bool
    follow_days: float  # at most this long after the change
    cap_factor: float  # a run that has not alarmed after cap_factor x optimum obs is a miss


@dataclass
class DelayResult:
    job: DelayJob
    delays: list[int]  # cusum, detected runs
    delays_any: list[int]  # first critical on the signal by any detector
    misses: int
    critical_at_change: int  # runs already critical (a false alarm) when the change came
    false_before: int  # transitions into critical on the signal before the change
    arl0: list[float]  # per-chart ARL0 reported by the critical findings
    arl0_source: str
    optimum: float
    engine_s: float
    sim_s: float
    workflow_days: float


def delay_profiles(job: DelayJob) -> list[WorkflowProfile]:
    sc = job.scenario
    change = Change(
        CHANGE_AT,
        sc.param if sc.after != sc.before else None,
        sc.after,
        model_version=NEW_VERSION if job.version_change else None,
    )
    base = WorkflowProfile(name="x", utc_offset_h=0.0, changes=(change,))
    if not job.overdispersion:
        base = replace(base, rate_day_rel_sd=0.0, score_day_sd=0.0, log_day_sd=0.0)
    level: dict[str, Any] = {sc.param: sc.before}
    if sc.sd is not None:
        level[f"{sc.param}_sd"] = sc.sd
    base = replace(base, **level)
    tag = f"{'d' if job.baseline == 'declared' else 'l'}{'v' if job.version_change else 'n'}"
    return [replace(base, name=f"delay-{tag}-{i:03d}", seed=1_000 + i) for i in range(job.runs)]


def run_delay(job: DelayJob, progress: ProgressQueue | None = None) -> DelayResult:
    sc = job.scenario
    profiles = delay_profiles(job)
    declared: dict[tuple[str, str], DeclaredBaseline] = {}
    if job.baseline == "declared":
        for p in profiles:
            declared[(p.name, sc.signal)] = DeclaredBaseline(sc.before, sc.sd)
    config = job.budget.config(declared, job.pass_every)
    sim = TrafficSim(profiles, seed=job.seed, signals=frozenset({sc.signal}))
    # the optimum scales the miss cap; the ARL0 in force is only known from the findings, so
    # the cap uses config.arl0 (a budget-derived ARL0 above it only moves the cap later)
    cap_obs = job.cap_factor * (sc.optimum(config.arl0) if sc.after != sc.before else 1_000)
    states: dict[Key3, dict[str, Any]] = {}
    before: dict[str, Status] = {}  # cusum status on the signal at the last pass before the change
    done: dict[str, int | None] = {}  # workflow -> cusum delay (None: missed)
    any_delay: dict[str, int] = {}
    false_before = 0
    arl0: list[float] = []
    engine_s = sim_s = 0.0
    end = CHANGE_AT + job.follow_days * DAY
    now = START
    label = f"delay {sc.name} {job.baseline}{' +version' if job.version_change else ''}"
    passes = 0
    while now < end and len(done) < len(profiles):
        now += job.pass_every
        passes += 1
        t0 = time.perf_counter()
        rollups = sim.rollups(now - job.pass_every, now)
        versions = sim.model_versions(now)
        t1 = time.perf_counter()
        findings, states = run_pass(rollups, states, config, now, model_versions=versions)
        engine_s += time.perf_counter() - t1
        sim_s += t1 - t0
        for f in findings:
            if f.signal != sc.signal or f.workflow in done:
                continue
            wf, crit = f.workflow, f.status is Status.CRITICAL
            if now <= CHANGE_AT:
                if f.detector == "cusum":
                    false_before += crit and before.get(wf) is not Status.CRITICAL
                    before[wf] = f.status
                continue
            if crit and wf not in any_delay:
                any_delay[wf] = sim.count(wf, sc.signal, CHANGE_AT, now)
            if crit and f.detector == "cusum":
                done[wf] = sim.count(wf, sc.signal, CHANGE_AT, now)
                if (a := budget_arl0(f)) is not None:
                    arl0.append(a)
        if now > CHANGE_AT:
            for p in profiles:
                if p.name not in done and sim.count(p.name, sc.signal, CHANGE_AT, now) > cap_obs:
                    done[p.name] = None
        if progress is not None and passes % (DAY // job.pass_every) == 0:
            progress.put((label, min(1.0, (now - START) / (end - START))))
    if progress is not None:
        progress.put((label, 1.0))  # done (most runs stop before the follow period ends)
    at_change = {wf for wf, s in before.items() if s is Status.CRITICAL}
    detected = {wf: d for wf, d in done.items() if d is not None and wf not in at_change}
    misses = sum(1 for p in profiles if done.get(p.name) is None)
    source = "evidence budget.arl0" if arl0 else "config.arl0 (no budget in evidence)"
    used = statistics.median(arl0) if arl0 else config.arl0
    return DelayResult(
        job,
        sorted(detected.values()),
        sorted(d for wf, d in any_delay.items() if wf not in at_change),
        misses,
        len(at_change),
        false_before,
        arl0,
        source,
        sc.optimum(used),
        engine_s,
        sim_s,
        len(profiles) * (now - START) / DAY,
    )


# -- orchestration -----------------------------------------------------------------------------
Job = HealthyJob | DelayJob


def run_job(job: Job, progress: ProgressQueue | None) -> HealthyResult | DelayResult:
    if isinstance(job, HealthyJob):
        return run_healthy(job, progress)
    return run_delay(job, progress)


def run_all(jobs: Sequence[Job], processes: int) -> list[HealthyResult | DelayResult]:
    """Run the jobs on ``processes`` workers, printing progress every ~15 s."""
    started = time.perf_counter()
    ctx = mp.get_context("fork")
    with ctx.Manager() as manager, ProcessPoolExecutor(processes, mp_context=ctx) as pool:
        progress = manager.Queue()
        futures: list[Future[HealthyResult | DelayResult]] = [
            pool.submit(run_job, job, progress) for job in jobs
        ]
        state: dict[str, float] = {}
        last_print = 0.0
        while not all(f.done() for f in futures):
            try:
                label, frac = progress.get(timeout=1.0)
                state[label] = frac
            except queue.Empty:
                pass
            elapsed = time.perf_counter() - started
            if elapsed - last_print >= 15:
                last_print = elapsed
                done = sum(f.done() for f in futures)
                running = ", ".join(f"{k} {v:.0%}" for k, v in state.items() if v < 1)
                print(
                    f"  [{elapsed:6.0f} s] {done}/{len(futures)} jobs done; {running}", flush=True
                )
                state = {k: v for k, v in state.items() if v < 1}
        return [f.result() for f in futures]


# -- reporting -------------------------------------------------------------------------------
def fmt_rate(k: int, exposure: float) -> str:
    lo, hi = poisson_ci(k, exposure)
    return f"{k / exposure:.2f} [{lo:.2f}, {hi:.2f}]"


def verdict(k: int, exposure: float, budget: float) -> str:
    lo, _ = poisson_ci(k, exposure)
    if lo > budget:
        return f"**over budget** ({k / exposure / budget:.0f}x)"
    return "within budget" if k / exposure <= budget else "above, not significant"


def healthy_report(results: Sequence[HealthyResult]) -> list[str]:
    tr = Tracker()
    wfs = sum(r.workflows for r in results)
    days = results[0].days
    for r in results:
        t = r.tracker
        tr.critical.update(t.critical)
        tr.critical_by_week.update(t.critical_by_week)
        tr.warn_chart.update(t.warn_chart)
        tr.warn_window.update(t.warn_window)
        tr.trip_causes.update(t.trip_causes)
        tr.trips += t.trips
        tr.first_verdict.update(t.first_verdict)
        tr.seen |= t.seen
        tr.arl0 += t.arl0
    months = wfs * days / MONTH_DAYS
    budget, warn_budget = results[0].budget, results[0].warn_budget
    crit, warns = (
        sum(tr.critical.values()),
        sum(tr.warn_chart.values()) + sum(tr.warn_window.values()),
    )
    arl0 = (
        f"per-chart ARL0 from evidence: median {statistics.median(tr.arl0):,.0f} "
        f"(min {min(tr.arl0):,.0f}, max {max(tr.arl0):,.0f})"
        if tr.arl0
        else f"no budget in the findings' evidence: config.arl0 = {results[0].config_arl0:,.0f}"
    )
    out = [
        f"Healthy traffic: {wfs} workflows x {days} days = {months:.1f} workflow-months, "
        f"{len(results)} shard(s); {arl0}.",
        "",
        "| per workflow-month | count | rate [95 % CI] | budget | verdict |",
        "|---|---|---|---|---|",
        f"| false CRITICAL findings | {crit} | {fmt_rate(crit, months)} | {budget:g} "
        f"| {verdict(crit, months, budget)} |",
        f"| trips (any critical -> review) | {tr.trips} | {fmt_rate(tr.trips, months)} "
        f"| {budget:g} | {verdict(tr.trips, months, budget)} |",
        f"| WARN transitions | {warns} | {fmt_rate(warns, months)} | {warn_budget:g} "
        f"| {verdict(warns, months, warn_budget)} |",
        "",
        "| signal | detector | criticals / wf-month [95 % CI] | trips involving it "
        "| WARN (chart) | WARN (window test, BH) |",
        "|---|---|---|---|---|---|",
    ]
    keys = set(tr.critical) | set(tr.warn_chart) | set(tr.warn_window)
    for sd in sorted(keys, key=lambda k: (-tr.critical[k], -tr.warn_chart[k], k)):
        out.append(
            f"| {sd[0]} | {sd[1]} | {fmt_rate(tr.critical[sd], months)} ({tr.critical[sd]}) "
            f"| {tr.trip_causes[sd]} | {tr.warn_chart[sd] / months:.2f} "
            f"| {tr.warn_window[sd] / months:.2f} |"
        )
    weeks = sorted(tr.critical_by_week)
    out += [
        "",
        "Criticals by simulated week (all workflows): "
        + ", ".join(f"week {w + 1}: {tr.critical_by_week[w]}" for w in weeks),
        "",
        "Time to the first verdict (first finding that is not unknown), hours from the "
        "first traffic:",
        "",
        "| signal | detector | median h | 90 % h | max h | never (of workflows) |",
        "|---|---|---|---|---|---|",
    ]
    by_sd: dict[SigDet, list[float]] = {}
    total: Counter[SigDet] = Counter()
    for wf, s, d in tr.seen:
        total[(s, d)] += 1
        if (first := tr.first_verdict.get((wf, s, d))) is not None:
            by_sd.setdefault((s, d), []).append(first / 3600)
    for sd in sorted(total):
        hs = sorted(by_sd.get(sd, []))
        if hs:
            q90 = hs[min(len(hs) - 1, int(0.9 * len(hs)))]
            cells = f"{statistics.median(hs):.1f} | {q90:.1f} | {hs[-1]:.1f}"
        else:
            cells = "- | - | -"
        out.append(f"| {sd[0]} | {sd[1]} | {cells} | {total[sd] - len(hs)} of {total[sd]} |")
    return out


def delay_report(results: Sequence[DelayResult]) -> list[str]:
    out = [
        "| scenario | baseline | version change | runs | mean delay | median | misses "
        "| critical at change | false crit. before | optimum (ARL0) | mean / optimum "
        "| learned / declared | any detector, mean |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    means = {
        (r.job.scenario.name, r.job.baseline, r.job.version_change): (
            statistics.mean(r.delays) if r.delays else math.nan
        )
        for r in results
    }
    sources = {r.arl0_source for r in results}
    for r in results:
        j, sc = r.job, r.job.scenario
        mean = means[(sc.name, j.baseline, j.version_change)]
        median = statistics.median(r.delays) if r.delays else math.nan
        neutral = sc.after == sc.before
        ratio = "-" if neutral or math.isnan(mean) else f"{mean / r.optimum:.2f}"
        goal = 1.25 if sc.design else 1.5
        if ratio != "-":
            ratio += " ok" if mean / r.optimum <= goal else f" (goal {goal})"
        declared = means.get((sc.name, "declared", j.version_change), math.nan)
        vs = "-"
        if j.baseline == "learned" and not neutral and declared == declared and mean == mean:
            vs = f"{mean / declared:.2f}" + (" ok" if mean / declared <= 1.3 else " (goal 1.3)")
        arl = statistics.median(r.arl0) if r.arl0 else r.job.budget.config().arl0
        opt = "-" if neutral else f"{r.optimum:.1f} ({arl:,.0f})"
        anyd = f"{statistics.mean(r.delays_any):.0f}" if r.delays_any else "-"
        label = sc.name + (" (design)" if sc.design else "")
        if neutral:
            # no change: every critical after the version change is a false one
            out.append(
                f"| {label} | {j.baseline} | {'yes' if j.version_change else 'no'} | {j.runs} "
                f"| - | - | {j.runs - r.misses} runs critical | {r.critical_at_change} "
                f"| {r.false_before} | - | - | - | - |"
            )
            continue
        mean_s = "-" if math.isnan(mean) else f"{mean:.1f}"
        median_s = "-" if math.isnan(median) else f"{median:.0f}"
        out.append(
            f"| {label} | {j.baseline} | {'yes' if j.version_change else 'no'} | {j.runs} "
            f"| {mean_s} | {median_s} | {r.misses} | {r.critical_at_change} "
            f"| {r.false_before} | {opt} | {ratio} | {vs} | {anyd} |"
        )
    out += ["", "ARL0 used for the optimum: " + "; ".join(sorted(sources)) + "."]
    return out


def runtime_report(results: Sequence[HealthyResult | DelayResult], wall: float) -> list[str]:
    healthy = [r for r in results if isinstance(r, HealthyResult)]
    delays = [r for r in results if isinstance(r, DelayResult)]
    out = [
        "| part | workflow-days | engine s | engine s / wf-day | simulator s / wf-day |",
        "|---|---|---|---|---|",
    ]
    for name, rs in (("healthy (all signals)", healthy), ("delays (one signal)", delays)):
        if not rs:
            continue
        wd = sum(
            r.workflows * r.days if isinstance(r, HealthyResult) else r.workflow_days for r in rs
        )
        eng = sum(r.engine_s for r in rs)
        simu = sum(r.sim_s for r in rs)
        out.append(f"| {name} | {wd:,.0f} | {eng:,.0f} | {eng / wd:.3f} | {simu / wd:.4f} |")
    out.append(f"\nWall clock {wall / 60:.1f} min on {os.cpu_count()} cores.")
    return out


def git_commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False
        ).stdout.strip()

    head = git("rev-parse", "--short", "HEAD")
    if not head:
        return "unknown (not a git checkout)"
    dirty = git("status", "--porcelain", "--", "detectors", "monitor")
    return head + (" + uncommitted changes in detectors/ or monitor/" if dirty else "")


def write_results(label: str, lines: Sequence[str]) -> Path:
    """Add or replace the ``### <label>`` subsection of the "False alarms" section."""
    path = ROOT / "bench" / "RESULTS.md"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    head = "## False alarms and detection delays"
    sub = f"### {label}"
    body = "\n".join([sub, "", *lines, ""])
    if head not in text:
        intro = (
            f"{head}\n\n`python bench/false_alarms.py` (bench/traffic.py traffic through "
            "`detectors.engine.run_pass` as the scheduler runs it; see the module docstring "
            "for the protocol). Each subsection is one labelled run (`--label`); a rerun "
            "with the same label replaces it.\n"
        )
        text = text.rstrip("\n") + "\n\n" + intro
    start = text.find(head)
    end = text.find("\n## ", start + len(head))
    end = len(text) if end == -1 else end + 1
    section = text[start:end]
    at = section.find(sub + "\n")
    if at == -1:
        section = section.rstrip("\n") + "\n\n" + body
    else:
        nxt = section.find("\n### ", at + len(sub))
        section = section[:at] + body + ("" if nxt == -1 else section[nxt:])
    text = (
        text[:start] + section.rstrip("\n") + "\n" + ("\n" + text[end:] if end < len(text) else "")
    )
    path.write_text(text)
    return path


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workflows", type=int, default=100)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--pass-every", type=parse_duration, default=300, help="e.g. 5m (default)")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--delay-runs", type=int, default=30, help="seeded runs per delay row")
    ap.add_argument("--seed", type=int, default=20261105)
    ap.add_argument("--quick", action="store_true", help="10 workflows x 7 days, 4 delay runs")
    ap.add_argument("--part", choices=["all", "healthy", "delays"], default="all")
    ap.add_argument("--budget", type=float, help="false_alarms_per_month (default: config)")
    ap.add_argument("--warn-budget", type=float, help="warn_false_alarms_per_month")
    ap.add_argument("--arl0", type=float, help="DetectionConfig.arl0")
    ap.add_argument("--delay-overdispersion", action="store_true")
    ap.add_argument(
        "--change-day",
        type=int,
        default=5,
        help="day of the delay scenarios' change (10:00 UTC); later days give the charts "
        "more history of the signal's day-to-day variation",
    )
    ap.add_argument("--label", default=None, help="RESULTS.md subsection (default: commit)")
    ap.add_argument("--commit", default=None, help="commit to name in the results")
    ap.add_argument("--write", action="store_true", help="write bench/RESULTS.md")
    ap.add_argument("--json", type=Path, help="also dump the raw numbers here")
    args = ap.parse_args(argv)
    global CHANGE_AT  # read by the delay jobs (forked workers inherit it)
    CHANGE_AT = START + args.change_day * DAY + 10 * 3600
    if args.quick:
        args.workflows, args.days, args.delay_runs = min(args.workflows, 10), min(args.days, 7), 4
    budget = Budget(args.budget, args.warn_budget, args.arl0)
    shards = max(1, min(args.processes, args.workflows))
    jobs: list[Job] = []
    if args.part in ("all", "healthy"):
        jobs += [
            HealthyJob(i, shards, args.workflows, args.days, args.pass_every, args.seed, budget)
            for i in range(shards)
        ]
    if args.part in ("all", "delays"):
        scenarios = (SCENARIOS[1], SCENARIOS[4], SCENARIOS[5]) if args.quick else SCENARIOS
        for sc in (*scenarios, *([] if args.quick else NEUTRAL)):
            for baseline in ("learned", "declared"):
                for version in (False, True):
                    if sc.after == sc.before and not version:
                        continue  # no shift and no version change: that is healthy traffic
                    jobs.append(
                        DelayJob(
                            sc,
                            baseline,
                            version,
                            args.delay_runs,
                            args.pass_every,
                            args.seed,
                            budget,
                            args.delay_overdispersion,
                            follow_days=3.0 if sc.after == sc.before else 6.0,
                            cap_factor=10.0,
                        )
                    )
    commit = args.commit or git_commit()
    print(
        f"false-alarm benchmark: commit {commit}, {len(jobs)} jobs on {args.processes} "
        f"processes, pass every {args.pass_every // 60} min",
        flush=True,
    )
    started = time.perf_counter()
    results = run_all(jobs, args.processes)
    wall = time.perf_counter() - started
    healthy = [r for r in results if isinstance(r, HealthyResult)]
    delays = [r for r in results if isinstance(r, DelayResult)]
    lines = [
        f"Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on commit {commit}, "
        f"`python bench/false_alarms.py {shlex.join(sys.argv[1:] if argv is None else argv)}`, "
        f"{os.cpu_count()} cores ({platform.machine()}, Python {platform.python_version()}), "
        f"seed {args.seed}, a pass every {args.pass_every // 60} min "
        f"(the daemon's default detect_interval is 30 s).",
        "",
    ]
    if healthy:
        lines += [*healthy_report(healthy), ""]
    if delays:
        lines += [
            f"Delays (observations of the signal from the change to the first pass with a "
            f"critical cusum finding on it; change on day {args.change_day} 10:00 UTC; "
            f"{'overdispersed' if args.delay_overdispersion else 'iid'} days; misses = no "
            f"critical within 10x the optimum or 6 days; runs already critical at the change "
            f"are left out of the delays):",
            "",
            *delay_report(delays),
            "",
        ]
    lines += runtime_report(results, wall)
    print("\n" + "\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps(raw(results), indent=1, default=str))
    if args.write:
        label = args.label or f"commit {commit.split()[0]}"
        print(f"wrote {write_results(label, lines)}")


def raw(results: Sequence[HealthyResult | DelayResult]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for r in results:
        if isinstance(r, HealthyResult):
            t = r.tracker
            out.append(
                {
                    "part": "healthy",
                    "workflows": r.workflows,
                    "days": r.days,
                    "critical": {"/".join(k): v for k, v in t.critical.items()},
                    "trips": t.trips,
                    "warn_chart": {"/".join(k): v for k, v in t.warn_chart.items()},
                    "warn_window": {"/".join(k): v for k, v in t.warn_window.items()},
                    "engine_s": r.engine_s,
                }
            )
        else:
            out.append(
                {
                    "part": "delay",
                    "scenario": r.job.scenario.name,
                    "baseline": r.job.baseline,
                    "version_change": r.job.version_change,
                    "delays": r.delays,
                    "misses": r.misses,
                    "optimum": r.optimum,
                    "arl0_source": r.arl0_source,
                }
            )
    return out


if __name__ == "__main__":
    main()
