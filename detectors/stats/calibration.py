"""Exact CUSUM threshold calibration to a target in-control ARL (ARL0).

Two Markov-chain methods, both cached on their (rounded) parameters:

* Bernoulli: the LLR increments ``a = ln(p1/p0)`` (event) and ``b = ln((1-p1)/(1-p0))``
  (non-event) are put on an integer lattice (best rational approximation of ``a/|b|`` with a
  small denominator, Brook & Evans 1972 / Reynolds & Stoumbos 1999). The chart then *is* a
  finite Markov chain, so its ARL is exact; :class:`~detectors.stats.bernoulli_cusum.BernoulliCusum`
  runs on the same lattice, so the calibrated ARL0 is the detector's true ARL0.
* Gaussian (plain or winsorised): the standardised CUSUM ``S = max(0, S + clip(z) - k)`` is
  discretised on ``m`` cells of ``[0, h]`` (Brook-Evans with the atom at 0), and ``h`` is
  found by bisection. ``m = 300`` reproduces the textbook ``k = 0.5, h = 5 -> 930.9`` to
  better than 0.5 %.

Example:
    >>> lat = bernoulli_lattice(0.2, 0.3, 10_000.0)
    >>> round(lat.h, 3), round(lat.arl0), round(lat.arl1, 1)
    (5.356, 10022, 162.8)
    >>> cal = gaussian_threshold(0.7, 10_000.0)
    >>> abs(cal.arl0 - 10_000) < 1
    True
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import MatrixRankWarning, spsolve
from scipy.special import ndtr

from detectors.stats.dist import binom_cdf_array, binom_survival_array

# Largest lattice denominator: a/|b| is approximated to ~1e-4 relative (detection-limits.md
# Appendix A); a bigger lattice only makes the sparse solve slower.
_MAX_DENOMINATOR = 60
_GAUSS_CELLS = 300


@dataclass(frozen=True, slots=True)
class BernoulliLattice:
    """A Bernoulli CUSUM calibrated on an integer lattice.

    The statistic in lattice units moves by ``step_event`` on an event and by
    ``step_nonevent`` on a non-event (signed), is floored at 0 and alarms at
    ``threshold_units``. ``unit`` converts lattice units to nats.
    """

    p0: float
    p1: float
    step_event: int
    step_nonevent: int
    unit: float
    threshold_units: int
    arl0: float  # achieved in-control ARL (observations)
    arl1: float  # zero-state ARL under p1 = worst-case delay (Lorden), observations
    target_arl0: float
    batch: int = 1  # observations per update the threshold was calibrated for

    @property
    def h(self) -> float:
        """Threshold in nats (LLR scale)."""
        return self.threshold_units * self.unit


@dataclass(frozen=True, slots=True)
class GaussianCalibration:
    """Threshold of the standardised CUSUM ``S = max(0, S + clip(z) - k)``, ``k = d/2``."""

    shift_sd: float  # d = |delta| / sigma
    h_std: float  # threshold on the standardised scale
    arl0: float
    target_arl0: float
    clip: float | None
    batch: int = 1

    @property
    def h(self) -> float:
        """Threshold in nats: the LLR is ``d`` times the standardised statistic."""
        return self.h_std * self.shift_sd


def _validate_rates(p0: float, p1: float, arl0: float) -> None:
    if not 0.0 < p0 < 1.0:
        raise ValueError(f"p0 must be in (0, 1), got {p0!r}")
    if not 0.0 < p1 < 1.0:
        raise ValueError(f"p1 must be in (0, 1), got {p1!r}")
    if p0 == p1:
        raise ValueError(f"p1 must differ from p0, both are {p0!r}")
    if not arl0 > 1.0:
        raise ValueError(f"arl0 must be > 1, got {arl0!r}")


def lattice_arl(up: int, down: int, prob_up: float, threshold: int) -> float:
    """Zero-state ARL of ``S = max(0, S + up)`` w.p. ``prob_up`` else ``max(0, S - down)``.

    ``up`` and ``down`` are positive lattice steps; alarm when ``S >= threshold``.
    Solves ``(I - P) L = 1`` on the transient states ``0 .. threshold-1``.
    """
    state = np.arange(threshold)
    rises = state[state + up < threshold]  # a rise from the top states alarms: no entry
    rows = np.concatenate([state, rises, state])
    cols = np.concatenate([state, rises + up, np.maximum(0, state - down)])
    vals = np.concatenate(
        [np.ones(threshold), np.full(rises.size, -prob_up), np.full(threshold, prob_up - 1.0)]
    )
    # duplicate (row, col) pairs (the floor at 0 lands on the diagonal of state 0) are summed
    matrix = sparse.csc_matrix((vals, (rows, cols)), shape=(threshold, threshold))
    with warnings.catch_warnings():
        # a chain that can never rise (prob_up 0 at a node far from the design) is singular:
        # it never alarms
        warnings.simplefilter("error", MatrixRankWarning)
        try:
            solution = spsolve(matrix, np.ones(threshold))
        except MatrixRankWarning:
            return math.inf
    value = float(np.atleast_1d(solution)[0])
    return value if math.isfinite(value) else math.inf


@lru_cache(maxsize=4096)
def lattice_steps(p0: float, p1: float) -> tuple[int, int, float]:
    """``(step_event, step_nonevent, unit)``: the LLR increments on an integer lattice.

    ``a/|b|`` is replaced by its best rational approximation with denominator <= 60.
    """
    a = math.log(p1 / p0)
    b = math.log((1.0 - p1) / (1.0 - p0))
    # Upward chart: events push up (a > 0), non-events down. Downward chart (p1 < p0):
    # non-events push up (b > 0), events down. Either way one "up" and one "down" move.
    up_llr, down_llr = (a, -b) if a > 0 else (b, -a)
    ratio = Fraction(up_llr / down_llr).limit_denominator(_MAX_DENOMINATOR)
    up, down = max(ratio.numerator, 1), ratio.denominator
    return ((up, -down) if a > 0 else (-down, up)) + (down_llr / down,)


@lru_cache(maxsize=4096)
def bernoulli_lattice(p0: float, p1: float, arl0: float) -> BernoulliLattice:
    """Smallest lattice threshold whose exact ARL0 is >= ``arl0`` (p1 > p0 or p1 < p0)."""
    _validate_rates(p0, p1, arl0)
    step_event, step_nonevent, unit = lattice_steps(p0, p1)
    rising = step_event > 0
    up, down = (step_event, -step_nonevent) if rising else (step_nonevent, -step_event)
    prob_up0, prob_up1 = (p0, p1) if rising else (1.0 - p0, 1.0 - p1)
    lo, hi = 1, up + 1
    while lattice_arl(up, down, prob_up0, hi) < arl0:
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if lattice_arl(up, down, prob_up0, mid) >= arl0:
            hi = mid
        else:
            lo = mid
    return BernoulliLattice(
        p0=p0,
        p1=p1,
        step_event=step_event,
        step_nonevent=step_nonevent,
        unit=unit,
        threshold_units=hi,
        arl0=lattice_arl(up, down, prob_up0, hi),
        arl1=lattice_arl(up, down, prob_up1, hi),
        target_arl0=arl0,
    )


Cdf = Callable[[np.ndarray], np.ndarray]


def chain_arl(h: float, increment_cdf: Cdf, cells: int = _GAUSS_CELLS) -> float:
    """Zero-state ARL (in updates) of ``S = max(0, S + X)``, alarm at ``S >= h``.

    Brook-Evans Markov chain: state 0 is the interval ``[0, w/2)`` (it holds the atom at 0),
    state ``i`` the cell of width ``w`` centred on ``i * w``; ``increment_cdf`` is the CDF of
    one update's increment ``X``.
    """
    w = 2.0 * h / (2 * cells - 1)
    # The CDF is needed at (j + 0.5 - i) w only: 2m - 1 distinct values, laid out Toeplitz.
    values = increment_cdf((np.arange(-(cells - 1), cells) + 0.5) * w)
    cdf_upper = values[_toeplitz_index(cells)]
    trans = np.diff(cdf_upper, axis=1, prepend=0.0)
    try:
        return float(np.linalg.solve(np.eye(cells) - trans, np.ones(cells))[0])
    except np.linalg.LinAlgError:
        # every update falls back to 0 (e.g. a large design shift on big buckets): the
        # chain never leaves its atom, the chart never alarms in control
        return math.inf


@lru_cache(maxsize=4)
def _toeplitz_index(cells: int) -> np.ndarray:
    idx = np.arange(cells)
    return np.asarray(idx[None, :] - idx[:, None] + cells - 1)


def _mean_increment_cdf(k: float, shift: float, clip: float | None, batch: int) -> Cdf:
    """CDF of ``n (clip(Zbar) - k)``, ``Zbar ~ N(shift, 1/n)``: one bucket of ``n`` values."""

    def cdf(x: np.ndarray) -> np.ndarray:
        y = x / batch + k  # the bucket mean (clipped) that gives increment x
        out = ndtr((y - shift) * math.sqrt(batch))
        if clip is not None:
            out = np.where(y < -clip, 0.0, out)
            out = np.where(y >= clip, 1.0, out)
        return np.asarray(out, dtype=float)

    return cdf


def gaussian_arl(
    h_std: float, k: float, mean_shift: float = 0.0, clip: float | None = None, batch: int = 1
) -> float:
    """Zero-state ARL in OBSERVATIONS of the standardised CUSUM updated once per bucket of
    ``batch`` values: ``S = max(0, S + n (clip(Zbar + mean_shift) - k))``, alarm at ``h_std``.
    """
    return batch * chain_arl(h_std, _mean_increment_cdf(k, mean_shift, clip, batch))


def _bisect(arl: Callable[[float], float], target: float, label: str) -> float:
    """Smallest threshold (to 1e-5 relative) whose ARL is >= ``target``."""
    lo, hi = 0.0, 1.0
    while arl(hi) < target:
        lo, hi = hi, hi * 2.0
        if hi > 1e4:
            raise ValueError(f"cannot reach arl0={target!r} for {label}")
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if arl(mid) >= target:
            hi = mid
        else:
            lo = mid
        if hi - lo < 1e-5 * hi:
            break
    return hi


def _check_batch(batch: int) -> None:
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be an int >= 1, got {batch!r}")


@lru_cache(maxsize=4096)
def gaussian_threshold(
    shift_sd: float, arl0: float, clip: float | None = None, batch: int = 1
) -> GaussianCalibration:
    """Threshold for a one-sided Gaussian CUSUM designed for a shift of ``shift_sd`` sd,
    updated once per bucket of ``batch`` observations (ARL0 counted in observations)."""
    if not shift_sd > 0.0:
        raise ValueError(f"shift_sd must be > 0, got {shift_sd!r}")
    if not arl0 > 1.0:
        raise ValueError(f"arl0 must be > 1, got {arl0!r}")
    if clip is not None and not clip > shift_sd / 2.0:
        raise ValueError(f"clip must exceed shift_sd / 2 = {shift_sd / 2.0!r}, got {clip!r}")
    _check_batch(batch)
    k = shift_sd / 2.0
    h = _bisect(lambda x: gaussian_arl(x, k, clip=clip, batch=batch), arl0, f"{shift_sd=}")
    return GaussianCalibration(
        shift_sd=shift_sd,
        h_std=h,
        arl0=gaussian_arl(h, k, clip=clip, batch=batch),
        target_arl0=arl0,
        clip=clip,
        batch=batch,
    )


def _binomial_llr_cdf(a: float, b: float, batch: int, p: float) -> Cdf:
    """CDF of ``k a + (n - k) b`` with ``k ~ Binomial(n, p)`` (one bucket's LLR)."""

    def cdf(x: np.ndarray) -> np.ndarray:
        t = (x - batch * b) / (a - b)
        if a > b:  # increasing in k
            return binom_cdf_array(np.floor(t), batch, p)
        return binom_survival_array(np.ceil(t) - 1, batch, p)

    return cdf


@lru_cache(maxsize=4096)
def bernoulli_batch_lattice(p0: float, p1: float, arl0: float, batch: int) -> BernoulliLattice:
    """The lattice chart of :func:`bernoulli_lattice` re-thresholded for buckets of ``batch``.

    Checking only at bucket ends (and flooring at 0 only there) lowers the false-alarm rate
    a lot: with the per-observation threshold for 0.20 -> 0.30 the ARL0 is ~26,000 obs at
    20 obs per bucket instead of 10,000. The bucket chain (Brook-Evans on the binomial LLR,
    300 cells) finds the threshold that spends the budget; ``arl0``/``arl1`` are in obs.
    """
    _check_batch(batch)
    if batch == 1:
        return bernoulli_lattice(p0, p1, arl0)
    _validate_rates(p0, p1, arl0)
    step_event, step_nonevent, unit = lattice_steps(p0, p1)
    a, b = step_event * unit, step_nonevent * unit
    f0 = _binomial_llr_cdf(a, b, batch, p0)
    h = _bisect(lambda x: batch * chain_arl(x, f0), arl0, f"{p0=}, {p1=}, {batch=}")
    units = math.ceil(h / unit - 1e-9)
    h_used = units * unit
    return BernoulliLattice(
        p0=p0,
        p1=p1,
        step_event=step_event,
        step_nonevent=step_nonevent,
        unit=unit,
        threshold_units=units,
        arl0=batch * chain_arl(h_used, f0),
        arl1=batch * chain_arl(h_used, _binomial_llr_cdf(a, b, batch, p1)),
        target_arl0=arl0,
        batch=batch,
    )
