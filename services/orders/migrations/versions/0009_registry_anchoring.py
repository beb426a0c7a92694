"""Registry anchoring (issue 19): the registry cancellations that back the platform's
retirements, and the serial ranges each covers. Ranges of one project never overlap, like
retirements: an exclusion constraint on PostgreSQL, a trigger on SQLite.

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registry_retirements",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("quantity_kg", sa.BigInteger(), nullable=False),
        sa.Column("registry_serial_first", sa.String(length=100), nullable=False),
        sa.Column("registry_serial_last", sa.String(length=100), nullable=False),
        sa.Column("cancellation_id", sa.String(length=100), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("retired_on", sa.Date(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("quantity_kg > 0 AND quantity_kg % 1000 = 0", name="whole_tonnes"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("project_id", "cancellation_id", name="uq_registry_cancellation"),
    )
    with op.batch_alter_table("registry_retirements") as batch:
        batch.create_index(batch.f("ix_registry_retirements_project_id"), ["project_id"], unique=False)
    op.create_table(
        "anchored_ranges",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("record_id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("serial_first", sa.BigInteger(), nullable=False),
        sa.Column("serial_last", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("serial_last >= serial_first", name="anchored_range_bounds"),
        sa.ForeignKeyConstraint(["record_id"], ["registry_retirements.id"]),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("project_id", "serial_first", name="uq_anchored_first"),
        sa.UniqueConstraint("project_id", "serial_last", name="uq_anchored_last"),
    )
    with op.batch_alter_table("anchored_ranges") as batch:
        batch.create_index(batch.f("ix_anchored_ranges_record_id"), ["record_id"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        op.execute(
            "ALTER TABLE anchored_ranges ADD CONSTRAINT anchored_ranges_no_overlap EXCLUDE USING gist "
            "(project_id WITH =, int8range(serial_first, serial_last, '[]') WITH &&)"
        )
    else:
        op.execute(
            """
            CREATE TRIGGER anchored_ranges_no_overlap BEFORE INSERT ON anchored_ranges
            WHEN EXISTS (SELECT 1 FROM anchored_ranges r WHERE r.project_id = NEW.project_id
                         AND r.serial_first <= NEW.serial_last AND NEW.serial_first <= r.serial_last)
            BEGIN SELECT RAISE(ABORT, 'anchored_ranges_no_overlap: serial ranges overlap'); END
            """
        )


def downgrade() -> None:
    with op.batch_alter_table("anchored_ranges") as batch:
        batch.drop_index(batch.f("ix_anchored_ranges_record_id"))
    op.drop_table("anchored_ranges")
    with op.batch_alter_table("registry_retirements") as batch:
        batch.drop_index(batch.f("ix_registry_retirements_project_id"))
    op.drop_table("registry_retirements")
