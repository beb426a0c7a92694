"""estimates without radiative forcing, and the edition of each factor's publication (issue 19)

Old estimates: a 2025.1 estimate recorded no figure without radiative forcing, and set
2025.1 publishes none, so one with flights stays unknown (NULL); one without flights has
no radiative forcing in it, so its total without RF is its total, exactly.

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

estimates = sa.table(
    "estimates",
    sa.column("id", sa.String),
    sa.column("total_g", sa.BigInteger),
    sa.column("categories_g", sa.JSON),
    sa.column("total_without_rf_g", sa.BigInteger),
    sa.column("categories_without_rf_g", sa.JSON),
)


def upgrade() -> None:
    with op.batch_alter_table("factors") as batch:
        batch.add_column(sa.Column("edition", sa.String(length=200), nullable=True))
    with op.batch_alter_table("estimates") as batch:
        batch.add_column(sa.Column("total_without_rf_g", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("categories_without_rf_g", sa.JSON(), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(sa.select(estimates.c.id, estimates.c.total_g, estimates.c.categories_g))
    for estimate_id, total_g, categories_g in rows.fetchall():
        if not (categories_g or {}).get("flights"):
            connection.execute(estimates.update().where(estimates.c.id == estimate_id).values(
                total_without_rf_g=total_g, categories_without_rf_g=categories_g))


def downgrade() -> None:
    with op.batch_alter_table("estimates") as batch:
        batch.drop_column("categories_without_rf_g")
        batch.drop_column("total_without_rf_g")
    with op.batch_alter_table("factors") as batch:
        batch.drop_column("edition")
