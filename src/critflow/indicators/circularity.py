"""Circularity indicators: the Ellen MacArthur Material Circularity Indicator and the UNEP / EU
recycling rates.

Formulas:
- MCI (Ellen MacArthur Foundation & Granta Design, *Circularity Indicators — Methodology*, 2015;
  revised 2019): V = M (1 − F_R − F_U − F_S); W0 = M (1 − C_R − C_U − C_C − C_E);
  W_C = M (1 − E_C) C_R; W_F = M (1 − E_F) F_R / E_F; W = W0 + (W_F + W_C) / 2;
  LFI = (V + W) / (2M + (W_F − W_C) / 2) (2015) or (V + W) / (2M) (2019 as commonly implemented);
  X = (L / L_av)(U / U_av); F(X) = 0.9 / X; MCI = max(0, 1 − LFI · F(X)).
- UNEP (2011) *Recycling Rates of Metals*: EOL-RR = functionally recycled / end-of-life discards;
  RC = (old + new scrap) / (primary + old + new scrap); OSR = old scrap / (old + new scrap).
- EU EoL-RIR (Eurostat cei_srm010; EU criticality method): old-scrap input / all input.

All functions take numbers or numpy arrays (any shape) and work element-wise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

ArrayLike = float | np.ndarray


@dataclass(frozen=True)
class MCIResult:
    """MCI and its parts: linear flow index, utility X and utility factor F(X)."""

    mci: ArrayLike
    lfi: ArrayLike
    utility: ArrayLike
    utility_factor: ArrayLike
    virgin: ArrayLike
    waste: ArrayLike


def material_circularity(
    mass: ArrayLike = 1.0,
    recycled_feedstock: ArrayLike = 0.0,
    reused_feedstock: ArrayLike = 0.0,
    collected_for_recycling: ArrayLike = 0.0,
    collected_for_reuse: ArrayLike = 0.0,
    recycling_efficiency_eol: ArrayLike = 1.0,
    recycling_efficiency_feedstock: ArrayLike = 1.0,
    lifetime_ratio: ArrayLike = 1.0,
    use_intensity_ratio: ArrayLike = 1.0,
    sustained_biological_feedstock: ArrayLike = 0.0,
    collected_for_composting: ArrayLike = 0.0,
    collected_for_energy_recovery: ArrayLike = 0.0,
    lfi_denominator: Literal["2015", "2019"] = "2015",
) -> MCIResult:
    """Material Circularity Indicator of a product of ``mass`` (any mass unit; shares are fractions).

    ``recycled_feedstock`` F_R, ``reused_feedstock`` F_U, ``collected_for_recycling`` C_R,
    ``collected_for_reuse`` C_U, ``recycling_efficiency_eol`` E_C, ``recycling_efficiency_feedstock``
    E_F, ``lifetime_ratio`` L/L_av, ``use_intensity_ratio`` U/U_av; the 2019 biological terms F_S,
    C_C, C_E default to 0. ``lfi_denominator`` picks 2M + (W_F − W_C)/2 (2015) or 2M (2019).
    """
    m = np.asarray(mass, dtype=float)
    f_r, f_u = np.asarray(recycled_feedstock, float), np.asarray(reused_feedstock, float)
    c_r, c_u = np.asarray(collected_for_recycling, float), np.asarray(collected_for_reuse, float)
    e_c, e_f = (
        np.asarray(recycling_efficiency_eol, float),
        np.asarray(recycling_efficiency_feedstock, float),
    )
    virgin = m * (1 - f_r - f_u - np.asarray(sustained_biological_feedstock, float))
    w0 = m * (
        1
        - c_r
        - c_u
        - np.asarray(collected_for_composting, float)
        - np.asarray(collected_for_energy_recovery, float)
    )
    w_c = m * (1 - e_c) * c_r
    with np.errstate(divide="ignore", invalid="ignore"):
        w_f = np.where(f_r > 0, m * (1 - e_f) * f_r / e_f, 0.0)
    waste = w0 + (w_f + w_c) / 2
    denominator = 2 * m + ((w_f - w_c) / 2 if lfi_denominator == "2015" else 0.0)
    lfi = (virgin + waste) / denominator
    utility = np.asarray(lifetime_ratio, float) * np.asarray(use_intensity_ratio, float)
    factor = 0.9 / utility
    mci = np.maximum(0.0, 1 - lfi * factor)
    return MCIResult(
        mci=mci, lfi=lfi, utility=utility, utility_factor=factor, virgin=virgin, waste=waste
    )


def eol_recycling_rate(
    functionally_recycled: ArrayLike, end_of_life_discards: ArrayLike
) -> ArrayLike:
    """UNEP EOL-RR: share of the metal in end-of-life products that is functionally recycled."""
    return np.asarray(functionally_recycled, float) / np.asarray(end_of_life_discards, float)


def recycled_content(primary: ArrayLike, old_scrap: ArrayLike, new_scrap: ArrayLike) -> ArrayLike:
    """UNEP RC: (old + new scrap) / (primary + old + new scrap) of the metal input to production."""
    scrap = np.asarray(old_scrap, float) + np.asarray(new_scrap, float)
    return scrap / (np.asarray(primary, float) + scrap)


def old_scrap_ratio(old_scrap: ArrayLike, new_scrap: ArrayLike) -> ArrayLike:
    """UNEP OSR: old scrap / (old + new scrap)."""
    old = np.asarray(old_scrap, float)
    return old / (old + np.asarray(new_scrap, float))


def eol_recycling_input_rate(
    primary: ArrayLike, old_scrap: ArrayLike, new_scrap: ArrayLike = 0.0
) -> ArrayLike:
    """EU EoL-RIR: old-scrap (post-consumer) input / all input; new scrap counts only below the line."""
    old = np.asarray(old_scrap, float)
    return old / (np.asarray(primary, float) + old + np.asarray(new_scrap, float))
