"""Money back: refund requests, refunds as records, disputes, sessions given back.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26

Reviewed by hand. A void payment's refund id moves from `payments.void_refund_id`
into a `refunds` row of source `duplicate` (succeeded when the payment was
refunded, else pending), then the column goes. `contracts.sessions_released`
starts at 0 for every contract. SQLite adds and drops the columns in place
(batch mode would copy the referenced tables; see 0006).
"""
from alembic import op
import sqlalchemy as sa

import database.types  # noqa: F401  (custom column types used by autogenerate)


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

RELEASED = 'sessions_released BETWEEN 0 AND session_count'


def upgrade():
    op.create_table('refund_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('student_id', sa.Integer(), nullable=False),
    sa.Column('category', sa.Enum('schedule', 'not_as_described', 'coach_unavailable', 'personal', 'other', name='refundcategory', native_enum=False, length=24), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('quoted_amount', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('open', 'approved', 'rejected', name='requeststatus', native_enum=False, length=24), nullable=False),
    sa.Column('approved_amount', sa.Integer(), nullable=True),
    sa.Column('override_reason', sa.String(length=500), nullable=True),
    sa.Column('decision_note', sa.String(length=500), nullable=True),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', database.types.UTCDateTime(), nullable=True),
    sa.Column('created_at', database.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_refund_requests_contract_id_contracts')),
    sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], name=op.f('fk_refund_requests_decided_by_id_users')),
    sa.ForeignKeyConstraint(['student_id'], ['users.id'], name=op.f('fk_refund_requests_student_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refund_requests'))
    )
    with op.batch_alter_table('refund_requests', schema=None) as batch_op:
        batch_op.create_index('ix_refund_requests_status_created_at', ['status', 'created_at', 'id'], unique=False)
        batch_op.create_index('uq_refund_requests_contract_id_open', ['contract_id'], unique=True, sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"))

    op.create_table('disputes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('stripe_dispute_id', sa.String(length=255), nullable=False),
    sa.Column('payment_id', sa.Integer(), nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('reason', sa.String(length=60), nullable=False),
    sa.Column('status', sa.String(length=40), nullable=False),
    sa.Column('is_charge_refundable', sa.Boolean(), nullable=False),
    sa.Column('evidence_due_by', database.types.UTCDateTime(), nullable=True),
    sa.Column('contract_status_before', sa.String(length=40), nullable=False),
    sa.Column('payment_status_before', sa.String(length=40), nullable=False),
    sa.Column('created_at', database.types.UTCDateTime(), nullable=False),
    sa.Column('updated_at', database.types.UTCDateTime(), nullable=False),
    sa.Column('closed_at', database.types.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_disputes_contract_id_contracts')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_disputes_payment_id_payments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_disputes')),
    sa.UniqueConstraint('stripe_dispute_id', name=op.f('uq_disputes_stripe_dispute_id'))
    )
    with op.batch_alter_table('disputes', schema=None) as batch_op:
        batch_op.create_index('ix_disputes_contract_id', ['contract_id'], unique=False)
        batch_op.create_index('ix_disputes_status_evidence_due_by', ['status', 'evidence_due_by'], unique=False)

    op.create_table('refunds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('payment_id', sa.Integer(), nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=True),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.Enum('pending', 'succeeded', 'failed', 'canceled', name='refundstatus', native_enum=False, length=24), nullable=False),
    sa.Column('source', sa.Enum('student_request', 'admin', 'duplicate', 'dashboard', name='refundsource', native_enum=False, length=24), nullable=False),
    sa.Column('stripe_reason', sa.String(length=40), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('stripe_refund_id', sa.String(length=255), nullable=True),
    sa.Column('failure_reason', sa.String(length=500), nullable=True),
    sa.Column('requested_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', database.types.UTCDateTime(), nullable=False),
    sa.Column('updated_at', database.types.UTCDateTime(), nullable=False),
    sa.Column('settled_at', database.types.UTCDateTime(), nullable=True),
    sa.CheckConstraint('amount > 0', name=op.f('ck_refunds_amount_positive')),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_refunds_contract_id_contracts')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_refunds_payment_id_payments')),
    sa.ForeignKeyConstraint(['request_id'], ['refund_requests.id'], name=op.f('fk_refunds_request_id_refund_requests')),
    sa.ForeignKeyConstraint(['requested_by_id'], ['users.id'], name=op.f('fk_refunds_requested_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refunds')),
    sa.UniqueConstraint('stripe_refund_id', name=op.f('uq_refunds_stripe_refund_id'))
    )
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.create_index('ix_refunds_contract_id_status', ['contract_id', 'status'], unique=False)
        batch_op.create_index('ix_refunds_created_at_id', ['created_at', 'id'], unique=False)
        batch_op.create_index('ix_refunds_payment_id', ['payment_id'], unique=False)

    sqlite = op.get_bind().dialect.name == 'sqlite'
    if sqlite:
        op.execute(
            'ALTER TABLE contracts ADD COLUMN sessions_released INTEGER NOT NULL DEFAULT 0 '
            'CONSTRAINT ck_contracts_sessions_released_range CHECK (' + RELEASED + ')'
        )
    else:
        with op.batch_alter_table('contracts', schema=None) as batch_op:
            batch_op.add_column(sa.Column('sessions_released', sa.Integer(), nullable=False,
                                          server_default='0'))
            batch_op.alter_column('sessions_released', existing_type=sa.Integer(),
                                  server_default=None)
            batch_op.create_check_constraint(op.f('ck_contracts_sessions_released_range'),
                                             RELEASED)

    op.execute(
        "INSERT INTO refunds (payment_id, contract_id, amount, currency, status, source, "
        "stripe_reason, note, stripe_refund_id, created_at, updated_at, settled_at) "
        "SELECT id, contract_id, amount, currency, "
        "CASE WHEN status = 'refunded' THEN 'succeeded' ELSE 'pending' END, 'duplicate', "
        "'duplicate', 'Void payment', void_refund_id, updated_at, updated_at, "
        "CASE WHEN status = 'refunded' THEN updated_at END "
        "FROM payments WHERE void_refund_id IS NOT NULL"
    )
    if sqlite:
        op.execute('ALTER TABLE payments DROP COLUMN void_refund_id')
    else:
        with op.batch_alter_table('payments', schema=None) as batch_op:
            batch_op.drop_column('void_refund_id')


