"""Integrity of passport versions: canonical JSON, SHA-256 hash chain, Ed25519 signatures.

Each version is a *record* — passport id, version number, hash of the previous version, time,
status, links, the document, and optionally the keys the issuer delegates — serialised
canonically (RFC 8785, JSON Canonicalization Scheme), hashed with SHA-256 and signed with Ed25519
over the canonical bytes. A version file holds exactly ``{"record", "hash", "signature",
"public_key"}``.

:func:`verify_chain` checks, offline, every hash, signature and link, and who signed: the key
that signed version 1 is the chain's *issuer*; every later version must be signed by the issuer
or by a key the issuer named in the ``delegates`` field of an earlier signed version (only the
issuer may change that list; ``[]`` revokes every delegate). Trust is a separate question: the
issuer's key is trusted only when the caller lists it (:func:`load_trusted`). Encodings are
strict: base64url without padding and with zero unused bits (one value, one spelling), hashes as
``sha256:`` and 64 lower-case hex digits, records with exactly the known fields and types.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from critflow.errors import CritflowError
from critflow.passport.safeio import loads_json, read_limited

HASH_PREFIX = "sha256:"
HASH_PATTERN = re.compile(r"sha256:[0-9a-f]{64}")
PUBLIC_KEY_BYTES = 32
"""Length of a raw Ed25519 public key (RFC 8032 section 5.1.5)."""
SIGNATURE_BYTES = 64
"""Length of an Ed25519 signature (RFC 8032 section 5.1.6)."""
MAX_DELEGATES = 64
"""Most keys one version may delegate signing to."""
MAX_KEY_FILE_BYTES = 65_536
"""Largest key file read: a PEM private key is 119 bytes, a public key line 44."""
ENVELOPE_FIELDS = frozenset({"record", "hash", "signature", "public_key"})
RECORD_FIELDS = frozenset(
    {"passport_id", "version", "previous_hash", "issued_at", "status", "links", "document"}
)
OPTIONAL_RECORD_FIELDS = frozenset({"delegates"})
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


class _NotPlainError(Exception):
    """A value the fast canonical form does not take (rfc8785 decides: serialises or refuses)."""


_SAFE_INTEGER = 2**53


def _plain(value: Any) -> Any:
    """``value`` as :func:`json.dumps` writes exactly as RFC 8785 does, or _NotPlainError.

    json.dumps (compact, sorted keys, UTF-8) is RFC 8785 for: exact str/int/bool/None/list/dict
    values; keys without characters beyond U+FFFF (Python sorts by code point, RFC 8785 by UTF-16
    unit: the orders differ only there); integers within +-(2^53 - 1); floats that are whole
    numbers within it (written as the integer: ECMAScript writes 5.0 as 5) and other floats from
    1e-4 to 1e16 (where ``repr`` and ECMAScript's Number::toString agree: same shortest digits,
    no exponent). Everything else — exponents, subclasses, tuples — goes to rfc8785."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return value
    if kind is dict:
        result = {}
        for key, item in value.items():
            if type(key) is not str or (not key.isascii() and max(key) > "\uffff"):
                raise _NotPlainError
            result[key] = _plain(item)
        return result
    if kind is list:
        return [_plain(item) for item in value]
    if kind is int:
        if -_SAFE_INTEGER < value < _SAFE_INTEGER:
            return value
        raise _NotPlainError
    if kind is float:
        if value.is_integer():
            if -_SAFE_INTEGER < value < _SAFE_INTEGER:
                return int(value)
        elif 1e-4 <= abs(value) < 1e16:
            return value
    raise _NotPlainError


