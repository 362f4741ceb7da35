"""test devices: one-time pairing codes (stored hashed) and the phones that paired themselves with them

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-26 18:49:54.029307

Numbered 0006 and chained after 0004, the newest when written: 0005 was expected from parallel work.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.core.db

revision: str = "0006"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "test_device_pairing_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", server.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", server.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", server.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["admin_users.id"],
            name=op.f("fk_test_device_pairing_codes_created_by_admin_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_test_device_pairing_codes_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_test_device_pairing_codes")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_test_device_pairing_codes_code_hash")),
    )
    with op.batch_alter_table("test_device_pairing_codes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_test_device_pairing_codes_organisation_id"), ["organisation_id"], unique=False
        )

    op.create_table(
        "test_devices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Uuid(), nullable=False),
        sa.Column("label", sa.String(length=60), nullable=False),
        sa.Column("paired_at", server.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_test_devices_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_test_devices_subscriber_id_subscribers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_test_devices")),
        sa.UniqueConstraint(
            "organisation_id", "subscriber_id", name=op.f("uq_test_devices_organisation_id_subscriber_id")
        ),
    )
    with op.batch_alter_table("test_devices", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_test_devices_organisation_id"), ["organisation_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_test_devices_subscriber_id"), ["subscriber_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("test_devices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_test_devices_subscriber_id"))
        batch_op.drop_index(batch_op.f("ix_test_devices_organisation_id"))

    op.drop_table("test_devices")
    with op.batch_alter_table("test_device_pairing_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_test_device_pairing_codes_organisation_id"))

    op.drop_table("test_device_pairing_codes")
