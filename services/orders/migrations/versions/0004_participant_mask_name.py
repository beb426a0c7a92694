"""Orders remember the guest's choice to mask their name on the leaderboards.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


# Plain ALTER TABLE (no batch copy): SQLite adds a column with a constant default in place,
# and copying `orders` would trip the foreign keys that point at it.
def upgrade() -> None:
    op.add_column("orders", sa.Column("mask_name", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    op.drop_column("orders", "mask_name")
