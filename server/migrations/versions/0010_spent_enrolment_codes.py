"""gateways remember the enrolment code they last redeemed

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27 12:00:00

Enrolling clears the code's hash, so a second try with the same code was answered "unknown code", and the
installer could not tell a typo from a code already spent (often by their own first try). The hash of the
redeemed code is kept in `spent_code_hash`, indexed for the lookup on a refused code.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("gateways", schema=None) as batch_op:
        batch_op.add_column(sa.Column("spent_code_hash", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_gateways_spent_code_hash"), ["spent_code_hash"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("gateways", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gateways_spent_code_hash"))
        batch_op.drop_column("spent_code_hash")
