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
from critflow.model.load import Model
from critflow.model.schema import Origin

ORIGINS: tuple[str, ...] = Origin.__args__  # ('primary', 'pre_consumer', 'post_consumer')


def origin_masses(model: Model, results: FlowResults) -> dict[str, np.ndarray]:
    """Mass (kg/year) of each origin in every flow: {origin: (S, P, E, F)}; they sum to the flow."""
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
    labels = np.array([f.origin or "primary" for f in model.spec.flows])
    rhs = np.zeros((size, len(ORIGINS)))
    for o, origin in enumerate(ORIGINS):
        rhs[:, o] = (blocks * (from_source & (labels == origin))[None, :]).reshape(-1)
    solution = spla.splu(matrix.tocsc()).solve(rhs)
    return {origin: solution[:, o].reshape(mass.shape) for o, origin in enumerate(ORIGINS)}
