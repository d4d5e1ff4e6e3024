"""Criticality by the EU method (2017 guidelines, used in 2017, 2020 and 2023; CRMA Annex II §2).

- Concentration: HHI = Σ_c s_c² (shares as fractions, so HHI ∈ [0, 1]); governance-weighted
  (HHI_WGI,t) = Σ_c s_c² · WGI_c · t_c with WGI scaled to [0, 10] (10 = worst governance) and t the
  trade variable (1 by default, 0.8 for EU Member States, above 1 for exporters with restrictions).
- Supply risk: SR = [(HHI_WGI,t)_GS · IR/2 + (HHI_WGI,t)_EU · (1 − IR/2)] · (1 − EoL-RIR) · SI_SR,
  with IR = (import − export) / (domestic production + import − export), floored at 0.
- Economic importance: EI = 10 · Σ_s A_s Q_s / max_s Q_s · SI_EI (A_s end-use share of NACE sector s,
  Q_s its value added).
- Critical when SR ≥ 1 and EI ≥ 2.8 (thresholds are data: criticality_thresholds.csv).
- CRMA Art. 5(1)(b): the largest share of a single third country (EU Member States excluded).

Published 2023 results, supply shares and EoL-RIR values ship in ``critflow/data`` with sources;
:func:`assessment` reads them and lets a user override any input (their own sourcing shares).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from critflow import data
from critflow.errors import CritflowError, known, nearest


def wgi_scaled(wgi: np.ndarray | float) -> np.ndarray:
    """World Bank WGI average (−2.5 worst … +2.5 best) scaled to [0, 10] with 10 = worst: 5 − 2·WGI."""
    return 5.0 - 2.0 * np.asarray(wgi, float)


def hhi(shares: np.ndarray) -> np.ndarray:
    """Herfindahl-Hirschman index of supply shares (fractions, last axis = countries), in [0, 1]."""
    s = np.asarray(shares, float)
    return (s**2).sum(axis=-1)


def hhi_wgi(shares: np.ndarray, wgi: np.ndarray, trade: np.ndarray | float = 1.0) -> np.ndarray:
    """Governance-weighted HHI: Σ s² · WGI_scaled · t (WGI already scaled to [0, 10])."""
    s = np.asarray(shares, float)
    return (s**2 * np.asarray(wgi, float) * np.asarray(trade, float)).sum(axis=-1)


def import_reliance(production: float, imports: float, exports: float) -> float:
    """IR = (import − export) / (domestic production + import − export), floored at 0."""
    net = imports - exports
    denominator = production + net
    return max(0.0, net / denominator) if denominator > 0 else 0.0


def supply_risk(
    hhi_global: np.ndarray | float,
    hhi_eu: np.ndarray | float,
    import_reliance: np.ndarray | float,
    eol_rir: np.ndarray | float = 0.0,
    substitution_index: np.ndarray | float = 1.0,
) -> np.ndarray:
    """SR of the EU method from governance-weighted HHIs of global supply and EU sourcing."""
    ir = np.asarray(import_reliance, float)
    return (
        (np.asarray(hhi_global, float) * ir / 2 + np.asarray(hhi_eu, float) * (1 - ir / 2))
        * (1 - np.asarray(eol_rir, float))
        * np.asarray(substitution_index, float)
    )


def economic_importance(
    end_use_shares: np.ndarray,
    value_added: np.ndarray,
    max_value_added: float,
    substitution_index: float = 1.0,
) -> np.ndarray:
    """EI = 10 · Σ_s A_s Q_s / max Q · SI_EI (shares as fractions, value added in one currency unit)."""
    a, q = np.asarray(end_use_shares, float), np.asarray(value_added, float)
    return 10.0 * (a * q).sum(axis=-1) / max_value_added * substitution_index


def thresholds() -> dict[str, float]:
    """SR and EI thresholds of the criticality method, from data."""
    table = data.table("criticality_thresholds").set_index("indicator")
    return {name: float(table.loc[name, "threshold"]) for name in table.index}


def is_critical(sr: np.ndarray | float, ei: np.ndarray | float) -> np.ndarray:
    """True where SR and EI both reach their thresholds."""
    limits = thresholds()
    return (np.asarray(sr) >= limits["supply_risk"]) & (
        np.asarray(ei) >= limits["economic_importance"]
    )


def largest_third_country_share(shares: pd.Series) -> tuple[str | None, float]:
    """Largest single supplier outside the EU-27 (CRMA Art. 5(1)(b)) of a country → share series."""
    members = set(data.table("eu_member_states")["country"])
    outside = shares[[c not in members for c in shares.index]]
    if outside.empty:
        return None, 0.0
    country = str(outside.idxmax())
    return country, float(outside.max())


@dataclass(frozen=True)
class StageConcentration:
    material: str
    stage: str
    scope: str
    hhi: float
    largest_country: str | None
    largest_share: float
    breaches_65: bool


def published_results() -> pd.DataFrame:
    """The 2023 assessment: material, supply_risk, economic_importance, eol_rir, critical, source."""
    table = data.table("criticality_2023").copy()
    table["critical"] = is_critical(table["supply_risk"], table["economic_importance"])
    return table


def supply_shares(overrides: pd.DataFrame | None = None) -> pd.DataFrame:
    """Shipped supply shares, with rows of ``overrides`` (same columns) replacing those of the same
    material, stage and scope — e.g. a company's own sourcing shares."""
    shares = data.table("supply_shares_2023")
    if overrides is None:
        return shares
    missing = {"material", "stage", "scope", "country", "share"} - set(overrides.columns)
    if missing:
        raise CritflowError(
            "supply shares",
            f"the override table lacks the columns {', '.join(sorted(missing))}",
            "Give columns material, stage (extraction/processing), scope (global/EU), country, share (fraction).",
        )
    keys = set(zip(overrides["material"], overrides["stage"], overrides["scope"], strict=True))
    kept = shares[
        [
            k not in keys
            for k in zip(shares["material"], shares["stage"], shares["scope"], strict=True)
        ]
    ]
    overrides = overrides.assign(source=overrides.get("source", "user override"))
    return pd.concat([kept, overrides[kept.columns]], ignore_index=True)


def concentration(material: str, shares: pd.DataFrame | None = None) -> list[StageConcentration]:
    """HHI and the largest third-country share per stage and scope for ``material``."""
    shares = supply_shares() if shares is None else shares
    materials = sorted(set(shares["material"]))
    if material not in materials:
        raise CritflowError(
            "material",
            f"no supply shares for '{material}'",
            f"{nearest(material, materials)} Materials with shares: {known(materials, 30)}.".strip(),
        )
    rows = []
    limit = 0.65
    for (stage, scope), group in shares[shares["material"] == material].groupby(
        ["stage", "scope"], sort=False
    ):
        series = group.set_index("country")["share"].astype(float)
        country, share = largest_third_country_share(series)
        rows.append(
            StageConcentration(
                material, stage, scope, float(hhi(series.to_numpy())), country, share, share > limit
            )
        )
    return rows
