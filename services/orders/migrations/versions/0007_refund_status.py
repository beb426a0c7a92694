"""A refund's status at its provider and when the provider confirmed it.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("refunds") as batch:
        batch.add_column(sa.Column("status", sa.String(length=20), nullable=False,
                                   server_default="requested"))
        batch.add_column(sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True))
    # Refunds sent before: the providers that refund at once are done; WeChat Pay's are
    # confirmed by the next reconciliation's query.
    op.execute("UPDATE refunds SET status = 'succeeded' "
               "WHERE provider_reference IS NOT NULL AND provider <> 'wechatpay'")
    op.execute("UPDATE refunds SET status = 'processing' "
               "WHERE provider_reference IS NOT NULL AND provider = 'wechatpay'")


def downgrade() -> None:
    with op.batch_alter_table("refunds") as batch:
        batch.drop_column("confirmed_at")
        batch.drop_column("status")
