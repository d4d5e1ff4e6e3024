"""API keys: ``cfk_<key id>_<secret>``; the secret is stored as an argon2 hash only.

A key belongs to an organisation and carries audiences (issuer, legitimate_interest, authority,
admin) and whether it may write. Verified keys are remembered in memory by a SHA-256 of the full
key, so argon2's deliberate slowness (about a third of a second of CPU) is paid once per key and
worker — and each remembered key is re-read from the database (one indexed row) at most every
``recheck_seconds``, so ``critflow keys revoke`` takes effect on every worker within that time.

Failed authentications cost the attacker nothing if they cost the server an argon2 run each, so
they are limited: per key id and per client address, failures are counted over a sliding window
in the audit log (shared by all workers and servers); past the limit the request gets 429 with
``Retry-After`` and no argon2 is run. Each worker runs one argon2 verification at a time. Unknown
key ids never reach argon2.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import hashlib
import ipaddress
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from critflow.errors import CritflowError, known
from critflow.passport.datapoints import audiences as passport_audiences
from critflow.server.models import ApiKey, AuditEntry, Organisation
from critflow.server.problems import RegistryError

PREFIX = "cfk"
ADMIN = "admin"
_hasher = PasswordHasher()

client_address: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "critflow_client_address", default=None
)
"""The calling client's address for the request being served (set by the API layer)."""


def key_audiences() -> tuple[str, ...]:
    """Audiences a key can carry: the passport and roadmap-monitor audiences (from data) and
    admin."""
    from critflow import data

    monitor = data.table("monitor_access")["audience"]  # see critflow.server.monitor.access
    return tuple(dict.fromkeys((*passport_audiences(), *map(str, monitor), ADMIN)))


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


@dataclass(frozen=True)
class Limits:
    """Authentication limits (per the whole registry: counted in the shared audit log)."""

    window_seconds: float = 60.0
    failures_per_key: int = 5
    failures_per_client: int = 20
    recheck_seconds: float = 1.0
    argon2_wait_seconds: float = 5.0


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


def key_id_of(text: str) -> str:
    """The key id of a full key (``cfk_<id>_<secret>``) or of a bare key id."""
    parts = str(text).strip().split("_", 2)
    return parts[1] if len(parts) == 3 and parts[0] == PREFIX else str(text).strip()


def revoke_key(session: Session, key: str) -> tuple[str, str]:
    """Revoke a key (by key id or full key); returns (key id, organisation)."""
    key_id = key_id_of(key)
    row = session.scalar(select(ApiKey).where(ApiKey.key_id == key_id))
    if row is None:
        raise CritflowError(
            "KEY_ID", f"no key with id '{key_id}'", "`critflow keys list` shows the key ids."
        )
    session.execute(
        update(ApiKey)
        .where(ApiKey.id == row.id)
        .values(revoked=True, revoked_at=dt.datetime.now(dt.UTC))
    )
    session.commit()
    org = session.get(Organisation, row.organisation_id)
    return key_id, org.name if org else ""


def list_keys(session: Session) -> list[dict[str, object]]:
    """Every key (never its secret): id, organisation, audiences, write, revoked, created."""
    rows = session.execute(
        select(ApiKey, Organisation.name)
        .join(Organisation, Organisation.id == ApiKey.organisation_id)
        .order_by(ApiKey.id)
    ).all()
    return [
        {
            "key_id": k.key_id,
            "organisation": name,
            "audiences": k.audiences.split(","),
            "write": k.can_write,
            "purpose": k.purpose,
            "revoked": k.revoked,
            "created_at": k.created_at.isoformat(timespec="seconds") if k.created_at else None,
        }
        for k, name in rows
    ]


def _principal_of(row: ApiKey, organisation: str | None) -> Principal:
    return Principal(
        key_id=row.key_id,
        organisation=organisation,
        audiences=frozenset(row.audiences.split(",")) | {"public"},
        can_write=row.can_write,
        purpose=row.purpose,
    )


