"""alert states and the alert mail outbox

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 22:41:43.080079

The alert job (server/alerts) remembers which condition holds for which gateway, site beacon or campaign, so
that each alerts once and again only after it cleared, and keeps the e-mails it has to send in an outbox that
is written with the alert and sent after the commit. Numbered 0016 with room below for parallel work.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.core.db

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_mails",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("condition", sa.String(length=32), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("subject", sa.String(length=500), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", server.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", server.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("claimed_until", server.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("sent_at", server.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_alert_mails_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_mails")),
    )
    with op.batch_alter_table("alert_mails", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_mails_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_alert_mails_next_attempt_at"), ["next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_alert_mails_organisation_id"), ["organisation_id"], unique=False)

    op.create_table(
        "alert_states",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("condition", sa.String(length=32), nullable=False),
        sa.Column("since", server.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("raised_at", server.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_alert_states_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_states")),
        sa.UniqueConstraint(
            "subject_kind",
            "subject_id",
            "condition",
            name=op.f("uq_alert_states_subject_kind_subject_id_condition"),
        ),
    )
    with op.batch_alter_table("alert_states", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_alert_states_organisation_id"), ["organisation_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("alert_states", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_states_organisation_id"))

    op.drop_table("alert_states")
    with op.batch_alter_table("alert_mails", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_mails_organisation_id"))
        batch_op.drop_index(batch_op.f("ix_alert_mails_next_attempt_at"))
        batch_op.drop_index(batch_op.f("ix_alert_mails_created_at"))

    op.drop_table("alert_mails")
