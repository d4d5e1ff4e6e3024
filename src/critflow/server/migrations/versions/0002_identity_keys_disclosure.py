"""organisation identifiers, registry keys, audit client, revocation time, filtered public views

Revision ID: 0002
Revises: 0001

- ``organisation_identifiers``: GS1 Company Prefixes and economic-operator identifiers an
  administrator registered to an organisation (a key creates battery passports only under them);
- ``registry_keys``: the registry's public signing keys with validity periods (one current);
- ``api_keys.revoked_at`` and ``audit_log.client`` (+ indexes for the failed-login limits);
- every stored public view is rebuilt through the audience filter: views written before this
  revision carried the battery status (Annex XIII 4(c), restricted) and the chain hash.
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "organisation_identifiers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("value", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "value", name="uq_identifier_kind_value"),
    )
    with op.batch_alter_table("organisation_identifiers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_organisation_identifiers_organisation_id"),
            ["organisation_id"],
            unique=False,
        )
    op.create_table(
        "registry_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("current", sa.Boolean(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("public_key"),
        sa.UniqueConstraint("current"),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("client", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_audit_log_client_at", ["client", "at"], unique=False)
        batch_op.create_index("ix_audit_log_key_id_at", ["key_id", "at"], unique=False)
    _rebuild_public_views()


def _rebuild_public_views(chunk: int = 2000) -> None:
    """Recompute ``passports.public_view`` from each head version through the audience filter."""
    from critflow.server.disclosure import public_view_text

    connection = op.get_bind()
    passports = sa.table(
        "passports",
        sa.column("id", sa.Integer),
        sa.column("key", sa.String),
        sa.column("version", sa.Integer),
        sa.column("public_view", sa.Text),
    )
    versions = sa.table(
        "passport_versions",
        sa.column("passport_pk", sa.Integer),
        sa.column("version", sa.Integer),
        sa.column("envelope", sa.Text),
    )
    last = 0
    while True:
        rows = connection.execute(
            sa.select(passports.c.id, passports.c.key, versions.c.envelope)
            .join(
                versions,
                sa.and_(
                    versions.c.passport_pk == passports.c.id,
                    versions.c.version == passports.c.version,
                ),
            )
            .where(passports.c.id > last)
            .order_by(passports.c.id)
            .limit(chunk)
        ).all()
        if not rows:
            return
        connection.execute(
            passports.update()
            .where(passports.c.id == sa.bindparam("pk"))
            .values(public_view=sa.bindparam("view")),
            [
                {"pk": pk, "view": public_view_text(key, json.loads(envelope))}
                for pk, key, envelope in rows
            ],
        )
        last = rows[-1][0]


def downgrade() -> None:
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_key_id_at")
        batch_op.drop_index("ix_audit_log_client_at")
        batch_op.drop_column("client")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("revoked_at")
    op.drop_table("registry_keys")
    with op.batch_alter_table("organisation_identifiers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_organisation_identifiers_organisation_id"))
    op.drop_table("organisation_identifiers")
