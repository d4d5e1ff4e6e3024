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
The stocks are stepped in batches, not one by one: all stocks with the same lifetime distribution
(and the same years of initial-stock history, cohort variation and negative-inflow policy) are one
:class:`~critflow.stocks.cohorts.CohortStocks` whose series run over stock × scenario × element,
their lifetime parameters arrays over those series, so one survival evaluation and one carry-over
per period cover them all (540 stocks of the regions benchmark are one batch).
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


@dataclasses.dataclass(frozen=True)
class StockCohorts:
    """The cohort bookkeeping of one stock: its series (scenario s · E + element e) in the batch of
    stocks it was stepped with."""

    batch: CohortStocks
    series: slice

    @property
    def inflow(self) -> np.ndarray:
        return self.batch.inflow[:, self.series]

    @property
    def outflow(self) -> np.ndarray:
        return self.batch.outflow[:, self.series]

    @property
    def stock(self) -> np.ndarray:
        return self.batch.stock[:, self.series]

    @property
    def retired(self) -> np.ndarray:
        return self.batch.retired[:, self.series]

    @property
    def retire_factor(self) -> np.ndarray:
        """(P, S·E) the share of the cohorts kept in each period (< 1 where surplus was retired)."""
        return self.batch.retire_factor[:, self.series]


@dataclasses.dataclass
class StockState:
    """Stocks of a solved model, each (S, P, E, K) in kg (stock) or kg/year (flows)."""

    stock_kg: np.ndarray  # goods in use at the end of each year, per element
    initial_kg: np.ndarray  # (S, E, K) in use at the end of the year before the first
    retired_kg: np.ndarray  # surplus retired by the clip policy (part of the outflow)
    clipped: np.ndarray  # (S, P, K) True where the clip policy acted
    cohorts: list[StockCohorts] = dataclasses.field(repr=False, default_factory=list)

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


@dataclasses.dataclass
class StockBatch:
    """Stocks stepped together: one :class:`CohortStocks` whose series are member j's series
    (scenario s · E + element e) at ``j · S·E + s · E + e``. Members share their lifetime
    distribution, whether it varies by cohort, the years of initial-stock history and the
    negative-inflow policy; their parameters are arrays over the series, so one survival
    evaluation covers them all."""

    members: np.ndarray  # (M,) stock indices
    cohorts: CohortStocks
    input_flows: np.ndarray  # (M,)
    driven: np.ndarray  # (P, M) True where the stock target drives the inflow
    target_kg: np.ndarray  # (P, M, S)
    composition: np.ndarray  # (P, M, S·E) element shares of a stock-driven inflow

    def view(self, j: int) -> StockCohorts:
        n = self.cohorts.n_series // self.members.size
        return StockCohorts(self.cohorts, slice(j * n, (j + 1) * n))


def _flat_parameters(stock: StockInputs, n_p: int, n: int) -> dict[str, np.ndarray]:
    """Lifetime parameters over the series s·E + e: (n,), or (P, n) when cohort-varying."""
    if stock.cohort_varying:
        return {k: v.reshape(n_p, n) for k, v in stock.parameters.items()}
    return {k: v.reshape(n) for k, v in stock.parameters.items()}


