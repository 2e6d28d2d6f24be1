"""The refund policy fixed at purchase.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27

Reviewed by hand. Each contract keeps the full-refund window in force when it was
accepted. Contracts written before this revision get the default window (14
days), the policy they were sold under; the server default only fills them and
is dropped (on PostgreSQL; see upgrade() for SQLite), so every new row states
its window.
"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


CHECK = 'refund_full_window_days >= 0'


def upgrade():
    if op.get_bind().dialect.name == 'sqlite':
        # One ALTER and no copy of the table: batch mode would copy `contracts` and drop
        # the old one, which foreign keys enforced refuse while sessions, payments and
        # audit rows point at it (and which rewrites every contract). SQLite cannot drop
        # a column's default in place, so the default stays; the app always writes the
        # column. The check belongs to the column, so DROP COLUMN can remove both.
        op.execute(
            'ALTER TABLE contracts ADD COLUMN refund_full_window_days INTEGER NOT NULL '
            'DEFAULT 14 CONSTRAINT ck_contracts_refund_window_not_negative CHECK (' + CHECK + ')'
        )
        return
    with op.batch_alter_table('contracts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('refund_full_window_days', sa.Integer(), nullable=False,
                                      server_default='14'))
        batch_op.alter_column('refund_full_window_days', existing_type=sa.Integer(),
                              server_default=None)
        batch_op.create_check_constraint(op.f('ck_contracts_refund_window_not_negative'), CHECK)


def downgrade():
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('ALTER TABLE contracts DROP COLUMN refund_full_window_days')
        return
    with op.batch_alter_table('contracts', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_contracts_refund_window_not_negative'), type_='check')
        batch_op.drop_column('refund_full_window_days')
