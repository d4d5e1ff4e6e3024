"""Where the material in each flow comes from: mass-balance tracing of input origins.

Every source flow carries an origin (primary, pre-consumer scrap, post-consumer scrap; primary by
default). Each process mixes what enters it, so every output carries the origins of the process's
inputs in proportion (the mass-balance approach of chain of custody). For each scenario, period
and element the origin masses x^o of all flows solve one linear system

    x^o_f = x_f · [origin_f = o]                     for flows out of sources,
    x^o_f = (x_f / T_u) · Σ_{i into u} x^o_i          for flows out of process u (T_u: its input),

built on the solved flows x. All blocks are solved at once, with the origins as right-hand sides.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from critflow.engine.results import FlowResults
from critflow.errors import CritflowError
from critflow.model.load import Model
from critflow.model.schema import Origin

ORIGINS: tuple[str, ...] = Origin.__args__  # ('primary', 'pre_consumer', 'post_consumer')


def origin_masses(model: Model, results: FlowResults) -> dict[str, np.ndarray]:
    """Mass (kg/year) of each origin in every flow: {origin: (S, P, E, F)}; they sum to the flow."""
    labels = np.array([f.origin or "primary" for f in model.spec.flows])
    return _trace(results, labels, ORIGINS)


def input_masses(results: FlowResults) -> dict[str, np.ndarray]:
    """Mass (kg/year) in every flow that comes from each source flow: {source flow: (S, P, E, F)}."""
    topo = results.inputs.topology
    kinds = np.array(topo.process_kinds)
    inputs = [topo.flow_ids[f] for f in np.flatnonzero(kinds[topo.flow_from] == "source")]
    return _trace(results, np.array(topo.flow_ids), tuple(inputs))


def _trace(
    results: FlowResults, labels: np.ndarray, groups: tuple[str, ...]
) -> dict[str, np.ndarray]:
    """Trace the source flows labelled with each group through the solved system."""
    if results.inputs.stocks:
        raise CritflowError(
            "model",
            "tracing origins through stock processes is not supported (a stock releases material "
            "that entered in earlier years)",
            "Trace a model without stocks, or follow a cohort with `critflow trace`.",
        )
    topo = results.inputs.topology
    mass = results.mass_kg  # (S, P, E, F)
    n_f = topo.n_flows
    blocks = mass.reshape(-1, n_f)  # (N, F)
    n_blocks = blocks.shape[0]
    kinds = np.array(topo.process_kinds)
    from_source = kinds[topo.flow_from] == "source"
    # pairs (f, i): flow f leaves the process that flow i enters, for f not out of a source
    f_idx, i_idx = np.nonzero(
        (topo.flow_from[:, None] == topo.flow_to[None, :]) & ~from_source[:, None]
    )
    n_u = len(topo.process_ids)
    into = np.zeros((n_blocks, n_u))
    np.add.at(into, (slice(None), topo.flow_to), blocks)
    throughput = into[:, topo.flow_from[f_idx]]  # (N, pairs)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(
            throughput > 0, blocks[:, f_idx] / np.where(throughput > 0, throughput, 1.0), 0.0
        )
    offset = (np.arange(n_blocks) * n_f)[:, None]
    size = n_blocks * n_f
    keep = share != 0
    matrix = sp.identity(size, format="csr") - sp.csr_matrix(
        (share[keep], ((f_idx[None, :] + offset)[keep], (i_idx[None, :] + offset)[keep])),
        shape=(size, size),
    )
    rhs = np.zeros((size, len(groups)))
    for o, group in enumerate(groups):
        rhs[:, o] = (blocks * (from_source & (labels == group))[None, :]).reshape(-1)
    solution = spla.splu(matrix.tocsc()).solve(rhs)
    return {group: solution[:, o].reshape(mass.shape) for o, group in enumerate(groups)}
