"""Tiered views: one stored passport → what each audience may read (Art. 77(2), from data)."""

from __future__ import annotations

from typing import Any

from critflow.errors import CritflowError, suggest
from critflow.passport.datapoints import audiences, readable_fields


def view(document: dict[str, Any], audience: str) -> dict[str, Any]:
    """The part of a battery passport document ``audience`` may read.

    Which Annex XIII points each audience reads comes from ``passport_access.csv``; a field not
    listed as readable is never copied, so nothing restricted can reach a lower view.
    """
    options = audiences()
    if audience not in options:
        raise CritflowError(
            "audience=",
            f"'{audience}' is not an audience of the passport",
            suggest(audience, list(options), "Audiences"),
        )
    if document.get("kind") != "battery":
        return document  # material-lot passports carry no Annex XIII tiers
    allowed = readable_fields(audience)
    data = document.get("data", {})
    return {
        "kind": document["kind"],
        "category": document.get("category"),
        "audience": audience,
        "data": {field: value for field, value in data.items() if field in allowed},
    }
