"""the ids of the tables that grow with every sighting, and the columns pointing at them, are 64-bit

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 04:30:00

visits, proximity_events, prompt_decisions, deliveries and prompt_responses were numbered by 32-bit
sequences: 2.1 billion rows in all, whatever the purge deletes, which the plan's peak of 5,000 events a
second would use up in five days, after which every gateway's events fail. PostgreSQL only: SQLite's
INTEGER PRIMARY KEY is a 64-bit rowid already. Each table is rewritten once (ALTER ... TYPE) with its indexes,
under an exclusive lock held to the end of the migration: on a large database, run it in a quiet hour (the
gateways' outboxes keep their events meanwhile).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Parents before the tables that point at them.
COLUMNS = {
    "visits": ["id"],
    "proximity_events": ["id", "visit_id"],
    "prompt_decisions": ["id", "visit_id", "event_id"],
    "deliveries": ["id", "decision_id"],
    "prompt_responses": ["id", "decision_id"],
}


def _retype(to: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for table, columns in COLUMNS.items():
        changes = ", ".join(f"ALTER COLUMN {column} TYPE {to}" for column in columns)
        op.execute(sa.text(f"ALTER TABLE {table} {changes}"))
        sequence = bind.scalar(sa.text("SELECT pg_get_serial_sequence(:table, 'id')"), {"table": table})
        # Its bounds follow its type (they are the old type's own), so nextval can go past 2^31 - 1.
        op.execute(sa.text(f"ALTER SEQUENCE {sequence} AS {to}"))


def upgrade() -> None:
    _retype("BIGINT")


def downgrade() -> None:
    # Fails if an id went past 2^31 - 1 meanwhile: such rows cannot go back.
    _retype("INTEGER")
