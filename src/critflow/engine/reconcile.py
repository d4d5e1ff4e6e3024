"""Data reconciliation: weighted least squares of measurements under the model's balances.

Variables, for one scenario and period: the mass of every element in every flow, x (E·F), plus
every measured concentration, c. Constraints h(x, c) = 0: the given flow values, the transfer
relations of processes with coefficients and the balances of markets (all three from the engine's
assembly, :mod:`critflow.engine.assemble`), the element balance of transfer processes without
coefficients (their splits are what is measured), and for each measured concentration
x_ef − c · Σ_e' x_e'f = 0 (bilinear). Measurements: y = H·(x, c) + ε, ε ~ N(0, V) with V diagonal
(sd²) — an element's mass, a goods mass (the sum over elements), or a concentration.

Solution (the null-space method of Cencic 2016, as in STAN; critflow flowsheet notes 3.1-3.4):
linearise h at the current estimate, J v = J v₀ − h(v₀); write the feasible set as v = v_p + N t
(N: an orthonormal basis of the null space of J); choose t by weighted least squares of the
measurements; repeat until the step is below 1e-10 (one pass when everything is linear).

The one rank decision is made on what the measurements see of the feasible set, with each
measurement's row scaled by the length of its row of H (D = diag(1/‖h_i‖)):

    D H N = U S Qᵀ,   rank r = #{S_k > RANK_TOLERANCE · max(S_1, 1)}

(the rows have length at most one, so 1 is their natural scale: a matrix of rounding noise has
rank 0). It is structural — it does not depend on the sds, so a very precise measurement cannot
hide a direction — and every result follows from it: the fit keeps only the r directions Q_r the
measurements determine (the others are projected out, never fitted to rounding noise), the
covariance uses the same r, and ν = measurements − r. The weighted fit in those directions is a
Householder QR of G = V^-½ H N Q_r with the heaviest rows first (Björck 1996, 4.4.2), completed to
an orthonormal basis [Q_1 Q_2] of the measurement space:

    t̂ = R⁻¹ Q_1ᵀ w,   w = V^-½ (y − H v_p),   Cov(v̂) = N Q_r R⁻¹ R⁻ᵀ Q_rᵀ Nᵀ,
    V^-½ a = Q_2 Q_2ᵀ w   (a = y − H v̂),   Var(a_i) = sd_i² ‖(Q_2)_i‖²,   χ² = ‖Q_2ᵀ w‖²

The adjustments and their variances come from the complement Q_2, not from y − H v̂ and
1 − ‖(Q_1)_i‖²: for a measurement far more precise than the others both would be lost in the
rounding of the flows. Before the decision, variables are scaled to a common magnitude (the
largest measured or given mass) and every constraint row to unit length, so the tolerances are
relative and independent of the model's unit.

Classification (Narasimhan & Jordache 2000, ch. 3): the directions N Q_{r+1…} are unobservable —
the measurements and balances leave them free. A quantity (an element flow, a goods flow) is
observable when it has no component along them (below RANK_TOLERANCE in the orthonormal
coordinates); otherwise it has no value (NaN, status "unobservable"), never an arbitrary one. A
measurement is redundant when Σ_k>r U_ik² > RANK_TOLERANCE, i.e. when it is not alone in
fixing what it sees (structural, like the rank; a non-redundant one passes unchanged and cannot be
tested). The rows of U_{r+1…} are the columns of the reduced balances B (B H N = 0, each column
scaled by the length of the measurement's row of H). Tests: global χ² against χ²(ν); per
measurement z_i = |a_i| / √Var(a_i) against the Šidák-corrected normal quantile, which names the
suspects. Two redundant measurements whose columns of B are parallel (to within TIE_TOLERANCE
radians; e.g. the streams of a single balance) have perfectly correlated adjustments and the same
|z| whatever the data and the weights: a gross error in either explains the data equally well, so
they are reported as a group that cannot be told apart rather than ranked by rounding noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import linalg, stats
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from critflow.engine.assemble import block_system, build_structure
from critflow.engine.compile import ModelInputs, evaluate
from critflow.errors import CritflowError, Problem, known, nearest
from critflow.model.core import Model
from critflow.model.schema import Measurement
from critflow.units import looks_like_quantity, parse_mass_flow

TOLERANCE = 1e-10
"""Successive linearisation stops when no scaled variable moves by more than this."""
RANK_TOLERANCE = 1e-9
"""The one rank decision: a singular value below this share of max(largest, 1) counts as zero (for
the feasible set, the fit, the covariance and ν alike); a quantity whose component along the
unobservable directions stays below it is observable; a measurement with Σ_k>r U_ik² below it
(alone in fixing something it sees) is not redundant; a reconciled value whose constraint residual
exceeds it (relative to the largest mass) is refused."""
TIE_TOLERANCE = 1e-8
"""Two redundant measurements whose columns of the reduced balances are parallel to within this
angle (radians) cannot be told apart: rounding leaves about 1e-11, while a network whose columns
merely come close (a 6e-4 angle already lets the |z| differ by 2 %) is ranked."""
MIN_RELATIVE_SD = 1e-12
"""A standard deviation below this share of the largest mass flow (or of 1 for a concentration) is
refused: its weight would swamp double precision."""
MAX_ITERATIONS = 50
MAX_LISTED = 12


@dataclass
class Reconciled:
    """Reconciliation of one scenario and period.

    Element and goods masses are in the model's unit; a quantity that the measurements and
    balances do not determine is NaN with ``observable`` False (status "unobservable").
    """

    scenario: str
    period: int
    x: np.ndarray  # (E, F) reconciled element masses (NaN: not observable)
    sd: np.ndarray  # (E, F) their standard deviations
    observable: np.ndarray  # (E, F) bool
    measurements: pd.DataFrame
    chi2: float
    dof: int
    p_value: float
    critical: float
    iterations: int
    alpha: float
    flows: tuple[str, ...] = ()
    elements: tuple[str, ...] = ()
    # (F,) goods masses, the sum over elements (NaN: not observable), and their sd
    goods: np.ndarray = field(default_factory=lambda: np.zeros(0))
    goods_sd: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (F,)
    goods_observable: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # (F,)
    rank: int = 0  # independent directions the measurements fix (ν = measurements − rank)

    @property
    def passed(self) -> bool:
        return self.dof == 0 or self.chi2 <= self.critical

    @property
    def suspect_groups(self) -> list[list[str]]:
        """Suspect measurements, largest |z| first; each group holds measurements that cannot be
        told apart (equal |z| whatever the data), in the model file's order."""
        table = self.measurements.loc[self.measurements["suspect"]]
        order = (
            table.groupby("group", sort=False)["z"]
            .max()
            .sort_values(ascending=False, kind="stable")
        )
        return [table.loc[table["group"] == g, "measurement"].tolist() for g in order.index]

    @property
    def suspects(self) -> list[str]:
        """Suspect measurements, largest |z| first (ties in the model file's order)."""
        return [name for group in self.suspect_groups for name in group]

    @property
    def unobservable(self) -> list[str]:
        """Element flows the measurements and balances do not determine, as 'flow element'."""
        e, f = np.nonzero(~self.observable)
        order = np.lexsort((e, f))  # flow by flow, elements in the model's order
        return [f"{self.flows[f[k]]} {self.elements[e[k]]}" for k in order]

    @property
    def unobservable_by_flow(self) -> dict[str, list[str]]:
        """The elements of each flow that the measurements and balances do not determine."""
        return {
            self.flows[f]: [self.elements[e] for e in np.flatnonzero(~self.observable[:, f])]
            for f in np.flatnonzero((~self.observable).any(axis=0))
        }

    @property
    def unobservable_goods(self) -> list[str]:
        """Flows whose goods mass the measurements and balances do not determine."""
        return [self.flows[f] for f in np.flatnonzero(~self.goods_observable)]


