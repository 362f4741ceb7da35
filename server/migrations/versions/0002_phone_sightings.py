"""phone sightings: proximity events without a gateway

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 09:40:00.000000

An iOS phone reports its own sighting of a site's iBeacon region, so a proximity event may have no gateway.
Gateway rows stay idempotent per (gateway_id, idempotency_key); NULLs are distinct in a unique constraint
on both SQLite and PostgreSQL, so phone rows get their own partial unique index per (subscriber_id,
idempotency_key). A check constraint keeps `source` and `gateway_id` consistent.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PHONE_ROWS = "source = 'phone'"


def upgrade() -> None:
    with op.batch_alter_table("proximity_events", schema=None) as batch_op:
        batch_op.alter_column("gateway_id", existing_type=sa.Integer(), nullable=True)
        batch_op.create_check_constraint(
            "source_matches_gateway",
            "(source = 'gateway' AND gateway_id IS NOT NULL) OR (source = 'phone' AND gateway_id IS NULL)",
        )
        batch_op.create_index(
            "uq_proximity_events_phone_subscriber_id_idempotency_key",
            ["subscriber_id", "idempotency_key"],
            unique=True,
            sqlite_where=sa.text(PHONE_ROWS),
            postgresql_where=sa.text(PHONE_ROWS),
        )


def downgrade() -> None:
    # Phone sightings cannot exist without a gateway in the old schema: they go.
    op.execute(sa.text("DELETE FROM proximity_events WHERE gateway_id IS NULL"))
    with op.batch_alter_table("proximity_events", schema=None) as batch_op:
        batch_op.drop_index("uq_proximity_events_phone_subscriber_id_idempotency_key")
        batch_op.drop_constraint(op.f("ck_proximity_events_source_matches_gateway"), type_="check")
        batch_op.alter_column("gateway_id", existing_type=sa.Integer(), nullable=False)
