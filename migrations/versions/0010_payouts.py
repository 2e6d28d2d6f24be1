"""Coach payouts: connected accounts, one share per delivered session, platform losses.

Revision ID: 0010
Revises: 0009
Reviewed by hand. New tables only; nothing existing changes. Sessions delivered
before this revision get their shares from the periodic job (their hold counts
from when they were marked).

Create Date: 2026-11-26 08:36:19.749918

"""
from alembic import op
import sqlalchemy as sa

import database.types  # noqa: F401  (custom column types used by autogenerate)


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('connected_accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('stripe_account_id', sa.String(length=255), nullable=False),
    sa.Column('charges_enabled', sa.Boolean(), nullable=False),
    sa.Column('payouts_enabled', sa.Boolean(), nullable=False),
    sa.Column('details_submitted', sa.Boolean(), nullable=False),
    sa.Column('transfers_active', sa.Boolean(), nullable=False),
    sa.Column('requirements_due', sa.JSON(), nullable=False),
    sa.Column('created_at', database.types.UTCDateTime(), nullable=False),
    sa.Column('updated_at', database.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_connected_accounts_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_connected_accounts')),
    sa.UniqueConstraint('stripe_account_id', name=op.f('uq_connected_accounts_stripe_account_id')),
    sa.UniqueConstraint('user_id', name=op.f('uq_connected_accounts_user_id'))
    )
    op.create_table('session_shares',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('coach_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.Enum('held', 'due', 'transferring', 'transferred', 'failed', 'cancelled', name='sharestatus', native_enum=False, length=24), nullable=False),
    sa.Column('due_at', database.types.UTCDateTime(), nullable=False),
    sa.Column('transfer_amount', sa.Integer(), nullable=True),
    sa.Column('reversed_amount', sa.Integer(), nullable=False),
    sa.Column('lost_amount', sa.Integer(), nullable=False),
    sa.Column('stripe_transfer_id', sa.String(length=255), nullable=True),
    sa.Column('source_payment_id', sa.Integer(), nullable=True),
    sa.Column('source_charge_id', sa.String(length=255), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('refusals', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', database.types.UTCDateTime(), nullable=False),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('transferred_at', database.types.UTCDateTime(), nullable=True),
    sa.Column('created_at', database.types.UTCDateTime(), nullable=False),
    sa.Column('updated_at', database.types.UTCDateTime(), nullable=False),
    sa.CheckConstraint('amount >= 0', name=op.f('ck_session_shares_amount_not_negative')),
    sa.CheckConstraint('reversed_amount >= 0 AND lost_amount >= 0', name=op.f('ck_session_shares_taken_not_negative')),
    sa.CheckConstraint('transfer_amount IS NULL OR transfer_amount BETWEEN 0 AND amount', name=op.f('ck_session_shares_transfer_amount_range')),
    sa.ForeignKeyConstraint(['coach_id'], ['users.id'], name=op.f('fk_session_shares_coach_id_users')),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_session_shares_contract_id_contracts')),
    sa.ForeignKeyConstraint(['session_id'], ['coaching_sessions.id'], name=op.f('fk_session_shares_session_id_coaching_sessions')),
    sa.ForeignKeyConstraint(['source_payment_id'], ['payments.id'], name=op.f('fk_session_shares_source_payment_id_payments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_session_shares')),
    sa.UniqueConstraint('contract_id', 'number', name='uq_session_shares_contract_id_number'),
    sa.UniqueConstraint('session_id', name=op.f('uq_session_shares_session_id')),
    sa.UniqueConstraint('stripe_transfer_id', name=op.f('uq_session_shares_stripe_transfer_id'))
    )
    op.create_index('ix_session_shares_coach_id_contract_id', 'session_shares',
                    ['coach_id', 'contract_id'], unique=False)
    op.create_index('ix_session_shares_status_next_attempt_at', 'session_shares',
                    ['status', 'next_attempt_at'], unique=False)

    op.create_table('platform_losses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('share_id', sa.Integer(), nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('created_at', database.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_platform_losses_contract_id_contracts')),
    sa.ForeignKeyConstraint(['share_id'], ['session_shares.id'], name=op.f('fk_platform_losses_share_id_session_shares')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_platform_losses'))
    )
    op.create_index('ix_platform_losses_contract_id', 'platform_losses', ['contract_id'],
                    unique=False)



def downgrade():
    op.drop_index('ix_platform_losses_contract_id', table_name='platform_losses')
    op.drop_table('platform_losses')
    op.drop_index('ix_session_shares_status_next_attempt_at', table_name='session_shares')
    op.drop_index('ix_session_shares_coach_id_contract_id', table_name='session_shares')

    op.drop_table('session_shares')
    op.drop_table('connected_accounts')
