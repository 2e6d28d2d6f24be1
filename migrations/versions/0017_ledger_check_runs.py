"""The ledger check's runs, kept for the admin pages.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 16:10:00

Reviewed by hand. A periodic job runs the check and writes one row per run; the
dashboard and the payouts page read the latest instead of running the check.
"""
from alembic import op
import sqlalchemy as sa

import database.types


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'ledger_check_runs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('checked_at', database.types.UTCDateTime(), nullable=False),
        sa.Column('lines', sa.JSON(), nullable=False),
        sa.Column('seconds', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_check_runs')),
    )
    with op.batch_alter_table('ledger_check_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_check_runs_checked_at'), ['checked_at'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('ledger_check_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_check_runs_checked_at'))
    op.drop_table('ledger_check_runs')