def canonical(value: Any) -> bytes:
    """RFC 8785 canonical JSON bytes (the C JSON encoder where it writes exactly what RFC 8785
    prescribes — see :func:`_plain` — the ``rfc8785`` package otherwise; tested to agree)."""
    try:
        text = json.dumps(_plain(value), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        return text.encode("utf-8")
    except (_NotPlainError, UnicodeEncodeError, RecursionError):
        return rfc8785.dumps(value)


def digest(value: Any) -> str:
    """``sha256:<hex>`` of the canonical JSON of ``value``."""
    return HASH_PREFIX + hashlib.sha256(canonical(value)).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode_strict(text: Any, length: int, what: str) -> bytes:
    """Decode unpadded base64url (RFC 4648 section 5) of exactly ``length`` bytes, strictly.

    Only the canonical spelling is accepted: alphabet characters only, no padding, and the
    unused low bits of the last character zero — otherwise two spellings of one signature would
    both verify (section 3.5 lets a decoder reject them; critflow does). Raises ValueError.
    """
    if not isinstance(text, str):
        raise ValueError(f"its {what} is {type(text).__name__}, not base64url text")
    if not _B64URL.fullmatch(text):
        raise ValueError(f"its {what} holds characters outside base64url (A-Z a-z 0-9 - _)")
    expected = -(-length * 4 // 3)  # characters for ``length`` bytes without padding
    if len(text) != expected:
        raise ValueError(f"its {what} has {len(text)} characters; {expected} encode {length} bytes")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError(f"its {what} is not valid base64url") from None
    if _b64(data) != text:
        raise ValueError(f"its {what} is not canonical base64url (non-zero unused bits)")
    return data


def key_id(public_key: str) -> str:
    """A key's short identifier: the first 16 hex digits of SHA-256 over the raw public key."""
    try:
        raw = b64decode_strict(public_key, PUBLIC_KEY_BYTES, "public key")
    except ValueError:
        raw = str(public_key).encode("utf-8", "replace")
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass
class SigningKey:
    """An issuer's Ed25519 key pair."""

    private: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        """Read a PEM (PKCS#8, unencrypted) Ed25519 private key; refuse anything else clearly."""
        data = read_limited(path, MAX_KEY_FILE_BYTES)
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError, binascii.Error) as exc:
            reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
            raise CritflowError(
                str(path),
                f"is not a readable Ed25519 private key ({reason})",
                "Give the STEM.key file written by `critflow passport keygen --out STEM`.",
            ) from None
        except Exception as exc:  # e.g. an unsupported algorithm inside valid PEM
            raise CritflowError(
                str(path),
                f"is not a readable Ed25519 private key ({type(exc).__name__})",
                "Give the STEM.key file written by `critflow passport keygen --out STEM`.",
            ) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise CritflowError(
                str(path), "is not an Ed25519 key", "Use `critflow passport keygen`."
            )
        return cls(key)

    @functools.cached_property
    def public_key(self) -> str:
        """The raw public key, base64url (as stored in version files; derived once)."""
        raw = self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return _b64(raw)

    @property
    def key_id(self) -> str:
        """The short identifier of the public key (:func:`key_id`)."""
        return key_id(self.public_key)

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

    def sign_bytes(self, data: bytes) -> str:
        """The base64url Ed25519 signature of ``data``."""
        return _b64(self.private.sign(data))

    def sign(self, record: dict[str, Any]) -> dict[str, Any]:
        """The signed envelope of a record (refused when the record is not canonical JSON)."""
        try:
            data = canonical(record)
        except (rfc8785.CanonicalizationError, TypeError, ValueError, UnicodeError) as exc:
            raise CritflowError(
                "record",
                f"cannot be signed: it is not plain JSON data ({exc})",
                "Use text, finite numbers, true/false, null, lists and mappings only.",
            ) from None
        return {
            "record": record,
            "hash": HASH_PREFIX + hashlib.sha256(data).hexdigest(),
            "signature": self.sign_bytes(data),
            "public_key": self.public_key,
        }


def verify_signature(public_key: str, signature: str, data: bytes) -> str | None:
    """What is wrong with ``signature`` over ``data`` (None when it verifies)."""
    try:
        raw_key = b64decode_strict(public_key, PUBLIC_KEY_BYTES, "public key")
        raw_signature = b64decode_strict(signature, SIGNATURE_BYTES, "signature")
    except ValueError as exc:
        return str(exc)
    try:
        Ed25519PublicKey.from_public_bytes(raw_key).verify(raw_signature, data)
    except (InvalidSignature, ValueError):
        return "its signature does not verify with its public key"
    return None


def load_trusted(paths: Iterable[Path]) -> dict[str, str]:
    """Trusted issuer keys from ``.pub`` files: {public key: the file it came from}.

    A file holds one base64url Ed25519 public key per line (``#`` starts a comment). Keys listed
    in one file belong to one issuer (for example its current and previous key); keys from
    different files are different issuers, and one may never sign the other's chain.
    """
    trusted: dict[str, str] = {}
    for path in paths:
        data = read_limited(path, MAX_KEY_FILE_BYTES)
        if b"PRIVATE KEY" in data:
            raise CritflowError(
                str(path),
                "is a private key",
                "Trust the public key (STEM.pub), and keep STEM.key secret.",
            )
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise CritflowError(
                str(path), "is not a text file of public keys", "Give a STEM.pub file."
            ) from None
        found = 0
        for number, line in enumerate(text.splitlines(), start=1):
            entry = line.split("#", 1)[0].strip()
            if not entry:
                continue
            try:
                b64decode_strict(entry, PUBLIC_KEY_BYTES, "public key")
            except ValueError as exc:
                raise CritflowError(
                    f"{path}, line {number}",
                    f"is not an Ed25519 public key: {str(exc).removeprefix('its ')}",
                    "Each line holds one key as written by `critflow passport keygen` (STEM.pub).",
                ) from None
            trusted.setdefault(entry, str(path))
            found += 1
        if not found:
            raise CritflowError(
                str(path), "holds no public key", "Give a STEM.pub file from `passport keygen`."
            )
    return trusted


def new_record(
    passport_id: str,
    document: dict[str, Any],
    previous: dict[str, Any] | None,
    status: str | None = None,
    links: list[dict[str, str]] | None = None,
    issued_at: str | None = None,
    delegates: list[str] | None = None,
) -> dict[str, Any]:
    """The next version record after the envelope ``previous`` (None for the first).

    ``delegates`` (only in a version the issuer signs) replaces the list of public keys that may
    sign the following versions besides the issuer; None leaves it as it was.
    """
    record = {
        "passport_id": passport_id,
        "version": 1 if previous is None else previous["record"]["version"] + 1,
        "previous_hash": None if previous is None else previous["hash"],
        "issued_at": issued_at or dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "status": status,
        "links": links or [],
        "document": document,
    }
    if delegates is not None:
        record["delegates"] = list(delegates)
    return record


@dataclass(frozen=True)
class Unreadable:
    """A file that is not a readable version; ``reason`` says why, ``fix`` what to do."""

    reason: str
    fix: str = "Restore the file from a copy."


@dataclass(frozen=True)
class ChainReport:
    """Result of verifying one passport's chain of versions.

    ``broken`` is the first problem (integrity, authorship, or — when trust anchors were given —
    an untrusted issuer); ``intact`` says whether hashes, signatures, links and authorship hold;
    ``trusted`` whether the issuer's key is among the trust anchors (None: none were given).
    """

    passport_id: str
    versions: int
    broken: str | None
    closed: bool
    intact: bool = True
    trusted: bool | None = None
    issuer: str | None = None
    signers: tuple[tuple[str, tuple[int, ...]], ...] = ()
    delegates: frozenset[str] = field(default_factory=frozenset)
    hashes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.broken is None

    @property
    def head_hash(self) -> str | None:
        return self.hashes[-1] if self.hashes else None

    @property
    def authorised(self) -> frozenset[str]:
        """Keys that may sign the next version: the issuer and its current delegates."""
        return self.delegates | ({self.issuer} if self.issuer else set())


def _record_problem(record: Any) -> str | None:
    """What is wrong with the fields and types of a record (None when they are right)."""
    if not isinstance(record, dict):
        return "its record is not an object"
    missing = sorted(RECORD_FIELDS - set(record))
    if missing:
        return f"its record lacks {', '.join(missing)}"
    unknown = sorted(set(record) - RECORD_FIELDS - OPTIONAL_RECORD_FIELDS)
    if unknown:
        return f"its record has unknown fields {', '.join(u[:40] for u in unknown[:5])}"
    links = record["links"]
    checks = (
        ("passport_id", is_text(record["passport_id"], 300), "text of 1-300 characters"),
        ("version", is_count(record["version"]), "a whole number from 1"),
        ("previous_hash", record["previous_hash"] is None or is_hash(record["previous_hash"]),
         "null or sha256: and 64 hex digits"),
        ("issued_at", is_time(record["issued_at"]), "an ISO 8601 time with its UTC offset"),
        ("status", record["status"] is None or is_text(record["status"], 40), "null or a status"),
        ("links", isinstance(links, list)
         and all(isinstance(k, dict) and all(isinstance(v, str) for v in k.values()) for k in links),
         "a list of objects with text values"),
        ("document", isinstance(record["document"], dict), "an object"),
    )  # fmt: skip
    for name, good, expected in checks:
        if not good:
            return f"its record's {name} is not {expected}"
    if "delegates" in record:
        delegates = record["delegates"]
        if not isinstance(delegates, list) or len(delegates) > MAX_DELEGATES:
            return f"its record's delegates is not a list of at most {MAX_DELEGATES} public keys"
        if len(set(map(str, delegates))) != len(delegates):
            return "its record's delegates name a key twice"
        for item in delegates:
            try:
                b64decode_strict(item, PUBLIC_KEY_BYTES, "delegated key")
            except ValueError as exc:
                return str(exc)
    return None


def is_text(value: Any, limit: int) -> bool:
    """Whether ``value`` is text of 1 to ``limit`` characters."""
    return isinstance(value, str) and 0 < len(value) <= limit


def is_count(value: Any) -> bool:
    """Whether ``value`` is a whole number from 1 (a JSON true is not a number)."""
    return type(value) is int and value >= 1


def is_hash(value: Any) -> bool:
    """Whether ``value`` is ``sha256:`` and 64 lower-case hex digits."""
    return isinstance(value, str) and HASH_PATTERN.fullmatch(value) is not None


def is_time(value: Any) -> bool:
    """Whether ``value`` is an ISO 8601 time with its UTC offset."""
    return isinstance(value, str) and parse_time(value) is not None


def parse_time(text: str) -> dt.datetime | None:
    """An ISO 8601 time with its UTC offset (None when ``text`` is not one)."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def check_envelope(envelope: Any) -> str | None:
    """What is wrong with one signed version (None when its form, hash and signature hold)."""
    if isinstance(envelope, Unreadable):
        return envelope.reason
    if not isinstance(envelope, dict) or set(envelope) != ENVELOPE_FIELDS:
        return "is not a signed passport version (exactly record, hash, signature, public_key)"
    problem = _record_problem(envelope["record"])
    if problem is not None:
        return problem
    if not is_hash(envelope["hash"]):
        return "its hash is not sha256: and 64 lower-case hex digits"
    try:
        data = canonical(envelope["record"])
    except (rfc8785.CanonicalizationError, TypeError, ValueError, UnicodeError) as exc:
        return f"its record cannot be canonicalised ({exc})"
    if HASH_PREFIX + hashlib.sha256(data).hexdigest() != envelope["hash"]:
        return "its hash does not match its record: the record was changed after it was signed"
    return verify_signature(envelope["public_key"], envelope["signature"], data)


def _trust_map(trusted: Iterable[str] | Mapping[str, str] | None) -> dict[str, str] | None:
    if trusted is None:
        return None
    if isinstance(trusted, Mapping):
        return dict(trusted)
    return {key: key for key in trusted}  # each key its own issuer


def verify_chain(
    envelopes: list[tuple[str, Any]],
    trusted: Iterable[str] | Mapping[str, str] | None = None,
) -> ChainReport:
    """Verify an ordered list of (name, envelope) of one passport; report the first problem.

    ``trusted`` is a set of trusted public keys (each its own issuer) or a mapping {key: issuer}
    (keys with the same issuer may sign each other's chains, as after a key rotation); None
    checks integrity and authorship only, and leaves ``trusted`` None in the report.
    """
    trust = _trust_map(trusted)
    previous: dict[str, Any] | None = None
    passport_id = "?"
    issuer: str | None = None
    delegates: frozenset[str] = frozenset()
    signers: dict[str, list[int]] = {}
    hashes: list[str] = []

    def same_issuer(key: str) -> bool:
        if key == issuer:
            return True
        return trust is not None and key in trust and trust.get(issuer or "") == trust[key]

    def report(broken: str | None, intact: bool) -> ChainReport:
        closed = previous is not None and previous["record"]["status"] == "recycled"
        return ChainReport(
            passport_id,
            len(envelopes),
            broken,
            closed and broken is None,
            intact,
            None if trust is None or issuer is None else issuer in trust,
            issuer,
            tuple((key, tuple(numbers)) for key, numbers in signers.items()),
            delegates,
            tuple(hashes),
        )

    if not envelopes:
        return report("the chain holds no versions", False)
    for index, (name, envelope) in enumerate(envelopes):
        record = envelope.get("record") if isinstance(envelope, dict) else None
        if (
            passport_id == "?"
            and isinstance(record, dict)
            and isinstance(record.get("passport_id"), str)
        ):
            passport_id = record["passport_id"][:300]
        problem = check_envelope(envelope)
        if problem is None:
            problem = _link_problem(index, envelope, previous)
        if problem is None:
            signer = envelope["public_key"]
            if index == 0:
                issuer = signer
            elif signer not in delegates and not same_issuer(signer):
                problem = (
                    f"it is signed by key {key_id(signer)}, which is neither the chain's issuer "
                    f"({key_id(issuer or '')}) nor a key the issuer delegated in a signed version"
                )
            if problem is None and "delegates" in envelope["record"] and not same_issuer(signer):
                problem = "it changes the delegated keys, which only the chain's issuer may do"
        if problem is not None:
            return report(f"{name}: {problem}", False)
        if "delegates" in envelope["record"]:
            delegates = frozenset(envelope["record"]["delegates"])
        signers.setdefault(envelope["public_key"], []).append(envelope["record"]["version"])
        hashes.append(envelope["hash"])
        previous = envelope
    if trust is not None and issuer not in trust:
        first = envelopes[0][0]
        return report(
            f"{first}: it is signed by key {key_id(issuer or '')}, which is not among the "
            "trusted issuer keys",
            True,
        )
    return report(None, True)


def _link_problem(
    index: int, envelope: dict[str, Any], previous: dict[str, Any] | None
) -> str | None:
    record = envelope["record"]
    if previous is None:
        if record["version"] != 1:
            return f"it is version {record['version']}, but version 1 is expected here"
        if record["previous_hash"] is not None:
            return "the first version must not point to a previous one"
        return None
    before = previous["record"]
    if record["version"] == before["version"]:
        return f"it is a second version {record['version']}: the chain forks here"
    if record["version"] != index + 1:
        return f"it is version {record['version']}, but version {index + 1} is expected here"
    if record["previous_hash"] != previous["hash"]:
        return (
            f"its previous_hash does not match the hash of version {before['version']}: "
            "a version is missing or was replaced"
        )
    if before["status"] == "recycled":
        return (
            "it follows the terminal (recycled) version; a closed passport takes no more versions"
        )
    if record["passport_id"] != before["passport_id"]:
        return "it belongs to another passport"
    return None  # issued_at may go backwards: clocks of two registry servers differ


def _version_of(envelope: Any) -> int:
    record = envelope.get("record") if isinstance(envelope, dict) else None
    version = record.get("version") if isinstance(record, dict) else None
    return version if type(version) is int else 0


def read_envelopes(path: Path) -> dict[str, list[tuple[str, Any]]]:
    """Versions found at ``path`` (a file, or a folder of ``*.json``), grouped by passport, in
    version order. A file that cannot be read as a version is kept as :class:`Unreadable`, in a
    group of its own, so that verification names it."""
    if path.is_dir():
        files = sorted(path.rglob("*.json"))
        if not files:
            raise CritflowError(
                str(path), "holds no .json passport versions", "Give a file or folder."
            )
    elif path.exists():
        files = [path]
    else:
        raise CritflowError(str(path), "does not exist", "Give a version file or a folder.")
    groups: dict[str, list[tuple[str, Any]]] = {}
    for file in files:
        envelope: Any
        try:
            envelope = loads_json(read_limited(file, regular_only=file != path), str(file))
        except CritflowError as exc:
            if file == path:  # the one file asked for: say what is wrong with it at once
                raise
            envelope = Unreadable(exc.problems[0].what, exc.problems[0].fix)
        record = envelope.get("record") if isinstance(envelope, dict) else None
        identifier = record.get("passport_id") if isinstance(record, dict) else None
        group = identifier if isinstance(identifier, str) and identifier else f"file {file}"
        groups.setdefault(group, []).append((str(file), envelope))
    for versions in groups.values():
        versions.sort(key=lambda item: (_version_of(item[1]), item[0]))
    return groups
