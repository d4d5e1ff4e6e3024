"""Criticality by the EU method (2017 guidelines, used in 2017, 2020 and 2023; CRMA Annex II §2).

- Concentration: HHI = Σ_c s_c² (shares as fractions, so HHI ∈ [0, 1]); governance-weighted
  (HHI_WGI,t) = Σ_c s_c² · WGI_c · t_c with WGI scaled to [0, 10] (10 = worst governance) and t the
  trade variable (1 by default, 0.8 for EU Member States, above 1 for exporters with restrictions).
- Supply risk: SR = [(HHI_WGI,t)_GS · IR/2 + (HHI_WGI,t)_EU · (1 − IR/2)] · (1 − EoL-RIR) · SI_SR,
  with IR = (import − export) / (domestic production + import − export), floored at 0.
- Economic importance: EI = 10 · Σ_s A_s Q_s / max_s Q_s · SI_EI (A_s end-use share of NACE sector s,
  Q_s its value added).
- Critical when SR ≥ 1 and EI ≥ 2.8 (thresholds are data: criticality_thresholds.csv).
- CRMA Art. 5(1)(b): by 2030 no single third country supplies more than 65 % of the Union's annual
  consumption of a strategic raw material at any relevant stage of processing. The limit is read from
  the CRMA rule file (rule ``crma-diversification-2030``), and it is checked on EU-sourcing rows only:
  global supply shares are shown, never judged against it (tungsten: China mines 83 % of the world's
  tungsten but supplies 31 % of the EU's).

Every data file names its materials as the canonical table ``materials.csv`` does (groups, their
members, and the grades the CRMA names); :func:`resolve` turns a user's name, an alias or an element
symbol into canonical materials. Published 2023 results, supply shares and EoL-RIR values ship in
``critflow/data`` with sources; a user may replace supply shares with their own sourcing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from critflow import data
from critflow.errors import CritflowError, known, nearest
from critflow.indicators.flows import at_top
from critflow.model.tables import read_csv_file


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


# ---------------------------------------------------------------------------------------------
# The canonical material table


@dataclass(frozen=True)
class Material:
    """One row of ``materials.csv``: a material, a grade of one, a group, or a member of groups."""

    name: str
    kind: Literal["material", "grade", "group", "member"]
    elements: tuple[str, ...]
    parent: str | None = None
    groups: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()


def _split(value: Any) -> tuple[str, ...]:
    return tuple(v.strip() for v in str(value).split(";") if v.strip()) if pd.notna(value) else ()


@lru_cache(maxsize=1)
def materials() -> dict[str, Material]:
    """The canonical material table, by canonical name."""
    table = data.table("materials")
    return {
        row.material: Material(
            name=row.material,
            kind=row.kind,
            elements=_split(row.elements),
            parent=row.parent if pd.notna(row.parent) and row.parent else None,
            groups=_split(row.groups),
            aliases=_split(row.aliases),
        )
        for row in table.itertuples()
    }


@lru_cache(maxsize=1)
def _names() -> dict[str, str]:
    """Lower-case canonical names and aliases → canonical name."""
    names: dict[str, str] = {}
    for m in materials().values():
        for name in (m.name, *m.aliases):
            names.setdefault(name.lower(), m.name)
    return names


def members(group: str) -> list[str]:
    """Canonical members of a group (e.g. the five PGMs of the 2023 assessment)."""
    return [m.name for m in materials().values() if group in m.groups]


def grades(material: str) -> list[str]:
    """The grades the canonical table lists under ``material`` (e.g. lithium → battery grade)."""
    return [m.name for m in materials().values() if m.parent == material]


def resolve(name: str, where: str = "material") -> list[str]:
    """Canonical materials meant by ``name``: a canonical name or alias (any case), or an element
    symbol (as written: 'Li', 'W', 'C'), which stands for every material, grade or group member
    that is a form of that one element."""
    text = str(name).strip()
    if text.lower() in _names():
        return [_names()[text.lower()]]
    by_symbol = [
        m.name
        for m in materials().values()
        if m.kind in ("material", "grade", "member") and m.elements == (text,)
    ]
    if by_symbol:
        return by_symbol
    candidates = sorted(
        {m.name for m in materials().values()}
        | {e for m in materials().values() for e in m.elements}
    )
    unassessed = {
        "Os": "osmium is not one of the five PGMs the 2023 assessment covers (Ir, Pd, Pt, Rh, Ru)"
    }
    raise CritflowError(
        where,
        f"'{text}' is not a material of the EU assessment or the CRMA lists"
        + (f" ({unassessed[text]})" if text in unassessed else ""),
        f"{nearest(text, candidates)} Give a material (Lithium), an element symbol (Li) or a group "
        f"(PGMs, HREE, LREE); materials: {known([m for m in candidates if len(m) > 2], 20)}.".strip(),
    )


def canonical(name: str, where: str = "material") -> str:
    """The one canonical material meant by ``name``; an error when a symbol names several."""
    found = resolve(name, where)
    if len(found) > 1:
        raise CritflowError(
            where,
            f"'{name}' stands for several materials ({', '.join(found)})",
            "Name the material itself, e.g. 'Lithium' or 'Lithium, battery grade'.",
        )
    return found[0]


# ---------------------------------------------------------------------------------------------
# The CRMA lists (Annex I strategic, Annex II critical), one row per legal entry


@lru_cache(maxsize=1)
def crma_entries() -> pd.DataFrame:
    """The CRMA's list entries: material (canonical), annex, point, legal_name, strategic, critical."""
    return data.table("crma_materials").copy()


