"""Invoices: one numbered invoice per payment that counts, numbered per year.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28

Reviewed by hand. Two new tables and nothing else changes. `invoice_counters`
holds the last number taken per calendar year (UTC); its row is made on the
year's first invoice and locked for update by `payments.invoices`. Payments
recorded before this revision (the demo's history included) get no invoice:
none is issued for them here, and the counters start empty, so the first
invoice after the upgrade is number 000001 of its year.
"""
from alembic import op
import sqlalchemy as sa

import database.types  # noqa: F401  (custom column types used by autogenerate)


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('invoice_counters',
    sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('last_number', sa.Integer(), nullable=False),
    sa.CheckConstraint('last_number >= 0', name=op.f('ck_invoice_counters_last_number_not_negative')),
    sa.PrimaryKeyConstraint('year', name=op.f('pk_invoice_counters'))
    )
    op.create_table('invoices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=20), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('payment_id', sa.Integer(), nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('student_id', sa.Integer(), nullable=False),
    sa.Column('coach_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('platform_fee', sa.Integer(), nullable=False),
    sa.Column('coach_earning', sa.Integer(), nullable=False),
    sa.Column('student_name', sa.String(length=100), nullable=False),
    sa.Column('student_email', sa.String(length=254), nullable=False),
    sa.Column('coach_name', sa.String(length=100), nullable=False),
    sa.Column('coach_email', sa.String(length=254), nullable=False),
    sa.Column('contract_title', sa.String(length=120), nullable=False),
    sa.Column('session_count', sa.Integer(), nullable=False),
    sa.Column('minutes_per_session', sa.Integer(), nullable=False),
    sa.Column('issued_at', database.types.UTCDateTime(), nullable=False),
    sa.CheckConstraint('coach_earning = amount - platform_fee', name=op.f('ck_invoices_earning_is_net')),
    sa.CheckConstraint('platform_fee >= 0 AND coach_earning >= 0', name=op.f('ck_invoices_split_not_negative')),
    sa.CheckConstraint('sequence > 0', name=op.f('ck_invoices_sequence_positive')),
    sa.ForeignKeyConstraint(['coach_id'], ['users.id'], name=op.f('fk_invoices_coach_id_users')),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_invoices_contract_id_contracts')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_invoices_payment_id_payments')),
    sa.ForeignKeyConstraint(['student_id'], ['users.id'], name=op.f('fk_invoices_student_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoices')),
    sa.UniqueConstraint('number', name=op.f('uq_invoices_number')),
    sa.UniqueConstraint('payment_id', name=op.f('uq_invoices_payment_id'))
    )
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.create_index('uq_invoices_year_sequence', ['year', 'sequence'], unique=True)


def downgrade():
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_index('uq_invoices_year_sequence')

    op.drop_table('invoices')
    op.drop_table('invoice_counters')
