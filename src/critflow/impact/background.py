"""The background: what one unit of an inventory item (a kWh, a kg of acid) emits, with sources.

Each background item is a column of the biosphere matrix B (elementary flows × items); a method is a
characterisation vector c over the flows. An item's factor is ``c · B[:, item]`` in kg CO2-eq per unit
of the item. Grid electricity is one item whose column is chosen by geography, year and basis
(location- or market-based). Rows that carry a distribution can be sampled for Monte Carlo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd

from critflow import data
from critflow.errors import CritflowError, known, nearest, suggest
from critflow.impact.sampling import sample_rows

DEFAULT_BACKGROUND = "critflow-default"
ELECTRICITY = "electricity"
AGGREGATED_FLOW = "co2_eq_gwp100"
"""Elementary flow of literature factors reported as GWP100 results."""
SOURCE_COLUMNS = (
    "item",
    "geography",
    "year",
    "basis",
    "flow",
    "amount",
    "source",
    "verify",
    "supply_route",
    "gwp_basis",
)
"""What `critflow impact --sources` shows of each background row."""


@dataclass(frozen=True)
class Method:
    """A characterisation method: factor per elementary flow (kg CO2-eq per kg)."""

    name: str
    category: str
    factors: dict[str, float]
    sources: dict[str, str]
    caveats: dict[str, str] = field(default_factory=dict)


@lru_cache(maxsize=8)
def method(name: str, where: str = "impact.method") -> Method:
    """The shipped characterisation method ``name`` (``ipcc-ar6-gwp100`` …)."""
    table = data.table("lca_methods")
    rows = table[table["method"] == name]
    if rows.empty:
        names = sorted(table["method"].unique())
        raise CritflowError(
            where,
            f"'{name}' is not an impact method critflow ships",
            suggest(name, names, "Methods"),
        )
    return Method(
        name,
        str(rows["category"].iloc[0]),
        dict(zip(rows["flow"], rows["factor"].astype(float), strict=True)),
        dict(zip(rows["flow"], rows["source"], strict=True)),
        {
            flow: str(caveat)
            for flow, caveat in zip(rows["flow"], rows["caveat"], strict=True)
            if isinstance(caveat, str) and caveat
        },
    )


@dataclass(frozen=True)
class Item:
    """A background item: its reference unit and what it is."""

    name: str
    unit: str
    description: str
    element: str | None


class Background:
    """The shipped background factor set (``critflow-default``)."""

    def __init__(self, name: str = DEFAULT_BACKGROUND, where: str = "impact.background") -> None:
        if name != DEFAULT_BACKGROUND:
            raise CritflowError(
                where,
                f"'{name}' is not a background critflow ships",
                f"Use '{DEFAULT_BACKGROUND}', or link your own database with "
                "critflow.impact.brightway (ecoinvent through bw2data).",
            )
        self.name = name
        self.rows: pd.DataFrame = data.table("lca_background").reset_index(drop=True)
        first = self.rows.drop_duplicates("item")
        self.items: dict[str, Item] = {
            r.item: Item(
                r.item, r.unit, r.description, None if pd.isna(r.element) else str(r.element)
            )
            for r in first.itertuples()
        }
        self.grid_mixes: list[str] = [
            _grid_key(r.geography, r.year, r.basis)
            for r in self.rows[self.rows["item"] == ELECTRICITY].itertuples()
        ]

    def primary_item(self, element: str) -> str | None:
        """The primary-metal item of an element symbol ('Ni' → 'primary_nickel')."""
        for item in self.items.values():
            if item.element == element:
                return item.name
        return None

    def grid_row(self, key: str, where: str) -> int:
        """Row index of grid mix ``key`` ('BE-2023', 'BE-2023-market')."""
        if key not in self.grid_mixes:
            raise CritflowError(
                where,
                f"the background has no grid mix '{key}'",
                f"{nearest(key, self.grid_mixes)} Grid mixes: {known(self.grid_mixes)}; or give an "
                "intensity such as '120 g/kWh' or a path {2025: '160 g/kWh', 2030: '90 g/kWh'}.".strip(),
            )
        electricity = self.rows.index[self.rows["item"] == ELECTRICITY]
        return int(electricity[self.grid_mixes.index(key)])

    def item_rows(self) -> pd.DataFrame:
        """Rows of every item except grid electricity (whose row is chosen per scenario)."""
        return self.rows[self.rows["item"] != ELECTRICITY]

    def row_factors(self, chosen: Method) -> np.ndarray:
        """Characterised value of every row, kg CO2-eq per unit of its item, (rows,)."""
        c = self.rows["flow"].map(chosen.factors).fillna(0.0).to_numpy(float)
        return c * self.rows["amount"].to_numpy(float)

    def uncharacterised(self, chosen: Method) -> list[str]:
        """Items with rows whose elementary flow the method does not characterise."""
        missing = ~self.rows["flow"].isin(list(chosen.factors))
        return sorted(self.rows.loc[missing, "item"].unique())

    def sample_row_amounts(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Amounts of every row for ``n`` Monte Carlo samples, (n, rows)."""
        r = self.rows
        return sample_rows(
            r["amount"].to_numpy(float),
            r["distribution"].fillna("").to_numpy(str),
            r["low"].to_numpy(float),
            r["high"].to_numpy(float),
            n,
            rng,
        )

    def sources(self, items: list[str]) -> pd.DataFrame:
        """Source, verification flag, supply route and GWP basis of the rows behind ``items``."""
        rows = self.rows[self.rows["item"].isin(items)]
        return rows[[*SOURCE_COLUMNS]]

    def caveats(self, used: list[str], displaced: list[str], chosen: Method) -> list[str]:
        """What an analyst must know about the shipped factors a model uses: AR4 results counted
        under another method, and displaced materials whose factor is a supply mix (or may be).
        ``used``: items whose shipped factor enters the result; ``displaced``: those of them that
        are credited as displaced primary production."""
        rows = self.rows[self.rows["item"].isin(used)]
        notes = []
        older = sorted(rows.loc[rows["gwp_basis"] == "AR4", "item"].unique())
        if older and chosen.factors.get(AGGREGATED_FLOW):
            notes.append(
                f"{', '.join(older)}: IPCC AR4 (2007) GWP100 results counted as reported under "
                f"{chosen.name}, not recomputed with its factors (lca_methods.csv caveat)"
            )
        route = dict(zip(self.rows["item"], self.rows["supply_route"], strict=True))
        mixed = [i for i in displaced if route.get(i) == "supply-mix"]
        unsure = [i for i in displaced if route.get(i) == "unknown"]
        if mixed:
            notes.append(
                f"credits displace supply-mix factors that include secondary metal: "
                f"{', '.join(mixed)} (the credit understates displaced primary production; give a "
                "primary-route factor under impact.factors)"
            )
        if unsure:
            notes.append(
                f"credits displace factors whose source does not say whether secondary metal is "
                f"included: {', '.join(unsure)}"
            )
        return notes


def _grid_key(geography: str, year: object, basis: object) -> str:
    key = f"{geography}-{int(year)}"  # type: ignore[call-overload]
    return key if basis in ("location", "", None) or pd.isna(basis) else f"{key}-{basis}"


@lru_cache(maxsize=2)
def background(name: str = DEFAULT_BACKGROUND) -> Background:
    """The shipped background (cached)."""
    return Background(name)
