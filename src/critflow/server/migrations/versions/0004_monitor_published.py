"""roadmap monitor: the aggregates published so far

Revision ID: 0004
Revises: 0003

- ``monitor_published``: every aggregate the monitor has shown (group key, unit, the unknowns
  it sums, its sum, when). The confidentiality rule checks each new aggregate together with all
  of them, so an organisation joining a group later (a sum over {A, B, C, D} after one over
  {A, B, C}) cannot be recovered by subtraction — also after a restart or on another worker.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitor_published",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("unit", sa.String(length=40), nullable=False),
        sa.Column("members", sa.Text(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_monitor_published_key", "monitor_published", ["key"])


def downgrade() -> None:
    op.drop_table("monitor_published")
