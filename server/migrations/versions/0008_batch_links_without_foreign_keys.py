"""a batch's own rows link without foreign keys: a decision's visit and event, an event's visit; a
campaign's prompts of a day by one index

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 01:20:00

The live path inserts a batch's visits, then its events (pointing at the visits), then its decisions
(pointing at both), in one transaction. PostgreSQL checked each of those three links with a row lock on a
row the same transaction had just inserted: about 55 µs each, measured with auto_explain's trigger times,
a quarter of a decision's time in the database. The retention purge, the only thing that deletes events
and visits without their decisions, unlinks them itself. Two indexes make that unlinking a lookup; with the
foreign keys' ON DELETE SET NULL and no index, PostgreSQL scanned prompt_decisions once per deleted row.

Every batch also counts its campaigns' prompts of the day (daily budgets); by `campaign_id` alone that read
went through every decision the campaign ever had. `(campaign_id, local_day)` replaces the index on
`campaign_id`, which it covers.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("prompt_decisions", schema=None) as batch_op:
        batch_op.drop_constraint("fk_prompt_decisions_visit_id_visits", type_="foreignkey")
        batch_op.drop_constraint("fk_prompt_decisions_event_id_proximity_events", type_="foreignkey")
        batch_op.create_index(batch_op.f("ix_prompt_decisions_visit_id"), ["visit_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_prompt_decisions_event_id"), ["event_id"], unique=False)
        batch_op.drop_index(batch_op.f("ix_prompt_decisions_campaign_id"))
        batch_op.create_index(
            "ix_prompt_decisions_campaign_id_local_day", ["campaign_id", "local_day"], unique=False
        )
    with op.batch_alter_table("proximity_events", schema=None) as batch_op:
        batch_op.drop_constraint("fk_proximity_events_visit_id_visits", type_="foreignkey")


def downgrade() -> None:
    # Links left dangling meanwhile (none, if only the purge deleted) would make the constraints fail.
    for table, column, parent in (
        ("proximity_events", "visit_id", "visits"),
        ("prompt_decisions", "visit_id", "visits"),
        ("prompt_decisions", "event_id", "proximity_events"),
    ):
        op.execute(
            sa.text(
                f"UPDATE {table} SET {column} = NULL WHERE {column} IS NOT NULL"
                f" AND {column} NOT IN (SELECT id FROM {parent})"
            )
        )
    with op.batch_alter_table("proximity_events", schema=None) as batch_op:
        batch_op.create_foreign_key(
            "fk_proximity_events_visit_id_visits", "visits", ["visit_id"], ["id"], ondelete="SET NULL"
        )
    with op.batch_alter_table("prompt_decisions", schema=None) as batch_op:
        batch_op.drop_index("ix_prompt_decisions_campaign_id_local_day")
        batch_op.create_index(batch_op.f("ix_prompt_decisions_campaign_id"), ["campaign_id"], unique=False)
        batch_op.drop_index(batch_op.f("ix_prompt_decisions_event_id"))
        batch_op.drop_index(batch_op.f("ix_prompt_decisions_visit_id"))
        batch_op.create_foreign_key(
            "fk_prompt_decisions_event_id_proximity_events",
            "proximity_events",
            ["event_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_foreign_key(
            "fk_prompt_decisions_visit_id_visits", "visits", ["visit_id"], ["id"], ondelete="SET NULL"
        )
