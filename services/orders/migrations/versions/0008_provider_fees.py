"""The payment provider's fee on each split line: the provider, its fee and its rate; the
split then reads gross = provider fee + platform fee + owner's net.

Lines booked before this revision carry no provider and no provider fee (0), so their
split and the reconciliation hold as they were.

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("settlement_entries") as batch:
        batch.add_column(sa.Column("provider", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("provider_fee_fen", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("provider_fee_bps", sa.Integer(), nullable=False, server_default="0"))
        batch.drop_constraint("split_adds_up", type_="check")
        batch.create_check_constraint("split_adds_up", "gross_fen = provider_fee_fen + fee_fen + net_fen")
    # The provider of lines booked before: the provider the order was paid through.
    op.execute("UPDATE settlement_entries SET provider = "
               "(SELECT orders.payment_provider FROM orders WHERE orders.id = settlement_entries.order_id)")


def downgrade() -> None:
    with op.batch_alter_table("settlement_entries") as batch:
        batch.drop_constraint("split_adds_up", type_="check")
        batch.create_check_constraint("split_adds_up", "gross_fen = fee_fen + net_fen")
        batch.drop_column("provider_fee_bps")
        batch.drop_column("provider_fee_fen")
        batch.drop_column("provider")
