"""Solve the balance equations of a model for every scenario, period and element at once.

Periods whose transfer coefficients are the same share one sparse LU factorisation; all
scenarios and elements are blocks of that one factorisation. When a model has fewer given values
than periods, one triangular solve gives the response of every flow to each given value and each
period is then a batched matrix product; otherwise all periods are right-hand-side columns of one
triangular solve. Small systems (see :mod:`critflow.engine.linear`) are one batched dense solve
instead, with every period a right-hand-side column, and import no SciPy. No Python loop runs over
elements or periods.
"""

from __future__ import annotations

import time

import numpy as np

from critflow.engine.assemble import (
    assemble_matrix,
    assemble_rhs,
    block_rows,
    build_structure,
    given_positions,
    unit_rhs,
)
from critflow.engine.compile import ModelInputs
from critflow.engine.diagnose import MAX_REPORTED, explain_block, negative_flows, trapped_loops
from critflow.engine.linear import DenseBlocks, SingularSystemError, dense_matrices, use_dense
from critflow.errors import CritflowError, Problem

NEGATIVE_TOLERANCE = 1e-9
"""Flows below -1e-9 × the largest flow of their block are errors; smaller ones are round-off."""


def period_groups(coefficients: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group periods with identical coefficients: (first period of each group, group of each period).

    ``coefficients`` is (S, P, E, J).
    """
    n_periods = coefficients.shape[1]
    flat = np.ascontiguousarray(np.moveaxis(coefficients, 1, 0).reshape(n_periods, -1))
    # group periods on the exact bytes of their coefficients (a loop over periods, not values)
    keys: dict[bytes, int] = {}
    group = np.array([keys.setdefault(row.tobytes(), len(keys)) for row in flat], dtype=np.int64)
    first = np.array([int(np.argmax(group == g)) for g in range(len(keys))], dtype=np.int64)
    return first, group


def explain(
    inputs: ModelInputs, structure, coefficients: np.ndarray, blocks, period: int
) -> CritflowError:
    """Explain the failing blocks; blocks with the same structure as one explained are named once."""
    topo = inputs.topology
    n_e = len(topo.elements)
    explained: dict[bytes, tuple[int, list[str]]] = {}
    problems: list[Problem] = []
    for b in blocks:
        s, e = divmod(int(b), n_e)
        key = (
            inputs.given_mask[s, e].tobytes()
            + (coefficients[s, e] > 0).tobytes()
            + bytes([s % 256])
        )
        if key in explained:
            explained[key][1].append(topo.elements[e])
            continue
        found = explain_block(inputs, structure, coefficients[s, e], s, e, period)
        if found:
            explained[key] = (len(problems), [])
            problems += found
        if len(problems) >= MAX_REPORTED:
            break
    for index, others in explained.values():
        if others:
            first = problems[index]
            problems[index] = Problem(
                first.where, f"{first.what} (the same holds for {', '.join(others)})", first.fix
            )
    if not problems:  # numerically singular without a structural cause found: say so plainly
        problems.append(
            Problem(
                "model",
                "the balance equations are singular (numerically) and no single cause was found",
                "Check for loops whose recycle shares are 1 or extremely close to 1.",
            )
        )
    return CritflowError(problems)


def _shared_blocks(tau: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Blocks with the same coefficients and given flows have the same matrix: the first block
    of each distinct matrix and the distinct matrix of every block, or None when they are all
    distinct (or too few blocks to gain)."""
    if tau.shape[0] < 8:
        return None
    key = np.ascontiguousarray(np.concatenate([tau, mask.astype(float)], axis=1))
    rows = key.view(np.dtype((np.void, key.dtype.itemsize * key.shape[1]))).ravel()
    _, representative, inverse = np.unique(rows, return_index=True, return_inverse=True)
    if representative.size > 0.5 * tau.shape[0]:
        return None
    return representative, inverse.reshape(-1)


def _solve_shared(structure, tau, mask, given, representative, inverse, timings) -> np.ndarray:
    """Factorise each distinct block once and give every block its own values: (B·F, P) for
    ``given`` (B, P, F).

    Two ways, whichever solves fewer right-hand-side columns: the response of every flow to each
    given value (G columns, then one small product per distinct block: cheap for many periods and
    few given values), or every block's own right-hand sides side by side (m·P columns, m the most
    blocks sharing one matrix: cheap for many given values, as a trade matrix has). Nothing of
    size blocks × flows × given values is ever built (a 60-region trade model took 1.3 GB so)."""
    n_b, n_f = mask.shape
    n_p = given.shape[1]
    n_u = representative.size
    start = time.perf_counter()
    sub_mask = mask[representative]
    matrix = assemble_matrix(structure, tau[representative], sub_mask)
    timings["assemble"] += time.perf_counter() - start
    start = time.perf_counter()
    import scipy.sparse.linalg as spla  # large systems only: ~0.3 s to import

    lu = spla.splu(matrix)
    timings["factorise"] += time.perf_counter() - start
    start = time.perf_counter()
    counts = np.bincount(inverse, minlength=n_u)
    rank = np.zeros(n_b, dtype=np.int64)  # the position of each block among those of its matrix
    order = np.argsort(inverse, kind="stable")
    rank[order] = np.arange(n_b) - np.repeat(np.cumsum(counts) - counts, counts)
    n_given = int(sub_mask.sum(axis=1).max(initial=0))
    solution = np.empty((n_b, n_f, n_p))
    if int(counts.max()) * n_p <= n_given:
        per_block = assemble_rhs(structure, mask, given).reshape(n_b, n_f, n_p)
        rhs = np.zeros((n_u, n_f, int(counts.max()), n_p))
        rhs[inverse, :, rank, :] = per_block
        del per_block
        rhs = rhs.reshape(n_u * n_f, -1)
        found = lu.solve(rhs)
        _check_shared(matrix, found, rhs)
        solution[:] = found.reshape(n_u, n_f, -1, n_p)[inverse, :, rank, :]
    else:
        rhs = unit_rhs(structure, sub_mask)
        response = lu.solve(rhs)  # (U·F, G)
        _check_shared(matrix, response, rhs)
        g_block, g_flow, g_rank = given_positions(mask)
        values = np.zeros((n_b, n_given, n_p))
        values[g_block, g_rank] = given[g_block, :, g_flow]
        response = response.reshape(n_u, n_f, n_given)
        # the blocks of each matrix, from the sort above (not one scan of all blocks per matrix)
        for u, blocks in enumerate(np.split(order, np.cumsum(counts)[:-1])):
            solution[blocks] = np.matmul(response[u], values[blocks])
    timings["solve"] += time.perf_counter() - start
    return solution.reshape(n_b * n_f, n_p)


def _check_shared(matrix, found: np.ndarray, rhs: np.ndarray) -> None:
    residual = np.abs(matrix @ found - rhs).max(initial=0.0)
    if not np.isfinite(found).all() or residual > 1e-8 * max(
        np.abs(found).max(initial=0.0), np.abs(rhs).max(initial=0.0), 1.0
    ):
        raise CritflowError(
            "model",
            "the balance equations are singular (numerically) for some blocks",
            "Check for loops whose recycle shares are 1 or extremely close to 1.",
        )


def _check_solution(
    inputs: ModelInputs,
    structure,
    tau: np.ndarray,
    period: int,
    checked: np.ndarray,
    rhs: np.ndarray,
    residual: float,
) -> None:
    """Refuse a solution (B·F, C) that is not finite or does not satisfy its equations: explain
    the blocks with non-finite or huge values (or all blocks when none stands out)."""
    scale = max(np.abs(rhs).max(initial=0.0), np.abs(checked).max(initial=0.0), 1.0)
    if not np.isfinite(checked).all() or residual > 1e-8 * scale:
        n_f = inputs.topology.n_flows
        worst = np.unique(
            np.argwhere(~np.isfinite(checked) | (np.abs(checked) > 1e12 * scale))[:, 0] // n_f
        )
        n_b = tau.shape[0] * tau.shape[1]
        raise explain(inputs, structure, tau, worst if worst.size else range(n_b), period)


def _solve_dense(
    inputs: ModelInputs,
    structure,
    tau: np.ndarray,
    mask: np.ndarray,
    given: np.ndarray,
    period: int,
    timings: dict[str, float],
) -> np.ndarray:
    """Every block and period of a small system at once: (B·F, P) for ``tau`` (S, E, J), ``mask``
    (B, F) and ``given`` (B, P, F); the blocks are dense (B, F, F) matrices solved together by
    LAPACK (``numpy.linalg.solve``, LU with partial pivoting) with all periods as right-hand-side
    columns: no Python loop over blocks or periods, and no SciPy."""
    n_b = mask.shape[0]
    start = time.perf_counter()
    system = DenseBlocks(dense_matrices(structure, tau.reshape(n_b, -1), mask))
    rhs = assemble_rhs(structure, mask, given)
    timings["assemble"] += time.perf_counter() - start
    start = time.perf_counter()
    try:
        solution = system.solve(rhs)
    except SingularSystemError:
        raise explain(inputs, structure, tau, range(n_b), period) from None
    timings["solve"] += time.perf_counter() - start
    _check_solution(inputs, structure, tau, period, solution, rhs, system.residual(solution, rhs))
    return solution


def solve_flows(
    inputs: ModelInputs,
    timings: dict[str, float] | None = None,
) -> np.ndarray:
    """Element mass of every flow in kg/year, shape (S, P, E, F).

    Raises :class:`CritflowError` for under-determined, inconsistent or trapped systems and for
    negative flows. ``timings`` (if given) receives seconds spent in 'assemble', 'factorise' and
    'solve'.
    """
    timings = timings if timings is not None else {}
    for key in ("assemble", "factorise", "solve"):
        timings.setdefault(key, 0.0)
    topo = inputs.topology
    n_s, n_p = len(inputs.scenarios), inputs.periods.size
    n_e, n_f = topo.n_elements, topo.n_flows
    n_b = n_s * n_e
    structure = build_structure(topo)
    mask = inputs.given_mask.reshape(n_b, n_f)
    coefficients = inputs.transfer_coefficients  # (S, P, E, J)
    given = np.moveaxis(inputs.given_mass_kg, 1, 2).reshape(n_b, n_p, n_f)

    unknown = np.isnan(coefficients).any(axis=(0, 1, 2))
    if unknown.any():
        names = sorted({topo.process_ids[u] for u in topo.transfer_process[unknown]})
        raise CritflowError(
            "model",
            f"the splits of {', '.join(names)} are not given (no transfer coefficients): they "
            "come from the measurements",
            "Run `critflow reconcile MODEL`, or give the processes transfer coefficients.",
        )
    rows = block_rows(structure, mask)
    not_square = np.flatnonzero(rows != n_f)
    if not_square.size:
        raise explain(inputs, structure, coefficients[:, 0], not_square, 0)

    first, group = period_groups(coefficients)
    mass = np.empty((n_b * n_f, n_p))
    for g, p0 in enumerate(first):
        periods = np.flatnonzero(group == g)
        tau = coefficients[:, p0]  # (S, E, J)
        trapped = trapped_loops(inputs, tau, int(p0))
        if trapped:
            raise CritflowError(trapped)
        if use_dense(n_b, n_f):  # small: one batched dense solve, no SciPy
            mass[:, periods] = _solve_dense(
                inputs, structure, tau, mask, given[:, periods], int(p0), timings
            )
            continue
        import scipy.sparse.linalg as spla  # large systems only: ~0.3 s to import

        shared = _shared_blocks(tau.reshape(n_b, -1), mask)
        if shared is not None:
            try:
                mass[:, periods] = _solve_shared(
                    structure, tau.reshape(n_b, -1), mask, given[:, periods], *shared, timings
                )
            except RuntimeError:  # splu: "Factor is exactly singular"
                raise explain(inputs, structure, tau, range(n_b), int(p0)) from None
            continue
        start = time.perf_counter()
        matrix = assemble_matrix(structure, tau.reshape(n_b, -1), mask)
        timings["assemble"] += time.perf_counter() - start
        start = time.perf_counter()
        try:
            lu = spla.splu(matrix)
        except RuntimeError:
            raise explain(inputs, structure, tau, range(n_b), int(p0)) from None
        timings["factorise"] += time.perf_counter() - start
        start = time.perf_counter()
        n_given = int(mask.sum(axis=1).max(initial=0))
        if n_given < periods.size:
            # fewer given values than periods: solve once for each flow's response to each given
            # value, then every period is a small batched product (B, F, G) @ (B, G, P)
            rhs = unit_rhs(structure, mask)
            response = lu.solve(rhs)
            g_block, g_flow, g_rank = given_positions(mask)
            values = np.zeros((n_b, n_given, periods.size))
            values[g_block, g_rank] = given[g_block, :, g_flow][:, periods]
            solution = np.matmul(response.reshape(n_b, n_f, n_given), values).reshape(n_b * n_f, -1)
            checked = response
        else:
            rhs = assemble_rhs(structure, mask, given[:, periods])
            solution = checked = lu.solve(rhs)
        timings["solve"] += time.perf_counter() - start
        residual = np.abs(matrix @ checked - rhs).max(initial=0.0)
        _check_solution(inputs, structure, tau, int(p0), checked, rhs, residual)
        mass[:, periods] = solution

    result = np.moveaxis(mass.reshape(n_s, n_e, n_f, n_p), 3, 1)  # (S, P, E, F)
    tolerance = NEGATIVE_TOLERANCE * np.abs(result).max(axis=3, keepdims=True)
    if (result < -tolerance).any():
        raise negative_flows(inputs, result, tolerance)
    result[result < 0] = 0.0  # round-off below the tolerance
    return np.ascontiguousarray(result)
