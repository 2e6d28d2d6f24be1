"""Initial schema: users, proposals, contracts.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Reviewed by hand: constraint names follow the metadata naming convention, money
columns are integers in minor units, enums are VARCHARs of their values.
"""
import sqlalchemy as sa
from alembic import op

from database import types as db_types


# revision identifiers, used by Alembic.
revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('role', sa.Enum('student', 'coach', 'admin', name='role', native_enum=False, length=24), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('created_at', db_types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email'))
    )
    op.create_table('proposals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('coach_id', sa.Integer(), nullable=False),
    sa.Column('student_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=120), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('session_count', sa.Integer(), nullable=False),
    sa.Column('minutes_per_session', sa.Integer(), nullable=False),
    sa.Column('price_per_session', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.Enum('sent', 'accepted', 'declined', 'withdrawn', name='proposalstatus', native_enum=False, length=24), nullable=False),
    sa.Column('created_at', db_types.UTCDateTime(), nullable=False),
    sa.Column('responded_at', db_types.UTCDateTime(), nullable=True),
    sa.CheckConstraint('minutes_per_session BETWEEN 15 AND 240', name=op.f('ck_proposals_minutes_range')),
    sa.CheckConstraint('price_per_session > 0', name=op.f('ck_proposals_price_positive')),
    sa.CheckConstraint('session_count BETWEEN 1 AND 100', name=op.f('ck_proposals_session_count_range')),
    sa.ForeignKeyConstraint(['coach_id'], ['users.id'], name=op.f('fk_proposals_coach_id_users')),
    sa.ForeignKeyConstraint(['student_id'], ['users.id'], name=op.f('fk_proposals_student_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_proposals'))
    )
    with op.batch_alter_table('proposals', schema=None) as batch_op:
        batch_op.create_index('ix_proposals_coach_id_status', ['coach_id', 'status'], unique=False)
        batch_op.create_index('ix_proposals_student_id_status', ['student_id', 'status'], unique=False)

    op.create_table('contracts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('proposal_id', sa.Integer(), nullable=False),
    sa.Column('coach_id', sa.Integer(), nullable=False),
    sa.Column('student_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=120), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('session_count', sa.Integer(), nullable=False),
    sa.Column('minutes_per_session', sa.Integer(), nullable=False),
    sa.Column('price_per_session', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('total_amount', sa.Integer(), nullable=False),
    sa.Column('platform_fee', sa.Integer(), nullable=False),
    sa.Column('coach_earning', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('pending', 'active', 'completed', 'cancelled', 'refunded', 'disputed', name='contractstatus', native_enum=False, length=24), nullable=False),
    sa.Column('payment_status', sa.Enum('pending', 'paid', 'failed', 'refunded', 'partially_refunded', 'disputed', name='paymentstatus', native_enum=False, length=24), nullable=False),
    sa.Column('paid_at', db_types.UTCDateTime(), nullable=True),
    sa.Column('created_at', db_types.UTCDateTime(), nullable=False),
    sa.Column('updated_at', db_types.UTCDateTime(), nullable=False),
    sa.CheckConstraint('coach_earning = total_amount - platform_fee', name=op.f('ck_contracts_earning_is_net')),
    sa.CheckConstraint('platform_fee >= 0 AND coach_earning >= 0', name=op.f('ck_contracts_split_not_negative')),
    sa.CheckConstraint('total_amount = price_per_session * session_count', name=op.f('ck_contracts_total_matches_terms')),
    sa.ForeignKeyConstraint(['coach_id'], ['users.id'], name=op.f('fk_contracts_coach_id_users')),
    sa.ForeignKeyConstraint(['proposal_id'], ['proposals.id'], name=op.f('fk_contracts_proposal_id_proposals')),
    sa.ForeignKeyConstraint(['student_id'], ['users.id'], name=op.f('fk_contracts_student_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contracts')),
    sa.UniqueConstraint('proposal_id', name=op.f('uq_contracts_proposal_id'))
    )
    with op.batch_alter_table('contracts', schema=None) as batch_op:
        batch_op.create_index('ix_contracts_coach_id_created_at', ['coach_id', 'created_at'], unique=False)
        batch_op.create_index('ix_contracts_student_id_created_at', ['student_id', 'created_at'], unique=False)



def downgrade():
    with op.batch_alter_table('contracts', schema=None) as batch_op:
        batch_op.drop_index('ix_contracts_student_id_created_at')
        batch_op.drop_index('ix_contracts_coach_id_created_at')

    op.drop_table('contracts')
    with op.batch_alter_table('proposals', schema=None) as batch_op:
        batch_op.drop_index('ix_proposals_student_id_status')
        batch_op.drop_index('ix_proposals_coach_id_status')

    op.drop_table('proposals')
    op.drop_table('users')
