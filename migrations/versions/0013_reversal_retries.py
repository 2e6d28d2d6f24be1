"""Reversal retries: a reversal refused for the coach's short balance waits and is retried.

Revision ID: 0013
Revises: 0012
Reviewed by hand. Stripe refuses a transfer reversal with `balance_insufficient` when
the connected account's available balance cannot cover it (paid out already, or the
transfer's money still pending). Such a reversal is no longer a platform loss at once:
the share remembers how often it was refused (numbering the idempotency keys), since
when it waits, when it is asked next and Stripe's last words. Existing shares wait for
nothing.
Create Date: 2026-12-07 12:00:00

"""
from alembic import op
import sqlalchemy as sa

import database.types


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('session_shares', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reversal_refusals', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('reversal_waiting_since',
                                      database.types.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('reversal_next_attempt_at',
                                      database.types.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('reversal_error', sa.String(length=500), nullable=True))


def downgrade():
    with op.batch_alter_table('session_shares', schema=None) as batch_op:
        batch_op.drop_column('reversal_error')
        batch_op.drop_column('reversal_next_attempt_at')
        batch_op.drop_column('reversal_waiting_since')
        batch_op.drop_column('reversal_refusals')
