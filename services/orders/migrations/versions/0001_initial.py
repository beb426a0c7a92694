"""Initial tables of the orders service.

Revision ID: 0001
Revises: 
Create Date: 2026-11-25 00:20:55.945455
"""
import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('idempotency_keys',
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('order_id', sa.String(length=40), nullable=False),
    sa.Column('response_status', sa.Integer(), nullable=False),
    sa.Column('response_body', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_idempotency_keys_expires_at'), ['expires_at'], unique=False)

    op.create_table('ledger_entries',
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.String(length=40), nullable=False),
    sa.Column('project_id', sa.String(length=40), nullable=False),
    sa.Column('body', sa.JSON(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('hash'),
    sa.UniqueConstraint('order_id')
    )
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_entries_project_id'), ['project_id'], unique=False)

    op.create_table('outbox',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('task_name', sa.String(length=100), nullable=False),
    sa.Column('queue', sa.String(length=50), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_sent_at'), ['sent_at'], unique=False)

    op.create_table('projects',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('name_en', sa.String(length=200), nullable=False),
    sa.Column('type', sa.String(length=40), nullable=False),
    sa.Column('location', sa.String(length=200), nullable=False),
    sa.Column('registry', sa.String(length=40), nullable=False),
    sa.Column('vintage', sa.Integer(), nullable=False),
    sa.Column('price_fen_per_tonne', sa.Integer(), nullable=False),
    sa.Column('issued_kg', sa.BigInteger(), nullable=False),
    sa.Column('reserved_kg', sa.BigInteger(), nullable=False),
    sa.Column('retired_kg', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('reserved_kg >= 0 AND retired_kg >= 0 AND reserved_kg + retired_kg <= issued_kg', name='inventory_adds_up'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code')
    )
    op.create_table('orders',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('project_id', sa.String(length=40), nullable=False),
    sa.Column('quantity_kg', sa.BigInteger(), nullable=False),
    sa.Column('requested_kg', sa.String(length=32), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('participant_id', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.String(length=100), nullable=False),
    sa.Column('organization', sa.String(length=200), nullable=True),
    sa.Column('scene_slug', sa.String(length=100), nullable=True),
    sa.Column('scene_name', sa.String(length=200), nullable=True),
    sa.Column('estimate_id', sa.String(length=64), nullable=True),
    sa.Column('payment_provider', sa.String(length=20), nullable=False),
    sa.Column('payment_reference', sa.String(length=100), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('failure_reason', sa.String(length=200), nullable=True),
    sa.Column('certificate_id', sa.String(length=64), nullable=True),
    sa.Column('certificate_verify_code', sa.String(length=200), nullable=True),
    sa.Column('certificate_pdf_url', sa.String(length=500), nullable=True),
    sa.Column('certificate_verify_url', sa.String(length=500), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_fen >= 0', name='non_negative_amount'),
    sa.CheckConstraint('quantity_kg > 0', name='positive_quantity'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_orders_participant_id'), ['participant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_orders_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_orders_scene_slug'), ['scene_slug'], unique=False)
        batch_op.create_index(batch_op.f('ix_orders_status'), ['status'], unique=False)

    op.create_table('serial_blocks',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('project_id', sa.String(length=40), nullable=False),
    sa.Column('first', sa.BigInteger(), nullable=False),
    sa.Column('last', sa.BigInteger(), nullable=False),
    sa.Column('next_serial', sa.BigInteger(), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('first >= 1 AND last >= first', name='block_bounds'),
    sa.CheckConstraint('next_serial >= first AND next_serial <= last + 1', name='cursor_in_block'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('project_id', 'first', name='uq_block_start')
    )
    with op.batch_alter_table('serial_blocks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_serial_blocks_project_id'), ['project_id'], unique=False)

    op.create_table('refunds',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('order_id', sa.String(length=40), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('provider', sa.String(length=20), nullable=False),
    sa.Column('provider_reference', sa.String(length=100), nullable=True),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('order_id')
    )
    op.create_table('retirements',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('order_id', sa.String(length=40), nullable=False),
    sa.Column('project_id', sa.String(length=40), nullable=False),
    sa.Column('block_id', sa.Integer(), nullable=False),
    sa.Column('serial_first', sa.BigInteger(), nullable=False),
    sa.Column('serial_last', sa.BigInteger(), nullable=False),
    sa.Column('retired_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('serial_last >= serial_first', name='range_bounds'),
    sa.ForeignKeyConstraint(['block_id'], ['serial_blocks.id'], ),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('project_id', 'serial_first', name='uq_retirement_first'),
    sa.UniqueConstraint('project_id', 'serial_last', name='uq_retirement_last')
    )
    with op.batch_alter_table('retirements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_retirements_order_id'), ['order_id'], unique=False)
    _forbid_overlapping_retirements()


# No two retirements of one project may share a serial. PostgreSQL says it with an
# exclusion constraint over serial ranges; SQLite, which has none, with a trigger.
def _forbid_overlapping_retirements() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        op.execute(
            "ALTER TABLE retirements ADD CONSTRAINT retirements_no_overlap EXCLUDE USING gist "
            "(project_id WITH =, int8range(serial_first, serial_last, '[]') WITH &&)"
        )
    else:
        op.execute(
            """
            CREATE TRIGGER retirements_no_overlap BEFORE INSERT ON retirements
            WHEN EXISTS (SELECT 1 FROM retirements r WHERE r.project_id = NEW.project_id
                         AND r.serial_first <= NEW.serial_last AND NEW.serial_first <= r.serial_last)
            BEGIN SELECT RAISE(ABORT, 'retirements_no_overlap: serial ranges overlap'); END
            """
        )


def downgrade() -> None:
    with op.batch_alter_table('retirements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_retirements_order_id'))

    op.drop_table('retirements')
    op.drop_table('refunds')
    with op.batch_alter_table('serial_blocks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_serial_blocks_project_id'))

    op.drop_table('serial_blocks')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_orders_status'))
        batch_op.drop_index(batch_op.f('ix_orders_scene_slug'))
        batch_op.drop_index(batch_op.f('ix_orders_project_id'))
        batch_op.drop_index(batch_op.f('ix_orders_participant_id'))

    op.drop_table('orders')
    op.drop_table('projects')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_sent_at'))

    op.drop_table('outbox')
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_entries_project_id'))

    op.drop_table('ledger_entries')
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idempotency_keys_expires_at'))

    op.drop_table('idempotency_keys')
