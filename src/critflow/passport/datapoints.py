"""The battery passport's data points and who may read them, read from the shipped data files.

Nothing about tiers, audiences or applicability is written in code: it all comes from
``battery_passport_datapoints.csv`` (the Commission's 71 data points), ``passport_access.csv``
(which audience reads which Annex XIII point) and ``passport_status_transitions.csv``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from critflow import data

GUIDANCE_NAMESPACE = "https://ref.openepcis.io/vocab/ec-battery-passport-guidance/1.0#"
"""Vocabulary of the Commission guidance's data points (OpenEPCIS, CC BY 4.0)."""

CATEGORIES = ("ev", "lmt", "industrial")
"""Battery categories the guidance gives applicability for (columns of the data file)."""


@dataclass(frozen=True)
class DataPoint:
    """One data point of the battery passport."""

    nr: int
    field: str
    name: str
    annex_xiii_point: int
    regulation_ref: str
    access_tier: str
    level: str  # model | individual
    lifecycle: str  # static | dynamic
    applicability: dict[str, str]  # category → mandatory | conditional | optional | pending | …
    kind: str
    unit: str
    batterypass_alias: str
    guidance_term: str
    idta_submodel: str
    plausible_min: float | None = None  # in ``unit``; None for data points that are not numbers
    plausible_max: float | None = None
    range_source: str = ""

    @property
    def label(self) -> str:
        """How messages name it: 'data point 10 (Annex XIII point 1, Annex VI A(5))'."""
        return f"data point {self.nr} (Annex XIII point {self.annex_xiii_point}, {self.regulation_ref})"

    @property
    def iri(self) -> str:
        return GUIDANCE_NAMESPACE + self.guidance_term


@lru_cache(maxsize=1)
def data_points() -> tuple[DataPoint, ...]:
    """The 71 data points, in the guidance's order."""
    frame = data.table("battery_passport_datapoints").astype(object).fillna("")
    return tuple(
        DataPoint(
            nr=int(row.nr),
            field=row.field,
            name=row.name,
            annex_xiii_point=int(row.annex_xiii_point),
            regulation_ref=row.regulation_ref,
            access_tier=row.access_tier,
            level=row.level,
            lifecycle=row.lifecycle,
            applicability={c: getattr(row, c) for c in CATEGORIES},
            kind=row.kind,
            unit=row.unit,
            batterypass_alias=row.batterypass_alias,
            guidance_term=row.guidance_term,
            idta_submodel=row.idta_submodel,
            plausible_min=_number(row.plausible_min),
            plausible_max=_number(row.plausible_max),
            range_source=row.range_source,
        )
        for row in frame.itertuples(index=False)
    )


def _number(text: object) -> float | None:
    return None if text in ("", None) else float(text)  # type: ignore[arg-type]


@lru_cache(maxsize=1)
def by_field() -> dict[str, DataPoint]:
    return {p.field: p for p in data_points()}


@lru_cache(maxsize=1)
def audiences() -> dict[str, frozenset[int]]:
    """Each audience and the Annex XIII points it may read."""
    frame = data.table("passport_access")
    result: dict[str, set[int]] = {}
    for row in frame.itertuples(index=False):
        result.setdefault(row.audience, set()).add(int(row.annex_xiii_point))
    return {k: frozenset(v) for k, v in result.items()}


@lru_cache(maxsize=64)
def readable_fields(audience: str) -> frozenset[str]:
    """Fields an audience may read (from the Annex XIII points it may read; computed once per
    audience, like the tables it comes from)."""
    points = audiences()[audience]
    return frozenset(p.field for p in data_points() if p.annex_xiii_point in points)


@lru_cache(maxsize=1)
def status_transitions() -> dict[tuple[str, str], dict[str, bool]]:
    """Allowed status changes: (from, to) → {new_passport, closes}."""
    frame = data.table("passport_status_transitions")
    return {
        (row.from_status, row.to_status): {
            "new_passport": row.new_passport == "yes",
            "closes": row.closes == "yes",
        }
        for row in frame.itertuples(index=False)
    }


@lru_cache(maxsize=1)
def idta_submodels() -> dict[str, str]:
    """IDTA 02035 submodel name → semantic ID (from ``idta_submodels.csv``)."""
    frame = data.table("idta_submodels")
    return dict(zip(frame["submodel"], frame["semantic_id"], strict=True))
