"""A sparse matrix LCA: technosphere A (products × activities), biosphere B, characterisation c.

    supply    A x = f            (x: activity levels for demand f)
    inventory g = B x
    score     h = c · B x

Solved by factorising once and reusing the factors:
- many demands at once: one factorisation, one multi-right-hand-side solve;
- scores of every product: the adjoint system Aᵀ y = (c B)ᵀ, then h(f) = fᵀ y — one solve for all;
- Monte Carlo: every sample keeps A's sparsity pattern and only its values change, so the static
  factorisation preconditions a BiCGSTAB iteration run for all samples at once (a block of
  right-hand sides; per-sample scalars), with the samples' matrix-vector products as one sparse
  product over the shared pattern. No Python loop over samples.

The factorisation is PARDISO when ``pypardiso`` is installed (as bw2calc uses it), otherwise SciPy's
SuperLU on Aᵀ (far less fill than A for LCA matrices; critflow lca-notes 1.2).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

try:  # optional: Intel MKL PARDISO, x86-64 only
    import pypardiso as _pypardiso
except ImportError:  # pragma: no cover - depends on the machine
    _pypardiso = None


class _Factor:
    """Factorisation of A that solves A x = b and Aᵀ y = b for blocks of right-hand sides."""

    def __init__(self, a: sp.csr_matrix, solver: str) -> None:
        self.solver = solver
        if solver == "pardiso":
            self._a = a.tocsr()
            self._pardiso = _pypardiso.PyPardisoSolver()
            self._pardiso.factorize(self._a)
        else:
            self._lu = spla.splu(a.T.tocsc())  # LU of Aᵀ: solve(…, trans='T') solves A x = b

    def solve(self, b: np.ndarray) -> np.ndarray:
        if self.solver == "pardiso":
            return self._pardiso.solve(self._a, np.asarray(b, dtype=float))
        return self._lu.solve(np.asarray(b, dtype=float), trans="T")

    def solve_transposed(self, b: np.ndarray) -> np.ndarray:
        if self.solver == "pardiso":
            # A's CSR arrays read as CSC are Aᵀ: pypardiso then solves with the transposed
            # factors of A (iparm 12), reusing the factorisation instead of making a second one
            a = self._a
            at = sp.csc_matrix((a.data, a.indices, a.indptr), shape=a.shape)
            return self._pardiso.solve(at, np.asarray(b, dtype=float))
        return self._lu.solve(np.asarray(b, dtype=float))


@dataclass
class MonteCarloResult:
    """Scores of every sample (N, categories) and how the iteration went."""

    scores: np.ndarray
    iterations: int
    max_relative_residual: float


class MatrixLCA:
    """LCA of a technosphere ``A`` (n × n), biosphere ``B`` (m × n) and characterisation ``C``
    (k × m, or a vector for one impact category)."""

    def __init__(
        self,
        technosphere: sp.spmatrix,
        biosphere: sp.spmatrix,
        characterisation: np.ndarray | sp.spmatrix,
        solver: str | None = None,
    ) -> None:
        self.A = sp.csr_matrix(technosphere)
        self.B = sp.csr_matrix(biosphere)
        c = characterisation
        c = c.toarray() if sp.issparse(c) else np.asarray(c, dtype=float)
        self.C = np.atleast_2d(c)
        if solver is None:
            solver = "pardiso" if _pypardiso is not None else "superlu"
        if solver == "pardiso" and _pypardiso is None:
            raise ImportError("pypardiso is not installed; use solver='superlu'")
        self.solver = solver
        self.CB = np.asarray((self.B.T @ self.C.T).T)  # (k, n): characterised biosphere
        self._factor: _Factor | None = None

    @property
    def factor(self) -> _Factor:
        if self._factor is None:
            self._factor = _Factor(self.A, self.solver)
        return self._factor

    def supply(self, demand: np.ndarray) -> np.ndarray:
        """Activity levels x for a demand vector (n,) or block (n, d)."""
        return self.factor.solve(demand)

    def scores(self, demand: np.ndarray) -> np.ndarray:
        """Scores (k,) for one demand or (k, d) for a block of demands."""
        return self.CB @ self.supply(demand)

    def all_product_scores(self) -> np.ndarray:
        """Score of one unit of every product (k, n), by the adjoint system Aᵀ Y = (C B)ᵀ."""
        return self.factor.solve_transposed(self.CB.T.copy()).T

    # ------------------------------------------------------------------ Monte Carlo
    def monte_carlo(
        self,
        demand: np.ndarray,
        sample_values: Callable[[int], np.ndarray],
        samples: int,
        chunk: int = 100,
        rtol: float = 1e-10,
        max_iterations: int = 200,
    ) -> MonteCarloResult:
        """Scores for ``samples`` technosphere draws with A's sparsity pattern.

        ``sample_values(m)`` returns an (nnz, m) array of values of A's stored entries (in the
        order of ``self.A.data``, CSR). Samples run in chunks of ``chunk`` right-hand sides.
        """
        a = self.A
        rows = np.repeat(np.arange(a.shape[0]), np.diff(a.indptr))
        cols = a.indices
        # gather matrix: (A_i x_i) = R @ (values_i * x_i[cols]); R sums stored entries by row
        gather = sp.csr_matrix(
            (np.ones(a.nnz), (rows, np.arange(a.nnz))), shape=(a.shape[0], a.nnz)
        )
        f = np.asarray(demand, dtype=float).reshape(-1)
        x0 = self.supply(f)
        out, worst, iters = [], 0.0, 0
        done = 0
        while done < samples:
            m = min(chunk, samples - done)
            values = sample_values(m)

            def matvec(x: np.ndarray, values: np.ndarray = values) -> np.ndarray:
                return gather @ (values * x[cols, :])

            x, it, residual = _block_bicgstab(
                matvec,
                self.factor.solve,
                np.repeat(f[:, None], m, axis=1),
                np.repeat(x0[:, None], m, axis=1),
                rtol,
                max_iterations,
            )
            out.append((self.CB @ x).T)
            worst, iters = max(worst, residual), max(iters, it)
            done += m
        return MonteCarloResult(np.concatenate(out), iters, worst)


def _block_bicgstab(
    matvec: Callable[[np.ndarray], np.ndarray],
    precondition: Callable[[np.ndarray], np.ndarray],
    b: np.ndarray,
    x: np.ndarray,
    rtol: float,
    max_iterations: int,
) -> tuple[np.ndarray, int, float]:
    """Right-preconditioned BiCGSTAB for a block of independent systems A_i x_i = b_i (columns),
    each with its own scalars; stops when every column's relative residual is below ``rtol``."""
    r = b - matvec(x)
    r_hat = r.copy()
    norm_b = np.linalg.norm(b, axis=0)
    norm_b[norm_b == 0] = 1.0
    rho = alpha = omega = np.ones(b.shape[1])
    v = p = np.zeros_like(b)
    iteration = 0
    active = np.linalg.norm(r, axis=0) / norm_b > rtol
    with np.errstate(divide="ignore", invalid="ignore"):
        while active.any() and iteration < max_iterations:
            iteration += 1
            rho_new = np.einsum("ij,ij->j", r_hat, r)
            beta = np.where(active, (rho_new / rho) * (alpha / omega), 0.0)
            p = r + beta * (p - omega * v)
            p_hat = precondition(p)
            v = matvec(p_hat)
            alpha = np.where(active, rho_new / np.einsum("ij,ij->j", r_hat, v), 0.0)
            s = r - alpha * v
            s_hat = precondition(s)
            t = matvec(s_hat)
            tt = np.einsum("ij,ij->j", t, t)
            omega = np.where(active & (tt > 0), np.einsum("ij,ij->j", t, s) / tt, 0.0)
            x = x + alpha * p_hat + omega * s_hat
            r = s - omega * t
            rho = np.where(active, rho_new, rho)
            alpha = np.where(active, alpha, 1.0)
            omega = np.where(active, omega, 1.0)
            active &= np.linalg.norm(r, axis=0) / norm_b > rtol
    true_residual = np.linalg.norm(b - matvec(x), axis=0) / norm_b
    return x, iteration, float(true_residual.max())
