"""certificates show the registry cancellations covering their serials (issue 19)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("certificates") as batch:
        batch.add_column(sa.Column("registry_coverage", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("registry_kg", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("pdf_registry_kg", sa.BigInteger(), nullable=False, server_default="0"))
    op.create_table(
        "registry_notices",
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("coverage", sa.JSON(), nullable=False),
        sa.Column("anchored_kg", sa.BigInteger(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name="pk_registry_notices"),
    )


def downgrade() -> None:
    op.drop_table("registry_notices")
    with op.batch_alter_table("certificates") as batch:
        batch.drop_column("pdf_registry_kg")
        batch.drop_column("registry_kg")
        batch.drop_column("registry_coverage")
