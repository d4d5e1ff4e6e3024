"""A passport's history on disk: one folder per passport, one signed file per version.

Status changes follow ``passport_status_transitions.csv``: a repurposed or remanufactured battery
gets a new passport linked to the last version of the original (Art. 77(7)); recycling closes the
chain with a terminal version (Art. 77(8)) — its history stays for the authorities.
"""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path
from typing import Any

from critflow.errors import CritflowError
from critflow.passport.battery import STATUSES
from critflow.passport.datapoints import status_transitions
from critflow.passport.integrity import (
    MAX_DELEGATES,
    PUBLIC_KEY_BYTES,
    ChainReport,
    SigningKey,
    Unreadable,
    b64decode_strict,
    key_id,
    new_record,
    read_envelopes,
    verify_chain,
)

_VERSION_FILE = "v{:04d}.json"


def passport_id(document: dict[str, Any]) -> str:
    """The identifier a document is filed under: a battery's unique identifier or a lot id."""
    if not isinstance(document, dict):
        return ""
    if document.get("kind") == "battery":
        data = document.get("data")
        return str(data.get("unique_identifier", "")) if isinstance(data, dict) else ""
    return str(document.get("lot_id", ""))


def folder_name(identifier: str) -> str:
    """A file-system-safe folder name for a passport id."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", identifier).strip("_")[:120] or "passport"


def _write(folder: Path, envelope: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / _VERSION_FILE.format(envelope["record"]["version"])
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(envelope, indent=1, ensure_ascii=False), encoding="utf-8")
    try:
        os.link(tmp, path)  # atomic and exclusive: of two concurrent writers exactly one wins
    except FileExistsError:
        raise CritflowError(
            str(path), "exists already", "Versions are never overwritten."
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _verified(folder: Path) -> tuple[list[tuple[str, Any]], ChainReport] | None:
    if not folder.is_dir() or not any(folder.glob("v*.json")):
        return None
    groups = read_envelopes(folder)
    for versions in groups.values():
        for name, envelope in versions:
            if isinstance(envelope, Unreadable):
                raise CritflowError(name, envelope.reason, "Restore the file from a copy.")
    if len(groups) != 1:
        raise CritflowError(
            str(folder), "holds versions of several passports", "Keep one per folder."
        )
    (versions,) = groups.values()
    report = verify_chain(versions)
    if not report.ok:
        raise CritflowError(str(folder), f"does not verify: {report.broken}", "Restore the folder.")
    return versions, report


def latest(folder: Path) -> dict[str, Any] | None:
    """The last verified version in ``folder`` (None for an empty folder)."""
    found = _verified(folder)
    return None if found is None else found[0][-1][1]


def _authorised(folder: Path, key: SigningKey, report: ChainReport) -> None:
    """Refuse a key that may not sign the next version of the chain (before anything is written)."""
    if key.public_key not in report.authorised:
        raise CritflowError(
            "key=",
            f"key {key.key_id} may not sign versions of {folder}: the chain's issuer is key "
            f"{key_id(report.issuer or '')}"
            + (
                f" and it delegates to {', '.join(sorted(map(key_id, report.delegates)))}"
                if report.delegates
                else " and it delegates to no other key"
            ),
            "Sign with the issuer's key, or let the issuer delegate this key first "
            "(`critflow passport delegate`).",
        )


def issue(
    document: dict[str, Any],
    key: SigningKey,
    folder: Path,
    status: str = "original",
    links: list[dict[str, str]] | None = None,
    delegates: list[str] | None = None,
) -> Path:
    """Start a passport's chain with its first signed version; ``key`` becomes its issuer."""
    if latest(folder) is not None:
        raise CritflowError(str(folder), "already holds a passport", "Append a version instead.")
    identifier = passport_id(document)
    if not identifier:
        raise CritflowError(
            "document", "has no identifier", "Fill unique_identifier (battery) or lot_id."
        )
    if delegates is not None:
        _check_delegates(delegates)
    record = new_record(identifier, document, None, status, links, delegates=delegates)
    return _write(folder, key.sign(record))