def _number(text: str) -> float | None:
    """A plain number written as text (YAML reads '1e5' without a dot as a string)."""
    try:
        return float(text)
    except ValueError:
        return None


def _mass_value(value: float | str | None, where: str, kg_per_unit: float) -> float:
    """A measured mass flow in the model's unit (a number, or a quantity such as '480 t/a')."""
    if isinstance(value, str):
        number = _number(value.strip())
        return number if number is not None else parse_mass_flow(value, where) / kg_per_unit
    if value is None:
        raise CritflowError(where, "the measurement has no value", "Write value: 480.")
    return float(value)


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
        number = _number(text)
        if number is not None:
            return number
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


def _constraints(
    inputs: ModelInputs, s: int, p: int, n_c: int
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Linear rows (A, b) over x (E·F, element-major) and the concentration variables, with a
    label per row.

    Transfer relations, market balances and given values come from the engine's assembly
    (:func:`critflow.engine.assemble.block_system`, one block per element); a transfer process
    whose splits are measured (coefficients NaN) keeps its element balance instead.
    """
    topo = inputs.topology
    structure = build_structure(topo)
    n_e, n_f = topo.n_elements, topo.n_flows
    n_transfer = topo.transfer_process.size
    tau = inputs.transfer_coefficients[s, p]  # (E, J)
    given_mask = inputs.given_mask[s]  # (E, F)
    given = inputs.given_mass_kg[s, p] / inputs.kg_per_unit  # (E, F) in the model's unit
    blocks: list[np.ndarray] = []
    rhs: list[np.ndarray] = []
    labels: list[str] = []
    for e, element in enumerate(topo.elements):  # a handful of dense blocks, built once
        matrix, b, row_labels = block_system(
            structure, np.nan_to_num(tau[e]), given_mask[e], given[e]
        )
        keep = np.ones(matrix.shape[0], bool)
        keep[:n_transfer] = ~np.isnan(tau[e])
        names = row_labels + [
            f"given value of '{topo.flow_ids[f]}'" for f in np.flatnonzero(given_mask[e])
        ]
        measured = np.unique(topo.transfer_process[np.isnan(tau[e])])
        balance = (topo.flow_to[None, :] == measured[:, None]).astype(float) - (
            topo.flow_from[None, :] == measured[:, None]
        )
        blocks.append(np.vstack([matrix[keep], balance]))
        rhs += [b[keep], np.zeros(measured.size)]
        labels += [f"{names[r]} ({element})" for r in np.flatnonzero(keep)] + [
            f"balance of '{topo.process_ids[u]}' ({element})" for u in measured
        ]
    a = linalg.block_diag(*blocks) if blocks else np.zeros((0, 0))
    a = np.hstack([a.reshape(-1, n_e * n_f), np.zeros((a.shape[0], n_c))])
    return a, np.concatenate(rhs) if rhs else np.zeros(0), labels


def _rank(singular: np.ndarray) -> int:
    """Number of singular values above RANK_TOLERANCE times max(largest, 1).

    Both matrices decided on have rows of length at most one (and at least one row of length one
    unless nothing is seen), so their natural scale is 1: a matrix whose every singular value is
    rounding noise has rank 0, not the rank of its noise.
    """
    return int((singular > RANK_TOLERANCE * max(singular.max(initial=0.0), 1.0)).sum())


def _unit_rows(jac: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows scaled to unit length (the rank decision then does not depend on how a row is written)."""
    norms = np.linalg.norm(jac, axis=1)
    norms[norms == 0] = 1.0
    return jac / norms[:, None], b / norms


def _contradiction(
    a: np.ndarray, b: np.ndarray, labels: list[str], mass_scale: float, where: str, context: str
) -> CritflowError | None:
    """An error naming the equations (given values, transfer relations) that contradict each
    other; ``b`` is in units of ``mass_scale``."""
    if a.shape[0] == 0:
        return None
    js, bs = _unit_rows(a, b)
    u, singular, _ = np.linalg.svd(js)
    r = _rank(singular)
    gaps = u[:, r:].T @ bs
    for left, gap in zip(u[:, r:].T, gaps, strict=True):
        if abs(gap) <= RANK_TOLERANCE * max(np.abs(bs).max(initial=0.0), 1.0):
            continue
        involved = np.flatnonzero(np.abs(left) > 1e-8)
        return CritflowError(
            where,
            f"these equations contradict each other{context}: "
            + "; ".join(labels[i] for i in involved[:MAX_LISTED])
            + ("; …" if involved.size > MAX_LISTED else "")
            + f". No flows satisfy them all (off by {abs(gap) / np.abs(left).max() * mass_scale:.6g})",
            "Remove a given value that the others already determine, or turn it into a "
            "measurement (measurements: [{flow: …, value: …, sd: …}]) so it can be reconciled.",
        )
    return None


@dataclass
class _Fit:
    """One weighted least-squares step on the linearised constraints, in scaled units."""

    v: np.ndarray  # (n,) estimate; free directions at their minimum-norm values (never reported)
    half: np.ndarray  # (n, r) Cov(v) = half · halfᵀ
    free: np.ndarray  # (n, k) unobservable directions (orthonormal)
    reduced: np.ndarray  # (M, M − r) its orthonormal complement: row i is column i of the
    # reduced balances B (B H N = 0), scaled by the length of the measurement's row of H
    residual: np.ndarray  # (M, M − r) orthonormal complement of the weighted space (V^-½ a)
    weighted_adjustment: np.ndarray  # (M,) V^-½ (y − H v), projected onto that complement
    rank: int


def _fit(jac: np.ndarray, b: np.ndarray, hm: np.ndarray, y: np.ndarray, sd: np.ndarray) -> _Fit:
    """Null-space WLS with one explicit rank decision (all quantities of order one).

    The decision is made on what the measurements see of the feasible set, H N, with each row
    scaled by the length of its row of H — so it is structural and does not depend on the weights (a very precise
    measurement cannot hide a direction); the weighted fit then runs in the r directions kept.
    """
    js, bs = _unit_rows(jac, b)
    u, s_j, vt = np.linalg.svd(js)
    r_j = _rank(s_j)
    v_p = vt[:r_j].T @ ((u[:, :r_j].T @ bs) / s_j[:r_j])  # feasible, minimum norm
    basis = vt[r_j:].T  # N: orthonormal basis of the feasible directions
    # each measurement's row scaled by the length of its own row of H (not of H·N: a measurement
    # of a quantity the constraints already fix sees nothing, and stays at zero)
    h_norm = np.linalg.norm(hm, axis=1)
    seen_rows = (hm @ basis) / np.where(h_norm > 0, h_norm, 1.0)[:, None]
    u_h, s_h, q_t = np.linalg.svd(seen_rows)
    r = _rank(s_h)
    seen = basis @ q_t[:r].T  # directions the measurements fix
    g = (hm @ seen) / sd[:, None]  # (M, r), full column rank
    # Householder QR with the heaviest rows first stays accurate when the weights span many
    # orders of magnitude (Björck, Numerical Methods for Least Squares Problems, 1996, 4.4.2)
    order = np.argsort(-np.linalg.norm(g, axis=1), kind="stable")
    q_sorted, r_full = np.linalg.qr(g[order], mode="complete")
    q_g = np.empty_like(q_sorted)
    q_g[order] = q_sorted
    r_g = r_full[:r]
    weighted = (y - hm @ v_p) / sd
    tau = linalg.solve_triangular(r_g, q_g[:, :r].T @ weighted)
    # the weighted adjustments from the complement, not from y − H v̂: for a precise measurement
    # a_i is far below the rounding of the flows in v̂, but its row of the complement carries it
    residual = q_g[:, r:]
    return _Fit(
        v=v_p + seen @ tau,
        half=seen @ linalg.solve_triangular(r_g, np.eye(r), lower=False),
        free=basis @ q_t[r:].T,
        reduced=u_h[:, r:],
        residual=residual,
        weighted_adjustment=residual @ (residual.T @ weighted),
        rank=r,
    )


def _ties(reduced: np.ndarray, redundant: np.ndarray) -> np.ndarray:
    """Group label per measurement: redundant measurements whose adjustments are perfectly
    correlated share a label (a gross error in either explains the data equally well).

    Perfect correlation means parallel columns of the reduced balances, whatever the weights: the
    rows of ``reduced``, normalised, differ by at most TIE_TOLERANCE up to sign (the chord, about
    the angle between them; computed as a difference, not as 1 − cos, which would lose the angle
    below 1e-8 to rounding).
    """
    m = reduced.shape[0]
    norms = np.linalg.norm(reduced, axis=1)
    unit = reduced / np.where(norms > 0, norms, 1.0)[:, None]
    tied = np.eye(m, dtype=bool)
    for i in np.flatnonzero(redundant):
        chord = np.minimum(
            np.linalg.norm(unit - unit[i], axis=1), np.linalg.norm(unit + unit[i], axis=1)
        )
        tied[i] |= redundant & (chord <= TIE_TOLERANCE)
    return connected_components(csr_matrix(tied))[1] if m else np.zeros(0, np.int64)


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
    context = (
        f" ({scenario}, {year})" if len(inputs.scenarios) > 1 or inputs.periods.size > 1 else ""
    )
    conc = [(i, m) for i, m in chosen if m.concentration is not None]
    n_x = n_e * n_f
    n = n_x + len(conc)
    a_lin, b_lin, row_labels = _constraints(inputs, s, p, len(conc))

    # measurement matrix hm and values y, sd
    h_rows, y, sd, labels = [], [], [], []
    problems: list[Problem] = []
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
            value = _mass_value(m.value, where, inputs.kg_per_unit)
            label = f"{m.flow} {m.element or 'goods'}"
        sigma = _sd(m, value, inputs.kg_per_unit, where)
        if not np.isfinite(value):
            problems.append(Problem(where, f"the measured value is {value}", "Write a number."))
        elif not (np.isfinite(sigma) and sigma > 0):
            problems.append(
                Problem(
                    where,
                    f"the standard deviation is {sigma:g}",
                    "Give a finite, positive sd (a relative sd of a zero value is zero: write "
                    "an absolute one).",
                )
            )
        h_rows.append(row)
        y.append(value)
        sd.append(sigma)
        labels.append(label)
    if problems:
        raise CritflowError(problems)
    hm, y, sd = np.array(h_rows).reshape(-1, n), np.array(y), np.array(sd)
    # work in units of the largest mass (1 for a fraction): every number is then of order one,
    # so the tolerances are relative and the model's unit does not matter
    is_mass = np.abs(hm[:, :n_x]).sum(axis=1) > 0
    mass_scale = (
        float(max(np.abs(y[is_mass]).max(initial=0.0), np.abs(b_lin).max(initial=0.0))) or 1.0
    )
    row_scale = np.where(is_mass, mass_scale, 1.0)
    y_s, sd_s, b_s = y / row_scale, sd / row_scale, b_lin / mass_scale
    too_precise = np.flatnonzero(sd_s < MIN_RELATIVE_SD)
    if too_precise.size:
        raise CritflowError(
            [
                Problem(
                    model.where("measurements", chosen[k][0]),
                    f"the standard deviation {sd[k]:g} is below {MIN_RELATIVE_SD:g} of the largest "
                    f"mass flow in this reconciliation ({mass_scale:g}{context}): double precision "
                    "cannot weigh it against the other measurements",
                    "Check the units of the measurements (a value in kg among values in t?); a "
                    "value known this precisely is a flow value (flows: value:), not a measurement.",
                )
                for k in too_precise
            ]
        )
    contradiction = _contradiction(a_lin, b_s, row_labels, mass_scale, model.where(), context)
    if contradiction is not None:
        raise contradiction

    def bilinear(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Concentration rows (homogeneous in the masses, so scaling leaves them unchanged):
        values h(v) and Jacobian."""
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
            b = np.concatenate([b_s, h_jac @ v - h_val])
        elif conc:  # first pass: fix the concentrations at their measured values
            fixed = np.zeros((len(conc), n))
            fixed[np.arange(len(conc)), n_x + np.arange(len(conc))] = 1.0
            jac = np.vstack([a_lin, fixed])
            b = np.concatenate([b_s, v[n_x:]])
        else:
            jac, b = a_lin, b_s
        fit = _fit(jac, b, hm, y_s, sd_s)
        step = np.abs(fit.v - v).max(initial=0.0)
        v = fit.v
        if not conc or (iterations > 1 and step < TOLERANCE):
            break
    else:
        raise CritflowError(
            model.where("measurements"),
            f"reconciliation did not converge in {MAX_ITERATIONS} iterations{context}",
            "Check the concentration measurements for impossible values.",
        )
    # never return values that break a constraint
    residual = a_lin @ v - b_s
    names = list(row_labels)
    if conc:
        residual = np.concatenate([residual, bilinear(v)[0]])
        names += [f"assay of '{m.flow}' ({m.element})" for _i, m in conc]
    broken = np.flatnonzero(~(np.abs(residual) <= RANK_TOLERANCE))
    if broken.size:
        raise CritflowError(
            model.where("measurements"),
            f"the reconciled values do not satisfy every balance{context}: "
            + "; ".join(
                f"{names[k]} is off by {residual[k] * mass_scale:.6g}" for k in broken[:MAX_LISTED]
            ),
            "Check the concentration measurements for impossible values (a concentration that "
            "no mass of the flow can carry).",
        )

    # classification and tests, all from the same rank decision
    observable = np.linalg.norm(fit.free, axis=1) <= RANK_TOLERANCE
    goods_free = fit.free[:n_x].reshape(n_e, n_f, fit.free.shape[1]).sum(axis=0)
    goods_observable = np.linalg.norm(goods_free, axis=1) <= RANK_TOLERANCE
    fitted = row_scale * (hm @ v)
    redundant = np.einsum("ij,ij->i", fit.reduced, fit.reduced) > RANK_TOLERANCE
    # Var(a_i) / sd_i² from the complement (1 − Σ q² would cancel for a precise measurement)
    share = np.einsum("ij,ij->i", fit.residual, fit.residual)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(redundant, np.abs(fit.weighted_adjustment) / np.sqrt(share), np.nan)
    dof = int(len(y) - fit.rank)
    chi2 = float((fit.weighted_adjustment**2).sum())
    critical = float(stats.chi2.ppf(1 - alpha, dof)) if dof > 0 else float("nan")
    p_value = float(stats.chi2.sf(chi2, dof)) if dof > 0 else float("nan")
    n_red = int(redundant.sum())
    beta = 1 - (1 - alpha) ** (1 / max(n_red, 1))
    z_crit = float(stats.norm.ppf(1 - beta / 2))
    group = _ties(fit.reduced, redundant)
    names_arr = np.array(labels, dtype=object)
    index = np.arange(len(y))
    tied_with = ["; ".join(names_arr[(group == group[i]) & (index != i)]) for i in index]
    table = pd.DataFrame(
        {
            "measurement": labels,
            "measured": y,
            "sd": sd,
            "reconciled": fitted,
            "reconciled_sd": row_scale * np.linalg.norm(hm @ fit.half, axis=1),
            "adjustment": fitted - y,
            "z": z,
            "z_critical": z_crit,
            "redundant": redundant,
            "suspect": redundant & (np.nan_to_num(z) > z_crit),
            "group": group,
            "tied_with": tied_with,
        }
    )
    x = mass_scale * v[:n_x].reshape(n_e, n_f)
    x_sd = mass_scale * np.linalg.norm(fit.half[:n_x], axis=1).reshape(n_e, n_f)
    obs = observable[:n_x].reshape(n_e, n_f)
    goods_half = fit.half[:n_x].reshape(n_e, n_f, fit.half.shape[1]).sum(axis=0)
    goods_sd = mass_scale * np.linalg.norm(goods_half, axis=1)
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
        flows=tuple(topo.flow_ids),
        elements=tuple(topo.elements),
        goods=np.where(goods_observable, x.sum(axis=0), np.nan),
        goods_sd=np.where(goods_observable, goods_sd, np.nan),
        goods_observable=goods_observable,
        rank=fit.rank,
    )


def reconcile(
    model: Model, scenarios: list[str] | None = None, year: int | None = None, alpha: float = 0.05
) -> list[Reconciled]:
    """Reconcile every chosen scenario and period (all periods unless ``year``)."""
    inputs = evaluate(model, scenarios)
    _check(model, inputs)
    if year is not None and year not in inputs.periods:
        raise CritflowError(
            "year=",
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


def _status(observable: np.ndarray) -> np.ndarray:
    return np.where(observable, "reconciled", "unobservable").astype(object)


def flows_table(model: Model, found: list[Reconciled]) -> pd.DataFrame:
    """Reconciled element masses of every flow: scenario, period, flow, element, value, sd,
    observable, status ("reconciled", or "unobservable" with no value), unit (the model's)."""
    frames = []
    for r in found:
        n_e, n_f = r.x.shape
        grid = np.indices((n_e, n_f)).reshape(2, -1)
        frames.append(
            pd.DataFrame(
                {
                    "scenario": r.scenario,
                    "period": r.period,
                    "flow": np.array(r.flows, dtype=object)[grid[1]],
                    "element": np.array(r.elements, dtype=object)[grid[0]],
                    "value": r.x.reshape(-1),
                    "sd": r.sd.reshape(-1),
                    "observable": r.observable.reshape(-1),
                    "status": _status(r.observable.reshape(-1)),
                    "unit": model.spec.unit,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def goods_table(model: Model, found: list[Reconciled]) -> pd.DataFrame:
    """Reconciled goods mass (the sum over elements) of every flow: scenario, period, flow, value,
    sd, observable, status, unit. A goods mass can be observable when its element split is not
    (goods-only measurements)."""
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "scenario": r.scenario,
                    "period": r.period,
                    "flow": list(r.flows),
                    "value": r.goods,
                    "sd": r.goods_sd,
                    "observable": r.goods_observable,
                    "status": _status(r.goods_observable),
                    "unit": model.spec.unit,
                }
            )
            for r in found
        ],
        ignore_index=True,
    )
