"""BatteryPass-keyed JSON and JSON-LD of battery passports (names from the data-point file)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from critflow.errors import CritflowError, Problem
from critflow.passport.datapoints import GUIDANCE_NAMESPACE, data_points

BATTERYPASS_VERSION = "1.2.0"
EXTENSION = "critflow"
"""Block of the BatteryPass payload for data points the BatteryPass model has no attribute for."""


def camel(field: str) -> str:
    """``internal_resistance_in_use`` → ``internalResistanceInUse`` (BatteryPass keys are camelCase)."""
    head, *rest = field.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@lru_cache(maxsize=1)
def batterypass_paths() -> dict[str, tuple[str, ...]]:
    """Each data point's place in a BatteryPass payload: its alias split at the dots
    (``Circularity.recycledContent.cobalt``), or ``critflow.<camelCase field>`` without one."""
    paths = {
        p.field: tuple(p.batterypass_alias.split("."))
        if p.batterypass_alias
        else (EXTENSION, camel(p.field))
        for p in data_points()
    }
    seen: dict[tuple[str, ...], str] = {}
    for field, path in paths.items():  # a path that is another's prefix or twin would lose data
        for other, known in seen.items():
            if path == other or path[: len(other)] == other or other[: len(path)] == path:
                raise ValueError(f"BatteryPass paths of {field} and {known} collide: {path}")
        seen[path] = field
    return paths


def batterypass_payload(document: dict[str, Any]) -> dict[str, Any]:
    """The passport keyed by Battery Pass consortium aspects and attributes (SAMM v1.2).

    Each data point goes to its path of :func:`batterypass_paths`: attributes several data points
    share (``manufacturerInformation``, ``recycledContent`` …) hold an object with one camelCase key
    per data point; data points without a BatteryPass attribute go to the ``critflow`` block. Values
    keep critflow's shapes (quantities as ``{value, unit}``). This is a keyed rendering for
    exchange, not a payload validated against the consortium's JSON Schemas; it reads back with
    :func:`from_batterypass`.
    """
    paths = batterypass_paths()
    payload: dict[str, Any] = {"batteryPassVersion": BATTERYPASS_VERSION}
    for field, value in document["data"].items():
        *blocks, key = paths[field]
        block = payload
        for name in blocks:
            block = block.setdefault(name, {})
        block[key] = value
    return payload


def is_batterypass(document: Any) -> bool:
    """A BatteryPass payload (as :func:`batterypass_payload` writes it), not a critflow document."""
    return (
        isinstance(document, dict) and "kind" not in document and "batteryPassVersion" in document
    )


def from_batterypass(payload: dict[str, Any], where: str = "passport") -> dict[str, Any]:
    """The critflow battery passport of a BatteryPass payload: the inverse of
    :func:`batterypass_payload`. A key that is no data point's place is an error (nothing is
    dropped silently); the category is the payload's ``batteryCategory``."""
    fields = {path: field for field, path in batterypass_paths().items()}
    data: dict[str, Any] = {}
    problems: list[Problem] = []

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if path in fields:
            data[fields[path]] = node
            return
        if isinstance(node, dict) and any(f[: len(path)] == path for f in fields):
            for key, value in node.items():
                walk(value, (*path, str(key)))
            return
        problems.append(
            Problem(
                f"{where}: {'.'.join(path)}",
                "is not an attribute critflow reads from a BatteryPass payload",
                "Remove it, or give the passport as a critflow document (kind: battery).",
            )
        )

    for key, value in payload.items():
        if key != "batteryPassVersion":
            walk(value, (key,))
    if problems:
        raise CritflowError(problems)
    category = data.get("battery_category")
    if not isinstance(category, str):
        raise CritflowError(
            f"{where}: GeneralProductInformation.batteryCategory",
            "is missing: a BatteryPass payload names its battery category there",
            "Add the category (ev, lmt or industrial).",
        )
    return {"kind": "battery", "category": category, "data": data}


def jsonld_context() -> dict[str, Any]:
    """JSON-LD context: every field → its data point's IRI in the Commission guidance vocabulary."""
    context: dict[str, Any] = {
        "@version": 1.1,
        "dp": GUIDANCE_NAMESPACE,
        "critflow": "urn:critflow:passport:",
        "kind": "critflow:kind",
        "category": "critflow:batteryCategory",
        "data": "@nest",
    }
    for p in data_points():
        context[p.field] = {"@id": f"dp:{p.guidance_term}"}
    return context


def jsonld(document: dict[str, Any]) -> dict[str, Any]:
    """The passport as JSON-LD (the context inline)."""
    return {"@context": jsonld_context(), "@id": document["data"]["unique_identifier"], **document}
