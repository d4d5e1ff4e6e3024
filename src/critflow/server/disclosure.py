"""The one audience filter every registry response goes through.

Which Annex XIII points an audience reads comes from ``passport_access.csv``; which point each
field of a battery passport belongs to comes from ``battery_passport_datapoints.csv``. The
registry's own envelope fields are derived from data points too, and are filtered the same way:

- ``status``, ``links`` and ``closed`` repeat the battery's status (data point 67, Annex XIII
  4(c), restricted to persons with a legitimate interest and the issuer) — an audience that may
  not read ``battery_status`` does not see them, cannot filter lists by them, and does not find
  them on the QR page or in the history;
- ``hash``, ``previous_hash`` (and the chain ETag) are SHA-256 digests of whole records, so they
  commit to every field, restricted ones included. A digest of a record whose unknown part is a
  five-valued status and a timestamp is open to guessing, so only audiences that read every
  Annex XIII point (the issuer) get chain hashes; every other audience gets an ETag that is the
  SHA-256 of the very body it received, which says nothing beyond that body.

Material-lot passports carry no Annex XIII tiers: they are public in full.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from critflow.passport.datapoints import audiences, by_field, data_points, readable_fields
from critflow.passport.views import view

ENVELOPE_FIELDS = {
    "status": "battery_status",
    "links": "battery_status",
    "closed": "battery_status",
}
"""Envelope fields the registry derives from a data point (they are shown only to audiences that
read that data point)."""

FILTER_FIELDS = {
    "product": "chemistry",
    "status": "battery_status",
    "operator": "responsible_operator",
    "gtin": "unique_identifier",
    "passport_id": "unique_identifier",
    "kind": None,
}
"""List filters and the data point each one reveals (None: not a data point, always public)."""


def dumps(value: Any) -> str:
    """Compact JSON text, as the registry sends it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@lru_cache(maxsize=1)
def _all_points() -> frozenset[int]:
    return frozenset(p.annex_xiii_point for p in data_points())


@lru_cache(maxsize=16)
def reads_everything(audience: str) -> bool:
    """True when ``audience`` reads every Annex XIII point (and so may see record hashes)."""
    return _all_points() <= audiences()[audience]


def can_read(audiences_held: Iterable[str], kind: str | None, field: str | None) -> bool:
    """Whether one of ``audiences_held`` reads data point ``field`` of a ``kind`` passport."""
    if kind != "battery" or field is None:
        return True
    point = by_field()[field].annex_xiii_point
    return any(point in audiences()[a] for a in audiences_held if a in audiences())


def shows(audience: str, kind: str | None, envelope_field: str) -> bool:
    """Whether ``audience`` sees an envelope field (status, links, closed) of a passport."""
    return can_read((audience,), kind, ENVELOPE_FIELDS[envelope_field])


def passport_body(
    key: str,
    record: dict[str, Any],
    head_hash: str,
    audience: str,
) -> dict[str, Any]:
    """A passport as ``audience`` may read it (the body of ``GET /api/passports/{key}``)."""
    document = record["document"]
    kind = document.get("kind")
    body: dict[str, Any] = {
        "key": key,
        "passport_id": record["passport_id"],
        "kind": kind,
        "version": record["version"],
        "audience": audience,
    }
    if shows(audience, kind, "status"):
        body["status"] = record["status"]
    if reads_everything(audience) or kind != "battery":
        body["hash"] = head_hash
    body["document"] = view(document, audience)
    return body


def body_etag(text: str) -> str:
    """The ETag of a filtered body: SHA-256 of exactly the text sent (no hidden field in it)."""
    return "view-" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def etag_for(body: dict[str, Any], text: str, audience: str, head_hash: str) -> str:
    """The chain head hash for audiences that read everything (it is their If-Match), else the
    digest of the filtered body."""
    if "hash" in body and (reads_everything(audience) or body.get("kind") != "battery"):
        return head_hash
    return body_etag(text)


def public_view_text(key: str, envelope: dict[str, Any]) -> str:
    """The stored public view of a passport's head version (served as it is to anonymous readers)."""
    return dumps(passport_body(key, envelope["record"], envelope["hash"], "public"))


def version_entry(envelope: dict[str, Any], audience: str) -> dict[str, Any]:
    """One version of a history as ``audience`` may read it."""
    record = envelope["record"]
    kind = record["document"].get("kind")
    entry: dict[str, Any] = {"version": record["version"], "issued_at": record["issued_at"]}
    if reads_everything(audience) or kind != "battery":
        entry["hash"] = envelope["hash"]
        entry["previous_hash"] = record["previous_hash"]
    if shows(audience, kind, "status"):
        entry["status"] = record["status"]
    if shows(audience, kind, "links"):
        entry["links"] = record["links"]
    entry["document"] = view(record["document"], audience)
    return entry


def list_item(row: Any, held: Iterable[str]) -> dict[str, Any]:
    """One row of a passport list for a caller holding ``held`` audiences on that row."""
    item = {
        "key": row.key,
        "passport_id": row.passport_id,
        "kind": row.kind,
        "product": row.product,
        "operator": row.operator,
        "gtin": row.gtin,
        "version": row.version,
    }
    if can_read(held, row.kind, ENVELOPE_FIELDS["status"]):
        item["status"] = row.status
    return item


def public_fields() -> frozenset[str]:
    """Battery data points the public reads."""
    return readable_fields("public")
