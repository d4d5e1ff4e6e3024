"""Assemble the linear balance equations of a model as one sparse block-diagonal system.

Per scenario s and element e (one *block*), the unknowns are the element's mass in every flow, and
the rows are:

* transfer relations: ``x[k] - tau[u,k,e] * sum(x[i] for i entering u) = 0`` for each output k of
  a transfer process u;
* market balances: ``sum(x[in]) - sum(x[out]) = 0``;
* given values: ``x[f] = v[f]``.

All blocks are stacked block-diagonally so one sparse LU factorisation serves every scenario and
element at once, and every period whose coefficients are the same (the right-hand sides differ).
Small systems are solved as dense blocks instead (:mod:`critflow.engine.linear`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from critflow.engine.topology import Topology, equal_pairs

if TYPE_CHECKING:  # pragma: no cover
    import scipy.sparse as sp


@dataclass(frozen=True)
class Structure:
    """Row templates shared by all blocks of a model (no numbers)."""

    n_flows: int
    n_structural: int  # transfer rows + market rows
    # entries of the structural rows: row, column, and the transfer entry whose coefficient
    # (negated) is the value, or -1 for a constant value in `constant`
    row: np.ndarray
    col: np.ndarray
    transfer_entry: np.ndarray
    constant: np.ndarray
    row_labels: tuple[str, ...]
    row_process: np.ndarray  # process index of each structural row


def build_structure(topology: Topology) -> Structure:
    """Structural rows of a model: transfer relations, then market balances."""
    t_proc, t_out = topology.transfer_process, topology.transfer_output
    n_transfer = t_proc.size
    # x[k] with coefficient +1
    rows = [np.arange(n_transfer)]
    cols = [t_out]
    entries = [np.full(n_transfer, -1)]
    consts = [np.ones(n_transfer)]
    # -tau * x[i] for every input i of the process of entry j
    jj, ii = equal_pairs(t_proc, topology.flow_to)
    rows.append(jj)
    cols.append(ii)
    entries.append(jj)
    consts.append(np.zeros(jj.size))
    # market balances: +1 inputs, -1 outputs
    m_proc = topology.market_process
    mm_in, fi = equal_pairs(m_proc, topology.flow_to)
    mm_out, fo = equal_pairs(m_proc, topology.flow_from)
    for mm, ff, sign in ((mm_in, fi, 1.0), (mm_out, fo, -1.0)):
        rows.append(n_transfer + mm)
        cols.append(ff)
        entries.append(np.full(mm.size, -1))
        consts.append(np.full(mm.size, sign))
    labels = [
        f"transfer coefficients of '{topology.process_ids[u]}' to '{topology.flow_ids[k]}'"
        for u, k in zip(t_proc, t_out, strict=True)
    ] + [f"balance of market '{topology.process_ids[u]}'" for u in m_proc]
    return Structure(
        n_flows=topology.n_flows,
        n_structural=n_transfer + m_proc.size,
        row=np.concatenate(rows),
        col=np.concatenate(cols),
        transfer_entry=np.concatenate(entries),
        constant=np.concatenate(consts),
        row_labels=tuple(labels),
        row_process=np.concatenate([t_proc, m_proc]).astype(np.int64),
    )


def _entry_values(structure: Structure, coefficients: np.ndarray) -> np.ndarray:
    """Values of the structural entries for (B, J) coefficients: -tau or a constant, (B, nnz)."""
    constant = np.broadcast_to(structure.constant, (coefficients.shape[0], structure.constant.size))
    if coefficients.shape[1] == 0:  # no transfer process: only market balances
        return constant
    return np.where(
        structure.transfer_entry[None, :] >= 0,
        -coefficients[:, np.maximum(structure.transfer_entry, 0)],
        constant,
    )


def block_rows(structure: Structure, given_mask: np.ndarray) -> np.ndarray:
    """Number of rows of each block; ``given_mask`` is (B, F)."""
    return structure.n_structural + given_mask.sum(axis=1)


def assemble_matrix(
    structure: Structure, coefficients: np.ndarray, given_mask: np.ndarray
) -> sp.csc_matrix:
    """Block-diagonal matrix of all blocks for one set of coefficients.

    ``coefficients`` is (B, J) transfer coefficients, ``given_mask`` (B, F); every block must be
    square (``n_structural + given count == n_flows``). Small systems are solved from dense blocks
    instead (:func:`critflow.engine.linear.dense_matrices`), without SciPy.
    """
    import scipy.sparse as sp  # on use: small systems never import SciPy

    n_blocks, n_flows = given_mask.shape
    offset = np.arange(n_blocks)[:, None] * n_flows
    values = _entry_values(structure, coefficients)
    keep = values != 0.0
    s_rows = (structure.row[None, :] + offset)[keep]
    s_cols = (structure.col[None, :] + offset)[keep]
    g_block, g_flow, g_rank = given_positions(given_mask)
    g_rows = g_block * n_flows + structure.n_structural + g_rank
    g_cols = g_block * n_flows + g_flow
    size = n_blocks * n_flows
    return sp.csc_matrix(
        (
            np.concatenate([values[keep], np.ones(g_block.size)]),
            (np.concatenate([s_rows, g_rows]), np.concatenate([s_cols, g_cols])),
        ),
        shape=(size, size),
    )


def given_positions(given_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Block, flow and rank within the block of every given value; ``given_mask`` is (B, F)."""
    g_block, g_flow = np.nonzero(given_mask)
    g_rank = np.arange(g_block.size) - np.searchsorted(g_block, g_block)
    return g_block, g_flow, g_rank


def assemble_rhs(
    structure: Structure, given_mask: np.ndarray, given_mass: np.ndarray
) -> np.ndarray:
    """Right-hand sides for several periods: ``given_mass`` is (B, P, F); returns (B*F, P)."""
    n_blocks, n_flows = given_mask.shape
    rhs = np.zeros((n_blocks * n_flows, given_mass.shape[1]))
    g_block, g_flow, g_rank = given_positions(given_mask)
    rhs[g_block * n_flows + structure.n_structural + g_rank] = given_mass[g_block, :, g_flow]
    return rhs


def unit_rhs(structure: Structure, given_mask: np.ndarray) -> np.ndarray:
    """Right-hand sides that set one given value per block to 1: (B*F, G), G = most given values.

    Column g holds the g-th given value of every block at once (blocks are independent), so one
    solve yields every flow's response to every given value.
    """
    n_blocks, n_flows = given_mask.shape
    g_block, _, g_rank = given_positions(given_mask)
    n_given = int(g_rank.max()) + 1 if g_rank.size else 0
    unit = np.zeros((n_blocks * n_flows, n_given))
    unit[g_block * n_flows + structure.n_structural + g_rank, g_rank] = 1.0
    return unit


def block_system(
    structure: Structure, coefficients: np.ndarray, given_mask: np.ndarray, given_mass: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Dense matrix, right-hand side and row labels of one block (for diagnostics).

    ``coefficients`` (J,), ``given_mask`` (F,), ``given_mass`` (F,).
    """
    n_flows = given_mask.size
    given = np.flatnonzero(given_mask)
    matrix = np.zeros((structure.n_structural + given.size, n_flows))
    values = _entry_values(structure, coefficients[None, :])[0]
    np.add.at(matrix, (structure.row, structure.col), values)
    matrix[structure.n_structural + np.arange(given.size), given] = 1.0
    rhs = np.concatenate([np.zeros(structure.n_structural), given_mass[given]])
    return matrix, rhs, list(structure.row_labels)
