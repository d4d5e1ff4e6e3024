"""Signed checkpoints: "passport P is at version N, whose hash is H", signed by its issuer.

A chain verified offline proves that every version it holds was signed in order — not that it is
complete: whoever hands over the folder can leave out the newest versions (a rollback, hiding a
status change to waste or a lower state of health) and the rest still verifies. The issuer (a
registry, or an operator with its own key) therefore publishes a checkpoint of each passport's
head; ``critflow passport verify --checkpoint`` refuses a chain that ends before it or differs
from it.

A checkpoint file is ``{"checkpoint": {type, passport_id, version, head_hash, issued_at,
key_id}, "signature"}``; the signature is Ed25519 over the RFC 8785 canonical JSON of the
``checkpoint`` object. Its ``type`` keeps a checkpoint from ever being read as a version record
(and the other way round) although the same key signs both.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from critflow.errors import CritflowError
from critflow.passport.integrity import (
    ChainReport,
    SigningKey,
    canonical,
    is_count,
    is_hash,
    is_text,
    is_time,
    key_id,
    parse_time,
    verify_signature,
)
from critflow.passport.safeio import loads_json, read_limited

CHECKPOINT_TYPE = "critflow-passport-checkpoint/1"
CHECKPOINT_FIELDS = frozenset(
    {"type", "passport_id", "version", "head_hash", "issued_at", "key_id"}
)
MAX_CHECKPOINT_BYTES = 65_536
CLOCK_SKEW = dt.timedelta(minutes=5)
"""How far in the future a checkpoint's time may lie (clocks of issuer and verifier differ)."""
_KEY_ID = re.compile(r"[0-9a-f]{16}")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(s|m|h|d)")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def make_checkpoint(
    key: SigningKey,
    passport_id: str,
    version: int,
    head_hash: str,
    issued_at: str | None = None,
) -> dict[str, Any]:
    """A signed checkpoint of a passport's head (``issued_at`` defaults to now, UTC)."""
    body = {
        "type": CHECKPOINT_TYPE,
        "passport_id": passport_id,
        "version": version,
        "head_hash": head_hash,
        "issued_at": issued_at or dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "key_id": key.key_id,
    }
    return {"checkpoint": body, "signature": key.sign_bytes(canonical(body))}


def checkpoint_of(report: ChainReport, key: SigningKey) -> dict[str, Any]:
    """A checkpoint of the head of a chain that verified (the key must be allowed to sign it)."""
    if not report.intact or not report.hashes:
        raise CritflowError(
            report.passport_id, f"does not verify: {report.broken}", "Restore the chain first."
        )
    if key.public_key not in report.authorised:
        raise CritflowError(
            "key=",
            f"key {key.key_id} is neither the issuer nor a delegate of {report.passport_id}",
            "Sign the checkpoint with the issuer's key.",
        )
    return make_checkpoint(key, report.passport_id, report.versions, report.hashes[-1])


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint whose signature verified with a trusted key."""

    passport_id: str
    version: int
    head_hash: str
    issued_at: dt.datetime
    signer: str  # the public key that signed it
    source: str  # the file (or URL) it came from


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint file (bounded, strict JSON)."""
    return loads_json(read_limited(path, MAX_CHECKPOINT_BYTES), str(path))


