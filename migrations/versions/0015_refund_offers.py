"""Refund requests a coach offered, and requests a student withdrew.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 15:00:00

Reviewed by hand. `refund_requests.offered_amount` is new and nullable (set only on a
coach's offer above the policy). The new request status `withdrawn` and refund source
`coach` need no change: both columns are VARCHAR(24) enums without a CHECK constraint.
"""
from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('refund_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('offered_amount', sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table('refund_requests', schema=None) as batch_op:
        batch_op.drop_column('offered_amount')
