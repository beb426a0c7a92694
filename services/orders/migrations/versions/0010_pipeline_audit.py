"""The pipeline audit (issue 20): ranking's acknowledgement of an order's contribution
(``orders.ranked_at``) and the repair tasks' record of what they sent again
(``pipeline_resends``), so a re-sent message waits for its previous copy's retries.

Orders retired before this migration have no acknowledgement: the audit asks ranking about
them again, a batch per pass (ranking.record is idempotent, so those it holds change nothing).

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


# Plain ALTER TABLE, as in 0004: copying `orders` would trip the foreign keys pointing at it.
def upgrade() -> None:
    op.add_column("orders", sa.Column("ranked_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_orders_ranked_at", "orders", ["ranked_at"])
    op.create_table(
        "pipeline_resends",
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("task_name", sa.String(length=100), nullable=False),
        sa.Column("resends", sa.Integer(), nullable=False),
        sa.Column("last_resent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"]),
        sa.PrimaryKeyConstraint("order_id", "task_name"),
    )
    op.create_index("ix_pipeline_resends_not_before", "pipeline_resends", ["not_before"])


def downgrade() -> None:
    op.drop_index("ix_pipeline_resends_not_before", table_name="pipeline_resends")
    op.drop_table("pipeline_resends")
    op.drop_index("ix_orders_ranked_at", table_name="orders")
    op.drop_column("orders", "ranked_at")
