"""Monte Carlo draws for uncertain factors and prices, vectorised over all uncertain values at once.

Conventions (as the background data file states them):
- ``triangular``: minimum ``low``, mode = the central value, maximum ``high``;
- ``uniform``: between ``low`` and ``high``;
- ``lognormal``: median = the central value, ``low``/``high`` the 2.5 and 97.5 percentiles, so
  sigma = ln(high / low) / (2 × 1.96);
- ``normal``: mean = the central value, standard deviation ``sd``, truncated at zero (prices and
  factors are not negative).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

Z_975 = 1.959963984540054
"""Standard-normal 97.5 % quantile."""


def sample_rows(
    central: np.ndarray,
    distribution: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    n: int,
    rng: np.random.Generator,
    sd: np.ndarray | None = None,
) -> np.ndarray:
    """Draw ``n`` samples of every value; values without a distribution stay constant. (n, k)."""
    central = np.asarray(central, dtype=float)
    out = np.broadcast_to(central, (n, central.size)).copy()
    tri = np.flatnonzero(distribution == "triangular")
    if tri.size:
        u = rng.random((n, tri.size))
        a, c, b = low[tri], central[tri], high[tri]
        width = np.where(b > a, b - a, 1.0)
        fc = (c - a) / width
        left = a + np.sqrt(u * width * (c - a))
        right = b - np.sqrt((1 - u) * width * (b - c))
        out[:, tri] = np.where(u < fc, left, right)
    uni = np.flatnonzero(distribution == "uniform")
    if uni.size:
        out[:, uni] = low[uni] + rng.random((n, uni.size)) * (high[uni] - low[uni])
    logn = np.flatnonzero(distribution == "lognormal")
    if logn.size:
        sigma = np.log(high[logn] / low[logn]) / (2 * Z_975)
        out[:, logn] = central[logn] * np.exp(sigma * rng.standard_normal((n, logn.size)))
    norm = np.flatnonzero(distribution == "normal")
    if norm.size:
        scale = np.asarray(sd, dtype=float)[norm] if sd is not None else np.ones(norm.size)
        lower = (0.0 - central[norm]) / scale
        u = rng.random((n, norm.size))
        z = stats.norm.ppf(stats.norm.cdf(lower) + u * (1 - stats.norm.cdf(lower)))
        out[:, norm] = central[norm] + scale * z
    return out


def check_distribution(
    distribution: str, central: float, low: float | None, high: float | None, sd: float | None
) -> str | None:
    """What is wrong with a distribution's parameters (None when they are fine)."""
    if distribution in ("triangular", "uniform"):
        if low is None or high is None:
            return f"a {distribution} distribution needs low and high"
        if not low <= central <= high or low == high:
            return f"needs low <= value <= high and low < high (got {low}, {central}, {high})"
    if distribution == "lognormal" and (low is None or high is None or not 0 < low < high):
        return "a lognormal distribution needs 0 < low < high (its 2.5 and 97.5 percentiles)"
    if distribution == "normal" and (sd is None or sd <= 0):
        return "a normal distribution needs a positive standard deviation sd"
    return None
