"""The registry's operations, independent of HTTP: create, read, append, list, history, verify,
status changes and bulk ingest — with access rules from the shipped data and an audit log.

Every version is signed by the registry's key (an Ed25519 key of the deployment) and chained by
hash exactly as ``critflow passport`` does on disk, so ``critflow passport verify`` checks an
exported history offline. Appends use optimistic locking on the head hash: the update only
succeeds ``WHERE head_hash = <If-Match>``, so of two concurrent writers exactly one wins.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import fcntl
import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from critflow.errors import CritflowError, Problem
from critflow.passport.battery import STATUSES
from critflow.passport.chain import passport_id as document_id
from critflow.passport.datapoints import audiences, by_field, readable_fields, status_transitions
from critflow.passport.identity import DigitalLink
from critflow.passport.integrity import SigningKey, new_record, verify_chain
from critflow.passport.lot import validate_document
from critflow.passport.views import view
from critflow.registry.auth import ADMIN, KeyStore, Principal
from critflow.registry.database import make_write_engine, session_factory
from critflow.registry.models import AuditEntry, Passport, PassportLink, PassportVersion

MAX_BATCH = 1000
MAX_PAGE = 100


@dataclass
class RegistryError(Exception):
    """An error for the caller: HTTP status, a short title, details, and per-field problems."""

    status: int
    title: str
    detail: str
    problems: list[Problem] = field(default_factory=list)


def passport_key(identifier: str) -> str:
    """The registry's short key of a passport id (first 20 hex digits of its SHA-256)."""
    return hashlib.sha256(identifier.encode("utf-8")).hexdigest()[:20]


def _audience_rank() -> list[str]:
    """Audiences by how much they may read (most first), from the access data."""
    return sorted(audiences(), key=lambda a: -len(readable_fields(a)))


def _status_of(document: dict[str, Any]) -> str:
    if document.get("kind") == "battery":
        return str(document["data"].get("battery_status", "original"))
    return "original"


