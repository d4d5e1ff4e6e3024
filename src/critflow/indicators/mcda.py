"""Multi-criteria comparison of alternatives (scenarios, routes): weighted sum and TOPSIS, with the
sensitivity of the winner to each weight.

Matrices are (alternatives × criteria); ``benefit`` is True where more is better. Formulas:
- weighted sum: min-max normalisation r = (x − min) / (max − min) for benefit criteria and
  (max − x) / (max − min) for cost criteria; score = Σ_j w_j r_ij;
- TOPSIS (Hwang & Yoon 1981): r = x / ‖x_j‖₂; v = w r; D⁺, D⁻ = distances to the best and worst
  value per criterion; closeness C = D⁻ / (D⁺ + D⁻).
- PROMETHEE II (Brans & Vincke 1985): per criterion the preference P_j(d) of the difference
  d = g_j(a) − g_j(b) (usual: 1 if d > 0; linear with indifference q and preference p:
  (d − q)/(p − q) clipped to [0, 1]); π(a, b) = Σ_j w_j P_j; net flow φ(a) = (Σ_b π(a, b) −
  Σ_b π(b, a)) / (n − 1).
Both accept a leading batch of weight vectors, so a sensitivity scan is one array operation.

Weights may come from an AHP pairwise-comparison matrix (Saaty 1980): the principal eigenvector,
with the consistency index CI = (λ_max − n)/(n − 1) and ratio CR = CI / RI(n), RI being Saaty's
random index; CR ≤ 0.10 is the usual acceptance limit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

METHODS = ("weighted_sum", "topsis", "promethee_ii")
RANDOM_INDEX = (0.0, 0.0, 0.58, 0.90, 1.12, 1.24, 1.32, 1.41, 1.45, 1.49)
"""Saaty's random consistency index RI for n = 1 … 10 (Saaty, The Analytic Hierarchy Process, 1980)."""
CR_LIMIT = 0.10


@dataclass(frozen=True)
class AhpWeights:
    """Weights from a pairwise-comparison matrix and how consistent the judgements are."""

    weights: np.ndarray
    lambda_max: float
    consistency_index: float
    consistency_ratio: float

    @property
    def consistent(self) -> bool:
        return self.consistency_ratio <= CR_LIMIT


def ahp_problem(pairwise: np.ndarray) -> str | None:
    """What is wrong with a pairwise-comparison matrix (None when it is usable)."""
    a = np.asarray(pairwise, float)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        return f"the pairwise matrix must be square (got shape {a.shape})"
    if not (a > 0).all():
        return (
            "every pairwise comparison must be positive (1 = equal, 9 = extremely more important)"
        )
    if not np.allclose(np.diag(a), 1.0):
        return "the diagonal of the pairwise matrix must be 1 (a criterion compared with itself)"
    if not np.allclose(a * a.T, 1.0, rtol=1e-3):
        i, j = np.unravel_index(np.argmax(np.abs(a * a.T - 1)), a.shape)
        return (
            f"the matrix is not reciprocal: a[{i}][{j}] = {a[i, j]:g} but a[{j}][{i}] = "
            f"{a[j, i]:g} (should be {1 / a[i, j]:.4g})"
        )
    if a.shape[0] > len(RANDOM_INDEX):
        return f"AHP here takes at most {len(RANDOM_INDEX)} criteria"
    return None


def ahp(pairwise: np.ndarray) -> AhpWeights:
    """Weights (summing to 1) as the principal eigenvector of ``pairwise``, with CI and CR."""
    a = np.asarray(pairwise, float)
    values, vectors = np.linalg.eig(a)
    k = int(np.argmax(values.real))
    w = np.abs(vectors[:, k].real)
    w = w / w.sum()
    n = a.shape[0]
    lam = float(values[k].real)
    ci = (lam - n) / (n - 1) if n > 1 else 0.0
    ri = RANDOM_INDEX[n - 1]
    return AhpWeights(w, lam, ci, ci / ri if ri > 0 else 0.0)


def _normalise_weights(weights: np.ndarray) -> np.ndarray:
    weights = np.asarray(weights, float)
    return weights / weights.sum(axis=-1, keepdims=True)


def weighted_sum(matrix: np.ndarray, weights: np.ndarray, benefit: np.ndarray) -> np.ndarray:
    """Scores (…, alternatives) in [0, 1]; ``weights`` may carry leading batch axes."""
    x = np.asarray(matrix, float)
    low, high = x.min(axis=0), x.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    r = np.where(np.asarray(benefit), (x - low) / span, (high - x) / span)
    r = np.where(high > low, r, 1.0)  # a criterion on which all alternatives are equal
    return np.einsum("...j,ij->...i", _normalise_weights(weights), r)


