"""The registry's signing key: every version it stores is signed with it (Ed25519).

The private key lives in one file (PEM, mode 0600), created exactly once — by
``critflow keys init-registry`` or by ``critflow serve`` before it starts any worker — with an
exclusive create (the key is written to a temporary file and hard-linked into place, which fails
if the file exists), so two processes that start together cannot each make their own key. A
worker never creates a key: without the file it refuses to start.

The public keys are kept in the database (``registry_keys``) with their validity periods. The
first server to start registers its key as *current*; any server whose key file holds a different
key refuses to start (two machines with two key files would otherwise sign with two keys). A
rotation (``critflow keys rotate-registry``) retires the current key (``valid_until``) and
registers a new one (``valid_from``, the same second); workers notice it at their next write and
reload the key file. ``GET /api/registry/keys`` publishes every key with its period, so a version
verifies with the key that was current when it was issued.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from critflow.errors import CritflowError
from critflow.passport.integrity import SigningKey
from critflow.server.models import PassportVersion, RegistryKey


def key_path(key_file: Path | None, engine: Engine) -> Path:
    """Where the key lives: the argument, ``CRITFLOW_REGISTRY_KEY``, or next to a SQLite file.

    A PostgreSQL registry needs the path given explicitly: a default relative to the working
    directory would give servers on two machines two keys.
    """
    if key_file is not None:
        return Path(key_file).absolute()
    if os.environ.get("CRITFLOW_REGISTRY_KEY"):
        return Path(os.environ["CRITFLOW_REGISTRY_KEY"]).absolute()
    database = engine.url.database if engine.url.get_backend_name() == "sqlite" else None
    if database and database != ":memory:":
        return Path(database).absolute().with_suffix(".key")
    raise CritflowError(
        "--key-file",
        "a PostgreSQL registry needs its signing key file named explicitly",
        "Pass --key-file /etc/critflow/registry.key (or set CRITFLOW_REGISTRY_KEY) — the same "
        "file on every machine that serves this database; create it once with "
        "`critflow keys init-registry --key-file …`.",
    )


def _exclusive_write(path: Path, key: SigningKey) -> None:
    """Write ``path`` (and ``.pub``) only if it does not exist, never half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".critflow-key-", dir=path.parent)
    os.close(handle)
    staged = Path(temporary)
    try:
        key.save(staged.with_suffix(""))  # writes <staged>.key and .pub; .key is mode 0600
        # a hard link is atomic and fails with FileExistsError when ``path`` exists
        os.link(staged.with_suffix(".key"), path)
        public = path.with_suffix(".pub")
        public.write_text(key.public_key + "\n", encoding="utf-8")
    finally:
        for leftover in (staged, staged.with_suffix(".key"), staged.with_suffix(".pub")):
            leftover.unlink(missing_ok=True)


def init_registry_key(path: Path) -> SigningKey:
    """Create the registry key at ``path``; refuses when a key file is already there."""
    key = SigningKey.generate()
    try:
        _exclusive_write(Path(path), key)
    except FileExistsError:
        raise CritflowError(
            str(path),
            "a registry key exists already",
            "Keep it (every stored version is signed with it); to replace it use "
            "`critflow keys rotate-registry`.",
        ) from None
    return key


def ensure_registry_key(path: Path) -> tuple[SigningKey, bool]:
    """The key at ``path``, created (exclusively) when missing; True when it was created here."""
    path = Path(path)
    if not path.exists():
        try:
            return init_registry_key(path), True
        except CritflowError:
            pass  # another process created it a moment ago: load theirs
    return load_registry_key(path), False


def load_registry_key(path: Path) -> SigningKey:
    """Load the registry key; a worker without one refuses to start."""
    path = Path(path)
    if not path.exists():
        raise CritflowError(
            str(path),
            "the registry's signing key is missing",
            "Create it once with `critflow keys init-registry --key-file "
            f"{path}` (or let `critflow serve` create it); a worker never makes its own key.",
        )
    return SigningKey.load(path)


def _second(moment: dt.datetime) -> dt.datetime:
    return moment.replace(microsecond=0)


