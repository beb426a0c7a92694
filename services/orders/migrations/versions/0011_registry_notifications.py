"""Registry notifications (issue 20): what certificates was told of each order's registry
coverage and what it confirmed (``orders.registry_shown``), so the pipeline audit sends a lost
``certificates.show_registry`` again.

Records made before this migration have no notification row: their messages were sent with the
record (and the certificates service keeps the newest per order); the audit watches only those
sent from now on.

Revision ID: 0011
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registry_notifications",
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("anchored_kg", sa.BigInteger(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("shown_kg", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"]),
        sa.PrimaryKeyConstraint("order_id"),
    )
    op.create_index("ix_registry_notifications_sent_at", "registry_notifications", ["sent_at"])


def downgrade() -> None:
    op.drop_index("ix_registry_notifications_sent_at", table_name="registry_notifications")
    op.drop_table("registry_notifications")
