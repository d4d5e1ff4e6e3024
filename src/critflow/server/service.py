"""The registry's operations, independent of HTTP: create, read, append, list, history, verify,
status changes and bulk ingest — with access rules from the shipped data and an audit log.

Every version is signed by the registry's key (an Ed25519 key of the deployment) and chained by
hash exactly as ``critflow passport`` does on disk, so ``critflow passport verify`` checks an
exported history offline. Appends use optimistic locking on the head hash: the update only
succeeds ``WHERE head_hash = <If-Match>``, so of two concurrent writers exactly one wins.

A refused operation changes nothing: the write transaction is rolled back first, and the audit
entry of the refusal is written afterwards. Audit entries that are not part of a write (reads of
restricted data, refusals, authentications) go through the worker's group committer
(:mod:`critflow.server.audit`): the request is answered only once its entry is committed, and
concurrent requests share one commit. Every response passes through
:mod:`critflow.server.disclosure`, the one audience filter.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import fcntl
import functools
import hashlib
import json
import math
import os
import threading
from collections import namedtuple
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, and_, bindparam, insert, or_, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from critflow.errors import CritflowError, Problem
from critflow.passport.battery import STATUSES
from critflow.passport.chain import passport_id as document_id
from critflow.passport.datapoints import audiences, by_field, readable_fields, status_transitions
from critflow.passport.identity import DigitalLink, IdentifierError
from critflow.passport.integrity import SigningKey, new_record, verify_chain
from critflow.passport.lot import validate_document
from critflow.server import disclosure, signing
from critflow.server.audit import GroupCommitter, defer_audit
from critflow.server.auth import ADMIN, KeyStore, Limits, Principal, client_address
from critflow.server.database import autocommit_reads, make_write_engine, session_factory
from critflow.server.models import AuditEntry, Passport, PassportLink, PassportVersion, now
from critflow.server.organisations import gtin_owned, identity, operator_identifier
from critflow.server.problems import RegistryError

__all__ = ["MAX_BATCH", "MAX_PAGE", "Registry", "RegistryError", "passport_key"]

MAX_BATCH = 1000
MAX_PAGE = 100
MAX_DEPTH = 32
"""Deepest nesting of JSON arrays and objects a request body may have (a passport needs 5)."""
_MAX_CURSOR = 2**63 - 1
_MAX_INTEGER = 2**53
"""Largest integer magnitude exchanged exactly between JSON implementations (RFC 7493, I-JSON)."""

_Method = TypeVar("_Method", bound=Callable[..., Any])

# statements built once: SQLAlchemy memoises a statement object's cache key, so a write reuses
# the compiled form without walking the statement again (a group commit runs many in a row)
_INSERT_AUDIT = insert(AuditEntry.__table__)


def _identity_of(session: Session, organisation: str) -> Any:
    """An organisation's registered identifiers, read once per transaction (a group commit
    checks many creates of one issuer in one transaction; no write in it changes them)."""
    known = session.info.setdefault("critflow_identities", {})
    if organisation not in known:
        known[organisation] = identity(session, organisation)
    return known[organisation]


def passport_key(identifier: str) -> str:
    """The registry's short key of a passport id (first 20 hex digits of its SHA-256)."""
    return hashlib.sha256(identifier.encode("utf-8")).hexdigest()[:20]


@functools.lru_cache(maxsize=1)
def _audience_rank() -> tuple[str, ...]:
    """Audiences by how much they may read (most first), from the access data."""
    return tuple(sorted(audiences(), key=lambda a: -len(readable_fields(a))))


def _status_of(document: dict[str, Any]) -> str:
    if document.get("kind") == "battery":
        return str(document["data"].get("battery_status", "original"))
    return "original"


def _unchanged_standing(before: dict[str, Any], after: dict[str, Any], where: str) -> None:
    """An append or an ingest keeps the passport's kind and the battery's status: a status
    changes only through POST /api/passports/{key}/status, which follows the transitions of
    passport_status_transitions.csv and keeps the registry's status in step with the document."""
    if after.get("kind") != before.get("kind"):
        raise RegistryError(
            409,
            "Kind cannot change",
            f"{where}: the passport is a {before.get('kind')} passport; a version cannot make it "
            f"a {after.get('kind')} passport.",
        )
    if before.get("kind") != "battery":
        return
    old = before.get("data", {}).get("battery_status")
    new = after.get("data", {}).get("battery_status")
    if new != old:
        raise RegistryError(
            409,
            "Status changes through /status",
            f"{where}: data.battery_status is '{old}'; change it with POST "
            '/api/passports/{key}/status ({"to": …}), which checks the transition and '
            "records it.",
        )