def append(folder: Path, document: dict[str, Any], key: SigningKey) -> Path:
    """Add a version with an updated document (same status), signed by the issuer or a delegate."""
    previous, _report = _open(folder, key)
    record = previous["record"]
    if passport_id(document) != record["passport_id"]:
        raise CritflowError(
            "document",
            f"belongs to '{passport_id(document)}', not '{record['passport_id']}'",
            "Append to the folder of its own passport.",
        )
    return _write(
        folder, key.sign(new_record(record["passport_id"], document, previous, record["status"]))
    )


def delegate(folder: Path, key: SigningKey, delegates: list[str]) -> Path:
    """Add a version, signed by the issuer, that lets ``delegates`` (public keys) sign the
    following versions; it replaces the previous list (``[]`` revokes every delegate)."""
    _check_delegates(delegates)
    previous, report = _open(folder, key)
    if key.public_key != report.issuer:
        raise CritflowError(
            "key=",
            f"only the chain's issuer (key {key_id(report.issuer or '')}) may delegate; "
            f"this is key {key.key_id}",
            "Sign the delegation with the issuer's key.",
        )
    record = previous["record"]
    return _write(
        folder,
        key.sign(
            new_record(
                record["passport_id"],
                copy.deepcopy(record["document"]),
                previous,
                record["status"],
                delegates=list(dict.fromkeys(delegates)),
            )
        ),
    )


def _check_delegates(delegates: list[str]) -> None:
    """Refuse delegated keys that are not Ed25519 public keys (before anything is written)."""
    if len(set(delegates)) > MAX_DELEGATES:
        raise CritflowError(
            "delegates=", f"names more than {MAX_DELEGATES} keys", "Delegate fewer."
        )
    for item in delegates:
        try:
            b64decode_strict(item, PUBLIC_KEY_BYTES, "public key")
        except ValueError as exc:
            raise CritflowError(
                "delegates=",
                f"'{str(item)[:60]}' is not an Ed25519 public key: {str(exc).removeprefix('its ')}",
                "Give public keys as written by `critflow passport keygen` (STEM.pub).",
            ) from None


def _open(folder: Path, key: SigningKey) -> tuple[dict[str, Any], ChainReport]:
    """The head of a verified, open chain that ``key`` may extend."""
    found = _verified(folder)
    if found is None:
        raise CritflowError(str(folder), "holds no passport", "Issue one first.")
    versions, report = found
    previous = versions[-1][1]
    if previous["record"]["status"] == "recycled":
        raise CritflowError(
            str(folder),
            "is closed: the battery was recycled (Art. 77(8))",
            "A recycled battery's passport takes no more versions.",
        )
    _authorised(folder, key, report)
    return previous, report


def change_status(
    folder: Path,
    to: str,
    key: SigningKey,
    new_document: dict[str, Any] | None = None,
    new_folder: Path | None = None,
) -> list[Path]:
    """Move a passport to status ``to``; returns the files written.

    When the transition gives a new passport (repurposing, remanufacturing), ``new_document`` is
    its document and ``new_folder`` its folder; the old chain records the change and the new
    chain's first version links to the old chain's last hash.
    """
    previous, _report = _open(folder, key)
    record = previous["record"]
    current = record["status"]
    rule = status_transitions().get((current, to))
    if rule is None:
        allowed = sorted(t for f, t in status_transitions() if f == current)
        raise CritflowError(
            "to=",
            f"a passport in status '{current}' cannot move to '{to}'",
            f"From '{current}' it can move to: {', '.join(allowed) or 'nothing'}.",
        )
    written = []
    links: list[dict[str, str]] = []
    if rule["new_passport"]:
        if new_document is None or new_folder is None:
            raise CritflowError(
                "new_document=",
                f"'{to}' gives the battery a new passport (Art. 77(7))",
                "Give the new passport's document and folder.",
            )
        new_id = passport_id(new_document)
        links = [{"rel": f"{to}_as", "passport_id": new_id}]
    document = copy.deepcopy(record["document"])
    if document.get("kind") == "battery" and to in STATUSES:
        document["data"]["battery_status"] = to
    old_version = key.sign(new_record(record["passport_id"], document, previous, to, links))
    written.append(_write(folder, old_version))
    if rule["new_passport"]:
        back = [
            {"rel": f"{to}_from", "passport_id": record["passport_id"], "hash": old_version["hash"]}
        ]
        if new_document.get("kind") == "battery":
            new_document = copy.deepcopy(new_document)
            new_document["data"]["battery_status"] = to
        written.append(issue(new_document, key, new_folder, status=to, links=back))
    return written
