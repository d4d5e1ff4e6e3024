"""Integrity of passport versions: canonical JSON, SHA-256 hash chain, Ed25519 signatures.

Each version is a *record* — passport id, version number, hash of the previous version, time,
status, links, and the document — serialised canonically (RFC 8785, JSON Canonicalization Scheme),
hashed with SHA-256 and signed by the issuer with Ed25519 over the canonical bytes. A version file
holds ``{"record", "hash", "signature", "public_key"}``. :func:`verify_chain` checks every hash,
signature and link offline and names the first broken one.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from critflow.errors import CritflowError

HASH_PREFIX = "sha256:"


def canonical(value: Any) -> bytes:
    """RFC 8785 canonical JSON bytes."""
    return rfc8785.dumps(value)


def digest(value: Any) -> str:
    """``sha256:<hex>`` of the canonical JSON of ``value``."""
    return HASH_PREFIX + hashlib.sha256(canonical(value)).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class SigningKey:
    """An issuer's Ed25519 key pair."""

    private: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise CritflowError(
                str(path),
                f"is not a readable Ed25519 private key ({exc})",
                "Create one with `critflow passport keygen --out issuer`.",
            ) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise CritflowError(
                str(path), "is not an Ed25519 key", "Use `critflow passport keygen`."
            )
        return cls(key)

    @property
    def public_key(self) -> str:
        """The raw public key, base64url (as stored in version files)."""
        raw = self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return _b64(raw)

    def save(self, stem: Path) -> tuple[Path, Path]:
        """Write ``stem.key`` (PEM, unencrypted — keep it private) and ``stem.pub`` (base64url)."""
        private = stem.with_suffix(".key")
        public = stem.with_suffix(".pub")
        private.write_bytes(
            self.private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        private.chmod(0o600)
        public.write_text(self.public_key + "\n", encoding="utf-8")
        return private, public

    def sign(self, record: dict[str, Any]) -> dict[str, Any]:
        """The signed envelope of a record."""
        data = canonical(record)
        return {
            "record": record,
            "hash": HASH_PREFIX + hashlib.sha256(data).hexdigest(),
            "signature": _b64(self.private.sign(data)),
            "public_key": self.public_key,
        }


def new_record(
    passport_id: str,
    document: dict[str, Any],
    previous: dict[str, Any] | None,
    status: str | None = None,
    links: list[dict[str, str]] | None = None,
    issued_at: str | None = None,
) -> dict[str, Any]:
    """The next version record after the envelope ``previous`` (None for the first)."""
    return {
        "passport_id": passport_id,
        "version": 1 if previous is None else previous["record"]["version"] + 1,
        "previous_hash": None if previous is None else previous["hash"],
        "issued_at": issued_at or dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "status": status,
        "links": links or [],
        "document": document,
    }


@dataclass(frozen=True)
class ChainReport:
    """Result of verifying one passport's chain of versions."""

    passport_id: str
    versions: int
    broken: str | None  # the first broken link, or None when all verify
    closed: bool

    @property
    def ok(self) -> bool:
        return self.broken is None


def check_envelope(envelope: Any, trusted: set[str] | None = None) -> str | None:
    """What is wrong with one signed version (None when hash and signature verify)."""
    if not isinstance(envelope, dict) or not {"record", "hash", "signature", "public_key"} <= set(
        envelope
    ):
        return "is not a signed passport version (needs record, hash, signature, public_key)"
    try:
        data = canonical(envelope["record"])
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        return f"its record cannot be canonicalised ({exc})"
    if HASH_PREFIX + hashlib.sha256(data).hexdigest() != envelope["hash"]:
        return "its hash does not match its record: the record was changed after it was signed"
    if trusted is not None and envelope["public_key"] not in trusted:
        return "it is signed by a key that is not among the trusted issuer keys"
    try:
        key = Ed25519PublicKey.from_public_bytes(_unb64(envelope["public_key"]))
        key.verify(_unb64(envelope["signature"]), data)
    except (InvalidSignature, ValueError):
        return "its signature does not verify with the issuer's public key"
    return None


def verify_chain(envelopes: list[tuple[str, Any]], trusted: set[str] | None = None) -> ChainReport:
    """Verify an ordered list of (name, envelope) of one passport; report the first broken link."""
    previous: dict[str, Any] | None = None
    passport_id = "?"
    for index, (name, envelope) in enumerate(envelopes):
        record = envelope.get("record") if isinstance(envelope, dict) else None
        if isinstance(record, dict) and isinstance(record.get("passport_id"), str):
            passport_id = record["passport_id"]
        problem = check_envelope(envelope, trusted)
        if problem is None:
            record = envelope["record"]
            if record.get("version") != index + 1:
                problem = f"it is version {record.get('version')}, but version {index + 1} is expected here"
            elif index == 0 and record.get("previous_hash") is not None:
                problem = "the first version must not point to a previous one"
            elif previous is not None and record.get("previous_hash") != previous["hash"]:
                problem = (
                    "its previous_hash does not match the hash of version "
                    f"{previous['record']['version']}: a version is missing or was replaced"
                )
            elif previous is not None and previous["record"].get("status") == "recycled":
                problem = "it follows the terminal (recycled) version; a closed passport takes no more versions"
            elif previous is not None and record.get("passport_id") != previous["record"].get(
                "passport_id"
            ):
                problem = "it belongs to another passport"
        if problem is not None:
            return ChainReport(passport_id, len(envelopes), f"{name}: {problem}", False)
        previous = envelope
    closed = previous is not None and previous["record"].get("status") == "recycled"
    return ChainReport(passport_id, len(envelopes), None, closed)


def read_envelopes(path: Path) -> dict[str, list[tuple[str, Any]]]:
    """Versions found at ``path`` (a file, or a folder of ``*.json``), grouped by passport, in order.

    Files that are not valid JSON are kept (as None) so verification names them.
    """
    files = sorted(path.rglob("*.json")) if path.is_dir() else [path]
    if not files:
        raise CritflowError(str(path), "holds no .json passport versions", "Give a file or folder.")
    groups: dict[str, list[tuple[str, Any]]] = {}
    for file in files:
        try:
            envelope = json.loads(file.read_bytes())
        except (UnicodeDecodeError, json.JSONDecodeError):
            envelope = None
        record = envelope.get("record") if isinstance(envelope, dict) else None
        key = record.get("passport_id") if isinstance(record, dict) else None
        groups.setdefault(key or str(file.parent), []).append((str(file), envelope))
    for versions in groups.values():
        versions.sort(
            key=lambda item: (
                item[1]["record"].get("version", 0)
                if isinstance(item[1], dict) and isinstance(item[1].get("record"), dict)
                else 0,
                item[0],
            )
        )
    return groups
