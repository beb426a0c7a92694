"""Projects' location in Chinese (issue 21: zh pages showed "Chengdu, Sichuan"). Nullable:
a project that gives its location in one language keeps showing it; ``seed-demo`` fills the
demo projects'.

Revision ID: 0013
Revises: 0012
"""
import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


# Plain ALTER TABLE, as in 0004 and 0010: a nullable column needs no table copy.
def upgrade() -> None:
    op.add_column("projects", sa.Column("location_zh", sa.String(length=200), nullable=True))


def downgrade() -> None:
    op.drop_column("projects", "location_zh")