def _public_view(row_key: str, envelope: dict[str, Any]) -> str:
    """The stored public view (kept under this name for the load benchmark)."""
    return disclosure.public_view_text(row_key, envelope)


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(str(last_id).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The row id a cursor stands for; 400 for anything this registry could not have issued."""
    try:
        value = int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except (ValueError, UnicodeDecodeError):
        value = -1
    if not 0 <= value <= _MAX_CURSOR:
        raise RegistryError(400, "Bad cursor", "The cursor is not one this registry issued.")
    return value


def _plain_json(value: Any) -> bool:
    """True when ``value`` holds no non-finite float, no integer beyond 2^53 and nests at most
    MAX_DEPTH levels — what :func:`check_json` accepts — found without building a field path
    for every value (a passport has about 120; the path is spelt out only for a refusal)."""
    isfinite = math.isfinite
    stack: list[tuple[Any, int]] = [(value, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        item, depth = pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is float:
            if not isfinite(item):
                return False
        elif kind is int:
            if item > _MAX_INTEGER or item < -_MAX_INTEGER:
                return False
        elif kind is dict or kind is list:
            if depth >= MAX_DEPTH:
                return False
            for child in item.values() if kind is dict else item:
                push((child, depth + 1))
        elif isinstance(item, dict | list | float | int):  # subclasses: the full check decides
            return False
    return True


def check_json(value: Any, where: str = "body", depth: int = 0) -> None:
    """Refuse what JSON (RFC 8259) has no number for — NaN, Infinity, 1e999 (Python reads them as
    non-finite floats) — and nesting deeper than MAX_DEPTH; names the field path (422)."""
    if depth == 0 and _plain_json(value):
        return
    _check_json(value, where, depth)


def _check_json(value: Any, where: str, depth: int) -> None:
    """:func:`check_json` walking with the field path (it raises for the first refusal)."""
    if isinstance(value, float) and not math.isfinite(value):
        shown = "NaN" if math.isnan(value) else ("-" if value < 0 else "") + "Infinity"
        raise RegistryError(
            422,
            "Not a JSON number",
            f"{where}: {shown} (or a number beyond 1.8e308, such as 1e999) is not a JSON number",
            [
                Problem(
                    where,
                    f"{shown} is not a number JSON allows (RFC 8259 section 6 has no NaN or "
                    "Infinity; a literal such as 1e999 overflows to Infinity)",
                    "Send a finite number in the data point's unit.",
                )
            ],
        )
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _MAX_INTEGER:
        raise RegistryError(
            422,
            "Number too large",
            f"{where}: an integer of {len(str(abs(value)))} digits",
            [
                Problem(
                    where,
                    "is an integer beyond 2^53, which JSON implementations do not exchange "
                    "exactly (RFC 7493, I-JSON)",
                    "Send a number within the data point's plausible range.",
                )
            ],
        )
    if isinstance(value, dict | list):
        if depth >= MAX_DEPTH:
            raise RegistryError(
                422,
                "Nested too deeply",
                f"{where}: JSON nested more than {MAX_DEPTH} levels deep",
                [Problem(where, f"nested more than {MAX_DEPTH} levels", "Flatten the value.")],
            )
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for name, item in items:
            _check_json(
                item,
                f"{where}.{name}" if isinstance(value, dict) else f"{where}[{name}]",
                depth + 1,
            )


class _KeyRead:
    """A SELECT with one parameter, ``key``, compiled once for ``engine``'s dialect: its SQL,
    its parameters for a key (positional or named, as the driver wants them) and a named-tuple
    type for its rows."""

    def __init__(self, engine: Engine, statement: Any) -> None:
        compiled = statement.compile(dialect=engine.dialect)
        self.sql = str(compiled)
        self.positional = bool(compiled.positional)
        self.row = namedtuple("Row", [c.key for c in statement.selected_columns])

    def parameters(self, key: str) -> tuple[str] | dict[str, str]:
        return (key,) if self.positional else {"key": key}


class _Held:
    """A DBAPI connection of ``engine`` that each thread keeps for itself: the hot paths (reads
    on the event loop, the group committer's audit batches) run their statements on it without a
    pool checkout and check-in per request (SQLAlchemy's pool work, reset included, was a sixth
    of an audited read's CPU). A connection found dead (the database restarted and dropped it)
    is discarded and the work done once more on a fresh one."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._local = threading.local()

    def run(self, work: Callable[[Any], Any]) -> Any:
        """``work(dbapi_connection)``, retried once on a fresh connection after a disconnect."""
        dialect = self.engine.dialect
        for attempt in (1, 2):
            held = getattr(self._local, "held", None)
            if held is None or held[0] != os.getpid() or not held[1].is_valid:
                held = self._local.held = (os.getpid(), self.engine.raw_connection())
            connection = held[1]
            try:
                return work(connection.dbapi_connection)
            except dialect.loaded_dbapi.Error as exc:
                if attempt == 2 or not dialect.is_disconnect(
                    exc, connection.dbapi_connection, None
                ):
                    raise
                self._local.held = None
                connection.invalidate(exc)
        return None  # pragma: no cover - the loop returns or raises

    def close(self) -> None:
        """Give this thread's connection back (tests; a worker keeps it for its life)."""
        held = getattr(self._local, "held", None)
        self._local.held = None
        if held is not None and held[0] == os.getpid():
            held[1].close()


_AUDIT_COLUMNS = (
    "at",
    "key_id",
    "organisation",
    "action",
    "passport_key",
    "audience",
    "purpose",
    "outcome",
    "detail",
    "client",
)
"""The columns of an audit row (:meth:`Registry._entry` stamped by :meth:`Registry._stamped`)."""


class _Insert:
    """An INSERT of ``columns`` into ``table`` compiled once for ``engine``'s dialect (with
    ``RETURNING id`` when ``returning``), its parameters converted by the column types' own
    bind processors (a time on SQLite is stored exactly as SQLAlchemy stores it), for the
    driver's ``execute``/``executemany`` — the hot writes skip SQLAlchemy's per-statement work.
    Every column is given (no column default is applied)."""

    def __init__(
        self, engine: Engine, table: Any, columns: tuple[str, ...], returning: bool = False
    ) -> None:
        statement = insert(table).values({name: bindparam(name) for name in columns})
        if returning:
            statement = statement.returning(table.c.id)
        compiled = statement.compile(dialect=engine.dialect)
        self.columns = columns
        self.sql = str(compiled)
        self.order = tuple(compiled.positiontup) if compiled.positional else None
        self.convert = {
            name: processor
            for name in columns
            if (processor := table.c[name].type._cached_bind_processor(engine.dialect)) is not None
        }

    def parameters(self, row: dict[str, Any]) -> Any:
        """``row`` (every column of the statement) as the driver takes it."""
        if self.convert:
            row = dict(row)
            for name, processor in self.convert.items():
                row[name] = processor(row[name])
        return tuple(row[name] for name in self.order) if self.order is not None else row


_PASSPORT_COLUMNS = (
    "key",
    "passport_id",
    "kind",
    "category",
    "gtin",
    "serial",
    "product",
    "status",
    "operator",
    "version",
    "head_hash",
    "public_view",
    "closed",
    "created_at",
    "updated_at",
)
_VERSION_COLUMNS = ("passport_pk", "version", "hash", "envelope", "created_at")


def _refusals_audited(method: _Method) -> _Method:
    """Write the audit entry a refusal carries, after the refused transaction was rolled back
    (only at the outermost call: a nested call's refusal is written once, by its caller)."""

    @functools.wraps(method)
    def wrapper(self: Registry, *args: Any, **kwargs: Any) -> Any:
        outermost = not getattr(self._depth, "value", 0)
        self._depth.value = getattr(self._depth, "value", 0) + 1
        try:
            return method(self, *args, **kwargs)
        except RegistryError as exc:
            if outermost and exc.audit is not None:
                entry, exc.audit = exc.audit, None
                self._log_entry(**entry)
            raise
        finally:
            self._depth.value -= 1

    return wrapper  # type: ignore[return-value]


class Registry:
    """The passport registry over one database."""

    def __init__(
        self,
        engine: Engine,
        signing_key: SigningKey,
        key_file: Path | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.engine = engine
        self.sessions = session_factory(engine)
        self._write_engine = make_write_engine(engine)
        self._write_sessions = session_factory(self._write_engine)
        # SQLite allows one writer: writers queue on a lock (threads) and a lock file (worker
        # processes) instead of SQLite's sleep-and-retry busy handler
        self._write_lock = None
        if engine.url.get_backend_name() == "sqlite":
            self._write_lock = threading.RLock()
            self._write_depth = 0
            lock_path = f"{engine.url.database or 'registry'}.writelock"
            self._lock_file = open(lock_path, "a+b")  # noqa: SIM115 (held for the process's life)
        self.signer = signing_key
        self.key_file = key_file
        self._reads = autocommit_reads(engine)
        self._public_statement = _KeyRead(
            self._reads, select(Passport.public_view).where(Passport.key == bindparam("key"))
        )
        # a passport and its head version's envelope in one indexed query (audited reads)
        self._head_statement = _KeyRead(
            self._reads,
            select(
                Passport.key,
                Passport.kind,
                Passport.operator,
                Passport.public_view,
                PassportVersion.envelope,
            )
            .join(
                PassportVersion,
                and_(
                    PassportVersion.passport_pk == Passport.id,
                    PassportVersion.version == Passport.version,
                ),
            )
            .where(Passport.key == bindparam("key")),
        )
        self._depth = threading.local()
        self._integrity_error = engine.dialect.loaded_dbapi.IntegrityError
        self._held_reads = _Held(self._reads)
        self._audit_writer = _Held(self._write_engine)
        self._audit_insert = _Insert(engine, AuditEntry.__table__, _AUDIT_COLUMNS)
        self._passport_insert = _Insert(engine, Passport.__table__, _PASSPORT_COLUMNS, True)
        self._version_insert = _Insert(engine, PassportVersion.__table__, _VERSION_COLUMNS)
        self.committer = GroupCommitter(self.writing, self.write_audit)
        self.keys = KeyStore(self.sessions, self._log_authentication, limits)

    # --- transactions and the audit log --------------------------------------------------------
    @contextmanager
    def writing(self) -> Iterator[Session]:
        """A session for a write transaction (rolled back unless committed)."""
        with self._write_locked(), self._write_sessions() as session:
            yield session

    @contextmanager
    def _write_locked(self) -> Iterator[None]:
        """Hold the write lock (SQLite: this process's threads and the other workers queue on it;
        PostgreSQL: nothing to hold)."""
        if self._write_lock is None:
            yield
            return
        with self._write_lock:
            if self._write_depth == 0:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX)
            self._write_depth += 1
            try:
                yield
            finally:
                self._write_depth -= 1
                if self._write_depth == 0:
                    fcntl.flock(self._lock_file, fcntl.LOCK_UN)

    def write_audit(self, rows: list[dict[str, Any]]) -> bool:
        """Insert audit ``rows`` in one transaction and commit (the group committer's batches
        of audit entries alone): one ``executemany`` on a connection the committer thread
        keeps, no session. False (nothing written) for rows not of the usual form — the
        committer then writes them in a session. Raises when the commit fails (nothing of the
        batch written). A batch whose connection turns out dead is written again on a fresh one
        (after a lost COMMIT, a row may then be in the log twice — never missing)."""
        if not rows or any(len(row) != len(_AUDIT_COLUMNS) for row in rows):
            return False
        if any(name not in row for row in rows for name in _AUDIT_COLUMNS):
            return False
        parameters = [self._audit_insert.parameters(row) for row in rows]
        sql = self._audit_insert.sql
        sqlite = self._write_lock is not None

        def write(connection: Any) -> None:
            cursor = connection.cursor()
            try:
                if sqlite:  # the writer's connections are in autocommit mode: BEGIN ourselves
                    cursor.execute("BEGIN IMMEDIATE")
                try:
                    cursor.executemany(sql, parameters)
                    if sqlite:
                        cursor.execute("COMMIT")
                    else:
                        connection.commit()
                except BaseException:
                    try:
                        if sqlite:
                            cursor.execute("ROLLBACK")
                        else:
                            connection.rollback()
                    except Exception:  # the first error is the one raised
                        pass
                    raise
            finally:
                cursor.close()

        with self._write_locked():
            self._audit_writer.run(write)
        return True

    @staticmethod
    def _entry(
        principal: Principal | None,
        action: str,
        key: str | None,
        audience: str | None,
        outcome: str,
        detail: str | None = None,
    ) -> dict[str, Any]:
        return {
            "key_id": principal.key_id if principal else None,
            "organisation": principal.organisation if principal else None,
            "action": action,
            "passport_key": key,
            "audience": audience,
            "purpose": principal.purpose if principal else None,
            "outcome": outcome,
            "detail": (detail or "")[:500] or None,
        }

    @staticmethod
    def _stamped(entry: dict[str, Any]) -> dict[str, Any]:
        """An audit row: the entry with the time and the client's address of this request."""
        return {**entry, "at": now(), "client": client_address.get()}

    def _log_entry(self, **entry: Any) -> None:
        """Write one audit entry and return once it is committed (group commit: concurrent
        requests share one transaction)."""
        self.committer.write(self._stamped(entry))

    def _log(
        self,
        principal: Principal | None,
        action: str,
        key: str | None,
        audience: str | None,
        outcome: str,
        detail: str | None = None,
    ) -> None:
        self._log_entry(**self._entry(principal, action, key, audience, outcome, detail))

    def _log_authentication(
        self, key_id: str | None, organisation: str | None, outcome: str, detail: str
    ) -> None:
        self._log_entry(
            key_id=key_id,
            organisation=organisation,
            action="authenticate",
            passport_key=None,
            audience=None,
            purpose=None,
            outcome=outcome,
            detail=detail,
        )

    def _audit(
        self,
        session: Session,
        principal: Principal | None,
        action: str,
        key: str | None,
        audience: str | None,
        outcome: str,
        detail: str | None = None,
    ) -> None:
        """An audit entry inside the caller's transaction (for allowed writes: it commits or
        rolls back with them)."""
        row = self._stamped(self._entry(principal, action, key, audience, outcome, detail))
        if not defer_audit(session, row):
            session.connection().execute(_INSERT_AUDIT, row)

    def principal(self, presented: str | None) -> Principal:
        """The caller of a request (see :class:`KeyStore`)."""
        return self.keys.principal(presented)

    @_refusals_audited
    def require_admin(self, principal: Principal, action: str) -> None:
        """403 (audited) unless ``principal`` holds the admin audience."""
        if principal.anonymous:
            raise self._deny(
                principal, action, None, None, 401, "API key required", "Send an admin key."
            )
        if ADMIN not in principal.audiences:
            raise self._deny(
                principal,
                action,
                None,
                None,
                403,
                "Administrators only",
                "This needs a key with the admin audience.",
            )

    def log_admin(
        self, principal: Principal, action: str, outcome: str, detail: str | None
    ) -> None:
        """Audit an administration request."""
        self._log(principal, action, None, ADMIN, outcome, detail)

    def _deny(
        self,
        principal: Principal,
        action: str,
        key: str | None,
        audience: str | None,
        status: int,
        title: str,
        detail: str,
    ) -> RegistryError:
        """A refusal to raise; its audit entry is written after the rollback."""
        return RegistryError(
            status,
            title,
            detail,
            audit=self._entry(principal, action, key, audience, "denied", detail),
        )

    def _writer(
        self,
        principal: Principal,
        action: str,
        key: str | None,
        operator: str | None = None,
    ) -> None:
        if principal.anonymous:
            raise self._deny(
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
                principal,
                action,
                key,
                None,
                403,
                "Not the issuer",
                f"Only the passport's operator ({operator}) may change it.",
            )

    def _identity(
        self,
        session: Session,
        principal: Principal,
        action: str,
        key: str | None,
        document: dict[str, Any],
        organisation: str,
        creating: bool,
    ) -> None:
        """A battery passport is filed only under ``organisation``'s GS1 Company Prefixes and
        carries one of its economic-operator identifiers (see organisations.py). Appends keep
        the identifier; an organisation with none registered yet (a database from before the
        registration existed) may still append to its own passports.

        A lot id is first come, first served, unless it is a Digital Link: then it is some
        battery's id, and only the holder of its GTIN's prefix may file it (a lot under another
        manufacturer's next serial would take that battery's id)."""
        if document.get("kind") != "battery":
            if not creating:
                return
            try:
                link = DigitalLink.parse(document_id(document))
            except IdentifierError:
                return
            owned = _identity_of(session, organisation)
            if not gtin_owned(link.gtin, owned.prefixes):
                prefixes = ", ".join(owned.prefixes) or "none registered"
                raise self._deny(
                    principal,
                    action,
                    key,
                    None,
                    403,
                    "GTIN not yours",
                    f"The lot id is a GS1 Digital Link with GTIN {link.gtin}, which is not "
                    f"under a GS1 Company Prefix of {organisation} ({prefixes}); give the lot "
                    "an id of your own.",
                )
            return
        owned = _identity_of(session, organisation)
        gtin = DigitalLink.parse(document_id(document)).gtin
        if creating and not gtin_owned(gtin, owned.prefixes):
            prefixes = ", ".join(owned.prefixes) or "none registered"
            raise self._deny(
                principal,
                action,
                key,
                None,
                403,
                "GTIN not yours",
                f"GTIN {gtin} is not under a GS1 Company Prefix of {organisation} "
                f"({prefixes}); an administrator registers prefixes with `critflow keys org`.",
            )
        stated = operator_identifier(document)
        if not creating and not owned.operator_ids:
            return
        if stated is None:
            raise RegistryError(
                422,
                "Operator identifier needed",
                "data.responsible_operator must be {name, identifier} with your "
                "economic-operator identifier, so the passport is tied to your organisation.",
                [
                    Problem(
                        "body: data.responsible_operator",
                        "has no identifier",
                        f"Write {{name: …, identifier: "
                        f"{(owned.operator_ids or ('<your EORI number>',))[0]}}}.",
                    )
                ],
            )
        if stated not in owned.operator_ids:
            raise self._deny(
                principal,
                action,
                key,
                None,
                403,
                "Operator identifier not yours",
                f"responsible_operator.identifier '{stated}' is not registered to "
                f"{organisation} ({', '.join(owned.operator_ids) or 'none registered'}).",
            )

    # --- validation ------------------------------------------------------------------------
    @staticmethod
    def _validated(document: Any, where: str = "body", checked: bool = False) -> dict[str, Any]:
        """The document, validated; ``checked``: :func:`check_json` passed on it already."""
        if not isinstance(document, dict):
            raise RegistryError(
                422, "Invalid passport", "The body must be a passport document (a JSON object)."
            )
        if not checked:
            check_json(document, where)
        try:
            validate_document(document, where=where)
        except CritflowError as exc:
            raise RegistryError(
                422, "Invalid passport", "The document does not validate.", exc.problems
            ) from None
        return document

    # --- signing ----------------------------------------------------------------------------
    def _check_signer(self, session: Session) -> None:
        """Make sure ``self.signer`` is the registry's current key (checked once per
        transaction, share-locked on PostgreSQL so a rotation waits for this write)."""
        if not session.info.get("signer_checked"):
            current = signing.current_public_key(session, lock=True)
            if current != self.signer.public_key:
                self._reload_key(current)
            session.info["signer_checked"] = True

    def _sign(self, session: Session, record: dict[str, Any]) -> dict[str, Any]:
        """Sign with the registry's current key."""
        self._check_signer(session)
        return self._sign_now(record)

    def _sign_now(self, record: dict[str, Any]) -> dict[str, Any]:
        """Sign with ``self.signer`` (the caller checks it is current in its transaction)."""
        try:
            return self.signer.sign(record)
        except (TypeError, ValueError) as exc:  # canonical JSON refuses the record
            raise RegistryError(
                422, "Not signable", f"The document cannot be canonicalised: {exc}"
            ) from None

    def _reload_key(self, current: str | None) -> None:
        """After a rotation: load the new key file; refuse writes until it is the current key."""
        if self.key_file is not None and current is not None:
            try:
                key = signing.load_registry_key(self.key_file)
            except CritflowError:
                key = None
            if key is not None and key.public_key == current:
                self.signer = key
                return
        raise RegistryError(
            503,
            "Signing key rotated",
            "The registry's signing key changed and this server does not hold the new one yet; "
            "retry shortly (or copy the new key file to this server).",
            headers={"Retry-After": "5"},
        )

    # --- create, read, append ---------------------------------------------------------------
    @_refusals_audited
    def create(self, principal: Principal, document: Any) -> dict[str, Any]:
        """Create a passport, acknowledged once it is durable. Validation, canonicalisation and
        signing happen before any database access; the insert checks the organisation's
        identifiers and the signing key (:meth:`store_created`)."""
        return self.store_created(principal, self._prepare_create(principal, document))

    @property
    def groups_creates(self) -> bool:
        """Whether creates share the group committer's transactions (SQLite: one writer at a
        time, so concurrent creates share one commit and one fsync). On PostgreSQL each create
        commits in its own transaction: concurrent transactions overlap their round trips and
        the server flushes concurrent commits together, where one committer thread would run
        every create's statements one after another (measured slower under load)."""
        return self._write_lock is not None

    def store_created(self, principal: Principal, prepared: dict[str, Any]) -> dict[str, Any]:
        """Insert a prepared passport (:meth:`prepare_create`) and commit: in a savepoint of the
        group committer's next transaction (see :attr:`groups_creates`; a refused one is rolled
        back alone) or in a transaction of its own."""
        if self.groups_creates:
            return self.committer.run(  # SQL statements only (no ORM objects)
                lambda session: self._insert_created(session, principal, prepared), orm=False
            )
        with self.writing() as session:
            result = self._insert_created(session, principal, prepared)
            session.commit()
            return result

    def _create(self, session: Session, principal: Principal, document: Any) -> dict[str, Any]:
        """Create a passport in the caller's transaction (a repurposing's new passport)."""
        return self._insert_created(session, principal, self._prepare_create(principal, document))

    def prepare_create(
        self, principal: Principal, document: Any, checked: bool = False
    ) -> dict[str, Any]:
        """What :meth:`create` inserts — the new passport's row and signed first version —
        before any database access (raises RegistryError, its refusal's audit entry not
        written, when it is refused). Insert it with :meth:`insert_created` in a write
        transaction; ``checked``: the document passed :func:`check_json` already."""
        return self._prepare_create(principal, document, checked)

    def insert_created(
        self, session: Session, principal: Principal, prepared: dict[str, Any]
    ) -> dict[str, Any]:
        """Insert a prepared passport (:meth:`prepare_create`) in ``session``'s transaction."""
        return self._insert_created(session, principal, prepared)

    def _prepare_create(
        self, principal: Principal, document: Any, checked: bool = False
    ) -> dict[str, Any]:
        """The new passport's row and signed first version, before any database access."""
        self._writer(principal, "create", None)
        document = self._validated(document, checked=checked)
        identifier = document_id(document)
        key = passport_key(identifier)
        gtin = serial = None
        if document["kind"] == "battery":
            link = DigitalLink.parse(identifier)
            gtin, serial = link.gtin, link.serial
        status = _status_of(document)
        envelope = self._sign_now(new_record(identifier, document, None, status))
        return {
            "document": document,
            "envelope": envelope,
            "row": {
                "key": key,
                "passport_id": identifier,
                "kind": document["kind"],
                "category": document.get("category"),
                "gtin": gtin,
                "serial": serial,
                "product": document.get("product") or document.get("data", {}).get("chemistry"),
                "status": status,
                "operator": principal.organisation or "",
                "version": 1,
                "head_hash": envelope["hash"],
                "public_view": disclosure.public_view_text(key, envelope),
            },
        }

    def _insert_created(
        self, session: Session, principal: Principal, prepared: dict[str, Any]
    ) -> dict[str, Any]:
        """Insert a prepared passport in the caller's transaction (409 when its id exists)."""
        row, document = prepared["row"], prepared["document"]
        key, identifier = row["key"], row["passport_id"]
        self._identity(
            session, principal, "create", key, document, principal.organisation or "", True
        )
        self._check_signer(session)
        if prepared["envelope"]["public_key"] != self.signer.public_key:  # rotated meanwhile
            prepared = self._prepare_create(principal, document)
            row = prepared["row"]
        envelope = prepared["envelope"]
        # on the session's own driver connection, inside its transaction (or savepoint)
        driver = session.connection().connection.dbapi_connection
        at = now()
        cursor = driver.cursor()
        try:
            try:
                cursor.execute(
                    self._passport_insert.sql,
                    self._passport_insert.parameters(
                        {**row, "closed": False, "created_at": at, "updated_at": at}
                    ),
                )
            except self._integrity_error:  # the caller's transaction (or savepoint) rolls back
                raise RegistryError(
                    409,
                    "Passport exists",
                    f"A passport with id {identifier} exists; append a version instead.",
                ) from None
            pk = cursor.fetchone()[0]
            cursor.execute(
                self._version_insert.sql,
                self._version_insert.parameters(
                    {
                        "passport_pk": pk,
                        "version": 1,
                        "hash": envelope["hash"],
                        "envelope": json.dumps(envelope, ensure_ascii=False),
                        "created_at": at,
                    }
                ),
            )
        finally:
            cursor.close()
        self._audit(session, principal, "create", key, "issuer", "allowed")
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

    def _held_row(self, statement: _KeyRead, key: str) -> Any:
        """:meth:`_row_of` on the calling thread's own connection (the event loop's fast path:
        no pool checkout per read)."""

        def read(connection: Any) -> Any:
            cursor = connection.cursor()
            try:
                cursor.execute(statement.sql, statement.parameters(key))
                return cursor.fetchone()
            finally:
                cursor.close()

        found = self._held_reads.run(read)
        return None if found is None else statement.row(*found)

    def _row_of(self, statement: Any, key: str, held: bool = False) -> Any:
        """The first row of a single-statement read by passport key (None when there is none).

        The statement was compiled once (:class:`_KeyRead`) and runs on the pooled DBAPI
        connection itself: SQLAlchemy's per-execution work (the statement's cache key, the
        execution context, the result object) was half of an audited read's CPU. A connection
        found dead (the database restarted) is discarded and the read tried once more on a fresh
        one. ``held``: on the calling thread's own connection (:meth:`_held_row`)."""
        if held:
            return self._held_row(statement, key)
        dialect = self._reads.dialect
        for attempt in (1, 2):
            with self._reads.connect() as connection:
                dbapi_connection = connection.connection
                try:
                    cursor = dbapi_connection.cursor()
                    try:
                        cursor.execute(statement.sql, statement.parameters(key))
                        found = cursor.fetchone()
                    finally:
                        cursor.close()
                except dialect.loaded_dbapi.Error as exc:
                    if attempt == 2 or not dialect.is_disconnect(exc, dbapi_connection, None):
                        raise
                    connection.invalidate(exc)
                    continue
            return None if found is None else statement.row(*found)
        return None  # pragma: no cover - the loop returns or raises

    def public_json(self, key: str, held: bool = False) -> tuple[str, str]:
        """The stored public view and its ETag (the fast path for anonymous reads: one indexed
        row, no ORM session, no JSON parsing; the ETag is the digest of the text itself).
        ``held``: read on the calling thread's own connection (the event loop's)."""
        row = self._row_of(self._public_statement, key, held)
        text = row[0] if row is not None else None
        if text is None:
            raise RegistryError(404, "No such passport", f"No passport has key '{key}'.")
        return text, disclosure.body_etag(text)

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

    def held(self, principal: Principal, operator: str | None) -> set[str]:
        """Audiences ``principal`` holds on a passport of ``operator``: an issuer is an issuer
        of its own passports only; an admin holds every audience."""
        held = set(principal.audiences)
        if ADMIN in held:
            return held | set(audiences())
        if "issuer" in held and operator != principal.organisation:
            held.discard("issuer")  # an issuer reads other operators' passports like anyone else
        return held & set(audiences())

    def _audience(
        self, principal: Principal, row: Passport, wanted: str | None, action: str
    ) -> str:
        held = self.held(principal, row.operator)
        if wanted is None:
            return next(a for a in _audience_rank() if a in held)
        if wanted not in audiences():
            raise RegistryError(
                400,
                "Unknown audience",
                f"'{wanted[:40]}' is not an audience; use {', '.join(audiences())}.",
            )
        if wanted not in held:
            raise self._deny(
                principal,
                action,
                row.key,
                wanted,
                403,
                "Audience not granted",
                f"This key may not read as '{wanted}'.",
            )
        return wanted

    @_refusals_audited
    def read(self, principal: Principal, key: str, audience: str | None = None) -> tuple[str, str]:
        """The passport as the caller's audience may read it: (JSON text, ETag). A read of
        restricted data returns once its audit entry is committed."""
        text, etag, entry = self.prepare_read(principal, key, audience)
        if entry is not None:
            self.committer.write(entry)
        return text, etag

    def prepare_read(
        self, principal: Principal, key: str, audience: str | None = None, held: bool = False
    ) -> tuple[str, str, dict[str, Any] | None]:
        """What :meth:`read` answers — (JSON text, ETag, audit row or None for a public read) —
        without writing the audit row: the caller must commit it (``self.committer``) before it
        answers. One indexed query; raises RegistryError (with the refusal's audit entry, not
        written) when the read is refused. ``held``: read on the calling thread's own
        connection (the event loop's)."""
        row = self._row_of(self._head_statement, key, held)
        if row is None:
            raise RegistryError(404, "No such passport", f"No passport has key '{key}'.")
        chosen = self._audience(principal, row, audience, "read")
        if chosen == "public":
            return row.public_view, disclosure.body_etag(row.public_view), None
        head = json.loads(row.envelope)
        body = disclosure.passport_body(key, head["record"], head["hash"], chosen)
        text = disclosure.dumps(body)
        entry = self._stamped(self._entry(principal, "read", key, chosen, "allowed"))
        return text, disclosure.etag_for(body, text, chosen, head["hash"]), entry

    @_refusals_audited
    def append(
        self, principal: Principal, key: str, document: Any, if_match: str | None
    ) -> dict[str, Any]:
        """Append a version (on SQLite in a savepoint of a shared, group-committed transaction)."""
        if self._write_lock is not None:
            return self.committer.run(
                lambda session: self._append_in(session, principal, key, document, if_match)
            )
        with self.writing() as session:
            result = self._append_in(session, principal, key, document, if_match)
            session.commit()
            return result

    def _append_in(
        self,
        session: Session,
        principal: Principal,
        key: str,
        document: Any,
        if_match: str | None,
    ) -> dict[str, Any]:
        """The checks and writes of :meth:`append` in the caller's transaction."""
        row = self._row(session, key)
        self._writer(principal, "append", key, row.operator)
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
        self._identity(session, principal, "append", key, document, row.operator, False)
        _unchanged_standing(self._head(session, row)["record"]["document"], document, "body")
        expected = if_match.strip('"')
        return self._append(session, principal, row, document, expected, row.status, [])

    def _append(
        self,
        session: Session,
        principal: Principal,
        row: Passport,
        document: dict[str, Any],
        expected: str,
        status: str,
        links: list[dict[str, str]],
    ) -> dict[str, Any]:
        previous = self._head(session, row)
        if previous["hash"] != expected:
            raise RegistryError(
                412,
                "Stale version",
                f"The passport is at {previous['hash']}; you sent {expected}. Read it again.",
            )
        envelope = self._sign(
            session, new_record(row.passport_id, document, previous, status, links)
        )
        version = previous["record"]["version"] + 1
        changed = session.execute(
            update(Passport)
            .where(Passport.id == row.id, Passport.head_hash == expected)
            .values(
                version=version,
                head_hash=envelope["hash"],
                status=status,
                closed=status == "recycled",
                public_view=disclosure.public_view_text(row.key, envelope),
                updated_at=dt.datetime.now(dt.UTC),
            )
        ).rowcount
        if changed != 1:
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
            raise RegistryError(
                412, "Stale version", "Another write added this version first."
            ) from None
        self._audit(session, principal, "append", row.key, "issuer", "allowed")
        return {
            "key": row.key,
            "passport_id": row.passport_id,
            "version": version,
            "hash": envelope["hash"],
        }

    # --- listing, history, verification ------------------------------------------------------
    def _readable_where(self, principal: Principal, field: str | None):
        """SQL condition: rows on which ``principal`` reads data point ``field``."""
        if field is None:
            return true()
        point = by_field()[field].annex_xiii_point
        readers = {a for a, points in audiences().items() if point in points}
        held = self.held(principal, None)  # audiences held on every passport
        not_battery = Passport.kind != "battery"
        if held & readers:
            return true()
        if "issuer" in readers and "issuer" in principal.audiences and principal.organisation:
            return or_(not_battery, Passport.operator == principal.organisation)
        return not_battery

    @_refusals_audited
    def list(
        self,
        principal: Principal,
        filters: dict[str, str | None],
        cursor: str | None,
        limit: int,
    ) -> dict[str, Any]:
        """Passports matching ``filters``, as the caller may see them: a filter on a data point
        matches only rows on which the caller may read that data point (so an anonymous
        ``?status=waste`` finds no battery — it is not an oracle for a restricted field)."""
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
                field = disclosure.FILTER_FIELDS[name]
                query = query.where(
                    and_(getattr(Passport, name) == value, self._readable_where(principal, field))
                )
        if cursor:
            query = query.where(Passport.id > decode_cursor(cursor))
        query = query.order_by(Passport.id).limit(limit + 1)
        with self.sessions() as session:
            rows = session.execute(query).all()
        items = [disclosure.list_item(r, self.held(principal, r.operator)) for r in rows[:limit]]
        restricted = sum(1 for i in items if "status" in i and i["kind"] == "battery")
        if restricted:  # the status of a battery is restricted data: its reads are audited
            self._log(
                principal,
                "list",
                None,
                ",".join(sorted(set(principal.audiences) - {"public"})),
                "allowed",
                f"status of {restricted} battery passports",
            )
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

    @_refusals_audited
    def history(self, principal: Principal, key: str, audience: str | None) -> dict[str, Any]:
        with self.sessions() as session:
            row = self._row(session, key)
            chosen = self._audience(principal, row, audience, "history")
            versions = [disclosure.version_entry(e, chosen) for e in self.envelopes(session, row)]
        if chosen != "public":
            self._log(principal, "history", key, chosen, "allowed")
        return {"key": key, "audience": chosen, "versions": versions}

    @_refusals_audited
    def verify(self, principal: Principal, key: str, audience: str | None = None) -> dict[str, Any]:
        """Check the passport's hash chain, signatures and signing-key validity periods."""
        with self.sessions() as session:
            row = self._row(session, key)
            chosen = self._audience(principal, row, audience, "verify")
            envelopes = self.envelopes(session, row)
            keys = signing.published(session)
        report = verify_chain(
            [(f"version {e['record']['version']}", e) for e in envelopes],
            {k["public_key"]: "registry" for k in keys},  # one issuer: rotated keys continue
        )
        broken = report.broken
        if broken is None:
            for envelope in envelopes:
                problem = signing.signed_in_period(envelope, keys)
                if problem is not None:
                    broken = f"version {envelope['record']['version']}: {problem}"
                    break
        result: dict[str, Any] = {
            "key": key,
            "passport_id": report.passport_id,
            "versions": report.versions,
            "valid": broken is None,
            "first_broken_link": broken,
            "registry_public_key": self.signer.public_key,
            "audience": chosen,
        }
        if disclosure.shows(chosen, row.kind, "closed"):
            result["closed"] = report.closed
        if chosen != "public":
            self._log(principal, "verify", key, chosen, "allowed")
        return result

    def registry_keys(self) -> list[dict[str, Any]]:
        """The registry's public keys with their validity periods."""
        with self.sessions() as session:
            return signing.published(session)

    def checkpoint(self, key: str) -> dict[str, Any]:
        """A checkpoint of the passport's head (latest version and hash) signed by the registry's
        key, so that an offline verifier detects a copy from which newer versions were withheld."""
        from critflow.passport.checkpoint import make_checkpoint

        with self.sessions() as session:
            row = self._row(session, key)
            passport_id, version, head_hash = row.passport_id, row.version, row.head_hash
            current = signing.current_public_key(session)
        if current != self.signer.public_key:  # signed with the key the registry publishes now
            self._reload_key(current)
        return make_checkpoint(self.signer, passport_id, version, head_hash)

    # --- lifecycle ---------------------------------------------------------------------------
    @_refusals_audited
    def change_status(
        self,
        principal: Principal,
        key: str,
        to: str,
        if_match: str | None,
        new_document: Any = None,
    ) -> dict[str, Any]:
        with self.writing() as session:
            row = self._row(session, key)
            self._writer(principal, "status", key, row.operator)
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
                new_document = copy.deepcopy(self._validated(new_document, "new_document"))
                if new_document.get("kind") == "battery":
                    new_document["data"]["battery_status"] = to
                links = [{"rel": f"{to}_as", "passport_id": document_id(new_document)}]
            result = self._append(session, principal, row, document, if_match.strip('"'), to, links)
            if rule["new_passport"]:
                created = self._create(session, principal, new_document)
                new_row = self._row(session, created["key"])
                session.add(PassportLink(from_pk=row.id, to_pk=new_row.id, rel=f"{to}_as"))
            session.commit()
            return {**result, "new_passport": created}

    # --- bulk ingest of dynamic data ---------------------------------------------------------
    @_refusals_audited
    def ingest(self, principal: Principal, updates: Any) -> dict[str, Any]:
        """Dynamic data for many passports in one transaction: every update is written, or —
        when any one is refused, for whatever reason — none is (the refusal is audited)."""
        if not isinstance(updates, list) or not updates:
            raise RegistryError(
                422, "No updates", 'Send {"updates": [{"passport_id": …, "data": {…}}, …]}.'
            )
        if len(updates) > MAX_BATCH:
            raise RegistryError(413, "Batch too large", f"At most {MAX_BATCH} updates per request.")
        check_json(updates, "updates")
        points = by_field()
        with self.writing() as session:
            self._writer(principal, "ingest", None)
            written = 0
            for i, item in enumerate(updates):
                where = f"updates[{i}]"
                if (
                    not isinstance(item, dict)
                    or not isinstance(item.get("data"), dict)
                    or not isinstance(item.get("passport_id"), str)
                ):
                    raise RegistryError(
                        422, "Bad update", f"{where} needs passport_id (text) and data (object)."
                    )
                static = [
                    f for f in item["data"] if f not in points or points[f].lifecycle != "dynamic"
                ]
                if static:
                    raise RegistryError(
                        422,
                        "Not dynamic data",
                        f"{where}: {', '.join(static)[:300]} are not dynamic data points "
                        "(Annex XIII 4); bulk ingest takes state of health, cycles, events and "
                        "the like.",
                    )
                row = session.scalar(
                    select(Passport).where(Passport.passport_id == item["passport_id"])
                )
                if row is None:
                    raise RegistryError(
                        404,
                        "No such passport",
                        f"{where}: no passport {item['passport_id'][:300]}.",
                    )
                self._writer(principal, "ingest", row.key, row.operator)
                if row.closed:
                    raise RegistryError(
                        409, "Passport closed", f"{where}: the battery was recycled."
                    )
                head = self._head(session, row)
                if head["record"]["document"].get("kind") != "battery":
                    raise RegistryError(
                        422,
                        "Not a battery passport",
                        f"{where}: {item['passport_id'][:300]} is a {row.kind} passport; bulk "
                        "ingest takes dynamic data of battery passports.",
                    )
                document = copy.deepcopy(head["record"]["document"])
                document["data"].update(item["data"])
                _unchanged_standing(head["record"]["document"], document, where)
                try:
                    validate_document(document, where=where)
                except CritflowError as exc:
                    raise RegistryError(
                        422, "Invalid update", "An update does not validate.", exc.problems
                    ) from None
                self._append(session, principal, row, document, head["hash"], row.status, [])
                session.expire(row)
                written += 1
            session.commit()
        return {"written": written}
