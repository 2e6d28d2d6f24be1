"""Money core: what a contract received, wrote off and gave back, kept on the contract.

Revision ID: 0012
Revises: 0011
Reviewed by hand. `contracts.amount_waived` (a shortfall an admin wrote off when
accepting a short payment) and `contracts.amount_returned` (refunds plus disputes
lost) join `amount_paid`, so scheduling unlocks sessions from the contract's own
row. `payments.amount_waived` records the write-off on the payment it was accepted
with. Existing rows are backfilled from the refunds and disputes already recorded.
Create Date: 2026-12-07 08:40:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('contracts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('amount_waived', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('amount_returned', sa.Integer(), nullable=False,
                                      server_default='0'))
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('amount_waived', sa.Integer(), nullable=False,
                                      server_default='0'))
    op.execute(
        """
        UPDATE contracts SET amount_returned = (
            SELECT COALESCE(SUM(r.amount), 0) FROM refunds r
            JOIN payments p ON p.id = r.payment_id
            WHERE r.contract_id = contracts.id AND r.status = 'succeeded'
              AND p.void_reason IS NULL
        ) + (
            SELECT COALESCE(SUM(d.amount), 0) FROM disputes d
            JOIN payments p ON p.id = d.payment_id
            WHERE d.contract_id = contracts.id AND d.status = 'lost'
              AND p.void_reason IS NULL
        )
        """
    )


def downgrade():
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_column('amount_waived')
    with op.batch_alter_table('contracts', schema=None) as batch_op:
        batch_op.drop_column('amount_returned')
        batch_op.drop_column('amount_waived')
