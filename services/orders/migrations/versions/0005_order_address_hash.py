"""Orders keep a keyed hash of the address they came from, to cap what one address holds unpaid.

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


# Plain ALTER TABLE, as in 0004: copying `orders` would trip the foreign keys pointing at it.
def upgrade() -> None:
    op.add_column("orders", sa.Column("address_hash", sa.String(length=64), nullable=True))
    op.create_index("ix_orders_address_hash", "orders", ["address_hash"])


def downgrade() -> None:
    op.drop_index("ix_orders_address_hash", table_name="orders")
    op.drop_column("orders", "address_hash")
