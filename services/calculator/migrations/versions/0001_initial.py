"""initial tables: scenes, factor sets and factors, estimates

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "factor_sets",
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )
    op.create_table(
        "scenes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("name_en", sa.String(length=200), nullable=True),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("location", sa.String(length=200), nullable=True),
        sa.Column("starts_on", sa.Date(), nullable=True),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("slug"),
    )
    op.create_index("ix_scenes_type", "scenes", ["type"])
    op.create_table(
        "factors",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("factor_set_version", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=40), nullable=False),
        sa.Column("unit", sa.String(length=80), nullable=False),
        sa.Column("publisher", sa.String(length=300), nullable=False),
        sa.Column("document", sa.String(length=300), nullable=False),
        sa.Column("table_ref", sa.String(length=300), nullable=False),
        sa.Column("citation", sa.String(length=200), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["factor_set_version"], ["factor_sets.version"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("factor_set_version", "key"),
    )
    op.create_table(
        "estimates",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("scene_slug", sa.String(length=64), nullable=True),
        sa.Column("participant_id", sa.String(length=128), nullable=True),
        sa.Column("factor_set_version", sa.String(length=32), nullable=False),
        sa.Column("total_g", sa.BigInteger(), nullable=False),
        sa.Column("categories_g", sa.JSON(), nullable=False),
        sa.Column("activities", sa.JSON(), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("benchmark", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["factor_set_version"], ["factor_sets.version"]),
        sa.ForeignKeyConstraint(["scene_slug"], ["scenes.slug"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_estimates_scene_kind", "estimates", ["scene_slug", "kind"])


def downgrade() -> None:
    op.drop_index("ix_estimates_scene_kind", table_name="estimates")
    op.drop_table("estimates")
    op.drop_table("factors")
    op.drop_index("ix_scenes_type", table_name="scenes")
    op.drop_table("scenes")
    op.drop_table("factor_sets")
