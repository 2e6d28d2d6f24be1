"""Membership periods: each paid membership invoice is a contract of its period.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 20:50:00

Reviewed by hand. A period's contract carries its membership and the window its
sessions start in (and, with rollover, the unused sessions that may still start until a
later date); its total is what the invoice charged, which need not be the price of a
session times the sessions, so the contracts' `total_matches_terms` check now holds for
contracts that belong to no membership. The payment of a period names its invoice, and a
credit grant names the contract it opened.

SQLite cannot change a CHECK constraint in place: the table's stored CREATE statement is
rewritten under `writable_schema`, the procedure SQLite documents for removing or
loosening a CHECK constraint (the rows on disk do not change).
"""
from alembic import op
import sqlalchemy as sa

import database.types  # noqa: F401  (custom column types used by autogenerate)


# revision identifiers, used by Alembic.
revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

OLD_CHECK = 'CHECK (total_amount = price_per_session * session_count)'
NEW_CHECK = ('CHECK (total_amount = price_per_session * session_count '
             'OR membership_id IS NOT NULL)')


def _sqlite_rewrite_check(before: str, after: str) -> None:
    bind = op.get_bind()
    sql = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'contracts'"
    ).scalar_one()
    if sql.count(before) != 1:
        raise RuntimeError("contracts: the total check is not as this migration expects")
    version = bind.exec_driver_sql('PRAGMA schema_version').scalar_one()
    bind.exec_driver_sql('PRAGMA writable_schema = ON')
    bind.exec_driver_sql(
        "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'contracts'",
        (sql.replace(before, after),),
    )
    bind.exec_driver_sql(f'PRAGMA schema_version = {int(version) + 1}')
    bind.exec_driver_sql('PRAGMA writable_schema = OFF')


def _check(expression: str) -> None:
    if op.get_bind().dialect.name == 'sqlite':
        return
    op.drop_constraint(op.f('ck_contracts_total_matches_terms'), 'contracts', type_='check')
    op.create_check_constraint(op.f('ck_contracts_total_matches_terms'), 'contracts',
                               expression)


def upgrade():
    sqlite = op.get_bind().dialect.name == 'sqlite'
    if sqlite:
        op.execute('ALTER TABLE contracts ADD COLUMN membership_id INTEGER '
                   'CONSTRAINT fk_contracts_membership_id_memberships '
                   'REFERENCES memberships (id)')
    else:
        op.add_column('contracts', sa.Column('membership_id', sa.Integer(), nullable=True))
        op.create_foreign_key(op.f('fk_contracts_membership_id_memberships'), 'contracts',
                              'memberships', ['membership_id'], ['id'])
    op.add_column('contracts', sa.Column('period_start', database.types.UTCDateTime(),
                                         nullable=True))
    op.add_column('contracts', sa.Column('period_end', database.types.UTCDateTime(),
                                         nullable=True))
    op.add_column('contracts', sa.Column('rollover_sessions', sa.Integer(), nullable=False,
                                         server_default='0'))
    op.add_column('contracts', sa.Column('rollover_until', database.types.UTCDateTime(),
                                         nullable=True))
    op.create_index('ix_contracts_membership_id_period_start', 'contracts',
                    ['membership_id', 'period_start'])
    if sqlite:
        _sqlite_rewrite_check(OLD_CHECK, NEW_CHECK)
    else:
        _check(NEW_CHECK[len('CHECK ('):-1])

    op.add_column('payments', sa.Column('stripe_invoice_id', sa.String(length=255),
                                        nullable=True))
    op.create_index('uq_payments_stripe_invoice_id', 'payments', ['stripe_invoice_id'],
                    unique=True)
    if sqlite:
        op.execute('ALTER TABLE membership_credit_grants ADD COLUMN contract_id INTEGER '
                   'CONSTRAINT fk_membership_credit_grants_contract_id_contracts '
                   'REFERENCES contracts (id)')
    else:
        op.add_column('membership_credit_grants',
                      sa.Column('contract_id', sa.Integer(), nullable=True))
        op.create_foreign_key(op.f('fk_membership_credit_grants_contract_id_contracts'),
                              'membership_credit_grants', 'contracts', ['contract_id'], ['id'])
    op.create_index('uq_membership_credit_grants_contract_id', 'membership_credit_grants',
                    ['contract_id'], unique=True)


def downgrade():
    sqlite = op.get_bind().dialect.name == 'sqlite'
    op.drop_index('uq_membership_credit_grants_contract_id',
                  table_name='membership_credit_grants')
    if not sqlite:
        op.drop_constraint(op.f('fk_membership_credit_grants_contract_id_contracts'),
                           'membership_credit_grants', type_='foreignkey')
    op.drop_column('membership_credit_grants', 'contract_id')
    op.drop_index('uq_payments_stripe_invoice_id', table_name='payments')
    op.drop_column('payments', 'stripe_invoice_id')
    if op.get_bind().exec_driver_sql(
            'SELECT count(*) FROM contracts WHERE membership_id IS NOT NULL').scalar_one():
        raise RuntimeError('membership periods exist: their contracts would break the '
                           'old total check; downgrading would lose them')
    if sqlite:
        _sqlite_rewrite_check(NEW_CHECK, OLD_CHECK)
    else:
        _check(OLD_CHECK[len('CHECK ('):-1])
    op.drop_index('ix_contracts_membership_id_period_start', table_name='contracts')
    for column in ('rollover_until', 'rollover_sessions', 'period_end', 'period_start'):
        op.drop_column('contracts', column)
    if not sqlite:
        op.drop_constraint(op.f('fk_contracts_membership_id_memberships'), 'contracts',
                           type_='foreignkey')
    op.drop_column('contracts', 'membership_id')
