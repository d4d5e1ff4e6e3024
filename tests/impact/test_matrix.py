"""The sparse matrix LCA: forward, multi-demand, adjoint and Monte Carlo against direct solves."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from critflow.impact.matrix import MatrixLCA


def system(n: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    off = sp.random(n, n, density=8 / n, random_state=rng, format="csr")
    off.setdiag(0)
    off.eliminate_zeros()
    colsum = np.asarray(off.sum(axis=0)).ravel()
    scale = 0.8 * rng.random(n) / np.where(colsum > 0, colsum, 1)
    a = (sp.identity(n, format="csr") - off @ sp.diags(scale)).tocsr()  # M-matrix
    b = sp.random(50, n, density=0.1, random_state=rng, format="csr")
    c = rng.random(50)
    return a, b, c


@pytest.mark.parametrize("solver", ["superlu", "pardiso"])
def test_forward_multi_and_adjoint_agree_with_a_direct_solve(solver):
    if solver == "pardiso":
        pytest.importorskip("pypardiso")
    a, b, c = system()
    lca = MatrixLCA(a, b, c, solver=solver)
    demands = np.eye(a.shape[0])[:, :20]
    direct = c @ (b @ spla.spsolve(a.tocsc(), demands))
    assert lca.scores(demands)[0] == pytest.approx(direct, rel=1e-12)
    assert lca.all_product_scores()[0][:20] == pytest.approx(direct, rel=1e-12)


def _draws(a: sp.csr_matrix, rng, sigma: float, diagonal_sigma: float = 0.0):
    """A sampler of lognormal draws around A's values (inputs by ``sigma``, production amounts
    on the diagonal by ``diagonal_sigma``), keeping every draw for the reference solves."""
    on_diagonal = np.repeat(np.arange(a.shape[0]), np.diff(a.indptr)) == a.indices
    drawn = []

    def sample_values(m: int) -> np.ndarray:
        spread = np.where(on_diagonal, diagonal_sigma, sigma)[:, None]
        values = a.data[:, None] * rng.lognormal(0, 1, (a.nnz, m)) ** spread
        drawn.append(values)
        return values

    return sample_values, drawn


def _direct_scores(a, b, c, values, demand):
    """Independent reference: one SciPy spsolve per sample."""
    c = np.atleast_2d(c)
    return np.array(
        [
            c
            @ (
                b
                @ spla.spsolve(
                    sp.csr_matrix((v, a.indices, a.indptr), shape=a.shape).tocsc(), demand
                )
            )
            for v in values.T
        ]
    )


def test_monte_carlo_matches_one_direct_solve_per_sample():
    a, b, c = system(seed=1)
    lca = MatrixLCA(a, b, c, solver="superlu")
    sample_values, drawn = _draws(a, np.random.default_rng(4), 0.3)
    demand = np.zeros(a.shape[0])
    demand[3] = 1.0
    result = lca.monte_carlo(demand, sample_values, samples=25, chunk=10, rtol=1e-12)
    expected = _direct_scores(a, b, c, np.concatenate(drawn, axis=1), demand)
    assert result.scores == pytest.approx(expected, rel=1e-10)
    assert result.max_relative_residual < 1e-9
    assert result.direct == 0


@pytest.mark.parametrize("seed", range(6))
def test_monte_carlo_scores_within_1e6_of_a_direct_solve_on_every_sample(seed):
    """Random systems, several categories, uncertain inputs and production amounts: every sample
    of the default (loosest) tolerance stays within 1e-6 of its own direct solve."""
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(50, 400))
    a, b, _ = system(n, seed=seed)
    a = (a @ sp.diags(rng.uniform(0.5, 2.0, n))).tocsr()  # production amounts other than 1
    c = rng.random((3, b.shape[0])) * (rng.random((3, b.shape[0])) < 0.3)
    c[2] = 0.0
    c[2, rng.integers(0, b.shape[0])] = 1.0  # one category with a single factor
    lca = MatrixLCA(a, b, c, solver="superlu")
    sigma = float(rng.uniform(0.1, 0.6))
    sample_values, drawn = _draws(a, rng, sigma, diagonal_sigma=0.1)
    demand = np.zeros(n)
    demand[rng.choice(n, 3, replace=False)] = rng.uniform(0.5, 2.0, 3)
    samples = int(rng.integers(20, 60))
    result = lca.monte_carlo(demand, sample_values, samples=samples, chunk=int(rng.integers(7, 30)))
    expected = _direct_scores(a, b, c, np.concatenate(drawn, axis=1), demand)
    assert result.scores.shape == (samples, 3)
    nonzero = expected != 0
    relative = np.abs(result.scores - expected)[nonzero] / np.abs(expected[nonzero])
    assert relative.max() < 1e-6, (sigma, relative.max())
    assert np.all(result.scores[~nonzero] == pytest.approx(0.0, abs=1e-12))
    assert result.max_estimated_error <= 1e-7


def test_monte_carlo_solves_directly_what_the_iteration_does_not_reach():
    a, b, c = system(seed=2)
    lca = MatrixLCA(a, b, c, solver="superlu")
    sample_values, drawn = _draws(a, np.random.default_rng(5), 0.5)
    demand = np.zeros(a.shape[0])
    demand[0] = 1.0
    result = lca.monte_carlo(demand, sample_values, samples=12, chunk=5, max_iterations=1)
    expected = _direct_scores(a, b, c, np.concatenate(drawn, axis=1), demand)
    assert result.direct == 12
    assert result.scores == pytest.approx(expected, rel=1e-12)


def test_monte_carlo_refuses_values_of_the_wrong_shape():
    a, b, c = system(n=40)
    lca = MatrixLCA(a, b, c, solver="superlu")
    with pytest.raises(ValueError, match=r"sample_values\(4\) returned shape \(4, \d+\)"):
        lca.monte_carlo(np.ones(40), lambda m: np.ones((m, a.nnz)), samples=4, chunk=4)
