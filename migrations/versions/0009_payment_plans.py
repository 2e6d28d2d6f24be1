"""Payment plans: plans a coach allows, the plan and its instalments, money paid so far.

Revision ID: 0009
Revises: 0008
Reviewed by hand. Every contract paid before this revision was paid in full, so
`amount_paid` starts at the total for them and 0 otherwise. Columns are added in
place (on SQLite, batch mode would copy tables that others reference; see 0006).

Create Date: 2026-11-26 07:47:37.402687

"""
from alembic import op
import sqlalchemy as sa

import database.types  # noqa: F401  (custom column types used by autogenerate)


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('payment_plans',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('active', 'paused', 'completed', 'cancelled', name='planstatus', native_enum=False, length=24), nullable=False),
    sa.Column('deposit_percent', sa.Integer(), nullable=False),
    sa.Column('instalment_count', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.String(length=255), nullable=True),
    sa.Column('payment_method_id', sa.String(length=255), nullable=True),
    sa.Column('paused_at', database.types.UTCDateTime(), nullable=True),
    sa.Column('created_at', database.types.UTCDateTime(), nullable=False),
    sa.Column('updated_at', database.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_payment_plans_contract_id_contracts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_plans')),
    sa.UniqueConstraint('contract_id', name=op.f('uq_payment_plans_contract_id'))
    )
    op.create_table('instalments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('status', sa.Enum('scheduled', 'processing', 'paid', 'failed', 'cancelled', name='instalmentstatus', native_enum=False, length=24), nullable=False),
    sa.Column('next_attempt_at', database.types.UTCDateTime(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('needs_authentication', sa.Boolean(), nullable=False),
    sa.Column('paid_at', database.types.UTCDateTime(), nullable=True),
    sa.Column('created_at', database.types.UTCDateTime(), nullable=False),
    sa.Column('updated_at', database.types.UTCDateTime(), nullable=False),
    sa.CheckConstraint('amount > 0', name=op.f('ck_instalments_amount_positive')),
    sa.ForeignKeyConstraint(['plan_id'], ['payment_plans.id'], name=op.f('fk_instalments_plan_id_payment_plans')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_instalments')),
    sa.UniqueConstraint('plan_id', 'number', name='uq_instalments_plan_id_number')
    )
    with op.batch_alter_table('instalments', schema=None) as batch_op:
        batch_op.create_index('ix_instalments_status_next_attempt_at', ['status', 'next_attempt_at'], unique=False)

    for table in ('proposals', 'contracts'):
        op.add_column(table, sa.Column('plan_deposit_percent', sa.Integer(), nullable=True))
        op.add_column(table, sa.Column('plan_max_instalments', sa.Integer(), nullable=True))
    op.add_column('contracts', sa.Column('plan_instalments', sa.Integer(), nullable=True))
    op.add_column('contracts', sa.Column('amount_paid', sa.Integer(), nullable=False,
                                         server_default='0'))
    op.execute('UPDATE contracts SET amount_paid = total_amount WHERE paid_at IS NOT NULL')
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('ALTER TABLE payments ADD COLUMN instalment_id INTEGER '
                   'CONSTRAINT fk_payments_instalment_id_instalments REFERENCES instalments (id)')
    else:
        op.alter_column('contracts', 'amount_paid', server_default=None)
        op.add_column('payments', sa.Column('instalment_id', sa.Integer(), nullable=True))
        op.create_foreign_key(op.f('fk_payments_instalment_id_instalments'), 'payments',
                              'instalments', ['instalment_id'], ['id'])
    op.create_index(op.f('ix_payments_instalment_id'), 'payments', ['instalment_id'],
                    unique=False)


def downgrade():
    op.drop_index(op.f('ix_payments_instalment_id'), table_name='payments')
    if op.get_bind().dialect.name != 'sqlite':
        op.drop_constraint(op.f('fk_payments_instalment_id_instalments'), 'payments',
                           type_='foreignkey')
    op.drop_column('payments', 'instalment_id')
    for column in ('amount_paid', 'plan_instalments'):
        op.drop_column('contracts', column)
    for table in ('proposals', 'contracts'):
        op.drop_column(table, 'plan_max_instalments')
        op.drop_column(table, 'plan_deposit_percent')
    op.drop_index('ix_instalments_status_next_attempt_at', table_name='instalments')
    op.drop_table('instalments')
    op.drop_table('payment_plans')
