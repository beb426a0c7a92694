"""estimates by participant: an index for a guest's own estimates, newest first (issue 21)

Estimates already keep the participant the gateway vouched for when they were placed;
the /me page lists them by that id, newest first.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_estimates_participant_created", "estimates", ["participant_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_estimates_participant_created", table_name="estimates")
