"""The few distribution functions a detection pass needs, on ``scipy.special``.

Importing ``scipy.stats`` adds about 65 MB to the daemon's resident memory, more than the
rest of it together; the detection pass only needs normal, binomial, beta and Student t
tail probabilities, which ``scipy.special`` computes with the same routines. The window
tests that need more (Fisher, KS, Mann-Whitney) import ``scipy.stats`` when called.

Example:
    >>> round(norm_sf(1.959964), 4)
    0.025
    >>> round(binom_sf(3, 10, 0.1), 4)   # P(X >= 3), X ~ Binomial(10, 0.1)
    0.0702
    >>> round(beta_ppf(0.975, 1, 600), 5)  # Clopper-Pearson upper bound of 0 in 600
    0.00613
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special


def norm_sf(z: float) -> float:
    return float(special.ndtr(-z))


def norm_isf(q: float) -> float:
    """The z with ``P(Z > z) = q``."""
    return float(-special.ndtri(q))


def norm_cdf(z: float) -> float:
    return float(special.ndtr(z))


def binom_cdf_array(k: np.ndarray, n: int, p: float) -> np.ndarray:
    """``P(X <= k)`` elementwise, for any real ``k`` (floored; 0 below 0, 1 from ``n``)."""
    k = np.floor(np.asarray(k, dtype=float))
    inside = np.clip(k, 0, n)
    out = np.asarray(special.bdtr(inside, n, p), dtype=float)
    return np.where(k < 0, 0.0, np.where(k >= n, 1.0, out))


def binom_survival_array(m: np.ndarray, n: int, p: float) -> np.ndarray:
    """``P(X > m)`` elementwise, for any real ``m`` (floored; 1 below 0, 0 from ``n``)."""
    m = np.floor(np.asarray(m, dtype=float))
    inside = np.clip(m, 0, n)
    out = np.asarray(special.bdtrc(inside, n, p), dtype=float)
    return np.where(m < 0, 1.0, np.where(m >= n, 0.0, out))


def binom_sf(k: int, n: int, p: float) -> float:
    """``P(X >= k)`` for ``X ~ Binomial(n, p)``."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    return float(special.bdtrc(k - 1, n, p))


def binom_cdf(k: int, n: int, p: float) -> float:
    """``P(X <= k)`` for ``X ~ Binomial(n, p)``."""
    return float(binom_cdf_array(np.array([k]), n, p)[0])


def beta_ppf(q: float, a: float, b: float) -> float:
    return float(special.betaincinv(a, b, q))


def t_sf(t: float, df: float) -> float:
    """``P(T > t)`` for Student's t with ``df`` degrees of freedom."""
    if math.isinf(df):
        return norm_sf(t)
    return float(special.stdtr(df, -t))
