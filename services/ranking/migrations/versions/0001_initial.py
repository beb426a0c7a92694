"""initial tables: contributions

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contributions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True,
                  nullable=False),
        sa.Column("order_id", sa.String(length=128), nullable=False),
        sa.Column("participant_id", sa.String(length=128), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("mask_name", sa.Boolean(), nullable=False),
        sa.Column("organization", sa.String(length=200), nullable=True),
        sa.Column("organization_key", sa.String(length=200), nullable=True),
        sa.Column("scene", sa.String(length=64), nullable=True),
        sa.Column("quantity_g", sa.BigInteger(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("quantity_g > 0", name="ck_contributions_quantity_positive"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("order_id"),
    )
    for column in ("participant_id", "organization_key", "scene", "occurred_at", "recorded_at",
                   "revoked_at"):
        op.create_index(f"ix_contributions_{column}", "contributions", [column])


def downgrade() -> None:
    op.drop_table("contributions")
