"""Data reconciliation: weighted least squares of measurements under the model's balances.

Variables, for one scenario and period: the mass of every element in every flow, x (E·F), plus
every measured concentration, c. Constraints h(x, c) = 0: the given flow values, the transfer
relations of processes with coefficients, the element balance of transfer processes without
coefficients (their splits are what is measured) and of markets, and for each measured
concentration x_ef − c · Σ_e' x_e'f = 0 (bilinear). Measurements: y = H·(x, c) + ε, ε ~ N(0, V)
with V diagonal (sd²) — an element's mass, a goods mass (the sum over elements), or a concentration.

Solution (Cencic 2016, as in STAN; critflow flowsheet notes 3.1-3.4): linearise h at the current
estimate, J v = J v₀ − h(v₀); write the feasible set as v = v_p + N t (N: null space of J); choose t
by weighted least squares of the measurements; repeat until the step is below 1e-10 (one pass
when everything is linear). With G = H N and W = V⁻¹:

    t̂ = (Gᵀ W G)⁺ Gᵀ W (y − H v_p),   Cov(v̂) = N (Gᵀ W G)⁺ Nᵀ,   a = y − H v̂,
    Cov(a) = V − H Cov(v̂) Hᵀ

Classification: a variable is observable when its row of N lies in the row space of G; a
measurement is redundant when Var(a_i) > 0 (otherwise it passes unchanged and cannot be tested).
Tests: global χ² = aᵀ W a against χ²(ν), ν = number of measurements − rank(G); per measurement
z_i = |a_i| / √Var(a_i) against the Šidák-corrected normal quantile, which names the suspects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import linalg, stats

from critflow.engine.compile import ModelInputs, evaluate
from critflow.engine.topology import build_topology
from critflow.errors import CritflowError, Problem, known, nearest
from critflow.model.core import Model
from critflow.model.schema import Measurement
from critflow.units import looks_like_quantity, parse_mass_flow

TOLERANCE = 1e-10
MAX_ITERATIONS = 50


@dataclass
class Reconciled:
    """Reconciliation of one scenario and period."""

    scenario: str
    period: int
    x: np.ndarray  # (E, F) reconciled element masses in the model's unit (NaN: not observable)
    sd: np.ndarray  # (E, F) their standard deviations
    observable: np.ndarray  # (E, F) bool
    measurements: pd.DataFrame
    chi2: float
    dof: int
    p_value: float
    critical: float
    iterations: int
    alpha: float

    @property
    def passed(self) -> bool:
        return self.dof == 0 or self.chi2 <= self.critical

    @property
    def suspects(self) -> list[str]:
        table = self.measurements
        return table.loc[table["suspect"]].sort_values("z", ascending=False)["measurement"].tolist()


def _sd(m: Measurement, value: float, kg_per_unit: float, where: str) -> float:
    """Standard deviation in the unit of the value (model unit or fraction)."""
    if isinstance(m.sd, str):
        text = m.sd.strip()
        if text.endswith("%"):
            try:
                share = float(text[:-1]) / 100
            except ValueError:
                share = -1
            if share <= 0:
                raise CritflowError(
                    where, f"'{m.sd}' is not a positive percentage", "Write sd: '2 %'."
                )
            return share * abs(value)
        if looks_like_quantity(text):
            return parse_mass_flow(text, where) / kg_per_unit
        raise CritflowError(
            where, f"'{m.sd}' is not a standard deviation", "Write a number, a quantity or '2 %'."
        )
    return float(m.sd)


def _check(model: Model, inputs: ModelInputs) -> None:
    topo, spec = inputs.topology, model.spec
    problems: list[Problem] = []
    if not spec.measurements:
        raise CritflowError(
            model.where(),
            "the model has no measurements to reconcile",
            "Add measurements: [{flow: black_mass, element: Co, value: 480, sd: 12}, …].",
        )
    if inputs.stocks:
        raise CritflowError(
            model.where(), "reconciliation of models with stocks is not supported", ""
        )
    for i, m in enumerate(spec.measurements):
        where = model.where("measurements", i)
        if m.flow not in topo.flow_ids:
            problems.append(
                Problem(
                    model.where("measurements", i, "flow"),
                    f"the model has no flow '{m.flow}'",
                    f"{nearest(m.flow, list(topo.flow_ids))} Flows: {known(list(topo.flow_ids))}.".strip(),
                )
            )
        if m.element is not None and m.element not in topo.elements:
            problems.append(
                Problem(
                    model.where("measurements", i, "element"),
                    f"'{m.element}' is not an element of the model",
                    f"Elements: {known(list(topo.elements))}.",
                )
            )
        if m.period is not None and m.period not in inputs.periods:
            problems.append(Problem(where, f"the model has no period {m.period}", ""))
        if m.scenario is not None and m.scenario not in spec.scenarios:
            problems.append(Problem(where, f"the model has no scenario '{m.scenario}'", ""))
    if problems:
        raise CritflowError(problems)


def _constraints(inputs: ModelInputs, s: int, p: int, n_c: int) -> tuple[np.ndarray, np.ndarray]:
    """Linear rows of the balance (A, b) over x (E·F) and the concentration variables."""
    topo = inputs.topology
    n_e, n_f = topo.n_elements, topo.n_flows
    n = n_e * n_f + n_c
    rows: list[np.ndarray] = []
    rhs: list[float] = []

    def var(e: int, f: int) -> int:
        return e * n_f + f

    given = inputs.given_mask[s]
    for e, f in zip(*np.nonzero(given), strict=True):
        row = np.zeros(n)
        row[var(e, f)] = 1.0
        rows.append(row)
        rhs.append(inputs.given_mass_kg[s, p, e, f] / inputs.kg_per_unit)
    tau = inputs.transfer_coefficients[s, p]  # (E, J)
    kinds = topo.process_kinds
    for u, kind in enumerate(kinds):
        inflows = np.flatnonzero(topo.flow_to == u)
        outflows = np.flatnonzero(topo.flow_from == u)
        entries = np.flatnonzero(topo.transfer_process == u)
        for e in range(n_e):
            if kind == "transfer" and entries.size and not np.isnan(tau[e, entries]).any():
                for j in entries:
                    row = np.zeros(n)
                    row[var(e, topo.transfer_output[j])] += 1.0
                    row[[var(e, i) for i in inflows]] -= tau[e, j]
                    rows.append(row)
                    rhs.append(0.0)
            elif kind in ("transfer", "market"):
                row = np.zeros(n)
                row[[var(e, i) for i in inflows]] += 1.0
                row[[var(e, o) for o in outflows]] -= 1.0
                rows.append(row)
                rhs.append(0.0)
    return np.array(rows).reshape(-1, n), np.array(rhs)


def reconcile_one(
    model: Model, inputs: ModelInputs, s: int, p: int, alpha: float = 0.05
) -> Reconciled:
    """Reconcile the measurements of scenario ``s`` and period index ``p``."""
    topo, spec = inputs.topology, model.spec
    scenario, year = inputs.scenarios[s], int(inputs.periods[p])
    n_e, n_f = topo.n_elements, topo.n_flows
    chosen = [
        (i, m)
        for i, m in enumerate(spec.measurements)
        if (m.period is None or m.period == year) and (m.scenario is None or m.scenario == scenario)
    ]
    conc = [(i, m) for i, m in chosen if m.concentration is not None]
    n_x = n_e * n_f
    n = n_x + len(conc)
    a_lin, b_lin = _constraints(inputs, s, p, len(conc))

    # measurement matrix hm and values y, sd
    h_rows, y, sd, labels = [], [], [], []
    for i, m in chosen:
        f = topo.flow_ids.index(m.flow)
        row = np.zeros(n)
        where = model.where("measurements", i)
        if m.concentration is not None:
            row[n_x + [c for c, _ in conc].index(i)] = 1.0
            value = float(m.concentration)
            label = f"{m.flow} {m.element} concentration"
        else:
            if m.element is None:
                row[[e * n_f + f for e in range(n_e)]] = 1.0
            else:
                row[topo.elements.index(m.element) * n_f + f] = 1.0
            value = (
                parse_mass_flow(m.value, where) / inputs.kg_per_unit
                if isinstance(m.value, str)
                else float(m.value)
            )
            label = f"{m.flow} {m.element or 'goods'}"
        h_rows.append(row)
        y.append(value)
        sd.append(_sd(m, value, inputs.kg_per_unit, where))
        labels.append(label)
    hm, y, sd = np.array(h_rows).reshape(-1, n), np.array(y), np.array(sd)
    w = 1.0 / sd**2

    def bilinear(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Concentration rows: values h(v) and Jacobian."""
        values, jac = [], []
        for c, (_i, m) in enumerate(conc):
            f = topo.flow_ids.index(m.flow)
            e = topo.elements.index(m.element)
            goods = sum(v[k * n_f + f] for k in range(n_e))
            row = np.zeros(n)
            row[[k * n_f + f for k in range(n_e)]] = -v[n_x + c]
            row[e * n_f + f] += 1.0
            row[n_x + c] = -goods
            values.append(v[e * n_f + f] - v[n_x + c] * goods)
            jac.append(row)
        return np.array(values), np.array(jac).reshape(-1, n)

    # start: the linear constraints alone (measured concentrations at their measured value)
    v = np.zeros(n)
    for c, (_i, m) in enumerate(conc):
        v[n_x + c] = m.concentration
    iterations = 0
    for iterations in range(1, MAX_ITERATIONS + 1):
        if conc and iterations > 1:
            h_val, h_jac = bilinear(v)
            jac = np.vstack([a_lin, h_jac])
            b = np.concatenate([b_lin, h_jac @ v - h_val])
        elif conc:  # first pass: fix the concentrations at their measured values
            fixed = np.zeros((len(conc), n))
            fixed[np.arange(len(conc)), n_x + np.arange(len(conc))] = 1.0
            jac = np.vstack([a_lin, fixed])
            b = np.concatenate([b_lin, v[n_x:]])
        else:
            jac, b = a_lin, b_lin
        v_p = linalg.lstsq(jac, b)[0] if jac.size else np.zeros(n)
        basis = linalg.null_space(jac) if jac.size else np.eye(n)
        gm = hm @ basis
        sqrt_w = np.sqrt(w)[:, None]
        t = (
            linalg.lstsq(sqrt_w * gm, np.sqrt(w) * (y - hm @ v_p))[0]
            if gm.size
            else np.zeros(basis.shape[1])
        )
        new = v_p + basis @ t
        step = np.abs(new - v).max(initial=0.0) / max(np.abs(new).max(initial=0.0), 1.0)
        v = new
        if not conc or (iterations > 1 and step < TOLERANCE):
            break
    else:
        raise CritflowError(
            model.where("measurements"),
            f"reconciliation did not converge in {MAX_ITERATIONS} iterations ({scenario}, {year})",
            "Check the concentration measurements for impossible values.",
        )
    # covariance and classification at the solution
    gwg = gm.T @ (w[:, None] * gm)
    cov_t = linalg.pinvh(gwg) if gwg.size else np.zeros((0, 0))
    cov_v = basis @ cov_t @ basis.T
    unobservable_dirs = (
        linalg.null_space(np.sqrt(w)[:, None] * gm) if gm.size else np.eye(basis.shape[1])
    )
    leak = (
        np.abs(basis @ unobservable_dirs).max(axis=1, initial=0.0)
        if unobservable_dirs.size
        else np.zeros(n)
    )
    observable = leak < 1e-8
    fitted = hm @ v
    adjust = y - fitted
    var_a = sd**2 - np.einsum("ij,jk,ik->i", hm, cov_v, hm)
    redundant = var_a > 1e-9 * sd**2
    z = np.where(redundant, np.abs(adjust) / np.sqrt(np.where(redundant, var_a, 1.0)), np.nan)
    rank_g = int(np.linalg.matrix_rank(np.sqrt(w)[:, None] * gm)) if gm.size else 0
    dof = int(len(y) - rank_g)
    chi2 = float((w * adjust**2).sum())
    critical = float(stats.chi2.ppf(1 - alpha, dof)) if dof > 0 else float("nan")
    p_value = float(stats.chi2.sf(chi2, dof)) if dof > 0 else float("nan")
    n_red = int(redundant.sum())
    beta = 1 - (1 - alpha) ** (1 / max(n_red, 1))
    z_crit = float(stats.norm.ppf(1 - beta / 2))
    table = pd.DataFrame(
        {
            "measurement": labels,
            "measured": y,
            "sd": sd,
            "reconciled": fitted,
            "reconciled_sd": np.sqrt(np.clip(np.einsum("ij,jk,ik->i", hm, cov_v, hm), 0, None)),
            "adjustment": fitted - y,
            "z": z,
            "z_critical": z_crit,
            "redundant": redundant,
            "suspect": redundant & (np.nan_to_num(z) > z_crit),
        }
    )
    x = v[:n_x].reshape(n_e, n_f)
    x_sd = np.sqrt(np.clip(np.diag(cov_v)[:n_x], 0, None)).reshape(n_e, n_f)
    obs = observable[:n_x].reshape(n_e, n_f)
    return Reconciled(
        scenario,
        year,
        np.where(obs, x, np.nan),
        np.where(obs, x_sd, np.nan),
        obs,
        table,
        chi2,
        dof,
        p_value,
        critical,
        iterations,
        alpha,
    )


