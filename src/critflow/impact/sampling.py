"""Monte Carlo draws for uncertain background factors and prices, vectorised over all uncertain
values at once. The distributions and their conventions are those of model inputs
(:func:`critflow.model.uncertainty.inverse_cdf`): triangular (low, mode, high), uniform,
lognormal (median, 2.5 and 97.5 percentiles) and normal truncated at zero.
"""

from __future__ import annotations

import numpy as np

from critflow.model.uncertainty import inverse_cdf


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
    return inverse_cdf(distribution, central, low, high, sd, rng.random((n, central.size)))


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
