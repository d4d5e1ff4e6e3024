"""Where the material in each flow comes from: mass-balance tracing of origins.

Every flow out of a source carries a label (its origin — primary, pre-consumer, post-consumer,
residue; or its role, or its own id). Each process mixes what enters it, so every output carries
the labels of the process's inputs in proportion (the mass-balance approach of chain of custody).
For each scenario, period and element the labelled masses x^g of all flows solve one linear system

    x^g_f = x_f · [label_f = g]                      for flows out of sources,
    x^g_f = (x_f / T_u) · Σ_{i into u} x^g_i          for flows out of process u (T_u: its input),

built on the solved flows x; the labels are the right-hand sides of one factorisation.

Stocks hold material for years. A stock's outflow is either relabelled — products in use release
end-of-life (post-consumer) material, whatever they were made of — or, for a stockpile
(``origin: as_entered``), traced through the stock: each label keeps a cohort model of its own
(the stock's lifetime, the same retirements), so what leaves in year t carries the labels of the
cohorts it left from. What was in stock before the first year carries the ``remainder`` label
(primary for origins). Then the periods are solved one after the other, as the engine does.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from critflow import data
from critflow.engine.results import FlowResults
from critflow.engine.topology import pass_on_shares
from critflow.model.core import Model
from critflow.model.schema import AS_ENTERED, Origin, Role

ORIGINS: tuple[str, ...] = Origin.__args__
"""('primary', 'pre_consumer', 'post_consumer', 'residue')."""
SECONDARY: tuple[str, ...] = ("pre_consumer", "post_consumer", "residue")
"""Origins that count as secondary (recycled) material."""
ROLES: tuple[str, ...] = Role.__args__
END_OF_LIFE = "post_consumer"
"""Origin of what leaves a stock of products in use (unless the flow says otherwise)."""


def origin_labels(model: Model) -> list[str | None]:
    """Origin each flow starts with, where material takes one: flows out of sources (primary by
    default) and out of stocks (post-consumer by default; ``None`` for ``as_entered``, which is
    traced through the stock); ``None`` for every other flow."""
    kinds = {p.id: p.kind for p in model.spec.processes}
    labels: list[str | None] = []
    for flow in model.spec.flows:
        kind = kinds[flow.from_]
        if kind == "source":
            labels.append(flow.origin or "primary")
        elif kind == "stock":
            labels.append(None if flow.origin == AS_ENTERED else flow.origin or END_OF_LIFE)
        else:
            labels.append(None)
    return labels


def origin_masses(
    model: Model, results: FlowResults, absorb: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Mass (kg/year) of each origin in every flow: {origin: (S, P, E, F)}; they sum to the flow.

    Sources are primary unless their flow says otherwise; stocks release post-consumer material
    unless their outflow says otherwise (``as_entered`` traces through the stock, and what was in
    it before the first year counts as primary). ``absorb`` (F,) names flows whose labelled mass
    goes no further (see :func:`trace`).
    """
    labels = np.array(origin_labels(model), dtype=object)
    return trace(results, labels, ORIGINS, remainder="primary", absorb=absorb)


def role_masses(model: Model, results: FlowResults) -> dict[str, np.ndarray]:
    """Mass (kg/year) in every flow that comes from sources of each role (feed, additive, fuel,
    energy_carrier, water): {role: (S, P, E, F)}. Stocks pass what entered them through; what was
    in stock before the first year counts as feed."""
    kinds = {p.id: p.kind for p in model.spec.processes}
    labels = np.array(
        [(f.role or "feed") if kinds[f.from_] == "source" else None for f in model.spec.flows],
        dtype=object,
    )
    return trace(results, labels, ROLES, remainder="feed")


def input_masses(results: FlowResults) -> dict[str, np.ndarray]:
    """Mass (kg/year) in every flow that comes from each source flow: {source flow: (S, P, E, F)}.

    Stocks pass what entered them through; what was in stock before the first year belongs to no
    source flow, so the masses of a stock model may add up to less than the flows.
    """
    topo = results.inputs.topology
    kinds = np.array(topo.process_kinds)
    from_source = kinds[topo.flow_from] == "source"
    labels = np.where(from_source, np.array(topo.flow_ids, dtype=object), None)
    inputs = tuple(topo.flow_ids[f] for f in np.flatnonzero(from_source))
    traced = trace(results, labels, (*inputs, _INITIAL), remainder=_INITIAL)
    traced.pop(_INITIAL)
    return traced


_INITIAL = "(initial stock)"


def counting_rules() -> tuple[dict[str, tuple[bool, bool]], dict[str, tuple[bool, bool]]]:
    """(roles, components): {name: (in the input fraction, counts in the outputs)}, from
    ``recycling_counting.csv``."""
    table = data.table("recycling_counting")
    rules: dict[str, dict[str, tuple[bool, bool]]] = {"role": {}, "component": {}}
    for row in table.itertuples():
        rules[row.kind][row.item] = (bool(row.in_input_fraction), bool(row.counts_in_outputs))
    return rules["role"], rules["component"]


