"""scenes.province and the organiser's inputs of a scene (issue 19: the event report)

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scenes") as batch:
        batch.add_column(sa.Column("province", sa.String(length=6), nullable=True))
    op.create_table(
        "organiser_inputs",
        sa.Column("scene_slug", sa.String(length=64), nullable=False),
        sa.Column("attendees", sa.Integer(), nullable=True),
        sa.Column("venue_wh", sa.BigInteger(), nullable=True),
        sa.Column("meat_meals", sa.Integer(), nullable=True),
        sa.Column("vegetarian_meals", sa.Integer(), nullable=True),
        sa.Column("waste_g", sa.BigInteger(), nullable=True),
        sa.Column("waste_treatment", sa.String(length=20), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["scene_slug"], ["scenes.slug"]),
        sa.PrimaryKeyConstraint("scene_slug"),
    )


def downgrade() -> None:
    op.drop_table("organiser_inputs")
    with op.batch_alter_table("scenes") as batch:
        batch.drop_column("province")
