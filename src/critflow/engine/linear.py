"""The linear algebra of the balance engine, dense for small systems and sparse for large ones.

A model's balance equations are one block per scenario and element, all blocks square with one
unknown per flow. For a small model (few flows per block, few blocks) the blocks are solved as one
batched dense system with :func:`numpy.linalg.solve`: no SciPy is imported, which is most of the
start-up time of ``critflow validate`` on a small model (SciPy's sparse modules take ~0.3 s to
import, the whole solve of the shipped battery example takes milliseconds). Larger systems use one
sparse LU factorisation of the block-diagonal matrix (:mod:`scipy.sparse.linalg`, imported when
first needed). Both give the same numbers to round-off.

The graph helpers here (sums over groups, strongly connected components) likewise work in NumPy for
small graphs and fall back to SciPy only for large ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from critflow.engine.assemble import Structure

DENSE_MAX_FLOWS = 256
"""Blocks of at most this many unknowns (flows) are solved densely, ..."""
DENSE_MAX_WORK = 1 << 24
"""... when one dense solve of all blocks is at most this much work (blocks × flows³: about 1 ms; a
model with stocks solves once per period) ..."""
DENSE_MAX_ENTRIES = 1 << 20
"""... and all their dense matrices together hold at most this many numbers (8 MiB). Measured on 2
cores (a chain-like flowsheet): 40 blocks of 30 flows 0.2 ms, 6 of 80 0.4 ms, 1 of 256 0.9 ms dense,
against ~0.3 s to import SciPy's sparse solvers; 216 blocks of 80 flows (110 million) 24 ms."""
DENSE_MAX_NODES = 64
"""Strongly connected components are found densely (transitive closure) up to this many processes
per block ..."""
DENSE_MAX_CLOSURE = 1 << 20
"""... and this many entries of all blocks' reachability matrices together."""


class SingularSystemError(Exception):
    """The factorisation met an exactly singular block (the caller explains which and why)."""


def use_dense(n_blocks: int, n_flows: int) -> bool:
    """Whether ``n_blocks`` blocks of ``n_flows`` unknowns are solved with the dense path."""
    return (
        n_flows <= DENSE_MAX_FLOWS
        and n_blocks * n_flows**3 <= DENSE_MAX_WORK
        and n_blocks * n_flows**2 <= DENSE_MAX_ENTRIES
    )


class DenseBlocks:
    """Square blocks (B, F, F) solved together with LAPACK's LU (``numpy.linalg.solve``)."""

    def __init__(self, matrices: np.ndarray) -> None:
        self.matrices = matrices
        self.n_blocks, self.n_flows = matrices.shape[:2]

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """Solutions for right-hand sides (B·F, C): (B·F, C)."""
        columns = rhs.reshape(self.n_blocks, self.n_flows, -1)
        try:
            found = np.linalg.solve(self.matrices, columns)
        except np.linalg.LinAlgError:
            raise SingularSystemError from None
        return found.reshape(rhs.shape)

    def residual(self, x: np.ndarray, rhs: np.ndarray) -> float:
        """Largest |A x - rhs| over all blocks and columns; ``x`` and ``rhs`` are (B·F, C)."""
        shape = (self.n_blocks, self.n_flows, -1)
        product = np.matmul(self.matrices, x.reshape(shape))
        return float(np.abs(product - rhs.reshape(shape)).max(initial=0.0))


class SparseBlocks:
    """The block-diagonal matrix in CSC form and one sparse LU (SuperLU) of it."""

    def __init__(self, matrix) -> None:
        import scipy.sparse.linalg as spla  # only for large systems: ~0.3 s to import

        self.matrix = matrix
        try:
            self.lu = spla.splu(matrix)
        except RuntimeError:  # "Factor is exactly singular"
            raise SingularSystemError from None

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        return self.lu.solve(rhs)

    def residual(self, x: np.ndarray, rhs: np.ndarray) -> float:
        return float(np.abs(self.matrix @ x - rhs).max(initial=0.0))


