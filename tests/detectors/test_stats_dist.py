"""detectors.stats.dist agrees with scipy.stats, which the daemon must not import."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from detectors.sequential import binomial_p
from detectors.stats import dist
from detectors.stats.window import welch_t_summary


@pytest.mark.parametrize("n,p", [(1, 0.5), (16, 0.2), (64, 0.01), (500, 0.3)])
def test_binomial_tails_match_scipy_including_out_of_range_k(n: int, p: float) -> None:
    k = np.arange(-3, n + 4, dtype=float) + 0.5 * (np.arange(n + 7) % 2)
    np.testing.assert_allclose(dist.binom_cdf_array(k, n, p), stats.binom.cdf(np.floor(k), n, p))
    np.testing.assert_allclose(
        dist.binom_survival_array(k, n, p), stats.binom.sf(np.floor(k), n, p), atol=1e-300
    )
    for j in range(-1, n + 2):
        assert dist.binom_sf(j, n, p) == pytest.approx(stats.binom.sf(j - 1, n, p), rel=1e-12)


@pytest.mark.parametrize("z", [-8.0, -1.96, 0.0, 0.3, 5.0])
def test_normal_tails_match_scipy(z: float) -> None:
    assert dist.norm_sf(z) == pytest.approx(stats.norm.sf(z), rel=1e-12)
    assert dist.norm_cdf(z) == pytest.approx(stats.norm.cdf(z), rel=1e-12)


@pytest.mark.parametrize("k,n", [(0, 600), (3, 500), (250, 500)])
def test_beta_quantile_matches_scipy(k: int, n: int) -> None:
    assert dist.beta_ppf(0.975, k + 1, n - k) == pytest.approx(
        stats.beta.ppf(0.975, k + 1, n - k), rel=1e-10
    )


@pytest.mark.parametrize("alternative", ["greater", "less", "two-sided"])
def test_welch_t_matches_scipy(alternative: str) -> None:
    ours = welch_t_summary(500, 0.85, 0.12, 40, 0.80, 0.10, alternative)  # type: ignore[arg-type]
    ref = stats.ttest_ind_from_stats(
        0.80, 0.10, 40, 0.85, 0.12, 500, equal_var=False, alternative=alternative
    )
    assert ours.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-10)


@pytest.mark.parametrize("alternative", ["greater", "less"])
def test_one_sided_exact_binomial_matches_scipy(alternative: str) -> None:
    for k in (0, 12, 20, 31, 100):
        ref = stats.binomtest(k, 100, 0.2, alternative=alternative).pvalue
        assert binomial_p(k, 100, 0.2, alternative) == pytest.approx(ref, rel=1e-10)  # type: ignore[arg-type]


def test_the_daemon_does_not_import_scipy_stats() -> None:
    # scipy.stats alone is ~65 MB of resident memory, more than the rest of the daemon
    code = (
        "import sys, monitor.cli.main, monitor.api.app, monitor.detection.scheduler;"
        "print('scipy.stats' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
