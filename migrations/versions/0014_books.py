"""Stripe's books: each payment's Stripe fee and balance transaction, the reversals made,
and the daily reconciliation of balance transactions with our records.

Revision ID: 0014
Revises: 0013
Reviewed by hand. New columns are nullable (a payment's fee is read from Stripe after it
counts) or default to 0; the new tables start empty.
Create Date: 2026-12-07 12:00:00

"""
from alembic import op
import sqlalchemy as sa

import database.types


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stripe_fee', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('balance_transaction_id', sa.String(length=255),
                                      nullable=True))
        batch_op.add_column(sa.Column('available_on', database.types.UTCDateTime(),
                                      nullable=True))
        batch_op.add_column(sa.Column('fee_refused_at', database.types.UTCDateTime(),
                                      nullable=True))
    with op.batch_alter_table('daily_payment_stats', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stripe_fees', sa.Integer(), nullable=False,
                                      server_default='0'))
    op.create_table(
        'transfer_reversals',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('share_id', sa.Integer(), nullable=False),
        sa.Column('stripe_reversal_id', sa.String(length=255), nullable=False),
        sa.Column('amount', sa.Integer(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('created_at', database.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['share_id'], ['session_shares.id'],
                                name=op.f('fk_transfer_reversals_share_id_session_shares')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_transfer_reversals')),
        sa.UniqueConstraint('stripe_reversal_id',
                            name=op.f('uq_transfer_reversals_stripe_reversal_id')),
    )
    op.create_index('ix_transfer_reversals_created_at', 'transfer_reversals', ['created_at'])
    op.create_index(op.f('ix_transfer_reversals_share_id'), 'transfer_reversals', ['share_id'])
    op.create_table(
        'reconciliation_runs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('ran_at', database.types.UTCDateTime(), nullable=False),
        sa.Column('ran_by_id', sa.Integer(), nullable=True),
        sa.Column('transactions', sa.Integer(), nullable=False),
        sa.Column('matched', sa.Integer(), nullable=False),
        sa.Column('totals', sa.JSON(), nullable=False),
        sa.Column('error', sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(['ran_by_id'], ['users.id'],
                                name=op.f('fk_reconciliation_runs_ran_by_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_reconciliation_runs')),
    )
    op.create_index('ix_reconciliation_runs_day_id', 'reconciliation_runs', ['day', 'id'])
    op.create_table(
        'reconciliation_items',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('run_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=24), nullable=False),
        sa.Column('category', sa.String(length=40), nullable=False),
        sa.Column('balance_transaction_id', sa.String(length=255), nullable=True),
        sa.Column('source_id', sa.String(length=255), nullable=True),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('stripe_amount', sa.Integer(), nullable=True),
        sa.Column('our_amount', sa.Integer(), nullable=True),
        sa.Column('ours', sa.String(length=100), nullable=True),
        sa.Column('link', sa.String(length=300), nullable=True),
        sa.Column('note', sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(['run_id'], ['reconciliation_runs.id'],
                                name=op.f('fk_reconciliation_items_run_id_reconciliation_runs')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_reconciliation_items')),
    )
    op.create_index(op.f('ix_reconciliation_items_run_id'), 'reconciliation_items', ['run_id'])


def downgrade():
    op.drop_index(op.f('ix_reconciliation_items_run_id'), table_name='reconciliation_items')
    op.drop_table('reconciliation_items')
    op.drop_index('ix_reconciliation_runs_day_id', table_name='reconciliation_runs')
    op.drop_table('reconciliation_runs')
    op.drop_index(op.f('ix_transfer_reversals_share_id'), table_name='transfer_reversals')
    op.drop_index('ix_transfer_reversals_created_at', table_name='transfer_reversals')
    op.drop_table('transfer_reversals')
    with op.batch_alter_table('daily_payment_stats', schema=None) as batch_op:
        batch_op.drop_column('stripe_fees')
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_column('fee_refused_at')
        batch_op.drop_column('available_on')
        batch_op.drop_column('balance_transaction_id')
        batch_op.drop_column('stripe_fee')
