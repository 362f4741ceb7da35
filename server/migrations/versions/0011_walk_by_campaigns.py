"""the operator's minimum dwell and whether walk-by campaigns may run

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 22:30:00

A campaign with a minimum dwell of 0 is decided the moment a phone enters (a walk-by campaign). The operator
decides whether such campaigns may run (`allow_walk_by`) and the least dwell any other campaign may ask for
(`min_dwell_s`, which is also the dwell of campaigns that set none); both were constants before.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("platform_settings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("min_dwell_s", sa.Integer(), nullable=False, server_default="15"))
        batch_op.add_column(
            sa.Column("allow_walk_by", sa.Boolean(), nullable=False, server_default=sa.true())
        )


def downgrade() -> None:
    with op.batch_alter_table("platform_settings", schema=None) as batch_op:
        batch_op.drop_column("allow_walk_by")
        batch_op.drop_column("min_dwell_s")
