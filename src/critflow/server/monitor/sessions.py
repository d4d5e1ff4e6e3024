"""Browser sessions of the monitor pages: a user logs in with an API key once; the browser then
holds a random token in a ``Secure; HttpOnly; SameSite=Strict`` cookie. The database keeps only
the token's SHA-256 and the key id; every request re-reads the key's row, so a revoked key ends
its sessions at once, and logging out deletes the session."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import delete, select

from critflow.server.auth import ANONYMOUS, Principal, _principal_of
from critflow.server.models import ApiKey, Organisation
from critflow.server.monitor.models import MonitorSession

COOKIE = "critflow_monitor"
LIFETIME = dt.timedelta(hours=12)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def open_session(registry, principal: Principal) -> str:
    """A new session for ``principal`` (a verified key); returns the cookie's token."""
    token = secrets.token_urlsafe(32)
    now = dt.datetime.now(dt.UTC)
    with registry.writing() as session:
        session.execute(delete(MonitorSession).where(MonitorSession.expires_at < now))
        session.add(
            MonitorSession(
                token_hash=_hash(token),
                key_id=principal.key_id,
                created_at=now,
                expires_at=now + LIFETIME,
            )
        )
        registry._audit(session, principal, "monitor:login", None, None, "allowed", None)
        session.commit()
    return token


def close_session(registry, token: str | None) -> None:
    if not token:
        return
    with registry.writing() as session:
        session.execute(delete(MonitorSession).where(MonitorSession.token_hash == _hash(token)))
        session.commit()


def session_principal(registry, token: str | None) -> Principal:
    """The caller a session cookie stands for; ANONYMOUS for no, an unknown or an expired
    session, or a revoked key."""
    if not token or len(token) > 100:
        return ANONYMOUS
    with registry.sessions() as session:
        found = session.execute(
            select(MonitorSession, ApiKey, Organisation.name)
            .join(ApiKey, ApiKey.key_id == MonitorSession.key_id)
            .join(Organisation, Organisation.id == ApiKey.organisation_id)
            .where(MonitorSession.token_hash == _hash(token))
        ).first()
    if found is None:
        return ANONYMOUS
    row, key, organisation = found
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=dt.UTC)
    if key.revoked or expires < dt.datetime.now(dt.UTC):
        return ANONYMOUS
    return _principal_of(key, organisation)
