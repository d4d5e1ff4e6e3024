"""The blend as a linear program (HiGHS), its robust version, shadow prices, the comparison with
down-cycling, and explanations of infeasible problems.

Variables x[m, p] ≥ 0: tonnes of material m in product p. Constraints: demand Σ_m x = D_p;
availability Σ_p x ≤ A_m; for each limited element e of product p, Σ_m c[m,e] x[m,p] ≤ max·D_p and
≥ min·D_p. Objectives: cost (Σ price·x), primary (t of primary metal and master alloy), co2 (kg).

Robust blend: with independent normal contents c[m,e] ~ N(μ, σ²), each limit holds with probability
α when μᵀx + z_α ‖σ∘x‖₂ ≤ max·D (and μᵀx − z_α ‖σ∘x‖₂ ≥ min·D). These second-order-cone
constraints are met by outer approximation: a spread variable t ≥ ‖σ∘x‖₂ per (product, element)
enters the limit rows as ± z_α·t, tangent cuts of ‖σ∘x‖₂ at the current blend bound t from below, and
the LP is solved again from the previous basis until no limit is violated (Kelley's cutting-plane
method). A direct conic solve (Clarabel) was slower here: the availability rows couple all products
and fill its KKT factorisation (268 s on the benchmark, 7.9 s here).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog
from scipy.stats import norm

from critflow import data
from critflow.blend.problem import Arrays
from critflow.errors import CritflowError, Problem

OBJECTIVES = ("cost", "primary", "co2")
ROBUST_TOLERANCE = 1e-9
"""A limit counts as met when its chance constraint holds within 1e-9 of the product's mass
(round-off)."""
Z_MARGINS = (0.1, 0.01, 0.0)
"""Cuts are made for z + 0.1 (a 95 % limit is cut as if it were 96 %): the cutting planes then
cross the limits at z itself within a few rounds, so every limit holds at the asked confidence
exactly (to round-off), at a slightly conservative cost, instead of creeping towards it. When a
limit can be met at z but not at z + 0.1, the margin alone makes the cuts infeasible: the blend is
then solved again with the next, smaller margin; without a margin the cuts are valid for z itself,
so infeasibility there proves that the confidence cannot be reached."""


@dataclass
class LinearProgram:
    """The LP in matrix form, with labels of the inequality rows."""

    c: np.ndarray
    a_ub: sp.csr_matrix
    b_ub: np.ndarray
    a_eq: sp.csr_matrix
    b_eq: np.ndarray
    row_kind: np.ndarray  # 'available' | 'max' | 'min' per inequality row
    row_index: np.ndarray  # material (available) or product·E + element (limits)


@dataclass
class Solution:
    status: int  # 0 optimal, 2 infeasible, other: failure
    x: np.ndarray
    fun: float
    ineq_marginals: np.ndarray  # ∂objective/∂b_ub (≤ 0 on binding rows)
    eq_marginals: np.ndarray  # ∂objective/∂b_eq
    message: str = ""


@dataclass
class BlendResult:
    arrays: Arrays
    tonnes: np.ndarray  # (M, P)
    objective: float
    objective_name: str
    availability_value: np.ndarray  # (M,) objective saved per extra t of each material
    limit_value: dict[
        tuple[int, int, str], float
    ]  # (p, e, 'max'|'min') → saved per percentage point relaxed
    demand_value: np.ndarray  # (P,) objective per extra t of product
    confidence: float | None = None
    nominal_objective: float | None = (
        None  # the optimum on mean compositions, for the cost of safety
    )
    cuts: int = 0
    details: dict = field(default_factory=dict)
    objective_unit: str = ""  # the unit of ``objective`` and of the values above (per t, per pp)

    def composition(self) -> np.ndarray:
        """Mean composition of each product (P, E) as fractions."""
        a = self.arrays
        return (a.mean.T @ self.tonnes).T / a.demand[:, None]

    def totals(self) -> dict[str, float]:
        return totals(self.arrays, self.tonnes)

    def limit_confidence(self) -> dict[tuple[int, int, str], float]:
        """Probability that each limit holds, {(product, element, 'max'|'min'): P}, with normal
        contents independent between materials (1.0 when the element's content is certain)."""
        a = self.arrays
        mean = (a.mean.T @ self.tonnes).T  # (P, E) t
        spread = np.sqrt(((a.sd**2).T @ self.tonnes**2).T)  # (P, E) t
        confidence = {}
        for kind, bound, sign in (("max", a.high, 1.0), ("min", a.low, -1.0)):
            for p, e in zip(*np.nonzero(~np.isnan(bound)), strict=True):
                slack = sign * (bound[p, e] * a.demand[p] - mean[p, e])
                confidence[(int(p), int(e), kind)] = (
                    float(norm.cdf(slack / spread[p, e]))
                    if spread[p, e] > 0
                    else float(slack >= -1e-9)
                )
        return confidence


def objective_unit(objective, currency: str) -> str:
    """The unit of an objective's value: the currency for cost, t of primary metal and master
    alloys for primary, kg CO2-eq for co2; a weighted mix has the weights' units."""
    units = {"cost": currency, "primary": "t primary", "co2": "kg CO2-eq"}
    if objective is None or isinstance(objective, str):
        return units[objective or "cost"]
    return (
        "weighted units (" + " + ".join(f"{w:g} × {units[k]}" for k, w in objective.items()) + ")"
    )


def objective_vector(arrays: Arrays, objective) -> np.ndarray:
    """Objective per t of each material under the chosen objective (or weighted mix), (M,)."""
    parts = {
        "cost": arrays.price,
        "primary": (arrays.kinds != "scrap").astype(float),
        "co2": arrays.co2 * 1000.0,
    }
    weights = {objective: 1.0} if isinstance(objective, str) else dict(objective)
    return sum(w * parts[k] for k, w in weights.items())


def build_lp(arrays: Arrays, objective, available: np.ndarray | None = None) -> LinearProgram:
    n_m, n_p, n_e = len(arrays.materials), len(arrays.products), len(arrays.elements)
    n_x = n_m * n_p
    index = np.arange(n_x).reshape(n_m, n_p)
    available = arrays.available if available is None else available
    c = np.repeat(objective_vector(arrays, objective), n_p)
    a_eq = sp.csr_matrix(
        (np.ones(n_x), (np.tile(np.arange(n_p), n_m), index.ravel())), shape=(n_p, n_x)
    )
    limited = np.flatnonzero(np.isfinite(available))
    blocks, b, kinds, labels = [], [], [], []
    blocks.append(
        sp.csr_matrix(
            (
                np.ones(limited.size * n_p),
                (np.repeat(np.arange(limited.size), n_p), index[limited].ravel()),
            ),
            shape=(limited.size, n_x),
        )
    )
    b.append(available[limited])
    kinds += ["available"] * limited.size
    labels.append(limited)
    for sign, bound, kind in ((1.0, arrays.high, "max"), (-1.0, arrays.low, "min")):
        p_of, e_of = np.nonzero(~np.isnan(bound))
        n_rows = p_of.size
        # row k: sign · Σ_m c[m, e_k] x[m, p_k]
        blocks.append(
            sp.csr_matrix(
                (
                    (sign * arrays.mean[:, e_of]).T.ravel(),
                    (np.repeat(np.arange(n_rows), n_m), index[:, p_of].T.ravel()),
                ),
                shape=(n_rows, n_x),
            )
        )
        b.append(sign * bound[p_of, e_of] * arrays.demand[p_of])
        kinds += [kind] * n_rows
        labels.append(p_of * n_e + e_of)
    return LinearProgram(
        c,
        sp.vstack(blocks).tocsr(),
        np.concatenate(b).astype(float),
        a_eq,
        arrays.demand.astype(float),
        np.array(kinds),
        np.concatenate(labels).astype(np.int64),
    )


def _quiet_highs(highspy):
    """A Highs instance without its banner: HiGHS prints one to the C-level stdout when the first
    instance of a process is made, which would spoil `--format json` output."""
    import os
    import sys

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            h = highspy.Highs()
            h.setOptionValue("output_flag", False)
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    return h


class _Highs:
    """The LP in HiGHS (highspy), kept alive so cut rows can be added and the basis reused."""

    def __init__(self, lp: LinearProgram) -> None:
        import highspy

        self.highspy = highspy
        self.h = _quiet_highs(highspy)
        n = lp.c.size
        self.h.addVars(n, np.zeros(n), np.full(n, highspy.kHighsInf))
        self.h.changeColsCost(n, np.arange(n, dtype=np.int32), lp.c)
        self._add_rows(
            sp.vstack([lp.a_ub, lp.a_eq]).tocsr(),
            np.concatenate([np.full(lp.b_ub.size, -highspy.kHighsInf), lp.b_eq]),
            np.concatenate([lp.b_ub, lp.b_eq]),
        )
        self.n_ub, self.n_eq = lp.b_ub.size, lp.b_eq.size

    def _add_rows(self, a: sp.csr_matrix, low: np.ndarray, high: np.ndarray) -> None:
        self.h.addRows(
            a.shape[0],
            low,
            high,
            a.nnz,
            a.indptr[:-1].astype(np.int32),
            a.indices.astype(np.int32),
            a.data,
        )

    def add_spread_columns(
        self, rows: np.ndarray, spread_of: np.ndarray, z: float, n_spread: int
    ) -> None:
        """Columns t_k ≥ 0 (no cost) with coefficient z in limit row rows[i] for t_{spread_of[i]}."""
        order = np.argsort(spread_of, kind="stable")
        starts = np.searchsorted(spread_of[order], np.arange(n_spread))
        inf = self.highspy.kHighsInf
        self.h.addCols(
            n_spread,
            np.zeros(n_spread),
            np.zeros(n_spread),
            np.full(n_spread, inf),
            rows.size,
            starts.astype(np.int32),
            rows[order].astype(np.int32),
            np.full(rows.size, z),
        )

    def add_cuts(self, a: sp.csr_matrix, high: np.ndarray) -> None:
        self._add_rows(a, np.full(a.shape[0], -self.highspy.kHighsInf), high)

    def run(self, solver: str = "choose", presolve: str = "choose") -> Solution:
        h = self.h
        h.setOptionValue("solver", solver)
        h.setOptionValue("presolve", presolve)
        h.run()
        status = h.getModelStatus()
        if status == self.highspy.HighsModelStatus.kInfeasible:
            return Solution(2, np.array([]), np.nan, np.array([]), np.array([]), "infeasible")
        if status != self.highspy.HighsModelStatus.kOptimal:
            return Solution(
                4, np.array([]), np.nan, np.array([]), np.array([]), h.modelStatusToString(status)
            )
        solution = h.getSolution()
        dual = np.asarray(solution.row_dual)
        return Solution(
            0,
            np.asarray(solution.col_value),
            h.getInfo().objective_function_value,
            dual[: self.n_ub],
            dual[self.n_ub : self.n_ub + self.n_eq],
        )


def totals(arrays: Arrays, tonnes: np.ndarray) -> dict[str, float]:
    """Cost, primary input (t), scrap (t), CO2 (kg), CRM content of the primary input (t)."""
    per_material = tonnes.sum(axis=1)
    primary = arrays.kinds != "scrap"
    crm = crm_mask(arrays.elements)
    return {
        "cost": float(arrays.price @ per_material),
        "primary_t": float(per_material[primary].sum()),
        "scrap_t": float(per_material[~primary].sum()),
        "co2_kg": float(1000 * arrays.co2 @ per_material),
        "crm_primary_t": float(
            (arrays.mean[primary][:, crm].sum(axis=1) * per_material[primary]).sum()
        ),
    }


def crm_mask(elements: list[str]) -> np.ndarray:
    """Elements that are critical raw materials (CRMA Annex II, data)."""
    table = data.table("crma_materials")
    symbols = {s for row in table[table["critical"]]["elements"].dropna() for s in row.split(";")}
    return np.array([e in symbols for e in elements])


def blend(arrays: Arrays, objective=None, confidence: float | None = None) -> BlendResult:
    """The optimal blend; with ``confidence`` each limit holds with that probability."""
    objective = objective if objective is not None else arrays.problem.objective
    confidence = confidence if confidence is not None else arrays.problem.confidence
    lp = build_lp(arrays, objective)
    model = _Highs(lp)
    res = model.run("ipm")  # interior point with crossover: fastest on these dense limit rows
    if res.status == 2:
        raise explain_infeasible(arrays)
    if res.status != 0:
        raise CritflowError(
            "blend",
            f"the solver stopped: {res.message}",
            "Check the problem's numbers for extreme values.",
        )
    nominal = float(res.fun)
    cuts = 0
    if confidence is not None and arrays.sd.any():
        res, cuts = _robust_blend(arrays, lp, model, res, float(norm.ppf(confidence)))
    return _result(arrays, lp, res, objective, confidence, nominal, cuts)


def _limit_rows(arrays: Arrays, lp: LinearProgram):
    """Per limit row: row number, product, element, sign (+1 max, −1 min)."""
    rows = np.flatnonzero(lp.row_kind != "available")
    p, e = np.divmod(lp.row_index[rows], len(arrays.elements))
    sign = np.where(lp.row_kind[rows] == "max", 1.0, -1.0)
    return rows, p, e, sign


def spread_keys(arrays: Arrays, lp: LinearProgram):
    """The (product, element) pairs whose limits are uncertain, each with one spread t ≥ ‖σ∘x‖.

    Returns the limit rows with uncertainty, their product, the pair of each row (index into the
    pairs), the product of each pair and σ of each material in each pair's element, (K, M)."""
    rows, p_of, e_of, _ = _limit_rows(arrays, lp)
    uncertain = arrays.sd[:, e_of].any(axis=0)
    rows, p_of, e_of = rows[uncertain], p_of[uncertain], e_of[uncertain]
    keys, spread_of = np.unique(p_of * len(arrays.elements) + e_of, return_inverse=True)
    key_product, key_element = np.divmod(keys, len(arrays.elements))
    return rows, p_of, spread_of, key_product, arrays.sd[:, key_element].T


def _robust_blend(
    arrays: Arrays, lp: LinearProgram, model: _Highs, res: Solution, z: float
) -> tuple[Solution, int]:
    """The robust blend from the nominal one, with the smaller margins when a margin makes the
    problem infeasible (see Z_MARGINS)."""
    for attempt, margin in enumerate(Z_MARGINS):
        if attempt:
            model = _Highs(lp)
            res = model.run("ipm")
        outcome = _robust(arrays, lp, model, res, z, margin)
        if outcome is not None:
            return outcome
    raise explain_infeasible(arrays, confidence_note=True)


def _robust(
    arrays: Arrays,
    lp: LinearProgram,
    model: _Highs,
    res: Solution,
    z: float,
    margin: float,
    max_rounds: int = 100,
) -> tuple[Solution, int] | None:
    """Cutting planes on one spread variable per (product, element), t ≥ ‖σ∘x‖ (t): the limit
    rows become mean + z·t ≤ max·D and mean − z·t ≥ min·D, and each round adds the tangent of
    ‖σ∘x‖ at the current blend for every (product, element) whose limit is violated. Min and max of
    an element share t and its cuts; a cut has entries only for materials whose content of the
    element is uncertain. The limit rows' duals are then the robust blend's shadow prices. None when
    the cuts (made for z + margin) leave no feasible blend."""
    n_m, n_p, n_x = len(arrays.materials), len(arrays.products), lp.c.size
    rows, p_of, spread_of, key_product, sigma = spread_keys(arrays, lp)
    n_keys = key_product.size  # (product, element) pairs with an uncertain limit
    model.add_spread_columns(rows, spread_of, z, n_keys)
    a_rows, b = lp.a_ub[rows], lp.b_ub[rows]
    # cut entries: material m of the key's product, where σ[m, e] > 0
    cut_key, cut_material = np.nonzero(sigma)
    cut_column = cut_material * n_p + key_product[cut_key]
    ratio = (z + margin) / z
    cuts = 0
    for _ in range(max_rounds):
        x = res.x[:n_x]
        spread_bound = res.x[n_x:] if res.x.size > n_x else np.zeros(n_keys)  # t
        # (K, M): tonnes of each material in the key's product
        xs = x.reshape(n_m, n_p)[:, key_product].T
        spread = np.sqrt(((sigma * xs) ** 2).sum(axis=1))
        violation = (a_rows @ x + z * spread[spread_of] - b) / arrays.demand[p_of]
        bad = np.zeros(n_keys, bool)
        bad[spread_of[violation > ROBUST_TOLERANCE]] = True
        # only where t underestimates the spread (anything else is the LP's round-off)
        bad &= (spread > 0) & (spread_bound < spread)
        if not bad.any():
            return replace(res, x=x), cuts
        # tangent of ‖σ∘x‖ at x, made for z + margin: ratio · (σ² x / ‖σ∘x‖)ᵀ x' − t ≤ 0. The
        # iterates approach that set from outside, so the limits at z are met exactly (not just
        # within a tolerance) rounds earlier.
        keep = bad[cut_key]
        key, material = cut_key[keep], cut_material[keep]
        weights = ratio * sigma[key, material] ** 2 * xs[key, material] / spread[key]
        n_cuts = int(bad.sum())
        cut_row = np.cumsum(bad) - 1  # row of each cut key among this round's cuts
        tangent = sp.csr_matrix(
            (
                np.concatenate([weights, -np.ones(n_cuts)]),
                (
                    np.concatenate([cut_row[key], np.arange(n_cuts)]),
                    np.concatenate([cut_column[keep], n_x + np.flatnonzero(bad)]),
                ),
            ),
            shape=(n_cuts, n_x + n_keys),
        )
        model.add_cuts(tangent, np.zeros(n_cuts))
        cuts += n_cuts
        res = model.run("simplex", presolve="off")  # dual simplex from the previous basis
        if res.status == 2:
            return None
        if res.status != 0:
            raise CritflowError(
                "blend", f"the solver stopped: {res.message}", "Lower the confidence."
            )
    raise CritflowError(
        "blend",
        f"the robust blend did not converge in {max_rounds} rounds",
        "Lower the confidence.",
    )


def _result(
    arrays: Arrays, lp: LinearProgram, res: Solution, objective, confidence, nominal, cuts
) -> BlendResult:
    n_m, n_p = len(arrays.materials), len(arrays.products)
    marg = res.ineq_marginals[: lp.b_ub.size]  # ∂objective/∂b ≤ 0 for binding ≤ rows
    availability = np.zeros(n_m)
    is_avail = lp.row_kind == "available"
    availability[lp.row_index[is_avail]] = -marg[is_avail]
    limits = {}
    for r in np.flatnonzero(~is_avail):
        p, e = divmod(int(lp.row_index[r]), len(arrays.elements))
        # b = ±limit·D: one percentage point (0.01) of the limit moves b by 0.01·D
        limits[(p, e, str(lp.row_kind[r]))] = float(-marg[r] * 0.01 * arrays.demand[p])
    # a product's limits scale with its demand (b = ±limit·D), so one more tonne of product also
    # moves its limit rows: total value = demand dual + Σ limit duals · ∂b/∂D
    demand = np.asarray(res.eq_marginals, float).copy()
    limit_rows = np.flatnonzero(~is_avail)
    products = lp.row_index[limit_rows] // len(arrays.elements)
    np.add.at(demand, products, marg[limit_rows] * lp.b_ub[limit_rows] / arrays.demand[products])
    return BlendResult(
        arrays=arrays,
        tonnes=np.maximum(res.x.reshape(n_m, n_p), 0.0),
        objective=float(res.fun),
        objective_name=objective if isinstance(objective, str) else "weighted",
        objective_unit=objective_unit(objective, arrays.problem.currency),
        availability_value=availability,
        limit_value=limits,
        demand_value=demand,
        confidence=confidence,
        nominal_objective=nominal,
        cuts=cuts,
    )


def downcycling_baseline(arrays: Arrays, objective=None) -> dict[str, float] | None:
    """Totals when no scrap is used (every product from primary metal and master alloys), or None
    when the products cannot be made without scrap."""
    objective = objective if objective is not None else arrays.problem.objective
    available = np.where(arrays.kinds == "scrap", 0.0, arrays.available)
    res = _Highs(build_lp(arrays, objective, available)).run("ipm")
    if res.status != 0:
        return None
    return totals(arrays, res.x.reshape(len(arrays.materials), len(arrays.products)))


def explain_infeasible(arrays: Arrays, confidence_note: bool = False) -> CritflowError:
    """Say which limit cannot be met and the smallest relaxation or extra material that helps."""
    n_m, n_p = len(arrays.materials), len(arrays.products)
    lp = build_lp(arrays, "cost")
    problems: list[Problem] = []
    total_available = arrays.available.sum()
    if np.isfinite(total_available) and total_available < arrays.demand.sum():
        problems.append(
            Problem(
                "materials",
                f"only {total_available:,.6g} t of material is available for a demand of {arrays.demand.sum():,.6g} t",
                "Add material (a primary metal with no availability limit is always available) or lower the demand.",
            )
        )
    # 1. the smallest relaxation of the limits, with availability as it is
    rows, p_of, e_of, sign = _limit_rows(arrays, lp)
    n_r, n_x = rows.size, n_m * n_p
    slack = sp.csr_matrix((-np.ones(n_r), (rows, np.arange(n_r))), shape=(lp.b_ub.size, n_r))
    weights = 1.0 / arrays.demand[p_of]  # relaxation as a fraction of the product's mass
    res = linprog(
        np.concatenate([np.zeros(n_x), weights]),
        A_ub=sp.hstack([lp.a_ub, slack]).tocsr(),
        b_ub=lp.b_ub,
        A_eq=sp.hstack([lp.a_eq, sp.csr_matrix((n_p, n_r))]).tocsr(),
        b_eq=lp.b_eq,
        bounds=(0, None),
        method="highs",
    )
    if res.status == 0:
        relax = res.x[n_x:] * weights
        for k in np.flatnonzero(relax > 1e-9):
            p, e = p_of[k], e_of[k]
            bound = arrays.high[p, e] if sign[k] > 0 else arrays.low[p, e]
            reachable = bound + sign[k] * relax[k]
            word = "max" if sign[k] > 0 else "min"
            problems.append(
                Problem(
                    f"product '{arrays.products[p]}'",
                    f"{arrays.elements[e]} {word} {100 * bound:.4g} % cannot be met with the available materials: the "
                    f"{'lowest' if sign[k] > 0 else 'highest'} {arrays.elements[e]} reachable is "
                    f"{100 * reachable:.4g} %",
                    f"Relax the {word} to {100 * reachable:.4g} %, or add a material "
                    f"{'poorer' if sign[k] > 0 else 'richer'} in {arrays.elements[e]} (see below).",
                )
            )
    # 2. the least extra material that makes the limits feasible as they are
    limited = np.flatnonzero(np.isfinite(arrays.available))
    if limited.size:
        buy = sp.csr_matrix(
            (
                -np.ones(limited.size),
                (np.flatnonzero(lp.row_kind == "available"), np.arange(limited.size)),
            ),
            shape=(lp.b_ub.size, limited.size),
        )
        res2 = linprog(
            np.concatenate([np.zeros(n_x), np.ones(limited.size)]),
            A_ub=sp.hstack([lp.a_ub, buy]).tocsr(),
            b_ub=lp.b_ub,
            A_eq=sp.hstack([lp.a_eq, sp.csr_matrix((n_p, limited.size))]).tocsr(),
            b_eq=lp.b_eq,
            bounds=(0, None),
            method="highs",
        )
        if res2.status == 0:
            extra = res2.x[n_x:]
            for k in np.flatnonzero(extra > 1e-6):
                problems.append(
                    Problem(
                        f"material '{arrays.materials[limited[k]]}'",
                        f"{extra[k]:,.6g} t more of it would make every limit feasible",
                        "Source that much more, or relax a limit as above.",
                    )
                )
    if confidence_note:
        problems.append(
            Problem(
                "confidence",
                "the limits can be met on average but not with the asked probability",
                "Lower the confidence, or add material with a narrower composition.",
            )
        )
    if not problems:
        problems.append(
            Problem(
                "blend",
                "the problem has no feasible blend",
                "Check demands, availabilities and limits.",
            )
        )
    return CritflowError(problems)
