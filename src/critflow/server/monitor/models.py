"""Tables of the roadmap monitor (SQLAlchemy 2, on the registry's ``Base``; created by migration
0003). Organisations are the registry's; a project belongs to one. Submitted values are never
overwritten: a later submission of the same project, year and KPI supersedes the earlier one in
every view (the latest row counts), and each row keeps its provenance."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from critflow.server.models import Base, now


class MonitorProject(Base):
    """A funded project: instrument, focus domains, partners, period, owning organisation."""

    __tablename__ = "monitor_projects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[str] = mapped_column(String(60), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    roadmap: Mapped[str] = mapped_column(String(60))
    instrument: Mapped[str] = mapped_column(String(60))
    domains: Mapped[str] = mapped_column(Text)  # JSON list of focus-domain ids
    partners: Mapped[str] = mapped_column(Text)  # JSON list of partner names
    start_year: Mapped[int] = mapped_column(Integer)
    end_year: Mapped[int] = mapped_column(Integer)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    created_by: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=now)


class _Provenance:
    """Who submitted, when, how (api, excel, model) and from what (model hash, upload name)."""

    source: Mapped[str] = mapped_column(String(10))  # api | excel | model
    submitted_by: Mapped[str | None] = mapped_column(String(16), nullable=True)
    organisation: Mapped[str | None] = mapped_column(String(200), nullable=True)
    submitted_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=now)
    model_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    upload_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    batch: Mapped[str] = mapped_column(String(32))


class MonitorValue(_Provenance, Base):
    """One KPI value of a project in a year, in the KPI's unit (and as it was given)."""

    __tablename__ = "monitor_values"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_pk: Mapped[int] = mapped_column(ForeignKey("monitor_projects.id", ondelete="RESTRICT"))
    year: Mapped[int] = mapped_column(Integer)
    kpi: Mapped[str] = mapped_column(String(80))
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(40))
    given_value: Mapped[float] = mapped_column(Float)
    given_unit: Mapped[str] = mapped_column(String(40))

    __table_args__ = (Index("ix_monitor_values_project_kpi_year", "project_pk", "kpi", "year"),)


class MonitorVerdict(_Provenance, Base):
    """A rule verdict a model computed for a project and year (``critflow monitor submit``)."""

    __tablename__ = "monitor_verdicts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_pk: Mapped[int] = mapped_column(
        ForeignKey("monitor_projects.id", ondelete="RESTRICT"), index=True
    )
    year: Mapped[int] = mapped_column(Integer)
    rule: Mapped[str] = mapped_column(String(120))
    title: Mapped[str] = mapped_column(String(300))
    indicator: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(20))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    comparator: Mapped[str] = mapped_column(String(4))
    threshold: Mapped[float] = mapped_column(Float)
    margin: Mapped[float | None] = mapped_column(Float, nullable=True)


class MonitorQuantity(_Provenance, Base):
    """A resource quantity of a project classified with UNFC-2019 (tonnes of one element)."""

    __tablename__ = "monitor_quantities"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_pk: Mapped[int] = mapped_column(
        ForeignKey("monitor_projects.id", ondelete="RESTRICT"), index=True
    )
    year: Mapped[int] = mapped_column(Integer)
    element: Mapped[str] = mapped_column(String(8))
    tonnes: Mapped[float] = mapped_column(Float)
    e: Mapped[str] = mapped_column(String(8))
    f: Mapped[str] = mapped_column(String(8))
    g: Mapped[str] = mapped_column(String(8))
    class_name: Mapped[str] = mapped_column(String(120))
    justification: Mapped[str] = mapped_column(Text)  # JSON: category -> answers and reasons
    anthropogenic: Mapped[bool] = mapped_column(Boolean, default=True)


class MonitorSession(Base):
    """A browser session of the monitor pages: the SHA-256 of the cookie's token, the API key it
    was opened with (re-checked on every request, so a revoked key ends its sessions)."""

    __tablename__ = "monitor_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_id: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=now)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class MonitorPublished(Base):
    """An aggregate the monitor has published (shown to anyone): its group key (JSON), unit,
    the unknowns it sums (JSON list of [organisation key, item]) and its sum. Rows are only
    ever added: every later set of aggregates must be safe together with all of them
    (``published_before`` of the confidentiality rule), across restarts and workers."""

    __tablename__ = "monitor_published"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(400), index=True)  # JSON: [domain, kpi, year]
    unit: Mapped[str] = mapped_column(String(40))
    members: Mapped[str] = mapped_column(Text)  # JSON: [[organisation key, item], …]
    value: Mapped[float] = mapped_column(Float)
    published_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=now)
