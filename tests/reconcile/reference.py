"""An independent linear data reconciliation for the tests: Crowe's projection method.

Written from the textbook (Crowe, Garcia Campos & Hrymak, AIChE J. 29 (1983) 881; Narasimhan &
Jordache, *Data Reconciliation and Gross Error Detection*, 2000, ch. 3), not from critflow's code:
critflow's solver works on the null space of all constraints and a weighted SVD; this one
eliminates the unmeasured quantities with a projection matrix and uses the closed form

    m̂ = y − V Bᵀ (B V Bᵀ)⁻¹ (B y − c)

on the reduced balances B m = c that the measured quantities alone must satisfy. It also builds
the balances of a network from its description, independently of critflow's assembly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import linalg

ELEMENTS = ["Cu", "Fe", "Ni", "Zn"]


@dataclass
class Network:
    """A flowsheet: transfer units whose splits are measured (or fixed), a source and sinks.

    ``fixed`` maps a unit to its transfer coefficients {output flow: {element: share}};
    ``given`` maps a flow to its known element masses {element: mass}; ``measurements`` is a list
    of (flow, element or None for the goods mass, value, sd).
    """

    elements: list[str]
    units: list[str]
    flows: list[tuple[str, str, str]]  # id, from, to
    fixed: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    given: dict[str, dict[str, float]] = field(default_factory=dict)
    measurements: list[tuple[str, str | None, float, float]] = field(default_factory=list)
    sinks: tuple[str, ...] = ("product", "dam")
    source: str = "ore"

    def yaml(self) -> str:
        lines = [
            "critflow: 1",
            "name: generated circuit",
            "time: {start: 2025, end: 2025}",
            f"elements: [{', '.join(self.elements)}]",
            "processes:",
            f"  - {{id: {self.source}, kind: source}}",
        ]
        for u in self.units:
            if u in self.fixed:
                lines.append(f"  - id: {u}\n    kind: transfer\n    transfer:")
                for out, shares in self.fixed[u].items():
                    body = ", ".join(f"{e}: {float(s)!r}" for e, s in shares.items())
                    lines.append(f"      {out}: {{{body}}}")
            else:
                lines.append(f"  - {{id: {u}, kind: transfer}}")
        lines += [f"  - {{id: {s}, kind: sink}}" for s in self.sinks]
        lines.append("flows:")
        for f, a, b in self.flows:
            if f in self.given:
                masses = self.given[f]
                total = sum(masses.values())
                comp = ", ".join(f"{e}: {float(m / total)!r}" for e, m in masses.items())
                lines.append(
                    f"  - {{id: {f}, from: {a}, to: {b}, value: {float(total)!r}, composition: {{{comp}}}}}"
                )
            else:
                lines.append(f"  - {{id: {f}, from: {a}, to: {b}}}")
        lines.append("measurements:")
        for f, e, value, sd in self.measurements:
            element = f", element: {e}" if e else ""
            lines.append(f"  - {{flow: {f}{element}, value: {float(value)!r}, sd: {float(sd)!r}}}")
        return "\n".join(lines) + "\n"

    # --- the linear model, independently of critflow ---------------------------------------
    def index(self, flow: str, element: str) -> int:
        """Column of an element flow: flow-major (critflow's own order is element-major)."""
        return [f for f, _, _ in self.flows].index(flow) * len(self.elements) + self.elements.index(
            element
        )

    @property
    def n(self) -> int:
        return len(self.flows) * len(self.elements)

    def balances(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Rows A x = b: unit balances (or transfer relations where splits are fixed), given values."""
        rows, rhs, names = [], [], []
        for u in self.units:
            inflows = [f for f, _, to in self.flows if to == u]
            outflows = [f for f, frm, _ in self.flows if frm == u]
            for e in self.elements:
                if u in self.fixed:
                    for out in outflows:
                        row = np.zeros(self.n)
                        row[self.index(out, e)] += 1.0
                        for f in inflows:
                            row[self.index(f, e)] -= self.fixed[u][out][e]
                        rows.append(row)
                        rhs.append(0.0)
                        names.append(f"{u} {out} {e} split")
                else:
                    row = np.zeros(self.n)
                    for f in inflows:
                        row[self.index(f, e)] += 1.0
                    for f in outflows:
                        row[self.index(f, e)] -= 1.0
                    rows.append(row)
                    rhs.append(0.0)
                    names.append(f"{u} {e} balance")
        for f, masses in self.given.items():
            for e in self.elements:
                row = np.zeros(self.n)
                row[self.index(f, e)] = 1.0
                rows.append(row)
                rhs.append(masses.get(e, 0.0))
                names.append(f"{f} {e} given")
        return np.array(rows), np.array(rhs), names

    def measurement_matrix(self) -> np.ndarray:
        h = np.zeros((len(self.measurements), self.n))
        for i, (f, e, _, _) in enumerate(self.measurements):
            for element in [e] if e else self.elements:
                h[i, self.index(f, element)] = 1.0
        return h

    def labels(self) -> list[str]:
        return [f"{f} {e or 'goods'}" for f, e, _, _ in self.measurements]


def _rank(s: np.ndarray) -> int:
    return int((s > 1e-10 * s.max(initial=0.0)).sum()) if s.size else 0


@dataclass
class Reference:
    reconciled: np.ndarray  # (M,) reconciled measured quantities
    z: np.ndarray  # (M,) normalised adjustments, NaN where not redundant
    chi2: float
    dof: int
    redundant: np.ndarray  # (M,) bool
    x: np.ndarray  # (n,) element flows, NaN where unobservable (flow-major, Network.index)
    observable: np.ndarray  # (n,) bool
    goods_observable: np.ndarray  # (F,) bool
    reduced: np.ndarray  # (r, M) the reduced balances B m = c (orthonormal rows)

    def tied(self, i: int, j: int) -> bool:
        """Two measurements cannot be told apart when their columns of B are parallel: the sine of
        the angle between them below 1e-8 (from the cross terms, not as 1 − cos, which rounding
        blurs at 1e-16, i.e. at angles of 1e-8)."""
        bi, bj = self.reduced[:, i], self.reduced[:, j]
        ni, nj = np.linalg.norm(bi), np.linalg.norm(bj)
        if ni == 0 or nj == 0:
            return False
        ui, uj = bi / ni, bj / nj
        sine = np.linalg.norm(uj - (ui @ uj) * ui)
        return bool(sine < 1e-8)


def crowe(net: Network) -> Reference:
    """Linear WLS by Crowe's projection; measured quantities must be distinct and independent."""
    a, b, _ = net.balances()
    h = net.measurement_matrix()
    y = np.array([m[2] for m in net.measurements])
    var = np.array([m[3] for m in net.measurements]) ** 2
    n_m = h.shape[0]
    # variables z = T x = [measured quantities m; complementary coordinates u]
    t = np.vstack([h, linalg.null_space(h).T])
    t_inv = np.linalg.inv(t)
    a_m, a_u = (a @ t_inv)[:, :n_m], (a @ t_inv)[:, n_m:]
    # Crowe: P with P A_u = 0 eliminates the unmeasured quantities; B m = c is what is left
    p = linalg.null_space(a_u.T).T
    b0, c0 = p @ a_m, p @ b
    u_, s_, vt_ = np.linalg.svd(b0)
    r = _rank(s_)
    big_b = vt_[:r]
    c = (u_[:, :r].T @ c0) / s_[:r]
    # m̂ = y − V Bᵀ (B V Bᵀ)⁻¹ (B y − c), evaluated without forming B V Bᵀ (whose condition is the
    # square of that of L = V^½ Bᵀ, up to 1e20 when the sds span 1e-8..1): with L = Q R,
    # V^-½ (y − m̂) = L (LᵀL)⁻¹ d = Q R⁻ᵀ d for d = B y − c, χ² = ‖R⁻ᵀ d‖² and
    # Cov(V^-½ (y − m̂)) = Q Qᵀ (Narasimhan & Jordache 2000, 3.2-3.3)
    sd = np.sqrt(var)
    q, r_l = np.linalg.qr(sd[:, None] * big_b.T)
    s = linalg.solve_triangular(r_l, big_b @ y - c, trans="T") if r else np.zeros(0)
    weighted = q @ s  # V^-½ (y − m̂)
    adjust = sd * weighted
    chi2 = float(s @ s)
    var_share = np.einsum("ij,ij->i", q, q)  # Var(y_i − m̂_i) / sd_i²
    m_hat = y - adjust
    redundant = np.linalg.norm(big_b, axis=0) > 1e-8
    z = np.where(redundant, np.abs(weighted) / np.sqrt(np.where(redundant, var_share, 1.0)), np.nan)
    # the unmeasured coordinates from the remaining balances: A_u u = b − A_m m̂
    u_hat = np.linalg.lstsq(a_u, b - a_m @ m_hat, rcond=None)[0]
    free = t_inv[:, n_m:] @ linalg.null_space(a_u)  # directions of x that nothing fixes
    x = t_inv @ np.concatenate([m_hat, u_hat])
    observable = np.abs(free).max(axis=1, initial=0.0) < 1e-8
    n_e = len(net.elements)
    goods_free = free.reshape(len(net.flows), n_e, free.shape[1]).sum(axis=1)
    goods_observable = np.abs(goods_free).max(axis=1, initial=0.0) < 1e-8
    return Reference(
        m_hat,
        z,
        chi2,
        r,
        redundant,
        np.where(observable, x, np.nan),
        observable,
        goods_observable,
        big_b,
    )
