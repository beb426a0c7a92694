"""Trades opened at a payment provider for an order (POST /orders/{id}/checkout).

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payment_checkouts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("order_id", "provider", "method", name="uq_payment_checkout"),
    )
    op.create_index("ix_payment_checkouts_order_id", "payment_checkouts", ["order_id"])


def downgrade() -> None:
    op.drop_index("ix_payment_checkouts_order_id", table_name="payment_checkouts")
    op.drop_table("payment_checkouts")
