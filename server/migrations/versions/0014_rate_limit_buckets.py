"""rate limit buckets shared by every worker

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-10 12:00:00

Opt-in, sighting and pairing limits were token buckets in each worker's memory, so with N workers a caller
got N times the limit through. On PostgreSQL (or where chosen) they are now rows of this table, one per
limit and caller (a keyed hash, never the address or id), taken with one atomic upsert.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_buckets",
        sa.Column("name", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("name", "key", name=op.f("pk_rate_limit_buckets")),
    )


def downgrade() -> None:
    op.drop_table("rate_limit_buckets")
