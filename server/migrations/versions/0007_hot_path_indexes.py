"""hot path indexes: find a person's visit at a site by an index; drop two indexes a unique key already covers

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 23:05:00

The live path looks up the batch's people's recent visits at their sites on every batch; with only
`last_seen_at` and `site_id` indexed that read every visit of the last minutes (at the plan's 5,000 events a
second, hundreds of thousands of rows). `ix_prompt_decisions_subscriber_id` and `ix_deliveries_decision_id`
repeat the first column of a unique key on the same table: every insert paid for an index no query needs.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.create_index(
            "ix_visits_subscriber_id_site_id_last_seen_at",
            ["subscriber_id", "site_id", "last_seen_at"],
            unique=False,
        )
    with op.batch_alter_table("prompt_decisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_prompt_decisions_subscriber_id"))
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deliveries_decision_id"))


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deliveries_decision_id"), ["decision_id"], unique=False)
    with op.batch_alter_table("prompt_decisions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_prompt_decisions_subscriber_id"), ["subscriber_id"], unique=False
        )
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.drop_index("ix_visits_subscriber_id_site_id_last_seen_at")
