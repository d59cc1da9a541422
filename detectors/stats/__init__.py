"""Sequential and window statistics used by the signal families (pure functions)."""

from detectors.stats.bernoulli_cusum import BernoulliCusum
from detectors.stats.calibration import bernoulli_lattice, gaussian_threshold
from detectors.stats.gaussian_cusum import GaussianCusum, WinsorisedGaussianCusum
from detectors.stats.two_sided import TwoSidedCusum, detector_from_dict

__all__ = [
    "BernoulliCusum",
    "GaussianCusum",
    "TwoSidedCusum",
    "WinsorisedGaussianCusum",
    "bernoulli_lattice",
    "detector_from_dict",
    "gaussian_threshold",
]