def _public_view(row_key: str, envelope: dict[str, Any]) -> str:
    record = envelope["record"]
    return json.dumps(
        {
            "key": row_key,
            "passport_id": record["passport_id"],
            "version": record["version"],
            "status": record["status"],
            "hash": envelope["hash"],
            "audience": "public",
            "document": view(record["document"], "public"),
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(str(last_id).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        return int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except (ValueError, UnicodeDecodeError):
        raise RegistryError(
            400, "Bad cursor", "The cursor is not one this registry issued."
        ) from None


class Registry:
    """The passport registry over one database."""

    def __init__(self, engine: Engine, signing_key: SigningKey) -> None:
        self.engine = engine
        self.sessions = session_factory(engine)
        self._write_sessions = session_factory(make_write_engine(engine))
        # SQLite allows one writer: writers queue on a lock (threads) and a lock file (worker
        # processes) instead of SQLite's sleep-and-retry busy handler
        self._write_lock = None
        if engine.url.get_backend_name() == "sqlite":
            self._write_lock = threading.RLock()
            self._write_depth = 0
            lock_path = f"{engine.url.database or 'registry'}.writelock"
            self._lock_file = open(lock_path, "a+b")  # noqa: SIM115 (held for the process's life)
        self.signer = signing_key
        self._public_statement = select(Passport.public_view, Passport.head_hash).where(
            Passport.key == bindparam("key")
        )
        self.keys = KeyStore()

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """A session for a write transaction."""
        if self._write_lock is None:
            with self._write_sessions() as session:
                yield session
            return
        with self._write_lock:
            if self._write_depth == 0:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX)
            self._write_depth += 1
            try:
                with self._write_sessions() as session:
                    yield session
            finally:
                self._write_depth -= 1
                if self._write_depth == 0:
                    fcntl.flock(self._lock_file, fcntl.LOCK_UN)

    def _log(
        self,
        principal: Principal | None,
        action: str,
        key: str | None,
        audience: str | None,
        outcome: str,
        detail: str | None = None,
    ) -> None:
        """Write one audit entry in its own short transaction."""
        with self.writing() as session:
            self._audit(session, principal, action, key, audience, outcome, detail)
            session.commit()

    # --- callers and the audit log -------------------------------------------------------
    def principal(self, presented: str | None) -> Principal:
        with self.sessions() as session:
            found = self.keys.principal(session, presented)
            if found is None:
                self._audit(
                    session, None, "authenticate", None, None, "denied", "unknown or revoked key"
                )
                session.commit()
                raise RegistryError(401, "Unknown API key", "The API key is unknown or revoked.")
            return found

    @staticmethod
    def _audit(
        session: Session,
        principal: Principal | None,
        action: str,
        key: str | None,
        audience: str | None,
        outcome: str,
        detail: str | None = None,
    ) -> None:
        session.add(
            AuditEntry(
                key_id=principal.key_id if principal else None,
                organisation=principal.organisation if principal else None,
                action=action,
                passport_key=key,
                audience=audience,
                purpose=principal.purpose if principal else None,
                outcome=outcome,
                detail=(detail or "")[:500] or None,
            )
        )

    def _deny(
        self,
        session: Session,
        principal: Principal,
        action: str,
        key: str | None,
        audience: str | None,
        status: int,
        title: str,
        detail: str,
    ) -> RegistryError:
        self._audit(session, principal, action, key, audience, "denied", detail)
        session.commit()
        return RegistryError(status, title, detail)

    def _writer(
        self,
        session: Session,
        principal: Principal,
        action: str,
        key: str | None,
        operator: str | None = None,
    ) -> None:
        if principal.anonymous:
            raise self._deny(
                session,
                principal,
                action,
                key,
                None,
                401,
                "API key required",
                "Writing needs an API key with write rights (X-API-Key).",
            )
        if not principal.can_write or not ({"issuer", ADMIN} & principal.audiences):
            raise self._deny(
                session,
                principal,
                action,
                key,
                None,
                403,
                "Not allowed to write",
                "This key has no write right for passports (issuer keys only).",
            )
        if (
            operator is not None
            and operator != principal.organisation
            and ADMIN not in principal.audiences
        ):
            raise self._deny(
                session,
                principal,
                action,
                key,
                None,
                403,
                "Not the issuer",
                f"Only the passport's operator ({operator}) may change it.",
            )

    # --- validation ------------------------------------------------------------------------
    @staticmethod
    def _validated(document: Any) -> dict[str, Any]:
        if not isinstance(document, dict):
            raise RegistryError(
                422, "Invalid passport", "The body must be a passport document (a JSON object)."
            )
        try:
            validate_document(document, where="body")
        except CritflowError as exc:
            raise RegistryError(
                422, "Invalid passport", "The document does not validate.", exc.problems
            ) from None
        return document

    # --- create, read, append ---------------------------------------------------------------
    def create(
        self,
        principal: Principal,
        document: Any,
        session: Session | None = None,
        commit: bool = False,
    ) -> dict[str, Any]:
        """Create a passport; commits in its own write transaction unless given a session."""
        if session is None:
            with self.writing() as own_session:
                return self.create(principal, document, session=own_session, commit=True)
        self._writer(session, principal, "create", None)
        document = self._validated(document)
        identifier = document_id(document)
        key = passport_key(identifier)
        gtin = serial = None
        if document["kind"] == "battery":
            link = DigitalLink.parse(identifier)
            gtin, serial = link.gtin, link.serial
        status = _status_of(document)
        record = new_record(identifier, document, None, status)
        envelope = self.signer.sign(record)
        row = Passport(
            key=key,
            passport_id=identifier,
            kind=document["kind"],
            category=document.get("category"),
            gtin=gtin,
            serial=serial,
            product=document.get("product") or document.get("data", {}).get("chemistry"),
            status=status,
            operator=principal.organisation or "",
            version=1,
            head_hash=envelope["hash"],
            public_view=_public_view(key, envelope),
        )
        session.add(row)
        try:
            session.flush()
        except IntegrityError:
            session.rollback()
            raise RegistryError(
                409,
                "Passport exists",
                f"A passport with id {identifier} exists; append a version instead.",
            ) from None
        session.add(
            PassportVersion(
                passport_pk=row.id,
                version=1,
                hash=envelope["hash"],
                envelope=json.dumps(envelope, ensure_ascii=False),
            )
        )
        self._audit(session, principal, "create", key, "issuer", "allowed")
        if commit:
            session.commit()
        return {"key": key, "passport_id": identifier, "version": 1, "hash": envelope["hash"]}

    @staticmethod
    def _head_text(session: Session, row: Passport) -> str:
        """The signed envelope (JSON text) of a passport's current version."""
        return session.scalar(
            select(PassportVersion.envelope).where(
                PassportVersion.passport_pk == row.id, PassportVersion.version == row.version
            )
        )

    def _head(self, session: Session, row: Passport) -> dict[str, Any]:
        return json.loads(self._head_text(session, row))

    def _row(self, session: Session, key: str) -> Passport:
        row = session.scalar(select(Passport).where(Passport.key == key))
        if row is None:
            raise RegistryError(404, "No such passport", f"No passport has key '{key}'.")
        return row

    def public_json(self, key: str) -> tuple[str, str]:
        """The stored public view and head hash (the fast path for anonymous reads: one indexed
        row, no ORM session, no JSON parsing)."""
        with self.engine.connect() as connection:
            found = connection.execute(self._public_statement, {"key": key}).first()
        if found is None:
            raise RegistryError(404, "No such passport", f"No passport has key '{key}'.")
        return found[0], found[1]

    def key_of(self, gtin: str, serial: str) -> str:
        with self.sessions() as session:
            key = session.scalar(
                select(Passport.key).where(Passport.gtin == gtin, Passport.serial == serial)
            )
        if key is None:
            raise RegistryError(
                404, "No such passport", f"No passport for GTIN {gtin}, serial {serial}."
            )
        return key

    def _audience(
        self, session: Session, principal: Principal, row: Passport, wanted: str | None, action: str
    ) -> str:
        held = set(principal.audiences)
        if "issuer" in held and row.operator != principal.organisation and ADMIN not in held:
            held.discard("issuer")  # an issuer reads other operators' passports like anyone else
        if ADMIN in held:
            held |= set(audiences())
        if wanted is None:
            return next(a for a in _audience_rank() if a in held)
        if wanted not in audiences():
            raise RegistryError(
                400,
                "Unknown audience",
                f"'{wanted}' is not an audience; use {', '.join(audiences())}.",
            )
        if wanted not in held:
            raise self._deny(
                session,
                principal,
                action,
                row.key,
                wanted,
                403,
                "Audience not granted",
                f"This key may not read as '{wanted}'.",
            )
        return wanted

    def read(self, principal: Principal, key: str, audience: str | None = None) -> dict[str, Any]:
        with self.sessions() as session:
            row = self._row(session, key)
            chosen = self._audience(session, principal, row, audience, "read")
            head = self._head_text(session, row)
            record = json.loads(head)["record"]
        if chosen != "public":
            self._log(principal, "read", key, chosen, "allowed")
        return {
            "key": key,
            "passport_id": row.passport_id,
            "version": row.version,
            "status": row.status,
            "hash": row.head_hash,
            "audience": chosen,
            "document": view(record["document"], chosen),
        }

    def append(
        self,
        principal: Principal,
        key: str,
        document: Any,
        if_match: str | None,
        session: Session | None = None,
    ) -> dict[str, Any]:
        if session is None:
            with self.writing() as own_session:
                return self.append(principal, key, document, if_match, own_session)
        row = self._row(session, key)
        self._writer(session, principal, "append", key, row.operator)
        if row.closed:
            raise RegistryError(
                409,
                "Passport closed",
                "The battery was recycled (Art. 77(8)); the passport takes no more versions.",
            )
        if not if_match:
            raise RegistryError(
                428, "If-Match required", "Send the current version hash (ETag) in If-Match."
            )
        document = self._validated(document)
        if document_id(document) != row.passport_id:
            raise RegistryError(
                422,
                "Wrong passport",
                f"The document is passport {document_id(document)}, not {row.passport_id}.",
            )
        return self._append(
            session, principal, row, document, if_match.strip('"'), row.status, [], True
        )

    def _append(
        self,
        session: Session,
        principal: Principal,
        row: Passport,
        document: dict[str, Any],
        expected: str,
        status: str,
        links: list[dict[str, str]],
        commit: bool,
    ) -> dict[str, Any]:
        previous = self._head(session, row)
        if previous["hash"] != expected:
            raise RegistryError(
                412,
                "Stale version",
                f"The passport is at {previous['hash']}; you sent {expected}. Read it again.",
            )
        envelope = self.signer.sign(new_record(row.passport_id, document, previous, status, links))
        version = previous["record"]["version"] + 1
        changed = session.execute(
            update(Passport)
            .where(Passport.id == row.id, Passport.head_hash == expected)
            .values(
                version=version,
                head_hash=envelope["hash"],
                status=status,
                closed=status == "recycled",
                public_view=_public_view(row.key, envelope),
                updated_at=dt.datetime.now(dt.UTC),
            )
        ).rowcount
        if changed != 1:
            session.rollback()
            raise RegistryError(
                412, "Stale version", "Another write changed the passport first. Read it again."
            )
        session.add(
            PassportVersion(
                passport_pk=row.id,
                version=version,
                hash=envelope["hash"],
                envelope=json.dumps(envelope, ensure_ascii=False),
            )
        )
        try:
            session.flush()
        except IntegrityError:
            session.rollback()
            raise RegistryError(
                412, "Stale version", "Another write added this version first."
            ) from None
        self._audit(session, principal, "append", row.key, "issuer", "allowed")
        if commit:
            session.commit()
        return {
            "key": row.key,
            "passport_id": row.passport_id,
            "version": version,
            "hash": envelope["hash"],
        }

    # --- listing, history, verification ------------------------------------------------------
    def list(
        self, filters: dict[str, str | None], cursor: str | None, limit: int
    ) -> dict[str, Any]:
        limit = max(1, min(limit, MAX_PAGE))
        query = select(
            Passport.id,
            Passport.key,
            Passport.passport_id,
            Passport.kind,
            Passport.status,
            Passport.product,
            Passport.operator,
            Passport.gtin,
            Passport.version,
        )
        for name, value in filters.items():
            if value is not None:
                query = query.where(getattr(Passport, name) == value)
        if cursor:
            query = query.where(Passport.id > decode_cursor(cursor))
        query = query.order_by(Passport.id).limit(limit + 1)
        with self.sessions() as session:
            rows = session.execute(query).all()
        items = [
            {
                "key": r.key,
                "passport_id": r.passport_id,
                "kind": r.kind,
                "status": r.status,
                "product": r.product,
                "operator": r.operator,
                "gtin": r.gtin,
                "version": r.version,
            }
            for r in rows[:limit]
        ]
        return {
            "items": items,
            "next_cursor": encode_cursor(rows[limit - 1].id) if len(rows) > limit else None,
        }

    def envelopes(self, session: Session, row: Passport) -> list[dict[str, Any]]:
        texts = session.scalars(
            select(PassportVersion.envelope)
            .where(PassportVersion.passport_pk == row.id)
            .order_by(PassportVersion.version)
        ).all()
        return [json.loads(t) for t in texts]

    def history(self, principal: Principal, key: str, audience: str | None) -> dict[str, Any]:
        with self.sessions() as session:
            row = self._row(session, key)
            chosen = self._audience(session, principal, row, audience, "history")
            versions = [
                {
                    "version": e["record"]["version"],
                    "hash": e["hash"],
                    "previous_hash": e["record"]["previous_hash"],
                    "issued_at": e["record"]["issued_at"],
                    "status": e["record"]["status"],
                    "links": e["record"]["links"],
                    "document": view(e["record"]["document"], chosen),
                }
                for e in self.envelopes(session, row)
            ]
        if chosen != "public":
            self._log(principal, "history", key, chosen, "allowed")
        return {"key": key, "audience": chosen, "versions": versions}

    def verify(self, key: str) -> dict[str, Any]:
        with self.sessions() as session:
            row = self._row(session, key)
            envelopes = self.envelopes(session, row)
        report = verify_chain(
            [(f"version {e['record']['version']}", e) for e in envelopes], {self.signer.public_key}
        )
        return {
            "key": key,
            "passport_id": report.passport_id,
            "versions": report.versions,
            "valid": report.ok,
            "first_broken_link": report.broken,
            "closed": report.closed,
            "registry_public_key": self.signer.public_key,
        }

    def checkpoint(self, key: str) -> dict[str, Any]:
        """A checkpoint of the passport's head (latest version and hash) signed by the registry's
        key, so that an offline verifier detects a copy from which newer versions were withheld."""
        from critflow.passport.checkpoint import make_checkpoint

        with self.sessions() as session:
            row = self._row(session, key)
            passport_id, version, head_hash = row.passport_id, row.version, row.head_hash
        return make_checkpoint(self.signer, passport_id, version, head_hash)

    # --- lifecycle ---------------------------------------------------------------------------
    def change_status(
        self,
        principal: Principal,
        key: str,
        to: str,
        if_match: str | None,
        new_document: Any = None,
    ) -> dict[str, Any]:
        with self.sessions() as session:
            row = self._row(session, key)
            self._writer(session, principal, "status", key, row.operator)
            rule = status_transitions().get((row.status, to))
            if rule is None:
                allowed = sorted(t for f, t in status_transitions() if f == row.status)
                raise RegistryError(
                    409,
                    "Transition not allowed",
                    f"From '{row.status}' a passport can move to: {', '.join(allowed) or 'nothing'}.",
                )
            if not if_match:
                raise RegistryError(
                    428, "If-Match required", "Send the current version hash (ETag) in If-Match."
                )
            head = self._head(session, row)
            document = copy.deepcopy(head["record"]["document"])
            if document.get("kind") == "battery" and to in STATUSES:
                document["data"]["battery_status"] = to
            created = None
            links: list[dict[str, str]] = []
            if rule["new_passport"]:
                if new_document is None:
                    raise RegistryError(
                        422,
                        "New passport needed",
                        f"'{to}' gives the battery a new passport (Art. 77(7)); send new_document.",
                    )
                new_document = copy.deepcopy(self._validated(new_document))
                if new_document.get("kind") == "battery":
                    new_document["data"]["battery_status"] = to
                links = [{"rel": f"{to}_as", "passport_id": document_id(new_document)}]
            result = self._append(
                session, principal, row, document, if_match.strip('"'), to, links, False
            )
            if rule["new_passport"]:
                created = self.create(principal, new_document, session=session)
                new_row = self._row(session, created["key"])
                session.add(PassportLink(from_pk=row.id, to_pk=new_row.id, rel=f"{to}_as"))
            session.commit()
            return {**result, "new_passport": created}

    # --- bulk ingest of dynamic data ---------------------------------------------------------
    def ingest(self, principal: Principal, updates: Any) -> dict[str, Any]:
        if not isinstance(updates, list) or not updates:
            raise RegistryError(
                422, "No updates", 'Send {"updates": [{"passport_id": …, "data": {…}}, …]}.'
            )
        if len(updates) > MAX_BATCH:
            raise RegistryError(413, "Batch too large", f"At most {MAX_BATCH} updates per request.")
        points = by_field()
        with self.writing() as session:
            self._writer(session, principal, "ingest", None)
            written = 0
            for i, item in enumerate(updates):
                where = f"updates[{i}]"
                if (
                    not isinstance(item, dict)
                    or not isinstance(item.get("data"), dict)
                    or "passport_id" not in item
                ):
                    raise RegistryError(422, "Bad update", f"{where} needs passport_id and data.")
                static = [
                    f for f in item["data"] if f not in points or points[f].lifecycle != "dynamic"
                ]
                if static:
                    raise RegistryError(
                        422,
                        "Not dynamic data",
                        f"{where}: {', '.join(static)} are not dynamic data points (Annex XIII 4); "
                        "bulk ingest takes state of health, cycles, events and the like.",
                    )
                row = session.scalar(
                    select(Passport).where(Passport.passport_id == str(item["passport_id"]))
                )
                if row is None:
                    raise RegistryError(
                        404, "No such passport", f"{where}: no passport {item['passport_id']}."
                    )
                self._writer(session, principal, "ingest", row.key, row.operator)
                if row.closed:
                    raise RegistryError(
                        409, "Passport closed", f"{where}: the battery was recycled."
                    )
                head = self._head(session, row)
                document = copy.deepcopy(head["record"]["document"])
                document["data"].update(item["data"])
                try:
                    validate_document(document, where=where)
                except CritflowError as exc:
                    raise RegistryError(
                        422, "Invalid update", "An update does not validate.", exc.problems
                    ) from None
                self._append(session, principal, row, document, head["hash"], row.status, [], False)
                session.expire(row)
                written += 1
            session.commit()
        return {"written": written}
