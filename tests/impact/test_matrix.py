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


def test_monte_carlo_matches_one_direct_solve_per_sample():
    a, b, c = system(seed=1)
    lca = MatrixLCA(a, b, c, solver="superlu")
    rng = np.random.default_rng(4)
    off_diagonal = np.repeat(np.arange(a.shape[0]), np.diff(a.indptr)) != a.indices
    drawn = []

    def sample_values(m: int) -> np.ndarray:
        factor = np.where(off_diagonal[:, None], rng.lognormal(0, 0.3, (a.nnz, m)), 1.0)
        values = a.data[:, None] * factor
        drawn.append(values)
        return values

    demand = np.zeros(a.shape[0])
    demand[3] = 1.0
    result = lca.monte_carlo(demand, sample_values, samples=25, chunk=10, rtol=1e-12)
    values = np.concatenate(drawn, axis=1)
    for i in range(25):
        ai = sp.csr_matrix((values[:, i], a.indices, a.indptr), shape=a.shape)
        expected = c @ (b @ spla.spsolve(ai.tocsc(), demand))
        assert result.scores[i, 0] == pytest.approx(expected, rel=1e-9)
    assert result.max_relative_residual < 1e-10
