"""BatteryPass-keyed JSON and JSON-LD of battery passports (names from the data-point file)."""

from __future__ import annotations

from typing import Any

from critflow.passport.datapoints import GUIDANCE_NAMESPACE, by_field, data_points

BATTERYPASS_VERSION = "1.2.0"
EXTENSION = "critflow"
"""Block of the BatteryPass payload for data points the BatteryPass model has no attribute for."""


def batterypass_payload(document: dict[str, Any]) -> dict[str, Any]:
    """The passport keyed by Battery Pass consortium aspects and attributes (SAMM v1.2).

    An attribute that several data points map to (``manufacturerInformation``,
    ``recycledContent`` …) holds an object keyed by critflow field; data points without a
    BatteryPass attribute go to the ``critflow`` block. This is a keyed rendering for exchange,
    not a payload validated against the consortium's JSON Schemas.
    """
    points = by_field()
    shared: dict[str, int] = {}
    for p in data_points():
        if p.batterypass_alias:
            shared[p.batterypass_alias] = shared.get(p.batterypass_alias, 0) + 1
    payload: dict[str, Any] = {"batteryPassVersion": BATTERYPASS_VERSION}
    for field, value in document["data"].items():
        alias = points[field].batterypass_alias
        if not alias:
            payload.setdefault(EXTENSION, {})[field] = value
            continue
        aspect, attribute = alias.split(".", 1)
        block = payload.setdefault(aspect, {})
        if shared[alias] > 1:
            block.setdefault(attribute, {})[field] = value
        else:
            block[attribute] = value
    return payload


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