def _family(material: str) -> set[str]:
    """The material, its parent grade-tree (parent and the parent's grades) and its own grades."""
    m = materials()[material]
    root = m.parent or material
    return {material, root, *grades(root), *grades(material)}


def crma_status(material: str) -> str:
    """How the CRMA lists ``material``, its grades and its groups, e.g. 'SRM I(h) only as lithium —
    battery grade; CRM II(s)' for lithium."""
    entries = crma_entries()
    m = materials()[material]
    family = _family(material)
    member_groups: dict[str, list[str]] = {}
    if m.kind == "group":
        for member in members(material):
            for g in materials()[member].groups:
                if g != material:
                    member_groups.setdefault(g, []).extend(materials()[member].elements)
    rows = entries[entries["material"].isin(family | set(m.groups) | set(member_groups))]
    parts = []
    for row in rows.itertuples():
        label = "SRM" if row.strategic else "CRM"
        point = row.point.replace("Annex ", "").replace(" Section 1", "")
        if row.material == material:
            parts.append(f"{label} {point}")
        elif row.material in member_groups:
            parts.append(f"{label} {point} for members {', '.join(member_groups[row.material])}")
        elif row.material in m.groups or row.material == m.parent:
            parts.append(f"{label} {point} as {row.legal_name}")
        else:
            parts.append(f"{label} {point} only as {row.legal_name}")
    return "; ".join(parts) or "not listed"


def strategic_basis(material: str) -> str | None:
    """The Annex I entry that makes the 65 % benchmark (on *strategic* raw materials) relevant to
    ``material``'s EU sourcing — the material itself, one of its grades (lithium → battery grade),
    its group (platinum → PGMs), or a group its members belong to (LREE → REE for permanent
    magnets); None when the CRMA lists no grade of it as strategic."""
    entries = crma_entries()
    strategic = entries[entries["strategic"]]
    m = materials()[material]
    related = _family(material) | set(m.groups)
    if m.kind == "group":
        related |= {g for member in members(material) for g in materials()[member].groups}
    rows = strategic[strategic["material"].isin(related)]
    if rows.empty:
        return None
    row = rows.iloc[0]
    return f"{row['legal_name']} ({row['point']})"


# ---------------------------------------------------------------------------------------------
# CRMA Art. 5(1)(b): the single-country limit, read from the rule file


@dataclass(frozen=True)
class SingleCountryLimit:
    """The CRMA diversification benchmark as data: largest third-country share ``comparator``
    ``threshold`` (fraction), from rule ``rule_id``."""

    threshold: float
    comparator: Literal["<=", "<"]
    rule_id: str
    source: str

    def met(self, share: float) -> bool:
        """True when a third country's ``share`` (fraction) is within the limit."""
        return share <= self.threshold if self.comparator == "<=" else share < self.threshold

    @property
    def label(self) -> str:
        return f"{self.comparator} {self.threshold:.0%}"


DIVERSIFICATION_INDICATOR = "largest_third_country_share"