def stock_batches(stocks: list[StockInputs] | tuple[StockInputs, ...], inputs: ModelInputs):
    """The stocks of ``stocks`` grouped into batches (see :class:`StockBatch`), in order of
    their first member; ``members`` index ``stocks``."""
    n_s, n_e, n_p = len(inputs.scenarios), inputs.topology.n_elements, inputs.periods.size
    n = n_s * n_e
    groups: dict[tuple, list[tuple[int, dict[str, np.ndarray]]]] = {}
    for k, stock in enumerate(stocks):
        flat = _flat_parameters(stock, n_p, n)
        has_initial = stock.initial_cohorts_kg is not None or stock.initial_total_kg is not None
        history = (
            history_length(
                Lifetime(stock.distribution, flat, stock.cohort_varying), stock.initial_cohorts_kg
            )
            if has_initial
            else 0
        )
        key = (stock.distribution, stock.cohort_varying, history, stock.negative_inflow)
        groups.setdefault(key, []).append((k, flat))
    batches = []
    for (distribution, varying, history, policy), members in groups.items():
        index = np.array([k for k, _ in members])
        chosen = [stocks[k] for k in index]
        params = {
            name: np.concatenate([flat[name] for _, flat in members], axis=-1)
            for name in members[0][1]
        }
        if varying:  # cohorts before the first year take the first year's parameters
            params = {
                k: np.concatenate([np.repeat(v[:1], history, 0), v]) for k, v in params.items()
            }
        size = index.size * n
        kernel = survival_kernel(Lifetime(distribution, params, varying), history + n_p, size)
        cohorts = CohortStocks(kernel, history, n_p, policy)
        if history:
            shares = np.concatenate([s.initial_composition.reshape(n) for s in chosen])
            by_cohort = np.concatenate(
                [np.full(n, s.initial_cohorts_kg is not None) for s in chosen]
            )
            total = np.concatenate(
                [
                    np.zeros(n)
                    if s.initial_total_kg is None
                    else np.repeat(s.initial_total_kg, n_e)
                    for s in chosen
                ]
            )
            weights = history_weights(cohorts, total * shares, None)
            if by_cohort.any():
                by_age = np.concatenate(
                    [
                        np.zeros((history, n))
                        if s.initial_cohorts_kg is None
                        else np.repeat(s.initial_cohorts_kg, n_e, axis=1)
                        for s in chosen
                    ],
                    axis=1,
                )
                weights[:, by_cohort] = history_weights(cohorts, None, by_age * shares[None, :])[
                    :, by_cohort
                ]
            cohorts.set_history(weights)
        batches.append(
            StockBatch(
                members=index,
                cohorts=cohorts,
                input_flows=np.array([s.input_flow for s in chosen], dtype=int),
                driven=np.stack([s.stock_driven for s in chosen], axis=1),
                target_kg=np.stack([s.target_kg.T for s in chosen], axis=1),
                composition=np.stack(
                    [s.inflow_composition.transpose(1, 0, 2).reshape(n_p, n) for s in chosen],
                    axis=1,
                ),
            )
        )
    return batches


def cohort_model(stock: StockInputs, inputs: ModelInputs) -> CohortStocks:
    """The cohort bookkeeping of one stock over all scenarios × elements (series s·E + e)."""
    return stock_batches([stock], inputs)[0].cohorts


def _drive(batch: StockBatch, t: int, inputs: ModelInputs) -> tuple[np.ndarray, np.ndarray]:
    """Fix the inflow of the batch's stock-driven members in period ``t`` from their targets:
    (members, their inflow (m, S·E)); the clip policy retires surplus cohorts here."""
    n_s, n_e = len(inputs.scenarios), inputs.topology.n_elements
    n = n_s * n_e
    local = np.flatnonzero(batch.driven[t])
    if not local.size:
        return local, np.empty((0, n))
    series = (local[:, None] * n + np.arange(n)[None, :]).reshape(-1)
    group = np.repeat(np.arange(local.size * n_s), n_e)
    try:
        inflow = batch.cohorts.target_inflow(
            t,
            batch.target_kg[t, local].reshape(-1),
            composition=batch.composition[t, local].reshape(-1),
            group=group,
            series=series,
        )
    except NegativeInflowError as exc:
        j, s = divmod(int(exc.series[0]), n_s)
        stock = inputs.stocks[batch.members[local[j]]]
        raise CritflowError(
            f"stock '{stock.process_id}'",
            f"the target stock falls faster than its cohorts leave in "
            f"{inputs.periods[t]} (scenario '{inputs.scenarios[s]}'), "
            "which would need a negative inflow",
            "Raise the target there, or set negative_inflow: clip to retire the "
            "surplus from all cohorts in proportion.",
        ) from None
    return local, inflow.reshape(local.size, n)


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
    rhs_stock_rows = (np.arange(n_b)[:, None] * n_f + stock_rows[None, :]).reshape(-1)
    batches = stock_batches(inputs.stocks, inputs)
    result = np.empty((n_s, n_p, n_e, n_f))
    factorisations: dict[bytes, tuple] = {}
    p0 = np.empty((n_b, n_k))
    carried = np.empty((n_b, n_k))

    for t in range(n_p):
        mask = inputs.given_mask.copy()  # (S, E, F)
        given = inputs.given_mass_kg[:, t].copy()  # (S, E, F)
        committed = []
        for batch in batches:
            local, inflow = _drive(batch, t, inputs)
            committed.append((local, inflow))
            if local.size:
                flows_in = batch.input_flows[local]
                mask[:, :, flows_in] = True
                given[:, :, flows_in] = inflow.reshape(-1, n_s, n_e).transpose(1, 2, 0)
            m = batch.members.size
            p0[:, batch.members] = batch.cohorts.first_year(t)[1].reshape(m, n_b).T
            # what the cohorts before t release (after any retirement of this period)
            carried[:, batch.members] = batch.cohorts.carry_over(t)[1].reshape(m, n_b).T
        coefficients = np.concatenate(
            [inputs.transfer_coefficients[:, t].reshape(n_b, -1), p0], axis=1
        )
        flat_mask = mask.reshape(n_b, n_f)
        rows = structure.n_structural + flat_mask.sum(axis=1)

        def _explain(blocks, mask=mask, given=given, coefficients=coefficients, t=t):
            """Why period ``t`` cannot be solved, for ``blocks`` (built only on failure)."""
            return explain(
                _period_inputs(inputs, mask, given),
                structure,
                coefficients.reshape(n_s, n_e, -1),
                blocks,
                t,
            )

        if (rows != n_f).any():
            raise _explain(np.flatnonzero(rows != n_f))
        key = coefficients.tobytes() + flat_mask.tobytes()
        if key not in factorisations:
            trapped = trapped_loops(inputs, inputs.transfer_coefficients[:, t], t)
            if trapped:
                raise CritflowError(trapped)
            start = time.perf_counter()
            try:  # dense blocks for a small system, one sparse LU otherwise
                system = factorise(structure, coefficients, flat_mask)
            except SingularSystemError:
                raise _explain(range(n_b)) from None
            timings["factorise"] += time.perf_counter() - start
            factorisations = {key: system}  # keep the latest only: periods come in order
        system = factorisations[key]
        start = time.perf_counter()
        rhs = assemble_rhs(structure, flat_mask, given.reshape(n_b, 1, n_f))
        rhs[rhs_stock_rows, 0] = carried.reshape(-1)
        try:
            solution = system.solve(rhs)
        except SingularSystemError:  # the dense blocks find a singular block here
            raise _explain(range(n_b)) from None
        timings["solve"] += time.perf_counter() - start
        residual = system.residual(solution, rhs)
        scale = max(np.abs(rhs).max(initial=0.0), np.abs(solution).max(initial=0.0), 1.0)
        if not np.isfinite(solution).all() or residual > 1e-8 * scale:
            raise _explain(range(n_b))
        flows = solution.reshape(n_b, n_f)
        for batch, (local, inflow) in zip(batches, committed, strict=True):
            entering = flows[:, batch.input_flows].T.copy()  # (M, S·E)
            entering[local] = inflow  # stock-driven: the inflow fixed from the target
            batch.cohorts.add_inflow(t, entering.reshape(-1))
        result[:, t] = flows.reshape(n_s, n_e, n_f)

    tolerance = NEGATIVE_TOLERANCE * np.abs(result).max(axis=3, keepdims=True)
    if (result < -tolerance).any():
        raise negative_flows(inputs, result, tolerance)
    result[result < 0] = 0.0
    return np.ascontiguousarray(result), _state(batches, n_s, n_p, n_e, n_k)


