"""the operator's quiet hours

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 01:30:00

The platform's quiet hours (21:00-08:00 on each site's clock) were a constant; the operator sets them now,
as DESIGN.md's policy defaults say ("the operator's window, widened by the site's and the campaign's own").
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("platform_settings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("quiet_start", sa.String(5), nullable=False, server_default="21:00"))
        batch_op.add_column(sa.Column("quiet_end", sa.String(5), nullable=False, server_default="08:00"))


def downgrade() -> None:
    with op.batch_alter_table("platform_settings", schema=None) as batch_op:
        batch_op.drop_column("quiet_end")
        batch_op.drop_column("quiet_start")
