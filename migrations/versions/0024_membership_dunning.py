"""Membership changes: renewals Stripe could not collect, paused collection, changes asked.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07 21:00:00

Reviewed by hand. A membership remembers the renewal invoice Stripe could not collect
(its hosted page, Stripe's next attempt, when it failed, the attempt last told and why)
until it is paid, the last invoice paid (a late failure event of it is stale), until when
collection is paused, and how many changes were asked of Stripe (numbering their
idempotency keys). Existing memberships owe nothing and asked nothing.
"""
from alembic import op
import sqlalchemy as sa

import database.types


revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.add_column(sa.Column('paused_until', database.types.UTCDateTime(),
                                      nullable=True))
        batch_op.add_column(sa.Column('unpaid_invoice_id', sa.String(length=255),
                                      nullable=True))
        batch_op.add_column(sa.Column('unpaid_invoice_url', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('next_payment_attempt', database.types.UTCDateTime(),
                                      nullable=True))
        batch_op.add_column(sa.Column('payment_failed_at', database.types.UTCDateTime(),
                                      nullable=True))
        batch_op.add_column(sa.Column('unpaid_attempt', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('unpaid_reason', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('paid_invoice_id', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('changes_asked', sa.Integer(), nullable=False,
                                      server_default='0'))


def downgrade():
    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.drop_column('changes_asked')
        batch_op.drop_column('paid_invoice_id')
        batch_op.drop_column('unpaid_reason')
        batch_op.drop_column('unpaid_attempt')
        batch_op.drop_column('payment_failed_at')
        batch_op.drop_column('next_payment_attempt')
        batch_op.drop_column('unpaid_invoice_url')
        batch_op.drop_column('unpaid_invoice_id')
        batch_op.drop_column('paused_until')
