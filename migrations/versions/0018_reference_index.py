"""A payment's printed reference found in one look-up: indexes of the lower-cased last
eight characters of its Checkout session id and payment intent id.

Revision ID: 0018
Revises: 0017
Reviewed by hand. The expression is `database.text.Ending`, as the search writes it
(PostgreSQL `right(id, 8)`, SQLite `substr(id, -8)`), so each database's planner matches
the query to its index.
Create Date: 2026-12-07 18:30:00

"""
from alembic import op
import sqlalchemy as sa

from database.text import Ending


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

INDEXES = {
    'ix_payments_checkout_session_id_end': 'checkout_session_id',
    'ix_payments_payment_intent_id_end': 'payment_intent_id',
}


def upgrade():
    for name, column in INDEXES.items():
        op.create_index(name, 'payments', [sa.func.lower(Ending(sa.column(column), 8))])


def downgrade():
    for name in INDEXES:
        op.drop_index(name, table_name='payments')
