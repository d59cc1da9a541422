"""Thresholds that keep a false-alarm budget when the in-control level is only known roughly.

A CUSUM threshold is normally set for a known in-control law. Ours is not known: a learned
baseline is an estimate with a standard error ``se``, and real AI-workflow signals move from
day to day (an edit rate of 0.20 is 0.18 one day and 0.23 the next: overdispersion, ``tau``).
A chart calibrated for the point estimate alarms far more often than its nominal ARL0 on such
data (measured: a Bernoulli chart on beta-binomial days, 48 false trips per workflow-month).

We calibrate for the false-alarm *rate* averaged over the plausible in-control levels:

    sum_j w_j / ARL(h; level_j) = 1 / ARL0_target,  level_j = level + spread * x_j,

with ``spread**2 = se**2 + tau**2`` and Gauss-Hermite nodes ``x_j`` (7 nodes: exact for a
normal spread up to degree 13). Why the rate: over a month, the expected number of false
alarms is the integral of the chart's hazard; while a day's level stays put the hazard is
about ``1/ARL(level)`` (in-control ARLs are millions of observations, days are ~1,000), so
the expected count is the average of ``1/ARL`` over the day levels, and over the estimation
error for the expected count across workflows. The bench (bench/false_alarms.py) measures the
result on beta-binomial, Beta and zero-inflated data.

Rates run on an integer lattice (as detectors.stats.calibration) whose denominator is chosen
so the chain has at most ~``MAX_STATES`` states: a 1 % rate watched for 1.25x has an event
step 90 times its non-event step, and the 60-denominator lattice needs 164,000 states (6 s
per calibration); with the step rounded to 0.3 % the chain has 2,800 (10 ms). The chart runs
on the same lattice, so the calibration is exact for the chart as implemented.

Means run on the standardised bucket increments ``n (clip(z) - k)``; ``z`` comes from the
empirical distribution of bucket means seen while learning (kernel-smoothed), so a skewed
score (Beta groundedness, zero-inflated edit ratios) gets the threshold its real
distribution needs, not the Gaussian one.

Example (edit rate chart 0.20 -> 0.30: a learned baseline with se 0.018 needs a higher
threshold than a declared one for the same budget):
    >>> exact = calibrate_rate(0.2, 0.3, 10_000.0, spread=0.0)
    >>> rough = calibrate_rate(0.2, 0.3, 10_000.0, spread=0.018)
    >>> assert exact is not None and rough is not None
    >>> rough.h > exact.h, abs(exact.arl0 / 10_000.0 - 1) < 0.05
    (True, True)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy.special import ndtr

from detectors.stats.calibration import _binomial_llr_cdf, chain_arl, lattice_arl

MAX_STATES = 1_500
MAX_H_FACTOR = 2.5  # see calibrate_rate
_NODES, _WEIGHTS = hermegauss(7)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()
_CELLS = 120  # Brook-Evans cells for the bucket and mean chains (0.2 ms per solve, one BLAS thread)
_RATE_EPS = 1e-6
# ``h`` ranges of the solvers (nats); an ARL0 of 1e12 needs ~30 nats on the slowest chart
_H_MAX = 60.0


@dataclass(frozen=True, slots=True)
class RateDesign:
    """A one-sided Bernoulli chart on a lattice, calibrated for a spread of ``p0``.

    The statistic in lattice units moves by ``step_event`` on an event and by
    ``step_nonevent`` on a non-event (signed), floored at 0, alarms at ``threshold_units``.
    """

    p0: float
    p1: float
    step_event: int
    step_nonevent: int
    unit: float
    threshold_units: int
    target_arl0: float
    arl0: float  # achieved, averaged over the spread (observations)
    arl1: float  # zero-state ARL at p1 (the worst-case delay at the design shift)
    spread: float = 0.0
    batch: int = 1

    @property
    def h(self) -> float:
        return self.threshold_units * self.unit

    def arl(self, p: float, threshold_units: int | None = None) -> float:
        """Zero-state ARL (observations) if the true rate is ``p``."""
        return _rate_arl(
            self, p, self.threshold_units if threshold_units is None else threshold_units
        )


@dataclass(frozen=True, slots=True)
class MeanDesign:
    """A one-sided standardised CUSUM ``S = max(0, S + n (clip(z) - k))``, ``k = shift/2``,
    calibrated on an empirical distribution of bucket means (or Gaussian buckets)."""

    shift_sd: float
    h_std: float
    target_arl0: float
    arl0: float  # achieved, averaged over the spread (observations)
    arl1: float  # zero-state ARL at the design shift (observations)
    spread: float = 0.0
    clip: float | None = None
    obs_per_update: float = 1.0

    @property
    def h(self) -> float:
        """Threshold in nats (the LLR is ``shift_sd`` times the standardised statistic)."""
        return self.h_std * self.shift_sd


def check_target(arl0: float) -> None:
    if not (isinstance(arl0, int | float) and math.isfinite(arl0) and arl0 > 1):
        raise ValueError(f"arl0 must be a finite number > 1, got {arl0!r}")


def _levels(center: float, spread: float, lo: float, hi: float) -> list[tuple[float, float]]:
    """(level, weight) nodes of a normal spread around ``center`` (the bad side up), clipped
    into [lo, hi]. The nodes below the centre are folded into it: their in-control ARLs are
    longer than the centre's, so counting them at the centre's rate is conservative, and it
    halves the chain solves (their share of the false-alarm rate is under 1 % here)."""
    if spread <= 0:
        return [(center, 1.0)]
    below = float(_WEIGHTS[_NODES < 0].sum())
    out = [(center, below + float(_WEIGHTS[_NODES == 0].sum()))]
    out += [
        (min(max(center + spread * float(x), lo), hi), float(w))
        for x, w in zip(_NODES, _WEIGHTS, strict=True)
        if x > 0
    ]
    return out


def _log_rate(far: float) -> float:
    """log of a false-alarm rate from the chain solves: an ARL that overflowed (rate 0) is
    "reached"; a NaN or negative one (a solve that broke down) is "not reached", so the
    threshold search moves on rather than trusting it."""
    if not math.isfinite(far) or far < 0:
        return math.inf
    return math.log(far) if far > 0 else -math.inf


def _arl_of(log_rate: float) -> float:
    """The ARL0 a log false-alarm rate stands for (inf when no alarm is possible)."""
    return math.inf if log_rate == -math.inf else 1.0 / math.exp(log_rate)


def _solve(
    log_far: Callable[[float], float], target: float, integer: bool, lo: float, cap: float
) -> float | None:
    """Smallest-ish ``h`` in ``[lo, cap]`` with ``log_far(h) <= log(1/target)``, or None when
    even ``cap`` is not enough. Illinois regula falsi on the log false-alarm rate, which is
    nearly linear in ``h``; ends within 2 % of the target rate (on the safe side) or on a
    one-unit bracket for integer thresholds."""
    goal = -math.log(target)

    def f(h: float) -> float:
        return log_far(round(h) if integer else h) - goal

    f_lo = f(lo)
    if f_lo <= 0:
        return lo
    hi = min(cap, lo * 1.25 + (1 if integer else 0))
    f_hi = f(hi)
    while f_hi > 0:
        if hi >= cap:
            return None
        lo, f_lo = hi, f_hi
        hi = min(cap, hi * 1.5)
        f_hi = f(hi)
    side = 0
    for _ in range(60):
        if -0.02 <= f_hi <= 0 or hi - lo <= (1.0 if integer else 1e-4 * hi):  # close enough
            break
        if math.isfinite(f_hi) and math.isfinite(f_lo) and f_hi != f_lo:
            mid = hi - f_hi * (hi - lo) / (f_hi - f_lo)
        else:  # an overflowed ARL: bisect
            mid = 0.5 * (lo + hi)
        if integer:
            mid = min(max(round(mid), lo + 1), hi - 1) if hi - lo > 1 else hi
        f_mid = f(mid)
        if f_mid > 0:
            lo, f_lo = mid, f_mid
            if side == -1:
                f_hi /= 2.0
            side = -1
        else:
            hi, f_hi = mid, f_mid
            if side == 1:
                f_lo /= 2.0
            side = 1
    return round(hi) if integer else hi


def _choose_steps(p0: float, p1: float, target: float) -> tuple[int, int, float]:
    """``(step_event, step_nonevent, unit)`` with the chain kept under ``MAX_STATES``."""
    a = math.log(p1 / p0)
    b = math.log((1.0 - p1) / (1.0 - p0))
    up_llr, down_llr = (a, -b) if a > 0 else (b, -a)
    h_guess = max(2.0, 1.3 * math.log(target))  # nats; the real h is below log(ARL0)
    max_den = max(1, min(60, int(MAX_STATES * down_llr / h_guess)))
    ratio = Fraction(up_llr / down_llr).limit_denominator(max_den)
    up, down = max(ratio.numerator, 1), ratio.denominator
    unit = down_llr / down
    return ((up, -down) if a > 0 else (-down, up)) + (unit,)


def _rate_arl(d: RateDesign, p: float, units: int) -> float:
    rising = d.step_event > 0
    up, down = (d.step_event, -d.step_nonevent) if rising else (d.step_nonevent, -d.step_event)
    prob_up = p if rising else 1.0 - p
    if d.batch == 1:
        return lattice_arl(up, down, prob_up, units)
    a, b = d.step_event * d.unit, d.step_nonevent * d.unit
    return d.batch * chain_arl(units * d.unit, _binomial_llr_cdf(a, b, d.batch, p), _CELLS)


@lru_cache(maxsize=8192)
def calibrate_rate(
    p0: float,
    p1: float,
    arl0: float,
    spread: float = 0.0,
    batch: int = 1,
    max_h_factor: float = MAX_H_FACTOR,
) -> RateDesign | None:
    """Calibrate a Bernoulli chart ``p0 -> p1`` to ``arl0`` averaged over ``p ~ N(p0, spread)``.

    ``batch``: observations per update (the chart checks only at bucket ends). None when
    the spread needs a threshold above ``max_h_factor`` times the known-``p0`` one: the
    design shift is then inside the signal's normal variation, and the chart would only
    detect it after a long delay while the slower charts of the set do better.
    """
    for name, v in (("p0", p0), ("p1", p1)):
        if not 0.0 < v < 1.0:
            raise ValueError(f"{name} must be in (0, 1), got {v!r}")
    if p0 == p1:
        raise ValueError(f"p1 must differ from p0, both are {p0!r}")
    check_target(arl0)
    if not (math.isfinite(spread) and spread >= 0):
        raise ValueError(f"spread must be >= 0, got {spread!r}")
    step_event, step_nonevent, unit = _choose_steps(p0, p1, arl0)
    proto = RateDesign(p0, p1, step_event, step_nonevent, unit, 1, arl0, 0.0, 0.0, spread, batch)
    sign = 1.0 if p1 > p0 else -1.0
    nodes = [(p0 + sign * (level - p0), w) for level, w in _levels(p0, spread, -1.0, 2.0)]
    nodes = [(min(max(p, _RATE_EPS), 1.0 - _RATE_EPS), w) for p, w in nodes]

    def log_far(units: float) -> float:
        far = sum(w / _rate_arl(proto, p, int(units)) for p, w in nodes)
        return _log_rate(far)

    if spread > 0:  # start from the known-p0 threshold (cached: spreads change, it does not)
        exact = calibrate_rate(p0, p1, arl0, 0.0, batch)
        if exact is None:
            return None
        iid: float | None = float(exact.threshold_units)
    else:
        iid = _solve(lambda u: _log_rate(1.0 / _rate_arl(proto, p0, int(u))), arl0, True, 1.0, 1e9)
    if iid is None:
        return None
    found = iid if spread <= 0 else _solve(log_far, arl0, True, iid, iid * max_h_factor)
    if found is None:
        return None
    units = int(found)
    achieved = _arl_of(log_far(units))
    return RateDesign(
        p0,
        p1,
        step_event,
        step_nonevent,
        unit,
        units,
        arl0,
        achieved,
        _rate_arl(proto, p1, units),
        spread,
        batch,
    )


Samples = tuple[tuple[int, float], ...]  # (observations in the bucket, standardised mean)


def _centred(samples: Samples) -> tuple[np.ndarray, np.ndarray]:
    """Bucket sizes and standardised means of a sample, the means centred (weighted by n):
    the sample gives the SHAPE of the in-control law; its level (the learning day's own
    offset) is the spread's business."""
    ns = np.array([max(int(n), 1) for n, _ in samples], dtype=float)
    zs = np.array([float(z) for _, z in samples], dtype=float)
    return ns, zs - float((ns * zs).sum() / ns.sum())