@dataclass
class _Remembered:
    principal: Principal
    checked: float


AuditFn = Callable[[str | None, str | None, str, str], None]
"""audit(key_id, organisation, outcome, detail): write one 'authenticate' audit entry."""


class KeyStore:
    """Checks presented keys against the database, remembering verified ones."""

    def __init__(self, sessions: sessionmaker, audit: AuditFn, limits: Limits | None = None):
        self.sessions = sessions
        self.audit = audit
        self.limits = limits or Limits()
        self._verified: dict[str, _Remembered] = {}
        self._lock = threading.Lock()
        self._gates: dict[str, threading.Lock] = {}  # per known key id: one verification at a time
        self._argon2 = threading.BoundedSemaphore(1)  # one argon2 run at a time per worker
        self._throttle_logged: set[tuple[str, int]] = set()

    # --- the entry point ---------------------------------------------------------------------
    def principal(self, presented: str | None) -> Principal:
        """The caller for a presented key; ANONYMOUS without one. Raises RegistryError 401 for a
        bad, unknown or revoked key and 429 when failures from this client or for this key id
        passed the limit."""
        if not presented:
            return ANONYMOUS
        fingerprint = hashlib.sha256(presented.encode("utf-8", "surrogatepass")).hexdigest()
        with self._lock:
            remembered = self._verified.get(fingerprint)
        if remembered is not None:
            if time.monotonic() - remembered.checked < self.limits.recheck_seconds:
                return remembered.principal
            return self._recheck(fingerprint, remembered)
        self._throttle("client", client_address.get())
        parts = presented.split("_", 2)
        if len(parts) != 3 or parts[0] != PREFIX or not 0 < len(parts[1]) <= 16:
            self._fail(None, None, "malformed key")
        key_id = parts[1]
        with self.sessions() as session:
            found = session.execute(
                select(ApiKey, Organisation.name)
                .join(Organisation, Organisation.id == ApiKey.organisation_id)
                .where(ApiKey.key_id == key_id)
            ).first()
        if found is None or found[0].revoked:
            self._fail(key_id, found[1] if found else None, "unknown or revoked key")
        row, organisation = found
        self._throttle("key", key_id)
        with self._lock:
            gate = self._gates.setdefault(key_id, threading.Lock())
        with gate:  # concurrent first uses of one key wait for one verification
            with self._lock:
                remembered = self._verified.get(fingerprint)
            if remembered is not None:
                return remembered.principal
            if not self._argon2.acquire(timeout=self.limits.argon2_wait_seconds):
                raise RegistryError(
                    503,
                    "Busy verifying keys",
                    "Too many first-time key verifications at once; retry in a second.",
                    headers={"Retry-After": "1"},
                )
            try:
                _hasher.verify(row.secret_hash, parts[2])
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                self._fail(key_id, organisation, "wrong secret")
            finally:
                self._argon2.release()
            principal = _principal_of(row, organisation)
            with self._lock:
                self._verified[fingerprint] = _Remembered(principal, time.monotonic())
            return principal

    def remembered(self, presented: str) -> Principal | None:
        """The caller for a key verified lately (within ``recheck_seconds``), without touching
        the database; None when the key must go through :meth:`principal` (first use, due for
        its recheck, or unknown). The fast path of audited reads uses this."""
        fingerprint = hashlib.sha256(presented.encode("utf-8", "surrogatepass")).hexdigest()
        with self._lock:
            found = self._verified.get(fingerprint)
        if found is not None and time.monotonic() - found.checked < self.limits.recheck_seconds:
            return found.principal
        return None

    # --- pieces ------------------------------------------------------------------------------
    def _recheck(self, fingerprint: str, remembered: _Remembered) -> Principal:
        """Re-read a remembered key's row (cheap, no argon2): revoked keys stop here."""
        key_id = remembered.principal.key_id
        with self.sessions() as session:
            found = session.execute(
                select(ApiKey, Organisation.name)
                .join(Organisation, Organisation.id == ApiKey.organisation_id)
                .where(ApiKey.key_id == key_id)
            ).first()
        if found is None or found[0].revoked:
            with self._lock:
                self._verified.pop(fingerprint, None)
            self._fail(key_id, remembered.principal.organisation, "revoked key")
        principal = _principal_of(found[0], found[1])
        with self._lock:
            self._verified[fingerprint] = _Remembered(principal, time.monotonic())
        return principal

    def _fail(self, key_id: str | None, organisation: str | None, detail: str) -> NoReturn:
        self.audit(key_id, organisation, "denied", detail)
        raise RegistryError(401, "Unknown API key", "The API key is unknown or revoked.")

    def _throttle(self, kind: str, value: str | None) -> None:
        """429 when ``value`` (a client address or a key id) failed too often lately."""
        if value is None:
            return
        limit = self.limits.failures_per_key if kind == "key" else self.limits.failures_per_client
        since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=self.limits.window_seconds)
        column = AuditEntry.key_id if kind == "key" else AuditEntry.client
        with self.sessions() as session:
            failures = session.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(
                    column == value,
                    AuditEntry.action == "authenticate",
                    AuditEntry.outcome == "denied",
                    AuditEntry.at >= since,
                )
            )
        if failures < limit:
            return
        window = int(time.time() // self.limits.window_seconds)
        with self._lock:
            first = (f"{kind}:{value}", window) not in self._throttle_logged
            self._throttle_logged.add((f"{kind}:{value}", window))
            if len(self._throttle_logged) > 10_000:
                self._throttle_logged = {k for k in self._throttle_logged if k[1] >= window}
        if first:  # one audit entry per throttled key id or client and window, not one per request
            self.audit(
                value if kind == "key" else None,
                None,
                "throttled",
                f"{failures} failed authentications {'for this key id' if kind == 'key' else 'from this client'} "
                f"in {self.limits.window_seconds:g} s",
            )
        retry = max(1, int(self.limits.window_seconds))
        raise RegistryError(
            429,
            "Too many failed authentications",
            f"{'This key id' if kind == 'key' else 'This client'} failed to authenticate "
            f"{failures} times in the last {self.limits.window_seconds:g} s; retry later.",
            headers={"Retry-After": str(retry)},
        )

    def forget(self) -> None:
        """Drop every remembered key (tests; the periodic recheck makes this unnecessary)."""
        with self._lock:
            self._verified.clear()


def client_of(peer: str | None, forwarded_for: str | None, trusted: list) -> str | None:
    """The client address for the audit log and the limits.

    Policy: the TCP peer address. ``X-Forwarded-For`` is believed only when the peer is one of
    the ``trusted`` proxies (``--trusted-proxy`` / ``CRITFLOW_TRUSTED_PROXIES``); then the client
    is the right-most address in it that is not itself a trusted proxy (the left part of the
    header is whatever the client chose to send). Without trusted proxies the header is ignored.
    """
    if peer is None or not trusted or not forwarded_for or not _trusted(peer, trusted):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a garbled header: fall back to the proxy's own address
        if not _trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer


def _trusted(address: str, trusted: list) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def trusted_proxies(text: str | None) -> list:
    """Parse a comma-separated list of proxy addresses or networks (CIDR)."""
    networks = []
    for part in (text or "").split(","):
        if part.strip():
            try:
                networks.append(ipaddress.ip_network(part.strip(), strict=False))
            except ValueError:
                raise CritflowError(
                    "--trusted-proxy",
                    f"'{part.strip()}' is not an IP address or network",
                    "Give addresses like 10.0.0.5 or networks like 10.0.0.0/24.",
                ) from None
    return networks


__all__ = [
    "ADMIN",
    "ANONYMOUS",
    "KeyStore",
    "Limits",
    "Principal",
    "client_address",
    "client_of",
    "create_key",
    "key_audiences",
    "list_keys",
    "revoke_key",
    "trusted_proxies",
]
