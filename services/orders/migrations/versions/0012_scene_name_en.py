"""The scene's English name on the order (issue 21), so the certificate prints the scene in both
languages: the calculator's ``name_en`` when the order was placed, sent in certificates.render.
Orders placed before have none; their certificates print the one name they have.

Revision ID: 0012
Revises: 0011
"""
import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


# Plain ALTER TABLE, as in 0004: copying `orders` would trip the foreign keys pointing at it.
def upgrade() -> None:
    op.add_column("orders", sa.Column("scene_name_en", sa.String(length=200), nullable=True))


def downgrade() -> None:
    op.drop_column("orders", "scene_name_en")