def dense_matrices(
    structure: Structure, coefficients: np.ndarray, given_mask: np.ndarray
) -> np.ndarray:
    """The blocks of :func:`critflow.engine.assemble.assemble_matrix` as dense (B, F, F) matrices.

    ``coefficients`` is (B, J), ``given_mask`` (B, F); every block must be square. Entries at the
    same place add up, as they do in the sparse matrix.
    """
    from critflow.engine.assemble import _entry_values, given_positions

    n_blocks, n_flows = given_mask.shape
    values = _entry_values(structure, coefficients)  # (B, nnz)
    flat = np.zeros((n_blocks, n_flows * n_flows))
    place = structure.row * n_flows + structure.col
    if np.unique(place).size == place.size:  # no repeated place: a plain (faster) assignment
        flat[:, place] = values
    else:
        np.add.at(flat, (np.arange(n_blocks)[:, None], place[None, :]), values)
    g_block, g_flow, g_rank = given_positions(given_mask)
    flat[g_block, (structure.n_structural + g_rank) * n_flows + g_flow] = 1.0
    return flat.reshape(n_blocks, n_flows, n_flows)


def factorise(structure: Structure, coefficients: np.ndarray, given_mask: np.ndarray):
    """A solver of all blocks for (B, J) ``coefficients`` and (B, F) ``given_mask``: dense for
    small systems, sparse LU otherwise. Raises :class:`SingularSystemError` for an exactly singular
    block (the sparse factorisation; the dense one finds out in ``solve``)."""
    n_blocks, n_flows = given_mask.shape
    if use_dense(n_blocks, n_flows):
        return DenseBlocks(dense_matrices(structure, coefficients, given_mask))
    from critflow.engine.assemble import assemble_matrix

    return SparseBlocks(assemble_matrix(structure, coefficients, given_mask))


def group_sum(values: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Sums of the columns of ``values`` (N, J) per group (``group`` is (J,)): (N, n_groups).

    What ``values @ onehot(group)`` gives, without a sparse matrix: columns are sorted by group
    (stably, so each sum runs in column order) and added with one ``np.add.reduceat``.
    """
    values = np.asarray(values, dtype=float)
    out = np.zeros((values.shape[0], n_groups))
    if group.size == 0:
        return out
    order = np.argsort(group, kind="stable")
    ordered = group[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    out[:, ordered[starts]] = np.add.reduceat(values[:, order], starts, axis=1)
    return out


def strong_components(
    n_blocks: int, n_nodes: int, block: np.ndarray, source: np.ndarray, target: np.ndarray
) -> np.ndarray:
    """Strongly connected components of ``n_blocks`` independent graphs of ``n_nodes`` nodes with
    edges ``source → target`` in graph ``block``: a label for each of the B·N nodes (node
    ``b·N + i``). A component's label is its smallest node, so labels are the same whichever way
    they are found.

    Small graphs: every block's reachability (transitive closure by repeated squaring of its
    adjacency, batched over blocks); two nodes share a component when each reaches the other.
    Large graphs: :func:`scipy.sparse.csgraph.connected_components`.
    """
    size = n_blocks * n_nodes
    if n_nodes <= DENSE_MAX_NODES and n_blocks * n_nodes * n_nodes <= DENSE_MAX_CLOSURE:
        reach = np.zeros((n_blocks, n_nodes, n_nodes), dtype=np.float32)
        reach[block, source, target] = 1.0
        reach[:, np.arange(n_nodes), np.arange(n_nodes)] = 1.0
        steps = 1
        while steps < n_nodes:  # paths of up to 2·steps edges after each squaring
            reach = np.minimum(np.matmul(reach, reach), 1.0)
            steps *= 2
        linked = reach > 0
        mutual = linked & np.swapaxes(linked, 1, 2)
        first = np.argmax(mutual, axis=2)  # the smallest node of each node's component
        return (first + np.arange(n_blocks)[:, None] * n_nodes).reshape(size)
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    offsets = block * n_nodes
    graph = sp.csr_matrix(
        (np.ones(source.size), (offsets + source, offsets + target)), shape=(size, size)
    )
    _, labels = connected_components(graph, directed=True, connection="strong")
    # relabel each component by its smallest node
    smallest = np.full(labels.max(initial=-1) + 1, size, dtype=np.int64)
    np.minimum.at(smallest, labels, np.arange(size))
    return smallest[labels]