def single_country_limit(
    rule_set: Any = None, where: str = "rules/crma.yaml"
) -> SingleCountryLimit:
    """The single-country limit from a rule set: the shipped CRMA rule file by default, or a parsed
    rule set of one's own (a :class:`critflow.rules.RuleSet` or the same as a mapping). The rule is
    the one on ``largest_third_country_share`` (``crma-diversification-2030`` in the shipped file)."""
    if rule_set is None:
        rule_set = data.load_yaml("rules/crma.yaml")
    rules = (
        rule_set.get("rules", []) if isinstance(rule_set, dict) else getattr(rule_set, "rules", [])
    )
    found = []
    for rule in rules or []:
        get = rule.get if isinstance(rule, dict) else lambda k, r=rule: getattr(r, k, None)
        if get("indicator") == DIVERSIFICATION_INDICATOR:
            found.append(get)
    if len(found) != 1:
        raise CritflowError(
            where,
            f"has {'no rule' if not found else 'more than one rule'} on '{DIVERSIFICATION_INDICATOR}'",
            "Give one rule with indicator: largest_third_country_share, comparator: '<=' and the "
            "limit as a fraction (threshold: 0.65), as the shipped rules/crma.yaml does.",
        )
    get = found[0]
    comparator, threshold = get("comparator"), get("threshold")
    if comparator not in ("<=", "<"):
        raise CritflowError(
            f"{where}: rule {get('id')}: comparator",
            f"'{comparator}' does not make a ceiling on a third country's share",
            "Use '<=' (at most) or '<'.",
        )
    try:
        threshold = float(threshold)
    except (TypeError, ValueError):
        threshold = float("nan")
    if not 0.0 < threshold <= 1.0:
        raise CritflowError(
            f"{where}: rule {get('id')}: threshold",
            f"{threshold} is not a share",
            "Give the limit as a fraction between 0 and 1 (0.65 = 65 %).",
        )
    source = get("source")
    text = str(source) if source is not None else ""
    if isinstance(source, dict):
        text = f"{source.get('document')}, {source.get('point')}"
    return SingleCountryLimit(threshold, comparator, str(get("id")), text)


def largest_third_country_share(shares: pd.Series) -> tuple[str | None, float]:
    """Largest single supplier outside the EU-27 (CRMA Art. 5(1)(b)) of a country → share series;
    countries that tie at the largest share are all named, comma-separated."""
    member_states = set(data.table("eu_member_states")["country"])
    outside = shares[[c not in member_states for c in shares.index]]
    if outside.empty:
        return None, 0.0
    tied, top = at_top(dict(outside.items()))
    return ", ".join(sorted(str(c) for c in tied)), top


# ---------------------------------------------------------------------------------------------
# Published results and supply shares


def published_results() -> pd.DataFrame:
    """The 2023 assessment: material, supply_risk, economic_importance, eol_rir, critical, source."""
    table = data.table("criticality_2023").copy()
    table["critical"] = is_critical(table["supply_risk"], table["economic_importance"])
    return table


def assessment(material: str) -> tuple[pd.Series | None, str | None]:
    """The 2023 SR/EI row for ``material`` and the name it was assessed under: its own, its
    parent's for a grade the study did not assess on its own (lithium for battery-grade lithium), or
    its group's for a member (PGMs for platinum); (None, None) when not assessed."""
    table = published_results().set_index("material")
    m = materials()[material]
    for name in (material, *m.groups, m.parent):
        if name and name in table.index:
            return table.loc[name], name
    return None, None


REQUIRED_SHARE_COLUMNS = ("material", "stage", "scope", "country", "share")


def read_supply_shares(path: str | Path) -> pd.DataFrame:
    """A user's own supply shares from a CSV file (material, stage, scope, country, share), to
    pass to :func:`supply_shares` as overrides."""
    table = read_csv_file(path, "supply shares (material, stage, scope, country, share)")
    frame = pd.DataFrame({name: table.texts(name) for name in REQUIRED_SHARE_COLUMNS[:-1]})
    frame["share"] = table.numbers("share")
    return frame


def supply_shares(
    overrides: pd.DataFrame | None = None, where: str = "supply shares"
) -> pd.DataFrame:
    """Shipped supply shares, with rows of ``overrides`` (same columns) replacing those of the same
    material, stage and scope — e.g. a company's own sourcing shares. Override materials may be
    canonical names, aliases or element symbols that name one material."""
    shares = data.table("supply_shares_2023")
    if overrides is None:
        return shares
    missing = set(REQUIRED_SHARE_COLUMNS) - set(overrides.columns)
    if missing:
        raise CritflowError(
            where,
            f"the override table lacks the columns {', '.join(sorted(missing))}",
            "Give columns material, stage (extraction/processing), scope (global/EU), country, share (fraction).",
        )
    overrides = overrides.copy()
    overrides["material"] = [
        canonical(str(m), f"{where}: row {i + 1}: material")
        for i, m in enumerate(overrides["material"])
    ]
    bad_scope = sorted(set(overrides["scope"]) - {"global", "EU"})
    bad_stage = sorted(set(overrides["stage"]) - {"extraction", "processing"})
    share = pd.to_numeric(overrides["share"], errors="coerce")
    if bad_scope or bad_stage or not share.between(0, 1).all():
        raise CritflowError(
            where,
            "has rows with "
            + "; ".join(
                t
                for t in (
                    f"scope {', '.join(map(str, bad_scope))}" if bad_scope else "",
                    f"stage {', '.join(map(str, bad_stage))}" if bad_stage else "",
                    "shares that are not fractions between 0 and 1"
                    if not share.between(0, 1).all()
                    else "",
                )
                if t
            ),
            "Use scope global or EU, stage extraction or processing, share as a fraction (0.31 = 31 %).",
        )
    overrides["share"] = share
    keys = set(zip(overrides["material"], overrides["stage"], overrides["scope"], strict=True))
    kept = shares[
        [
            k not in keys
            for k in zip(shares["material"], shares["stage"], shares["scope"], strict=True)
        ]
    ]
    overrides["source"] = overrides.get("source", "user override")
    return pd.concat([kept, overrides[list(kept.columns)]], ignore_index=True)


