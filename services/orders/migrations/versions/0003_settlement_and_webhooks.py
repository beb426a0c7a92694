"""Settlement to project owners (owners, fee rules, the split journal, payouts), outbound
webhooks (endpoints, events, deliveries and their attempts), revoked certificates.

Payments captured before this revision are split with the fee they had then (none), to
no owner yet, so the reconciliation holds on an existing database from the start.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 01:09:41.360115
"""
import os
from datetime import timezone
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('owners',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('payout_account', sa.String(length=100), nullable=False),
    sa.Column('contact', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('webhook_endpoints',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('url', sa.String(length=500), nullable=False),
    sa.Column('events', sa.JSON(), nullable=False),
    sa.Column('scene_slug', sa.String(length=100), nullable=True),
    sa.Column('description', sa.String(length=200), nullable=True),
    sa.Column('secret', sa.String(length=100), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('webhook_events',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('type', sa.String(length=40), nullable=False),
    sa.Column('scene_slug', sa.String(length=100), nullable=True),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('webhook_deliveries',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('endpoint_id', sa.String(length=40), nullable=False),
    sa.Column('event_id', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('dispatched_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('leased_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_status_code', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['endpoint_id'], ['webhook_endpoints.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['event_id'], ['webhook_events.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('endpoint_id', 'event_id', name='uq_delivery_endpoint_event')
    )
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_deliveries_endpoint_id'), ['endpoint_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_webhook_deliveries_event_id'), ['event_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_webhook_deliveries_next_attempt_at'), ['next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_webhook_deliveries_status'), ['status'], unique=False)

    op.create_table('payouts',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('owner_id', sa.String(length=40), nullable=False),
    sa.Column('project_id', sa.String(length=40), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('reference', sa.String(length=100), nullable=False),
    sa.Column('paid_on', sa.Date(), nullable=False),
    sa.Column('note', sa.String(length=200), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_fen > 0', name='positive_payout'),
    sa.ForeignKeyConstraint(['owner_id'], ['owners.id'], ),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('reference')
    )
    with op.batch_alter_table('payouts', schema=None) as batch_op:
        batch_op.create_index('ix_payouts_statement', ['owner_id', 'project_id', 'period'], unique=False)

    op.create_table('webhook_attempts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('delivery_id', sa.Integer(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('succeeded', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['delivery_id'], ['webhook_deliveries.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('delivery_id', 'attempt', name='uq_attempt_number')
    )
    with op.batch_alter_table('webhook_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_attempts_delivery_id'), ['delivery_id'], unique=False)

    op.create_table('settlement_entries',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('order_id', sa.String(length=40), nullable=False),
    sa.Column('project_id', sa.String(length=40), nullable=False),
    sa.Column('owner_id', sa.String(length=40), nullable=True),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('quantity_kg', sa.BigInteger(), nullable=False),
    sa.Column('gross_fen', sa.BigInteger(), nullable=False),
    sa.Column('fee_fen', sa.BigInteger(), nullable=False),
    sa.Column('net_fen', sa.BigInteger(), nullable=False),
    sa.Column('fee_bps', sa.Integer(), nullable=False),
    sa.Column('fee_min_fen', sa.BigInteger(), nullable=False),
    sa.Column('booked_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('capture', 'refund')", name='settlement_kind'),
    sa.CheckConstraint('gross_fen = fee_fen + net_fen', name='split_adds_up'),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.ForeignKeyConstraint(['owner_id'], ['owners.id'], ),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('order_id', 'kind', name='uq_settlement_order_kind')
    )
    with op.batch_alter_table('settlement_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_settlement_entries_owner_id'), ['owner_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_settlement_entries_period'), ['period'], unique=False)
        batch_op.create_index('ix_settlement_project_period', ['project_id', 'period'], unique=False)

    op.add_column('orders', sa.Column('certificate_revoked_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('orders', sa.Column('revocation_reason', sa.String(length=500), nullable=True))

    # Plain ADD COLUMN: on SQLite a batch would rebuild projects, which other tables reference.
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE projects ADD COLUMN owner_id VARCHAR(40) REFERENCES owners (id)")
    else:
        op.add_column('projects', sa.Column('owner_id', sa.String(length=40), nullable=True))
        op.create_foreign_key('fk_projects_owner_id', 'projects', 'owners', ['owner_id'], ['id'])
    op.add_column('projects', sa.Column('fee_bps', sa.Integer(), server_default='0', nullable=False))
    op.add_column('projects', sa.Column('fee_min_fen', sa.BigInteger(), server_default='0', nullable=False))
    op.add_column('projects', sa.Column('low_inventory_threshold_kg', sa.BigInteger(), nullable=True))
    op.create_index('ix_projects_owner_id', 'projects', ['owner_id'], unique=False)
    _split_earlier_payments()


def _split_earlier_payments() -> None:
    """One capture line per payment captured so far (fee 0, no owner), one refund line per refund."""
    bind = op.get_bind()
    zone = ZoneInfo(os.environ.get("SETTLEMENT_TIMEZONE") or "Asia/Shanghai")
    captured = bind.execute(sa.text(
        "SELECT o.id, o.project_id, o.quantity_kg, o.amount_fen, COALESCE(o.paid_at, r.created_at) AS captured_at, "
        "r.created_at AS refunded_at FROM orders o LEFT JOIN refunds r ON r.order_id = o.id "
        "WHERE o.paid_at IS NOT NULL OR r.id IS NOT NULL").columns(
            sa.column("id"), sa.column("project_id"), sa.column("quantity_kg"), sa.column("amount_fen"),
            sa.column("captured_at", sa.DateTime()), sa.column("refunded_at", sa.DateTime()))).all()
    insert = sa.text(
        "INSERT INTO settlement_entries (order_id, project_id, owner_id, kind, period, quantity_kg, gross_fen, "
        "fee_fen, net_fen, fee_bps, fee_min_fen, booked_at) VALUES (:order_id, :project_id, NULL, :kind, "
        ":period, :kg, :gross, 0, :gross, 0, 0, :at)").bindparams(sa.bindparam("at", type_=sa.DateTime(timezone=True)))
    for order_id, project_id, kg, amount, captured_at, refunded_at in captured:
        for kind, at, sign in (("capture", captured_at, 1), ("refund", refunded_at, -1)):
            if at is None:
                continue
            at = at if at.tzinfo else at.replace(tzinfo=timezone.utc)  # SQLite returns naive UTC
            bind.execute(insert, {"order_id": order_id, "project_id": project_id, "kind": kind,
                                  "period": at.astimezone(zone).strftime("%Y-%m"), "kg": sign * kg,
                                  "gross": sign * amount, "at": at})


def downgrade() -> None:
    op.drop_index('ix_projects_owner_id', table_name='projects')
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint('fk_projects_owner_id', 'projects', type_='foreignkey')
    for column in ('low_inventory_threshold_kg', 'fee_min_fen', 'fee_bps', 'owner_id'):
        op.drop_column('projects', column)  # SQLite ≥ 3.35 drops columns in place

    op.drop_column('orders', 'revocation_reason')
    op.drop_column('orders', 'certificate_revoked_at')

    with op.batch_alter_table('settlement_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_settlement_project_period')
        batch_op.drop_index(batch_op.f('ix_settlement_entries_period'))
        batch_op.drop_index(batch_op.f('ix_settlement_entries_owner_id'))

    op.drop_table('settlement_entries')
    with op.batch_alter_table('webhook_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_attempts_delivery_id'))

    op.drop_table('webhook_attempts')
    with op.batch_alter_table('payouts', schema=None) as batch_op:
        batch_op.drop_index('ix_payouts_statement')

    op.drop_table('payouts')
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_deliveries_status'))
        batch_op.drop_index(batch_op.f('ix_webhook_deliveries_next_attempt_at'))
        batch_op.drop_index(batch_op.f('ix_webhook_deliveries_event_id'))
        batch_op.drop_index(batch_op.f('ix_webhook_deliveries_endpoint_id'))

    op.drop_table('webhook_deliveries')
    op.drop_table('webhook_events')
    op.drop_table('webhook_endpoints')
    op.drop_table('owners')