def verify_checkpoint(
    document: Any, trusted: Mapping[str, str] | set[str], where: str
) -> Checkpoint:
    """Check a checkpoint's form and signature against the trusted keys; raise CritflowError."""
    if not isinstance(document, dict) or set(document) != {"checkpoint", "signature"}:
        raise CritflowError(
            where, "is not a passport checkpoint (exactly checkpoint and signature)", ""
        )
    body = document["checkpoint"]
    if not isinstance(body, dict) or set(body) != CHECKPOINT_FIELDS:
        raise CritflowError(
            where,
            "is not a passport checkpoint (needs exactly "
            + ", ".join(sorted(CHECKPOINT_FIELDS))
            + ")",
            "",
        )
    checks = (
        ("type", body["type"] == CHECKPOINT_TYPE, CHECKPOINT_TYPE),
        ("passport_id", is_text(body["passport_id"], 300), "text of 1-300 characters"),
        ("version", is_count(body["version"]), "a whole number from 1"),
        ("head_hash", is_hash(body["head_hash"]), "sha256: and 64 hex digits"),
        ("issued_at", is_time(body["issued_at"]), "an ISO 8601 time with its UTC offset"),
        ("key_id", isinstance(body["key_id"], str) and _KEY_ID.fullmatch(body["key_id"]), "16 hex digits"),
    )  # fmt: skip
    for name, good, expected in checks:
        if not good:
            raise CritflowError(f"{where}: checkpoint.{name}", f"is not {expected}", "")
    candidates = [k for k in trusted if key_id(k) == body["key_id"]]
    if not candidates:
        raise CritflowError(
            where,
            f"is signed by key {body['key_id']}, which is not among the trusted keys",
            "Trust the issuer's (or registry's) public key (trusted=).",
        )
    data = canonical(body)
    for candidate in candidates:
        if verify_signature(candidate, document["signature"], data) is None:
            return Checkpoint(
                body["passport_id"],
                body["version"],
                body["head_hash"],
                parse_time(body["issued_at"]),  # type: ignore[arg-type]
                candidate,
                where,
            )
    raise CritflowError(
        where,
        "has a signature that does not verify: the checkpoint was changed after it was signed",
        "Fetch the checkpoint again from its issuer.",
    )


def compare(
    checkpoint: Checkpoint, report: ChainReport, trusted: Mapping[str, str] | None = None
) -> str | None:
    """What the checkpoint reveals about a verified chain (None when the chain is consistent).

    The checkpoint must come from the chain's issuer, a key of the same trusted issuer, or a
    current delegate — another trusted issuer cannot vouch for (or against) this chain.
    """
    trusted = trusted or {}
    same_issuer = (
        checkpoint.signer in trusted
        and report.issuer in trusted
        and trusted[checkpoint.signer] == trusted[report.issuer or ""]
    )
    if checkpoint.signer not in report.authorised and not same_issuer:
        return (
            f"the checkpoint {checkpoint.source} is signed by key {key_id(checkpoint.signer)}, "
            "which is neither the chain's issuer nor its delegate"
        )
    if checkpoint.version > report.versions:
        return (
            f"the chain ends at version {report.versions}, but the checkpoint "
            f"{checkpoint.source} (signed {checkpoint.issued_at.isoformat()}) says version "
            f"{checkpoint.version} exists: newer versions were withheld (rollback)"
        )
    if report.hashes[checkpoint.version - 1] != checkpoint.head_hash:
        return (
            f"version {checkpoint.version} of the chain has hash "
            f"{report.hashes[checkpoint.version - 1]}, but the checkpoint {checkpoint.source} "
            f"names {checkpoint.head_hash}: the chain forks from the published one"
        )
    return None


def freshness(
    checkpoint: Checkpoint, max_age: dt.timedelta | None, now: dt.datetime | None = None
) -> str | None:
    """What is wrong with the checkpoint's time (None when it is recent enough)."""
    now = now or dt.datetime.now(dt.UTC)
    if checkpoint.issued_at > now + CLOCK_SKEW:
        return (
            f"the checkpoint {checkpoint.source} is dated {checkpoint.issued_at.isoformat()}, "
            "in the future"
        )
    if max_age is not None and now - checkpoint.issued_at > max_age:
        return (
            f"the checkpoint {checkpoint.source} is from {checkpoint.issued_at.isoformat()}, "
            f"older than max_age= ({max_age}): a newer one may exist"
        )
    return None


def parse_duration(text: str) -> dt.timedelta:
    """``30m``, ``24h``, ``7d`` or ``90s`` as a time span; CritflowError otherwise."""
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise CritflowError(
            "max_age=", f"'{text[:40]}' is not a duration", "Write e.g. 90s, 30m, 24h or 7d."
        )
    seconds = float(match[1]) * _UNITS[match[2]]
    if seconds > 3650 * 86400:
        raise CritflowError("max_age=", f"'{text}' is longer than ten years", "Give less.")
    return dt.timedelta(seconds=seconds)
