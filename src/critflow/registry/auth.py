"""API keys: ``cfk_<key id>_<secret>``; the secret is stored as an argon2 hash only.

A key belongs to an organisation and carries audiences (issuer, legitimate_interest, authority,
admin) and whether it may write. Verified keys are remembered in memory by a SHA-256 of the full
key, so argon2's deliberate slowness is paid once per key and process, not per request.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.orm import Session

from critflow.errors import CritflowError, known
from critflow.passport.datapoints import audiences as passport_audiences
from critflow.registry.models import ApiKey, Organisation

PREFIX = "cfk"
ADMIN = "admin"
_hasher = PasswordHasher()


def key_audiences() -> tuple[str, ...]:
    """Audiences a key can carry: the passport audiences (from data) and admin."""
    return (*passport_audiences(), ADMIN)


@dataclass(frozen=True)
class Principal:
    """Who is calling: organisation, audiences, write right, declared purpose."""

    key_id: str | None
    organisation: str | None
    audiences: frozenset[str]
    can_write: bool
    purpose: str | None

    @property
    def anonymous(self) -> bool:
        return self.key_id is None


ANONYMOUS = Principal(None, None, frozenset({"public"}), False, None)


def create_key(
    session: Session,
    organisation: str,
    audiences: list[str],
    can_write: bool,
    purpose: str | None,
) -> str:
    """Store a new key and return it (shown once; only its argon2 hash is kept)."""
    allowed = key_audiences()
    unknown = [a for a in audiences if a not in allowed]
    if unknown or not audiences:
        raise CritflowError(
            "--audience",
            f"unknown audience {', '.join(unknown)}" if unknown else "a key needs an audience",
            f"Audiences: {known(list(allowed))}.",
        )
    if "legitimate_interest" in audiences and not purpose:
        raise CritflowError(
            "--purpose",
            "a legitimate-interest key needs its declared purpose (Art. 77(2)(c))",
            "Add --purpose 'recycling of EV batteries' (or repair, second life, energy market).",
        )
    org = session.scalar(select(Organisation).where(Organisation.name == organisation))
    if org is None:
        org = Organisation(name=organisation)
        session.add(org)
        session.flush()
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(24)
    session.add(
        ApiKey(
            key_id=key_id,
            secret_hash=_hasher.hash(secret),
            organisation_id=org.id,
            audiences=",".join(sorted(set(audiences))),
            can_write=can_write,
            purpose=purpose,
        )
    )
    session.commit()
    return f"{PREFIX}_{key_id}_{secret}"


class KeyStore:
    """Checks presented keys against the database, remembering verified ones."""

    def __init__(self) -> None:
        self._verified: dict[str, Principal] = {}
        self._lock = threading.Lock()
        self._pending: dict[str, threading.Lock] = {}  # one argon2 verification per key at a time

    def principal(self, session: Session, presented: str | None) -> Principal | None:
        """The caller for a presented key; ANONYMOUS without one; None for a bad key."""
        if not presented:
            return ANONYMOUS
        fingerprint = hashlib.sha256(presented.encode()).hexdigest()
        with self._lock:
            known_principal = self._verified.get(fingerprint)
            gate = self._pending.setdefault(fingerprint, threading.Lock())
        if known_principal is not None:
            return known_principal
        with gate:  # concurrent first uses of a key wait for one verification
            with self._lock:
                known_principal = self._verified.get(fingerprint)
            if known_principal is not None:
                return known_principal
            return self._verify(session, presented, fingerprint)

    def _verify(self, session: Session, presented: str, fingerprint: str) -> Principal | None:
        parts = presented.split("_", 2)
        if len(parts) != 3 or parts[0] != PREFIX:
            return None
        row = session.scalar(select(ApiKey).where(ApiKey.key_id == parts[1]))
        if row is None or row.revoked:
            return None
        try:
            _hasher.verify(row.secret_hash, parts[2])
        except (VerifyMismatchError, VerificationError):
            return None
        org = session.get(Organisation, row.organisation_id)
        principal = Principal(
            key_id=row.key_id,
            organisation=org.name if org else None,
            audiences=frozenset(row.audiences.split(",")) | {"public"},
            can_write=row.can_write,
            purpose=row.purpose,
        )
        with self._lock:
            self._verified[fingerprint] = principal
        return principal
