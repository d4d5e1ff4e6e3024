"""Where a cohort's elements are after n years: MaTrace-style tracing through a solved model.

One year's inflow to a stock (a *cohort*: the packs sold in 2030, say) is followed forward through
the solved system (Nakamura et al., Environ. Sci. Technol. 48 (2014) 7207): it ages in the stock
by the stock's lifetime, leaves at end of life, is split by the same transfer coefficients as every
other flow, mixes at markets (each output takes its share of what enters, in proportion to the
solved flows — the usual proportional-mixing assumption), and when recycled material returns to
production it re-enters a stock as part of a later cohort and ages again. Material that reaches a
sink stays there; the sink names the route (landfill, export, another market).

Per period the traced flows solve one square linear system per scenario and element: every flow is
set by the process it leaves (0 for sources: the traced material is the only material followed).
Scenarios and elements are blocks of one sparse factorisation; the loop runs over periods.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from critflow.engine.results import FlowResults
from critflow.errors import CritflowError, suggest

TRACE_COLUMNS = [
    "scenario",
    "period",
    "years_after",
    "element",
    "where",
    "kind",
    "mass",
    "share",
    "unit",
]


def _templates(results: FlowResults):
    """Entries (row = flow it defines, column = input flow) and how their value is found."""
    topo = results.inputs.topology
    kinds = np.array(topo.process_kinds)
    origin = topo.flow_from
    n_f = topo.n_flows
    entry_of_output = np.full(n_f, -1)
    entry_of_output[topo.transfer_output] = np.arange(topo.transfer_output.size)
    stock_of_output = np.full(n_f, -1)
    stock_of_output[topo.stock_output] = np.arange(topo.stock_output.size)
    rows, cols, how, index = [], [], [], []
    for f in range(n_f):
        u = origin[f]
        if kinds[u] == "source":
            continue
        for i in np.flatnonzero(topo.flow_to == u):
            rows.append(f)
            cols.append(i)
            if kinds[u] == "transfer":
                how.append(0)  # -tau of the transfer entry
                index.append(entry_of_output[f])
            elif kinds[u] == "market":
                how.append(1)  # -share of this output in the market's outputs
                index.append(f)
            else:
                how.append(2)  # -p0 of the stock
                index.append(stock_of_output[f])
    return (
        np.array(rows, dtype=np.int64),
        np.array(cols, dtype=np.int64),
        np.array(how, dtype=np.int64),
        np.array(index, dtype=np.int64),
    )


def trace_cohort(
    results: FlowResults, stock: str, cohort: int, scenarios: list[str] | None = None
) -> pd.DataFrame:
    """Where the elements of ``stock``'s inflow of year ``cohort`` are in every later year.

    Returns a tidy table: scenario, period, years_after, element, where (a stock or a sink),
    kind ('in use' or 'sink'), mass (in the stock unit, cumulative for sinks) and share of the
    traced cohort. Shares of one year add up to 1.
    """
    from critflow.engine.stock_solve import cohort_model

    inputs = results.inputs
    topo = inputs.topology
    if results.stocks is None or not inputs.stocks:
        raise CritflowError("model", "has no stock to trace", "Add a process with kind: stock.")
    names = [s.process_id for s in inputs.stocks]
    if stock not in names:
        raise CritflowError(
            "stock=",
            f"'{stock}' is not a stock of the model",
            suggest(stock, names, "Stocks"),
        )
    periods = list(int(p) for p in inputs.periods)
    if cohort not in periods:
        raise CritflowError(
            "cohort=",
            f"{cohort} is not a year of the model",
            f"Choose a year from {periods[0]} to {periods[-1]}.",
        )
    n_s, n_e, n_f = len(inputs.scenarios), topo.n_elements, topo.n_flows
    n_b = n_s * n_e
    traced = names.index(stock)
    tracers = [
        cohort_model(dataclasses.replace(s, initial_total_kg=None, initial_cohorts_kg=None), inputs)
        for s in inputs.stocks
    ]
    rows, cols, how, index = _templates(results)
    kinds = np.array(topo.process_kinds)
    market_out = np.isin(topo.flow_from, topo.market_process)
    sink_ids = [topo.process_ids[u] for u in np.flatnonzero(kinds == "sink")]
    sink_of_flow = np.array(
        [
            sink_ids.index(topo.process_ids[topo.flow_to[f]])
            if kinds[topo.flow_to[f]] == "sink"
            else -1
            for f in range(n_f)
        ]
    )
    c = periods.index(cohort)
    injected = results.mass_kg[:, c, :, topo.stock_input[traced]].reshape(n_b)
    in_sinks = np.zeros((n_b, len(sink_ids)))
    records = []
    offsets = np.arange(n_b)[:, None] * n_f
    for t in range(c, len(periods)):
        mass = results.mass_kg[:, t].reshape(n_b, n_f)
        # each market output's share of what leaves its market, per block
        out_total = np.zeros((n_b, len(topo.process_ids)))
        np.add.at(out_total, (slice(None), topo.flow_from), mass)
        share = np.divide(
            mass,
            out_total[:, topo.flow_from],
            out=np.zeros_like(mass),
            where=out_total[:, topo.flow_from] > 0,
        )
        share[:, ~market_out] = 0.0
        tau = inputs.transfer_coefficients[:, t].reshape(n_b, -1)
        p0 = np.stack([m.first_year(t)[1] for m in tracers], axis=1)  # (B, K)
        table = np.concatenate([tau, share, p0], axis=1)
        offset = np.where(how == 0, 0, np.where(how == 1, tau.shape[1], tau.shape[1] + n_f))
        values = -table[:, offset + index]  # (B, nnz)
        matrix = sp.csc_matrix(
            (
                np.concatenate([np.ones(n_b * n_f), values.reshape(-1)]),
                (
                    np.concatenate([np.arange(n_b * n_f), (offsets + rows).reshape(-1)]),
                    np.concatenate([np.arange(n_b * n_f), (offsets + cols).reshape(-1)]),
                ),
            ),
            shape=(n_b * n_f, n_b * n_f),
        )
        rhs = np.zeros((n_b, n_f))
        for k, model in enumerate(tracers):
            rhs[:, topo.stock_output[k]] = model.carry_over(t)[1]
        if t == c:
            rhs[:, topo.stock_output[traced]] += p0[:, traced] * injected
        y = spla.splu(matrix).solve(rhs.reshape(-1)).reshape(n_b, n_f)
        for k, model in enumerate(tracers):
            inflow = y[:, topo.stock_input[k]] + (injected if (t == c and k == traced) else 0.0)
            model.add_inflow(t, inflow)
        into = sink_of_flow >= 0
        np.add.at(in_sinks, (slice(None), sink_of_flow[into]), y[:, into])
        in_use = np.stack([m.stock[t] for m in tracers], axis=1)  # (B, K)
        first_life = injected * tracers[traced].kernel.survival_rows(np.array([t]))[0, c]
        after_recycling = in_use.copy()
        after_recycling[:, traced] -= first_life
        records.append(
            (t, np.concatenate([first_life[:, None], after_recycling], axis=1), in_sinks.copy())
        )
    where = [f"{stock} (first life)"] + [f"{n} (after recycling)" for n in names]
    return _table(results, records, injected, where, sink_ids, c)


def _table(results, records, injected, in_use_names, sink_ids, c) -> pd.DataFrame:
    inputs = results.inputs
    topo = inputs.topology
    n_e = topo.n_elements
    k = inputs.kg_per_unit
    frames = []
    for t, in_use, in_sinks in records:
        amounts = np.concatenate([in_use, in_sinks], axis=1)  # (B, K + sinks)
        where = in_use_names + sink_ids
        kind = ["in use"] * len(in_use_names) + ["sink"] * len(sink_ids)
        n_w = len(where)
        b, w = np.divmod(np.arange(amounts.size), n_w)
        s, e = np.divmod(b, n_e)
        total = injected[b]
        frames.append(
            pd.DataFrame(
                {
                    "scenario": np.array(inputs.scenarios, dtype=object)[s],
                    "period": int(inputs.periods[t]),
                    "years_after": t - c,
                    "element": np.array(topo.elements, dtype=object)[e],
                    "where": np.array(where, dtype=object)[w],
                    "kind": np.array(kind, dtype=object)[w],
                    "mass": amounts.reshape(-1) / k,
                    "share": np.divide(
                        amounts.reshape(-1), total, out=np.zeros_like(total), where=total > 0
                    ),
                    "unit": results.stock_unit,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)[TRACE_COLUMNS]


def longevity(trace: pd.DataFrame) -> pd.DataFrame:
    """Years of service per unit of the traced cohort (MaTrace's longevity), per scenario and
    element: the sum over the traced years of the share in use (a lower bound when the model's
    horizon ends before the material has left use)."""
    in_use = trace[trace["kind"] == "in use"]
    return (
        in_use.groupby(["scenario", "element"], sort=False)["share"]
        .sum()
        .rename("years")
        .reset_index()
    )
