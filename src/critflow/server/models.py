"""Tables of the passport registry (SQLAlchemy 2). The schema is created by Alembic migrations."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    pass


class Organisation(Base):
    __tablename__ = "organisations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)


class OrganisationIdentifier(Base):
    """An identifier an administrator registered to an organisation: a GS1 Company Prefix (its
    keys create battery passports only under GTINs that start with one) or an economic-operator
    identifier (the ``responsible_operator.identifier`` its passports must carry)."""

    __tablename__ = "organisation_identifiers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))  # gs1_company_prefix | operator_id
    value: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=now)

    __table_args__ = (UniqueConstraint("kind", "value", name="uq_identifier_kind_value"),)


class RegistryKey(Base):
    """A public signing key of the registry and when it was valid (rotation keeps the old ones).
    ``current`` is True for the one key new versions are signed with and NULL for retired keys;
    a unique constraint on it allows one current key only, whichever worker registers first."""

    __tablename__ = "registry_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_key: Mapped[str] = mapped_column(String(64), unique=True)
    valid_from: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    valid_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    current: Mapped[bool | None] = mapped_column(Boolean, nullable=True, unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=now)


class ApiKey(Base):
    """An API key: its public id, the argon2 hash of its secret, its organisation and rights."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(200))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    audiences: Mapped[str] = mapped_column(String(200))  # comma-separated
    can_write: Mapped[bool] = mapped_column(Boolean, default=False)
    purpose: Mapped[str | None] = mapped_column(String(500), nullable=True)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=now)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Passport(Base):
    """A passport's current state; its versions are in ``passport_versions``."""

    __tablename__ = "passports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(24), unique=True)
    passport_id: Mapped[str] = mapped_column(String(300), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    category: Mapped[str | None] = mapped_column(String(20), nullable=True)
    gtin: Mapped[str | None] = mapped_column(String(14), nullable=True)
    serial: Mapped[str | None] = mapped_column(String(40), nullable=True)
    product: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[str] = mapped_column(String(20))
    operator: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    head_hash: Mapped[str] = mapped_column(String(80))
    public_view: Mapped[str] = mapped_column(Text)  # JSON of the public view of the head version
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=now)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=now)

    __table_args__ = (
        Index("ix_passports_gtin_serial", "gtin", "serial"),
        Index("ix_passports_product_id", "product", "id"),
        Index("ix_passports_status_id", "status", "id"),
        Index("ix_passports_operator_id", "operator", "id"),
        Index("ix_passports_gtin_id", "gtin", "id"),
    )


class PassportVersion(Base):
    """One signed version (the envelope: record, hash, signature, public key)."""

    __tablename__ = "passport_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    passport_pk: Mapped[int] = mapped_column(ForeignKey("passports.id", ondelete="RESTRICT"))
    version: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(80), unique=True)
    envelope: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=now)

    __table_args__ = (UniqueConstraint("passport_pk", "version", name="uq_version_per_passport"),)


class PassportLink(Base):
    """A link between passports (repurposed_as / repurposed_from …)."""

    __tablename__ = "passport_links"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    from_pk: Mapped[int] = mapped_column(ForeignKey("passports.id"), index=True)
    to_pk: Mapped[int] = mapped_column(ForeignKey("passports.id"), index=True)
    rel: Mapped[str] = mapped_column(String(40))


class AuditEntry(Base):
    """Every read of restricted data and every denial: who, what, when, purpose, outcome."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=now, index=True)
    key_id: Mapped[str | None] = mapped_column(String(16), nullable=True, index=True)
    organisation: Mapped[str | None] = mapped_column(String(200), nullable=True)
    action: Mapped[str] = mapped_column(String(40))
    passport_key: Mapped[str | None] = mapped_column(String(24), nullable=True, index=True)
    audience: Mapped[str | None] = mapped_column(String(40), nullable=True)
    purpose: Mapped[str | None] = mapped_column(String(500), nullable=True)
    outcome: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str | None] = mapped_column(String(500), nullable=True)
    client: Mapped[str | None] = mapped_column(String(64), nullable=True)

    __table_args__ = (
        Index("ix_audit_log_client_at", "client", "at"),
        Index("ix_audit_log_key_id_at", "key_id", "at"),
    )
