"""an organisation the operator suspended

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 23:00:00

The platform operator can suspend a charity (unpaid, misused, under review): while `suspended_at` is set its
campaigns do not run and cannot be started, and its admins see a notice. Nothing is deleted.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.core.db

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("suspended_at", server.core.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.drop_column("suspended_at")
