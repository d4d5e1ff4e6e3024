"""roadmap monitor: projects, KPI values, verdicts, UNFC quantities, browser sessions

Revision ID: 0003
Revises: 0002

- ``monitor_projects``: a project (instrument, focus domains, partners, period) of an
  organisation of the registry;
- ``monitor_values``: KPI values per project and year with their provenance (who, when, how;
  the model file's SHA-256 or the upload's name), never overwritten (the latest row counts);
- ``monitor_verdicts``: rule verdicts a model computed for a project and year;
- ``monitor_quantities``: UNFC-2019 classified resource quantities of a project;
- ``monitor_sessions``: browser sessions of the monitor pages (hash of the cookie's token).
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _provenance() -> list[sa.Column]:
    return [
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("submitted_by", sa.String(length=16), nullable=True),
        sa.Column("organisation", sa.String(length=200), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model_sha256", sa.String(length=64), nullable=True),
        sa.Column("upload_name", sa.String(length=200), nullable=True),
        sa.Column("batch", sa.String(length=32), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "monitor_projects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.String(length=60), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("roadmap", sa.String(length=60), nullable=False),
        sa.Column("instrument", sa.String(length=60), nullable=False),
        sa.Column("domains", sa.Text(), nullable=False),
        sa.Column("partners", sa.Text(), nullable=False),
        sa.Column("start_year", sa.Integer(), nullable=False),
        sa.Column("end_year", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=16), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("project_id"),
    )
    op.create_index("ix_monitor_projects_organisation_id", "monitor_projects", ["organisation_id"])
    op.create_table(
        "monitor_values",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_pk", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("kpi", sa.String(length=80), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("unit", sa.String(length=40), nullable=False),
        sa.Column("given_value", sa.Float(), nullable=False),
        sa.Column("given_unit", sa.String(length=40), nullable=False),
        *_provenance(),
        sa.ForeignKeyConstraint(["project_pk"], ["monitor_projects.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_monitor_values_project_kpi_year", "monitor_values", ["project_pk", "kpi", "year"]
    )
    op.create_table(
        "monitor_verdicts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_pk", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=120), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("indicator", sa.String(length=120), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("comparator", sa.String(length=4), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("margin", sa.Float(), nullable=True),
        *_provenance(),
        sa.ForeignKeyConstraint(["project_pk"], ["monitor_projects.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_monitor_verdicts_project_pk", "monitor_verdicts", ["project_pk"])
    op.create_table(
        "monitor_quantities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_pk", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("element", sa.String(length=8), nullable=False),
        sa.Column("tonnes", sa.Float(), nullable=False),
        sa.Column("e", sa.String(length=8), nullable=False),
        sa.Column("f", sa.String(length=8), nullable=False),
        sa.Column("g", sa.String(length=8), nullable=False),
        sa.Column("class_name", sa.String(length=120), nullable=False),
        sa.Column("justification", sa.Text(), nullable=False),
        sa.Column("anthropogenic", sa.Boolean(), nullable=False),
        *_provenance(),
        sa.ForeignKeyConstraint(["project_pk"], ["monitor_projects.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_monitor_quantities_project_pk", "monitor_quantities", ["project_pk"])
    op.create_table(
        "monitor_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_monitor_sessions_key_id", "monitor_sessions", ["key_id"])


def downgrade() -> None:
    for table in (
        "monitor_sessions",
        "monitor_quantities",
        "monitor_verdicts",
        "monitor_values",
        "monitor_projects",
    ):
        op.drop_table(table)
