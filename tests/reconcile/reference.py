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
    cov_adjust: np.ndarray  # (M, M) covariance of the adjustments y − m̂
    chi2: float
    dof: int
    redundant: np.ndarray  # (M,) bool
    x: np.ndarray  # (n,) element flows, NaN where unobservable (flow-major, Network.index)
    observable: np.ndarray  # (n,) bool


def crowe(net: Network) -> Reference:
    """Linear WLS by Crowe's projection; measured quantities must be distinct and independent."""
    a, b, _ = net.balances()
    h = net.measurement_matrix()
    y = np.array([m[2] for m in net.measurements])
    var = np.array([m[3] for m in net.measurements]) ** 2
    n_m = h.shape[0]
    # variables z = T x = [measured quantities m; complementary coordinates u]
    k = linalg.null_space(h).T
    t = np.vstack([h, k])
    t_inv = np.linalg.inv(t)
    a_t = a @ t_inv
    a_m, a_u = a_t[:, :n_m], a_t[:, n_m:]
    # Crowe: P with P A_u = 0 eliminates the unmeasured quantities
    p = linalg.null_space(a_u.T).T
    b0, c0 = p @ a_m, p @ b
    u_, s_, vt_ = (
        np.linalg.svd(b0) if b0.size else (np.zeros((0, 0)), np.zeros(0), np.zeros((0, n_m)))
    )
    r = _rank(s_)
    big_b = vt_[:r]  # orthonormal rows spanning the reduced balances
    c = (u_[:, :r].T @ c0) / s_[:r]
    v = np.diag(var)
    if r:
        gain = v @ big_b.T @ np.linalg.inv(big_b @ v @ big_b.T)
        adjust = gain @ (big_b @ y - c)  # y − m̂
        cov_adjust = gain @ big_b @ v
        chi2 = float((big_b @ y - c) @ np.linalg.solve(big_b @ v @ big_b.T, big_b @ y - c))
    else:
        adjust, cov_adjust, chi2 = np.zeros(n_m), np.zeros((n_m, n_m)), 0.0
    m_hat = y - adjust
    redundant = np.linalg.norm(big_b, axis=0) > 1e-8
    # the unmeasured coordinates from the remaining balances: A_u u = b − A_m m̂
    u_hat = np.linalg.lstsq(a_u, b - a_m @ m_hat, rcond=None)[0]
    free = linalg.null_space(a_u)  # directions of u that nothing fixes
    x = t_inv @ np.concatenate([m_hat, u_hat])
    leak = np.abs(t_inv[:, n_m:] @ free).max(axis=1, initial=0.0) if free.size else np.zeros(net.n)
    observable = leak < 1e-8
    return Reference(
        m_hat, cov_adjust, chi2, r, redundant, np.where(observable, x, np.nan), observable
    )


def normalised(ref: Reference, measured: np.ndarray) -> np.ndarray:
    """|z| of each measurement (NaN where not redundant)."""
    var = np.diag(ref.cov_adjust)
    return np.where(
        ref.redundant,
        np.abs(measured - ref.reconciled) / np.sqrt(np.where(ref.redundant, var, 1.0)),
        np.nan,
    )
