"""Solve a model with stock processes: one period after the other, cohorts carried forward.

In period t a stock's outflow is what its older cohorts release plus the share of this year's
inflow that already leaves (``1 - SF(0.5)``):

    x[outflow] - p0 · x[inflow] = carry-over outflow of the cohorts before t

This is one more linear row per stock and element, so a stock behaves inside the balance like a
transfer process with a known extra input, and recycle loops through stocks (end-of-life material
that returns to production and so to the stock) solve exactly in each period. In stock-driven years
the inflow is fixed first, from the target and the cohorts already in stock, and becomes a given
value of the stock's input flow.

Scenarios and elements stay batch axes (blocks of one sparse factorisation, reused by every period
with the same coefficients, or of one batched dense solve for a small system); the only Python loop
runs over periods, which depend on each other.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from critflow.engine.assemble import Structure, assemble_rhs, build_structure
from critflow.engine.compile import ModelInputs
from critflow.engine.diagnose import negative_flows, trapped_loops
from critflow.engine.linear import SingularSystemError, factorise
from critflow.engine.stock_inputs import StockInputs
from critflow.errors import CritflowError, Problem
from critflow.stocks.cohorts import CohortStocks, NegativeInflowError, survival_kernel
from critflow.stocks.dsm import history_length, history_weights
from critflow.stocks.lifetimes import Lifetime


@dataclasses.dataclass
class StockState:
    """Stocks of a solved model, each (S, P, E, K) in kg (stock) or kg/year (flows)."""

    stock_kg: np.ndarray  # goods in use at the end of each year, per element
    initial_kg: np.ndarray  # (S, E, K) in use at the end of the year before the first
    retired_kg: np.ndarray  # surplus retired by the clip policy (part of the outflow)
    clipped: np.ndarray  # (S, P, K) True where the clip policy acted
    cohorts: list[CohortStocks] = dataclasses.field(repr=False, default_factory=list)

    def stock_change_kg(self) -> np.ndarray:
        """Stock at the end of each year minus at the end of the year before, (S, P, E, K)."""
        before = np.concatenate([self.initial_kg[:, None], self.stock_kg[:, :-1]], axis=1)
        return self.stock_kg - before


def with_stock_rows(structure: Structure, inputs: ModelInputs) -> Structure:
    """Add one row per stock: ``x[out] - p0 · x[in]``; p0 is coefficient column J + k."""
    topo = inputs.topology
    n_k = topo.stock_process.size
    base = structure.n_structural
    n_j = topo.transfer_process.size
    k = np.arange(n_k)
    return dataclasses.replace(
        structure,
        n_structural=base + n_k,
        row=np.concatenate([structure.row, base + k, base + k]),
        col=np.concatenate([structure.col, topo.stock_output, topo.stock_input]),
        transfer_entry=np.concatenate([structure.transfer_entry, np.full(n_k, -1), n_j + k]),
        constant=np.concatenate([structure.constant, np.ones(n_k), np.zeros(n_k)]),
        row_labels=structure.row_labels
        + tuple(f"outflow of stock '{topo.process_ids[u]}'" for u in topo.stock_process),
        row_process=np.concatenate([structure.row_process, topo.stock_process]),
    )


def cohort_model(stock: StockInputs, inputs: ModelInputs) -> CohortStocks:
    """The cohort bookkeeping of one stock over all scenarios × elements (series s·E + e)."""
    n_s, n_e, n_p = len(inputs.scenarios), inputs.topology.n_elements, inputs.periods.size
    n = n_s * n_e
    if stock.cohort_varying:
        flat = {k: v.reshape(n_p, n) for k, v in stock.parameters.items()}
    else:
        flat = {k: v.reshape(n) for k, v in stock.parameters.items()}
    lifetime = Lifetime(stock.distribution, flat, stock.cohort_varying)
    has_initial = stock.initial_cohorts_kg is not None or stock.initial_total_kg is not None
    history = history_length(lifetime, stock.initial_cohorts_kg) if has_initial else 0
    if stock.cohort_varying:  # cohorts before the first year take the first year's parameters
        lifetime = Lifetime(
            stock.distribution,
            {k: np.concatenate([np.repeat(v[:1], history, 0), v]) for k, v in flat.items()},
            True,
        )
    kernel = survival_kernel(lifetime, history + n_p, n)
    cohorts = CohortStocks(kernel, history, n_p, stock.negative_inflow)
    if history:
        shares = stock.initial_composition.reshape(n)  # (S, E) → series
        by_age = total = None
        if stock.initial_cohorts_kg is not None:
            by_age = np.repeat(stock.initial_cohorts_kg, n_e, axis=1) * shares[None, :]
        else:
            total = np.repeat(stock.initial_total_kg, n_e) * shares
        cohorts.set_history(history_weights(cohorts, total, by_age))
    return cohorts


def solve_with_stocks(
    inputs: ModelInputs, timings: dict[str, float]
) -> tuple[np.ndarray, StockState]:
    """Element mass of every flow (S, P, E, F) in kg/year and the stocks; period by period."""
    from critflow.engine.balance import NEGATIVE_TOLERANCE, explain

    for key in ("assemble", "factorise", "solve"):
        timings.setdefault(key, 0.0)
    topo = inputs.topology
    n_s, n_p = len(inputs.scenarios), inputs.periods.size
    n_e, n_f = topo.n_elements, topo.n_flows
    n_b, n_k = n_s * n_e, topo.stock_process.size
    structure = with_stock_rows(build_structure(topo), inputs)
    stock_rows = np.arange(n_k) + structure.n_structural - n_k
    cohorts = [cohort_model(stock, inputs) for stock in inputs.stocks]
    result = np.empty((n_s, n_p, n_e, n_f))
    factorisations: dict[bytes, tuple] = {}
    group = np.repeat(np.arange(n_s), n_e)

    for t in range(n_p):
        mask = inputs.given_mask.copy()  # (S, E, F)
        given = inputs.given_mass_kg[:, t].copy()  # (S, E, F)
        p0 = np.empty((n_b, n_k))
        carried = np.empty((n_b, n_k))
        for k, (stock, model) in enumerate(zip(inputs.stocks, cohorts, strict=True)):
            if stock.stock_driven[t]:
                try:
                    inflow = model.reach_stock(
                        t,
                        stock.target_kg[:, t],
                        composition=stock.inflow_composition[:, t].reshape(n_b),
                        group=group,
                    )
                except NegativeInflowError as exc:
                    raise CritflowError(
                        f"stock '{stock.process_id}'",
                        f"the target stock falls faster than its cohorts leave in "
                        f"{inputs.periods[t]} (scenario '{inputs.scenarios[exc.series[0]]}'), "
                        "which would need a negative inflow",
                        "Raise the target there, or set negative_inflow: clip to retire the "
                        "surplus from all cohorts in proportion.",
                    ) from None
                mask[:, :, stock.input_flow] = True
                given[:, :, stock.input_flow] = inflow.reshape(n_s, n_e)
            p0[:, k] = model.first_year(t)[1]
            if stock.stock_driven[t]:  # committed (and maybe clipped): what the cohorts release
                carried[:, k] = model.outflow[t] - p0[:, k] * model.inflow[t]
            else:
                carried[:, k] = model.carry_over(t)[1]
        coefficients = np.concatenate(
            [inputs.transfer_coefficients[:, t].reshape(n_b, -1), p0], axis=1
        )
        flat_mask = mask.reshape(n_b, n_f)
        period_inputs = dataclasses.replace(
            inputs,
            given_mask=mask,
            given_mass_kg=np.broadcast_to(given[:, None], (n_s, n_p, n_e, n_f)),
        )
        rows = structure.n_structural + flat_mask.sum(axis=1)
        if (rows != n_f).any():
            raise explain(
                period_inputs,
                structure,
                coefficients.reshape(n_s, n_e, -1),
                np.flatnonzero(rows != n_f),
                t,
            )
        key = coefficients.tobytes() + flat_mask.tobytes()
        if key not in factorisations:
            trapped = trapped_loops(inputs, inputs.transfer_coefficients[:, t], t)
            if trapped:
                raise CritflowError(trapped)
            start = time.perf_counter()
            try:  # dense blocks for a small system, one sparse LU otherwise
                system = factorise(structure, coefficients, flat_mask)
            except SingularSystemError:
                raise explain(
                    period_inputs, structure, coefficients.reshape(n_s, n_e, -1), range(n_b), t
                ) from None
            timings["factorise"] += time.perf_counter() - start
            factorisations = {key: system}  # keep the latest only: periods come in order
        system = factorisations[key]
        start = time.perf_counter()
        rhs = assemble_rhs(structure, flat_mask, given.reshape(n_b, 1, n_f))
        rhs[(np.arange(n_b)[:, None] * n_f + stock_rows[None, :]).reshape(-1), 0] = carried.reshape(
            -1
        )
        try:
            solution = system.solve(rhs)
        except SingularSystemError:  # the dense blocks find a singular block here
            raise explain(
                period_inputs, structure, coefficients.reshape(n_s, n_e, -1), range(n_b), t
            ) from None
        timings["solve"] += time.perf_counter() - start
        residual = system.residual(solution, rhs)
        scale = max(np.abs(rhs).max(initial=0.0), np.abs(solution).max(initial=0.0), 1.0)
        if not np.isfinite(solution).all() or residual > 1e-8 * scale:
            raise explain(
                period_inputs, structure, coefficients.reshape(n_s, n_e, -1), range(n_b), t
            )
        flows = solution.reshape(n_b, n_f)
        for stock, model in zip(inputs.stocks, cohorts, strict=True):
            if not stock.stock_driven[t]:
                model.add_inflow(t, flows[:, stock.input_flow])
        result[:, t] = flows.reshape(n_s, n_e, n_f)

    tolerance = NEGATIVE_TOLERANCE * np.abs(result).max(axis=3, keepdims=True)
    if (result < -tolerance).any():
        raise negative_flows(inputs, result, tolerance)
    result[result < 0] = 0.0
    state = StockState(
        stock_kg=np.stack([m.stock.reshape(n_p, n_s, n_e) for m in cohorts], axis=-1).transpose(
            1, 0, 2, 3
        ),
        initial_kg=np.stack([m.initial_stock.reshape(n_s, n_e) for m in cohorts], axis=-1),
        retired_kg=np.stack([m.retired.reshape(n_p, n_s, n_e) for m in cohorts], axis=-1).transpose(
            1, 0, 2, 3
        ),
        clipped=np.stack(
            [m.clipped_periods().reshape(n_p, n_s, n_e).any(axis=2) for m in cohorts], axis=-1
        ).transpose(1, 0, 2),
        cohorts=cohorts,
    )
    return np.ascontiguousarray(result), state


def clipping_notes(inputs: ModelInputs, state: StockState) -> list[Problem]:
    """One note per stock and scenario naming the years where surplus stock was retired."""
    notes = []
    for k, stock in enumerate(inputs.stocks):
        for s, scenario in enumerate(inputs.scenarios):
            years = inputs.periods[state.clipped[s, :, k]]
            if years.size:
                notes.append(
                    Problem(
                        f"stock '{stock.process_id}'"
                        + (f" (scenario '{scenario}')" if len(inputs.scenarios) > 1 else ""),
                        "the target falls faster than cohorts leave in "
                        + ", ".join(str(y) for y in years)
                        + ": inflow 0 and the surplus retired from all cohorts in proportion",
                        "Check the stock target in those years.",
                    )
                )
    return notes