def _bandwidth(count: int) -> float:
    # half of Silverman's rule for a unit-variance sample: adds ~2 % variance, smooths atoms
    return 0.53 / math.pow(max(count, 1), 0.2)


def _mean_cdf(
    ns: np.ndarray, zs: np.ndarray, k: float, offset: float, clip: float | None
) -> Callable[[np.ndarray], np.ndarray]:
    """CDF of one update's increment ``n (clip(z + offset + e) - k)``: ``(n, z)`` drawn from
    the sample, ``e`` the kernel (or, for a Gaussian model, the bucket noise)."""
    bw = _bandwidth(len(zs))

    def cdf(x: np.ndarray) -> np.ndarray:
        y = x[:, None] / ns[None, :] + k  # the clipped bucket mean that gives increment x
        out = ndtr((y - zs[None, :] - offset) / bw)
        if clip is not None:
            out = np.where(y < -clip, 0.0, np.where(y >= clip, 1.0, out))
        return np.asarray(out.mean(axis=1), dtype=float)

    return cdf


def _gauss_cdf(
    batch: int, k: float, offset: float, clip: float | None
) -> Callable[[np.ndarray], np.ndarray]:
    def cdf(x: np.ndarray) -> np.ndarray:
        y = x / batch + k
        out = ndtr((y - offset) * math.sqrt(batch))
        if clip is not None:
            out = np.where(y < -clip, 0.0, np.where(y >= clip, 1.0, out))
        return np.asarray(out, dtype=float)

    return cdf


