"""The admin console: daily payment figures, review decisions, manual payments.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26

Reviewed by hand. A manual (offline) payment has no Checkout session, so that
column becomes nullable (still unique). A payment that does not count for its
contract (a duplicate, or one refused in review) carries `void_reason`. Indexes
for the admin's keyset pages: newest first, optionally by status and currency.
Events note what they are about (object and payment intent ids) so that a
payment's timeline finds them by index.
"""
from alembic import op
import sqlalchemy as sa

import database.types  # noqa: F401  (custom column types used by autogenerate)


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

HELD = "review_reason IS NOT NULL AND review_resolution IS NULL"
FAILED = "failure_reason IS NOT NULL"
DISPUTED = "status = 'disputed'"


def upgrade():
    op.create_table('daily_payment_stats',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status_counts', sa.JSON(), nullable=False),
    sa.Column('succeeded', sa.Integer(), nullable=False),
    sa.Column('failed', sa.Integer(), nullable=False),
    sa.Column('gross', sa.Integer(), nullable=False),
    sa.Column('refunded', sa.Integer(), nullable=False),
    sa.Column('fees', sa.Integer(), nullable=False),
    sa.Column('earnings', sa.Integer(), nullable=False),
    sa.Column('computed_at', database.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('day', 'currency', name=op.f('pk_daily_payment_stats'))
    )
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('charge_id', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('review_resolution', sa.Enum('accepted', 'refunded', name='reviewresolution', native_enum=False, length=24), nullable=True))
        batch_op.add_column(sa.Column('review_note', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('reviewed_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('reviewed_at', database.types.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('void_reason', sa.Enum('duplicate', 'review', name='voidreason', native_enum=False, length=24), nullable=True))
        batch_op.add_column(sa.Column('void_refund_id', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('manual_method', sa.Enum('cash', 'cheque', 'bank_transfer', name='manualmethod', native_enum=False, length=24), nullable=True))
        batch_op.add_column(sa.Column('manual_reference', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('received_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('note', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('recorded_by_id', sa.Integer(), nullable=True))
        batch_op.alter_column('checkout_session_id',
               existing_type=sa.VARCHAR(length=255),
               nullable=True)
        batch_op.create_index('ix_payments_created_at_id', ['created_at', 'id'], unique=False)
        batch_op.create_index('ix_payments_currency_created_at', ['currency', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_payments_status_currency_created_at', ['status', 'currency', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_payments_held_created_at', ['created_at', 'id'], unique=False,
                              sqlite_where=sa.text(HELD), postgresql_where=sa.text(HELD))
        batch_op.create_index('ix_payments_failed_created_at', ['created_at'], unique=False,
                              sqlite_where=sa.text(FAILED), postgresql_where=sa.text(FAILED),
                              postgresql_include=['failure_reason'])
        batch_op.create_unique_constraint(batch_op.f('uq_payments_charge_id'), ['charge_id'])
        batch_op.create_foreign_key(batch_op.f('fk_payments_reviewed_by_id_users'), 'users', ['reviewed_by_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_payments_recorded_by_id_users'), 'users', ['recorded_by_id'], ['id'])

    with op.batch_alter_table('contracts', schema=None) as batch_op:
        batch_op.create_index('ix_contracts_disputed_updated_at', ['updated_at'], unique=False,
                              sqlite_where=sa.text(DISPUTED), postgresql_where=sa.text(DISPUTED))

    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('object_id', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('payment_intent_id', sa.String(length=255), nullable=True))
        batch_op.create_index('ix_webhook_events_object_id', ['object_id'], unique=False)
        batch_op.create_index('ix_webhook_events_payment_intent_id', ['payment_intent_id'], unique=False)
        batch_op.create_index('ix_webhook_events_type_id', ['type', 'id'], unique=False)



def downgrade():
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_events_type_id')
        batch_op.drop_index('ix_webhook_events_payment_intent_id')
        batch_op.drop_index('ix_webhook_events_object_id')
        batch_op.drop_column('payment_intent_id')
        batch_op.drop_column('object_id')

    with op.batch_alter_table('contracts', schema=None) as batch_op:
        batch_op.drop_index('ix_contracts_disputed_updated_at')

    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_index('ix_payments_failed_created_at')
        batch_op.drop_index('ix_payments_held_created_at')
        batch_op.drop_constraint(batch_op.f('fk_payments_recorded_by_id_users'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_payments_reviewed_by_id_users'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_payments_charge_id'), type_='unique')
        batch_op.drop_index('ix_payments_status_currency_created_at')
        batch_op.drop_index('ix_payments_currency_created_at')
        batch_op.drop_index('ix_payments_created_at_id')
        batch_op.alter_column('checkout_session_id',
               existing_type=sa.VARCHAR(length=255),
               nullable=False)
        batch_op.drop_column('recorded_by_id')
        batch_op.drop_column('note')
        batch_op.drop_column('received_on')
        batch_op.drop_column('manual_reference')
        batch_op.drop_column('manual_method')
        batch_op.drop_column('void_refund_id')
        batch_op.drop_column('void_reason')
        batch_op.drop_column('reviewed_at')
        batch_op.drop_column('reviewed_by_id')
        batch_op.drop_column('review_note')
        batch_op.drop_column('review_resolution')
        batch_op.drop_column('charge_id')

    op.drop_table('daily_payment_stats')