def reconcile(
    model: Model, scenarios: list[str] | None = None, year: int | None = None, alpha: float = 0.05
) -> list[Reconciled]:
    """Reconcile every chosen scenario and period (all periods unless ``year``)."""
    inputs = evaluate(model, scenarios)
    _check(model, inputs)
    if year is not None and year not in inputs.periods:
        raise CritflowError(
            "--year",
            f"the model has no period {year}",
            f"Periods: {inputs.periods[0]}–{inputs.periods[-1]}.",
        )
    periods = (
        range(inputs.periods.size)
        if year is None
        else [int(np.flatnonzero(inputs.periods == year)[0])]
    )
    return [
        reconcile_one(model, inputs, s, p, alpha)
        for s in range(len(inputs.scenarios))
        for p in periods
    ]


def flows_table(model: Model, found: list[Reconciled]) -> pd.DataFrame:
    """Reconciled element masses of every flow: scenario, period, flow, element, value, sd,
    observable, unit."""
    inputs_topo = build_topology(model.spec)  # labels only: no second evaluation
    frames = []
    for r in found:
        n_e, n_f = r.x.shape
        grid = np.indices((n_e, n_f)).reshape(2, -1)
        frames.append(
            pd.DataFrame(
                {
                    "scenario": r.scenario,
                    "period": r.period,
                    "flow": np.array(inputs_topo.flow_ids, dtype=object)[grid[1]],
                    "element": np.array(inputs_topo.elements, dtype=object)[grid[0]],
                    "value": r.x.reshape(-1),
                    "sd": r.sd.reshape(-1),
                    "observable": r.observable.reshape(-1),
                    "unit": model.spec.unit,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