def topsis(matrix: np.ndarray, weights: np.ndarray, benefit: np.ndarray) -> np.ndarray:
    """TOPSIS closeness (…, alternatives) in [0, 1]; ``weights`` may carry leading batch axes."""
    x = np.asarray(matrix, float)
    norm = np.sqrt((x**2).sum(axis=0))
    r = x / np.where(norm > 0, norm, 1.0)
    v = _normalise_weights(weights)[..., None, :] * r  # (…, alternatives, criteria)
    benefit = np.asarray(benefit)
    best = np.where(benefit, v.max(axis=-2), v.min(axis=-2))[..., None, :]
    worst = np.where(benefit, v.min(axis=-2), v.max(axis=-2))[..., None, :]
    d_best = np.sqrt(((v - best) ** 2).sum(axis=-1))
    d_worst = np.sqrt(((v - worst) ** 2).sum(axis=-1))
    total = d_best + d_worst
    return np.where(total > 0, d_worst / np.where(total > 0, total, 1.0), 0.5)


def promethee_ii(
    matrix: np.ndarray,
    weights: np.ndarray,
    benefit: np.ndarray,
    preference: np.ndarray | None = None,
    indifference: np.ndarray | None = None,
) -> np.ndarray:
    """PROMETHEE II net flows (…, alternatives) in [−1, 1]; per-criterion thresholds in the criteria's
    units (``preference`` p, ``indifference`` q; NaN or None = the usual criterion)."""
    x = np.where(np.asarray(benefit), np.asarray(matrix, float), -np.asarray(matrix, float))
    d = x[:, None, :] - x[None, :, :]  # (a, b, criteria)
    n_c = x.shape[1]
    p = np.full(n_c, np.nan) if preference is None else np.asarray(preference, float)
    q = np.zeros(n_c) if indifference is None else np.nan_to_num(np.asarray(indifference, float))
    usual = np.isnan(p)
    span = np.where(usual, 1.0, np.nan_to_num(p) - q)
    linear = np.clip((d - q) / np.where(span > 0, span, 1.0), 0.0, 1.0)
    pref = np.where(usual, (d > 0).astype(float), linear)
    pi = np.einsum("...j,abj->...ab", _normalise_weights(weights), pref)
    n = x.shape[0]
    return (pi.sum(axis=-1) - pi.sum(axis=-2)) / max(n - 1, 1)


def score(
    method: str, matrix: np.ndarray, weights: np.ndarray, benefit: np.ndarray, **options
) -> np.ndarray:
    """Scores by ``method`` ('weighted_sum', 'topsis' or 'promethee_ii'); higher is better."""
    if method == "promethee_ii":
        return promethee_ii(
            matrix, weights, benefit, options.get("preference"), options.get("indifference")
        )
    return {"weighted_sum": weighted_sum, "topsis": topsis}[method](matrix, weights, benefit)


@dataclass(frozen=True)
class WeightRange:
    """How far one criterion's weight can move (others rescaled in proportion) before the winner changes."""

    criterion: int
    weight: float
    low: float  # smallest weight that keeps the winner (0 if it never changes below)
    high: float  # largest weight that keeps the winner (1 if it never changes above)


def weight_sensitivity(
    method: str,
    matrix: np.ndarray,
    weights: np.ndarray,
    benefit: np.ndarray,
    resolution: int = 10001,
    **options,
) -> list[WeightRange]:
    """For each criterion, the interval of its weight over which the current winner stays first.

    The weight w_k is moved over [0, 1] on a grid of ``resolution`` points while the other weights
    keep their proportions; all grid points are scored in one batched call.
    """
    w = _normalise_weights(weights)
    winner = int(np.argmax(score(method, matrix, w, benefit, **options)))
    grid = np.linspace(0.0, 1.0, resolution)
    ranges = []
    for k in range(w.size):
        others = np.delete(w, k)
        rest = (
            others / others.sum()
            if others.sum() > 0
            else np.full(others.size, 1 / max(others.size, 1))
        )
        batch = np.empty((resolution, w.size))
        batch[:, k] = grid
        batch[:, np.arange(w.size) != k] = (1 - grid)[:, None] * rest[None, :]
        scores = score(method, matrix, batch, benefit, **options)
        keeps = np.argmax(scores, axis=-1) == winner
        at = int(np.argmin(np.abs(grid - w[k])))
        below = np.flatnonzero(~keeps[: at + 1])
        above = np.flatnonzero(~keeps[at:])
        low = grid[below[-1] + 1] if below.size else 0.0
        high = grid[at + above[0] - 1] if above.size else 1.0
        ranges.append(WeightRange(k, float(w[k]), float(low), float(high)))
    return ranges
