"""The PEF Circular Footprint Formula (Commission Recommendation (EU) 2021/2279, Annex C).

Per functional unit of material (all E in kg CO2-eq per kg, shares dimensionless):

    material = (1 − R1)·Ev + R1·(A·E_recycled + (1 − A)·Ev·Qs_in/Qp)
               + (1 − A)·R2·(E_recycling_EoL − E*v·Qs_out/Qp)
    energy   = (1 − B)·R3·(E_ER − LHV·X_ER,heat·E_SE,heat − LHV·X_ER,elec·E_SE,elec)
    disposal = (1 − R2 − R3)·E_D

A = 1 gives the cut-off (recycled-content) view, A = 0 the end-of-life (avoided-burden) view; the
Battery Regulation's carbon-footprint rules use 0.2 ≤ A ≤ 0.8 (critflow lca-notes 2.5).
For a secondary material leaving a recycling plant (R1 = 1, its own end of life outside the gate)
only ``A·E_recycled + (1 − A)·Ev·Qs_in/Qp`` remains: that is critflow's ``cff`` rule per product.
"""

from __future__ import annotations

import numpy as np


def circular_footprint(
    *,
    A: float,  # noqa: N803 — the formula's name
    R1: float,  # noqa: N803
    R2: float,  # noqa: N803
    Ev: float | np.ndarray,  # noqa: N803
    E_recycled: float | np.ndarray,  # noqa: N803
    E_recycling_eol: float | np.ndarray = 0.0,  # noqa: N803
    E_star_v: float | np.ndarray | None = None,  # noqa: N803
    Qs_in_Qp: float = 1.0,  # noqa: N803
    Qs_out_Qp: float = 1.0,  # noqa: N803
    R3: float = 0.0,  # noqa: N803
    B: float = 0.0,  # noqa: N803
    E_ER: float = 0.0,  # noqa: N803
    LHV: float = 0.0,  # noqa: N803
    X_ER_heat: float = 0.0,  # noqa: N803
    X_ER_elec: float = 0.0,  # noqa: N803
    E_SE_heat: float = 0.0,  # noqa: N803
    E_SE_elec: float = 0.0,  # noqa: N803
    E_D: float = 0.0,  # noqa: N803
) -> dict[str, float | np.ndarray]:
    """Material, energy and disposal parts of the CFF and their sum ('total'), kg CO2-eq per kg."""
    e_star = Ev if E_star_v is None else E_star_v
    material = (
        (1 - R1) * Ev
        + R1 * (A * E_recycled + (1 - A) * Ev * Qs_in_Qp)
        + (1 - A) * R2 * (E_recycling_eol - e_star * Qs_out_Qp)
    )
    energy = (1 - B) * R3 * (E_ER - LHV * X_ER_heat * E_SE_heat - LHV * X_ER_elec * E_SE_elec)
    disposal = (1 - R2 - R3) * E_D
    return {
        "material": material,
        "energy": energy,
        "disposal": disposal,
        "total": material + energy + disposal,
    }


def secondary_material(A: float, E_recycled, Ev_displaced):  # noqa: N803
    """CFF burden per kg of a secondary material leaving the plant (R1 = 1, R2 = 0): the
    ``Ev·Qs/Qp`` term is the displaced primary burden already scaled by the quality ratio."""
    return circular_footprint(A=A, R1=1.0, R2=0.0, Ev=Ev_displaced, E_recycled=E_recycled)[
        "material"
    ]