# ---------------------------------------------------------------------------------------------
# Concentration per stage and the 65 % check


@dataclass(frozen=True)
class StageConcentration:
    """HHI and the largest third country of one material at one stage and scope, with the CRMA
    single-country verdict where it applies (EU sourcing of a strategic raw material)."""

    material: str
    stage: str
    scope: str
    hhi: float
    largest_country: str | None
    largest_share: float
    verdict: Literal["met", "breach", "not assessed"]
    reason: str = ""

    @property
    def breaches_limit(self) -> bool | None:
        """True / False where the limit applies, None where it does not."""
        return None if self.verdict == "not assessed" else self.verdict == "breach"


def concentration(
    material: str,
    shares: pd.DataFrame | None = None,
    limit: SingleCountryLimit | None = None,
) -> list[StageConcentration]:
    """HHI, the largest third-country share and the CRMA verdict per stage and scope for
    ``material`` (any name :func:`resolve` accepts; a group gives its members' stages)."""
    shares = supply_shares() if shares is None else shares
    limit = single_country_limit() if limit is None else limit
    names = resolve(material)
    wanted = [
        n
        for name in names
        for n in ([name] if materials()[name].kind != "group" else [name, *members(name)])
    ]
    rows = []
    for name in dict.fromkeys(wanted):
        basis = strategic_basis(name)
        for (stage, scope), group in shares[shares["material"] == name].groupby(
            ["stage", "scope"], sort=False
        ):
            series = group.set_index("country")["share"].astype(float)
            country, share = largest_third_country_share(series)
            if scope != "EU":
                verdict, reason = (
                    "not assessed",
                    "global supply: the CRMA limit is on Union consumption",
                )
            elif basis is None:
                verdict, reason = "not assessed", "not a strategic raw material (CRMA Annex I)"
            else:
                verdict = "met" if limit.met(share) else "breach"
                reason = f"{limit.label} of EU consumption of {basis}; {limit.source}"
            rows.append(
                StageConcentration(
                    name,
                    stage,
                    scope,
                    float(hhi(series.to_numpy())),
                    country,
                    share,
                    verdict,
                    reason,
                )
            )
    return rows


@dataclass
class CriticalityRow:
    """What ``critflow criticality`` shows for one material."""

    material: str
    kind: str
    assessed_as: str | None
    supply_risk: float | None
    economic_importance: float | None
    critical: bool | None
    eol_rir: float | None
    crma: str
    stages: list[StageConcentration] = field(default_factory=list)


def criticality_rows(
    names: Iterable[str] | None = None,
    shares: pd.DataFrame | None = None,
    limit: SingleCountryLimit | None = None,
) -> list[CriticalityRow]:
    """The 2023 assessment, the CRMA listing and the supply concentration for the materials
    ``names`` mean (every material with supply shares by default)."""
    shares = supply_shares() if shares is None else shares
    limit = single_country_limit() if limit is None else limit
    chosen = (
        list(dict.fromkeys(n for name in names for n in resolve(name)))
        if names
        else sorted(set(shares["material"]))
    )
    rows = []
    for name in chosen:
        row, via = assessment(name)
        rows.append(
            CriticalityRow(
                material=name,
                kind=materials()[name].kind,
                assessed_as=via,
                supply_risk=None if row is None else float(row["supply_risk"]),
                economic_importance=None if row is None else float(row["economic_importance"]),
                critical=None if row is None else bool(row["critical"]),
                eol_rir=None if row is None or pd.isna(row["eol_rir"]) else float(row["eol_rir"]),
                crma=crma_status(name),
                stages=concentration(name, shares, limit),
            )
        )
    return rows
