"""the revocation audit (issue 20): orders' and ranking's acknowledgements of a revocation,
the refund the revocation asked for, and when its messages may be sent again

Certificates revoked before this migration have no acknowledgement: the audit sends their
messages again, a batch per pass; orders and ranking apply a revocation once, so those they
hold change nothing.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("certificates") as batch:
        batch.add_column(sa.Column("revocation_refund", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column("revocation_orders_acked_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("revocation_ranking_acked_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("revocation_resends", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("revocation_not_before", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("certificates") as batch:
        batch.drop_column("revocation_not_before")
        batch.drop_column("revocation_resends")
        batch.drop_column("revocation_ranking_acked_at")
        batch.drop_column("revocation_orders_acked_at")
        batch.drop_column("revocation_refund")