@lru_cache(maxsize=2048)
def calibrate_mean(
    shift_sd: float,
    arl0: float,
    spread: float = 0.0,
    clip: float | None = None,
    samples: Samples = (),
    batch: int = 1,
    max_h_factor: float = MAX_H_FACTOR,
) -> MeanDesign | None:
    """Calibrate a one-sided mean chart (shift ``shift_sd`` sd, in the bad direction) to
    ``arl0`` observations averaged over an in-control offset ``~ N(0, spread)`` sd.

    ``samples``: standardised bucket means ``(n, z)`` oriented so the bad direction is
    positive (for a falling chart, ``z = (mu0 - mean) / sd``); without them the buckets are
    taken as Gaussian with ``batch`` observations. None when the spread needs more than
    ``max_h_factor`` times the no-spread threshold (see :func:`calibrate_rate`).
    """
    if not (math.isfinite(shift_sd) and shift_sd > 0):
        raise ValueError(f"shift_sd must be > 0, got {shift_sd!r}")
    check_target(arl0)
    if clip is not None and not clip > shift_sd / 2:
        raise ValueError(f"clip must exceed shift_sd / 2, got {clip!r}")
    k = shift_sd / 2.0
    if samples:
        ns, zs = _centred(samples)
        if clip is not None:
            # one more observation at the worst place (the clip, bad side): a sample of a
            # few hundred buckets under-states a rare heavy tail (timeouts in a latency)
            ns, zs = np.append(ns, 1.0), np.append(zs, clip)
        per_update = float(ns.mean())

        def make(offset: float) -> Callable[[np.ndarray], np.ndarray]:
            return _mean_cdf(ns, zs, k, offset, clip)
    else:
        per_update = float(batch)

        def make(offset: float) -> Callable[[np.ndarray], np.ndarray]:
            return _gauss_cdf(batch, k, offset, clip)

    nodes = [(make(o), w) for o, w in _levels(0.0, spread, -10.0, 10.0)]

    def log_far(h: float) -> float:
        return _log_rate(sum(w / (per_update * chain_arl(h, c, _CELLS)) for c, w in nodes))

    if spread > 0:  # start from the no-spread threshold (cached: spreads change, it does not)
        exact = calibrate_mean(shift_sd, arl0, 0.0, clip, samples, batch)
        if exact is None:
            return None
        h0: float | None = exact.h_std
    else:
        h0 = _solve(log_far, arl0, False, 0.5, _H_MAX)
    if h0 is None:  # a degenerate sample (e.g. one huge bucket): no usable chart
        return None
    h = h0 if spread <= 0 else _solve(log_far, arl0, False, h0, h0 * max_h_factor)
    if h is None:
        return None
    return MeanDesign(
        shift_sd,
        h,
        arl0,
        _arl_of(log_far(h)),
        per_update * chain_arl(h, make(shift_sd), _CELLS),
        spread,
        clip,
        per_update,
    )


def mean_chart_arl(design: MeanDesign, offset: float, samples: Samples = ()) -> float:
    """Zero-state ARL (observations) of a calibrated mean chart if the mean moved by
    ``offset`` sd in the bad direction (the expected delay at an observed shift)."""
    k = design.shift_sd / 2.0
    if samples:
        ns, zs = _centred(samples)
        cdf = _mean_cdf(ns, zs, k, offset, design.clip)
    else:
        cdf = _gauss_cdf(max(round(design.obs_per_update), 1), k, offset, design.clip)
    return float(design.obs_per_update * chain_arl(design.h_std, cdf, _CELLS))
