"""The admin's one search box: users' and contracts' text folded for search, and the
indexes that find a part of it, a payment's reference and its Stripe ids.

Revision ID: 0016
Revises: 0015
Reviewed by hand. `search_text` is filled here for the rows that exist, by the same
function the models use (`database.text.fold`). On PostgreSQL the pg_trgm extension is
created (it ships with PostgreSQL; creating it needs the database owner's rights) and the
`*_trgm` indexes are GIN indexes of trigrams; on SQLite they are empty (`WHERE 0`).
Create Date: 2026-12-07 15:00:00

"""
from alembic import op
import sqlalchemy as sa

from database.text import fold


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

BATCH = 5000


def _trigram(name, table, column):
    op.create_index(name, table, [column], postgresql_using='gin',
                    postgresql_ops={column: 'gin_trgm_ops'}, sqlite_where=sa.text('0'))


def _backfill(table, columns):
    """search_text = fold(the columns joined by a space), in batches by id."""
    conn = op.get_bind()
    rows = sa.table(table, sa.column('id'), sa.column('search_text'),
                    *(sa.column(c) for c in columns))
    last = 0
    while True:
        batch = conn.execute(
            sa.select(rows.c.id, *(rows.c[c] for c in columns))
            .where(rows.c.id > last).order_by(rows.c.id).limit(BATCH)
        ).all()
        if not batch:
            return
        conn.execute(
            rows.update().where(rows.c.id == sa.bindparam('row_id'))
            .values(search_text=sa.bindparam('folded')),
            [{'row_id': row[0], 'folded': fold(' '.join(v or '' for v in row[1:]))}
             for row in batch],
        )
        last = batch[-1][0]


def upgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('search_text', sa.String(length=400), nullable=False,
                                      server_default=''))
    with op.batch_alter_table('contracts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('search_text', sa.String(length=300), nullable=False,
                                      server_default=''))
    _backfill('users', ('name', 'email'))
    _backfill('contracts', ('title',))
    _trigram('ix_users_search_text_trgm', 'users', 'search_text')
    _trigram('ix_contracts_search_text_trgm', 'contracts', 'search_text')
    _trigram('ix_payments_checkout_session_id_trgm', 'payments', 'checkout_session_id')
    _trigram('ix_payments_payment_intent_id_trgm', 'payments', 'payment_intent_id')
    op.create_index('ix_payments_customer_id', 'payments', ['customer_id'])
    op.create_index('ix_payments_balance_transaction_id', 'payments', ['balance_transaction_id'])
    op.create_index('ix_payments_manual_reference', 'payments', ['manual_reference'],
                    sqlite_where=sa.text('manual_reference IS NOT NULL'),
                    postgresql_where=sa.text('manual_reference IS NOT NULL'))


def downgrade():
    op.drop_index('ix_payments_manual_reference', table_name='payments')
    op.drop_index('ix_payments_balance_transaction_id', table_name='payments')
    op.drop_index('ix_payments_customer_id', table_name='payments')
    op.drop_index('ix_payments_payment_intent_id_trgm', table_name='payments')
    op.drop_index('ix_payments_checkout_session_id_trgm', table_name='payments')
    op.drop_index('ix_contracts_search_text_trgm', table_name='contracts')
    op.drop_index('ix_users_search_text_trgm', table_name='users')
    with op.batch_alter_table('contracts', schema=None) as batch_op:
        batch_op.drop_column('search_text')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('search_text')
    # pg_trgm stays: other databases' objects may use it, and it costs nothing idle.