def downgrade():
    op.add_column('payments', sa.Column('void_refund_id', sa.VARCHAR(length=255), nullable=True))
    op.execute(
        "UPDATE payments SET void_refund_id = (SELECT max(r.stripe_refund_id) FROM refunds r "
        "WHERE r.payment_id = payments.id AND r.source = 'duplicate') "
        "WHERE void_reason IS NOT NULL"
    )
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('ALTER TABLE contracts DROP COLUMN sessions_released')
    else:
        with op.batch_alter_table('contracts', schema=None) as batch_op:
            batch_op.drop_constraint(op.f('ck_contracts_sessions_released_range'), type_='check')
            batch_op.drop_column('sessions_released')

    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.drop_index('ix_refunds_payment_id')
        batch_op.drop_index('ix_refunds_created_at_id')
        batch_op.drop_index('ix_refunds_contract_id_status')

    op.drop_table('refunds')
    with op.batch_alter_table('disputes', schema=None) as batch_op:
        batch_op.drop_index('ix_disputes_status_evidence_due_by')
        batch_op.drop_index('ix_disputes_contract_id')

    op.drop_table('disputes')
    with op.batch_alter_table('refund_requests', schema=None) as batch_op:
        batch_op.drop_index('uq_refund_requests_contract_id_open', sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"))
        batch_op.drop_index('ix_refund_requests_status_created_at')

    op.drop_table('refund_requests')