def _as_utc(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def current_public_key(session: Session, lock: bool = False) -> str | None:
    """The public key new versions must be signed with (None before the first registration).

    With ``lock`` (inside a write transaction on PostgreSQL) the row is share-locked until
    commit, so a rotation waits for writes that signed with the key it retires."""
    query = select(RegistryKey.public_key).where(RegistryKey.current.is_(True))
    if lock:
        query = query.with_for_update(read=True)
    return session.scalar(query)


def attach(engine: Engine, key: SigningKey) -> None:
    """Register ``key`` as the registry's current key, or check that it is.

    Refuses (CritflowError) a key that is not the current one, and — on a database whose stored
    versions were signed by another key and that has no registered key yet — a new key.
    """
    with Session(engine) as session:
        current = current_public_key(session)
        if current is None:
            signed = session.scalar(
                select(PassportVersion.envelope).order_by(PassportVersion.id.desc()).limit(1)
            )
            other = json.loads(signed).get("public_key") if signed else None
            if other is not None and other != key.public_key:
                raise CritflowError(
                    "--key-file",
                    f"this database's versions are signed by key {other}, not by {key.public_key}",
                    "Start the server with the key file that signed them.",
                )
            session.add(RegistryKey(public_key=key.public_key, valid_from=None, current=True))
            try:
                session.commit()
            except IntegrityError:  # another worker registered first
                session.rollback()
            current = current_public_key(session)
        if current != key.public_key:
            known = session.scalar(
                select(RegistryKey.id).where(RegistryKey.public_key == key.public_key)
            )
            raise CritflowError(
                "--key-file",
                f"the key file holds {'retired' if known else 'unknown'} key {key.public_key}; "
                f"this registry signs with {current}",
                "Use the registry's current key file on every server (copy it, it is the same "
                "file everywhere); after `critflow keys rotate-registry` copy the new one.",
            )


def rotate(engine: Engine, path: Path) -> tuple[SigningKey, Path]:
    """Retire the current key and make a new one current; the old file is kept beside it.

    Returns the new key and where the retired key file was moved."""
    path = Path(path)
    old = load_registry_key(path)
    new = SigningKey.generate()
    staged = path.with_name(path.stem + ".next.key")
    if staged.exists():
        staged.unlink()
    _exclusive_write(staged, new)
    moment = _second(dt.datetime.now(dt.UTC))
    with Session(engine) as session:
        current = current_public_key(session, lock=True)
        if current != old.public_key:
            staged.unlink(missing_ok=True)
            staged.with_suffix(".pub").unlink(missing_ok=True)
            raise CritflowError(
                str(path),
                f"holds {old.public_key}, but the registry's current key is {current}",
                "Rotate with the current key file.",
            )
        session.execute(
            update(RegistryKey)
            .where(RegistryKey.public_key == old.public_key)
            .values(current=None, valid_until=moment)
        )
        session.add(RegistryKey(public_key=new.public_key, valid_from=moment, current=True))
        session.commit()
    retired = path.with_name(f"{path.stem}.retired-{moment:%Y%m%dT%H%M%S}.key")
    os.replace(path, retired)
    if path.with_suffix(".pub").exists():
        os.replace(path.with_suffix(".pub"), retired.with_suffix(".pub"))
    os.replace(staged, path)
    os.replace(staged.with_suffix(".pub"), path.with_suffix(".pub"))
    return new, retired


def published(session: Session) -> list[dict[str, Any]]:
    """Every registry key with its validity period (oldest first)."""
    rows = session.scalars(select(RegistryKey).order_by(RegistryKey.id)).all()
    return [
        {
            "public_key": r.public_key,
            "algorithm": "Ed25519",
            "encoding": "base64url, raw 32 bytes",
            "valid_from": _iso(r.valid_from),
            "valid_until": _iso(r.valid_until),
            "current": bool(r.current),
        }
        for r in rows
    ]


def _iso(moment: dt.datetime | None) -> str | None:
    moment = _as_utc(moment)
    return moment.isoformat(timespec="seconds") if moment else None


def signed_in_period(envelope: dict[str, Any], keys: list[dict[str, Any]]) -> str | None:
    """What is wrong with when a version was signed (None: its key was valid at ``issued_at``)."""
    record = envelope.get("record", {})
    key = next((k for k in keys if k["public_key"] == envelope.get("public_key")), None)
    if key is None:
        return "it is signed by a key that is not among the registry's keys"
    try:
        issued = dt.datetime.fromisoformat(str(record.get("issued_at")))
    except ValueError:
        return f"its issue time '{record.get('issued_at')}' is not a date-time"
    issued = _as_utc(issued)
    if key["valid_from"] and issued < dt.datetime.fromisoformat(key["valid_from"]):
        return f"it was issued at {record['issued_at']}, before its key became valid"
    if key["valid_until"] and issued > dt.datetime.fromisoformat(key["valid_until"]):
        return f"it was issued at {record['issued_at']}, after its key was retired"
    return None
