"""The nightly figures by source: each closed day's payment figures per currency and per
offer the contracts were bought from (0: proposals), so the dashboard's revenue by offer
reads the rollup like its other figures.

Revision ID: 0020
Revises: 0019
Reviewed by hand. Existing rows are all proposals' (offers came with 0019); the next
rollup rewrites its days by source.
Create Date: 2026-12-07 19:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('daily_payment_stats', schema=None) as batch_op:
        batch_op.add_column(sa.Column('offer_id', sa.Integer(), server_default='0',
                                      nullable=False))
        batch_op.drop_constraint('pk_daily_payment_stats', type_='primary')
        batch_op.create_primary_key('pk_daily_payment_stats', ['day', 'currency', 'offer_id'])


def downgrade():
    op.execute('DELETE FROM daily_payment_stats WHERE offer_id <> 0')
    with op.batch_alter_table('daily_payment_stats', schema=None) as batch_op:
        batch_op.drop_constraint('pk_daily_payment_stats', type_='primary')
        batch_op.create_primary_key('pk_daily_payment_stats', ['day', 'currency'])
        batch_op.drop_column('offer_id')