def trace(
    results: FlowResults,
    labels: np.ndarray,
    groups: tuple[str, ...],
    remainder: str,
    absorb: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Mass of each group in every flow, {group: (S, P, E, F)} in kg/year.

    ``labels`` (F,) gives the group of each flow out of a source, and of each flow out of a stock
    that relabels what it releases; ``None`` on a stock's outflow traces through the stock.
    ``remainder`` takes what was in stock before the first year.

    ``absorb`` (F,) marks flows whose labelled mass is counted there and goes no further (the
    process they enter receives no labels from them): material is then counted at its first
    arrival, once, however often it circles through loops downstream. The groups then no longer
    sum to the flows.
    """
    absorb = np.zeros(len(labels), bool) if absorb is None else np.asarray(absorb, bool)
    inputs = results.inputs
    topo = inputs.topology
    mass = results.mass_kg  # (S, P, E, F)
    n_s, n_p, n_e, n_f = mass.shape
    kinds = np.array(topo.process_kinds)
    from_kind = kinds[topo.flow_from]
    labelled = np.array([label is not None for label in labels])
    fixed = (from_kind == "source") | ((from_kind == "stock") & labelled)
    onehot = np.stack([fixed & (labels == g) for g in groups], axis=1).astype(float)  # (F, G)
    passing = [k for k, s in enumerate(inputs.stocks) if not fixed[s.output_flow]]
    if not passing:  # no period depends on another: every block at once
        blocks = mass.reshape(-1, n_f)
        solution = _solve(topo, blocks, fixed, onehot, np.zeros((0,), int), None, None, absorb)
        return {g: solution[..., i].reshape(mass.shape) for i, g in enumerate(groups)}

    from critflow.engine.stock_solve import cohort_model

    solved = [cohort_model(inputs.stocks[k], inputs) for k in passing]
    retire = [
        results.stocks.cohorts[k].retire_factor
        if results.stocks is not None and results.stocks.cohorts
        else np.ones((n_p, n_s * n_e))
        for k in passing
    ]
    tracked = [g for g in groups if g != remainder]
    cohorts = {
        (k, g): cohort_model(
            dataclasses.replace(inputs.stocks[k], initial_total_kg=None, initial_cohorts_kg=None),
            inputs,
        )
        for k in passing
        for g in tracked
    }
    out_flows = np.array([inputs.stocks[k].output_flow for k in passing], dtype=int)
    in_flows = np.array([inputs.stocks[k].input_flow for k in passing], dtype=int)
    result = np.empty((n_s, n_p, n_e, n_f, len(groups)))
    for t in range(n_p):
        blocks = mass[:, t].reshape(-1, n_f)  # (N, F)
        p0 = np.stack([m.first_year(t)[1] for m in solved], axis=1)  # (N, K)
        carried = np.zeros((blocks.shape[0], len(passing), len(groups)))
        total = blocks[:, out_flows] - p0 * blocks[:, in_flows]
        for j, k in enumerate(passing):
            factor = retire[j][t]
            clipped = np.flatnonzero(factor < 1.0)
            for g in tracked:
                model = cohorts[k, g]
                stock, outflow = model.carry_over(t)
                outflow = outflow.copy()
                if clipped.size:
                    outflow[clipped] += stock[clipped] * (1.0 - factor[clipped])
                    model.kernel.scale_past(model.history + t, factor[clipped], clipped)
                carried[:, j, groups.index(g)] = outflow
            carried[:, j, groups.index(remainder)] = total[:, j] - carried[:, j].sum(axis=1)
        solution = _solve(topo, blocks, fixed, onehot, out_flows, in_flows, (p0, carried), absorb)
        for j, k in enumerate(passing):
            for g in tracked:
                entering = solution[:, in_flows[j], groups.index(g)]
                cohorts[k, g].add_inflow(t, entering * (not absorb[in_flows[j]]))
        result[:, t] = solution.reshape(n_s, n_e, n_f, len(groups))
    return {g: result[..., i] for i, g in enumerate(groups)}


def _solve(
    topo,
    blocks: np.ndarray,
    fixed: np.ndarray,
    onehot: np.ndarray,
    stock_out: np.ndarray,
    stock_in: np.ndarray | None,
    stock_terms: tuple[np.ndarray, np.ndarray] | None,
    absorb: np.ndarray,
) -> np.ndarray:
    """Group masses (N, F, G) of the flows of N blocks (N, F), one sparse factorisation.

    Fixed flows take their mass in their group (``onehot`` (F, G)); a flow out of a transfer or
    market process takes its share of what enters the process; a flow out of a stock that traces
    through it is ``p0 · inflow + carried`` (``stock_terms``: p0 (N, K), carried (N, K, G)).
    Flows marked in ``absorb`` pass nothing on.
    """
    n_blocks, n_f = blocks.shape
    kinds = np.array(topo.process_kinds)
    mixing = np.isin(kinds[topo.flow_from], ("transfer", "market")) & ~fixed
    # pairs (f, i): flow f leaves the (mixing) process that flow i enters
    f_idx, i_idx, share = pass_on_shares(topo, blocks, mixing)
    rhs = (blocks[:, :, None] * onehot[None, :, :]).copy()  # (N, F, G)
    if stock_terms is not None and stock_out.size:
        p0, carried = stock_terms
        f_idx = np.concatenate([f_idx, stock_out])
        i_idx = np.concatenate([i_idx, stock_in])
        share = np.concatenate([share, p0], axis=1)
        rhs[:, stock_out, :] = carried
    share = np.where(absorb[i_idx][None, :], 0.0, share)
    offset = (np.arange(n_blocks) * n_f)[:, None]
    size = n_blocks * n_f
    keep = share != 0
    matrix = sp.identity(size, format="csr") - sp.csr_matrix(
        (share[keep], ((f_idx[None, :] + offset)[keep], (i_idx[None, :] + offset)[keep])),
        shape=(size, size),
    )
    solution = spla.splu(matrix.tocsc()).solve(rhs.reshape(size, -1))
    return solution.reshape(n_blocks, n_f, -1)