def _period_inputs(inputs: ModelInputs, mask: np.ndarray, given: np.ndarray) -> ModelInputs:
    """The inputs of one period with its stock-driven inflows as given values (for explain)."""
    n_s, n_p = len(inputs.scenarios), inputs.periods.size
    return dataclasses.replace(
        inputs,
        given_mask=mask,
        given_mass_kg=np.broadcast_to(given[:, None], (n_s, n_p, *given.shape[1:])),
    )


def _state(batches: list[StockBatch], n_s: int, n_p: int, n_e: int, n_k: int) -> StockState:
    """The stocks (S, P, E, K) gathered from the batches."""
    stock = np.empty((n_p, n_s, n_e, n_k))
    retired = np.empty((n_p, n_s, n_e, n_k))
    clipped = np.empty((n_p, n_s, n_k), dtype=bool)
    initial = np.empty((n_s, n_e, n_k))
    views: list[StockCohorts | None] = [None] * n_k
    for batch in batches:
        m, cohorts = batch.members.size, batch.cohorts
        shape = (n_p, m, n_s, n_e)
        stock[..., batch.members] = cohorts.stock.reshape(shape).transpose(0, 2, 3, 1)
        retired[..., batch.members] = cohorts.retired.reshape(shape).transpose(0, 2, 3, 1)
        clipped[..., batch.members] = (
            cohorts.clipped_periods().reshape(shape).any(axis=3).transpose(0, 2, 1)
        )
        initial[..., batch.members] = cohorts.initial_stock.reshape(m, n_s, n_e).transpose(1, 2, 0)
        for j, k in enumerate(batch.members):
            views[k] = batch.view(j)
    return StockState(
        stock_kg=stock.transpose(1, 0, 2, 3),
        initial_kg=initial,
        retired_kg=retired.transpose(1, 0, 2, 3),
        clipped=clipped.transpose(1, 0, 2),
        cohorts=views,
    )


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
