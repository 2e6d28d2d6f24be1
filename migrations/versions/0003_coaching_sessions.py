"""Coaching sessions: booked sessions of a paid contract.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

Reviewed by hand: times are UTC (database.types.UTCDateTime); the coach is copied
onto each session so that the overlap check and the partial unique index
(one scheduled session per coach and start instant, a guard under the
service's row locks) need no join. Both SQLite and PostgreSQL support the
partial index.
"""
import sqlalchemy as sa
from alembic import op

from database import types as db_types


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('coaching_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('coach_id', sa.Integer(), nullable=False),
    sa.Column('booked_by_id', sa.Integer(), nullable=False),
    sa.Column('starts_at', db_types.UTCDateTime(), nullable=False),
    sa.Column('ends_at', db_types.UTCDateTime(), nullable=False),
    sa.Column('status', sa.Enum('scheduled', 'completed', 'no_show', 'cancelled', name='sessionstatus', native_enum=False, length=24), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('late_cancellation', sa.Boolean(), nullable=False),
    sa.Column('cancelled_by_id', sa.Integer(), nullable=True),
    sa.Column('cancelled_at', db_types.UTCDateTime(), nullable=True),
    sa.Column('marked_at', db_types.UTCDateTime(), nullable=True),
    sa.Column('created_at', db_types.UTCDateTime(), nullable=False),
    sa.Column('updated_at', db_types.UTCDateTime(), nullable=False),
    sa.CheckConstraint('ends_at > starts_at', name=op.f('ck_coaching_sessions_ends_after_start')),
    sa.ForeignKeyConstraint(['booked_by_id'], ['users.id'], name=op.f('fk_coaching_sessions_booked_by_id_users')),
    sa.ForeignKeyConstraint(['cancelled_by_id'], ['users.id'], name=op.f('fk_coaching_sessions_cancelled_by_id_users')),
    sa.ForeignKeyConstraint(['coach_id'], ['users.id'], name=op.f('fk_coaching_sessions_coach_id_users')),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_coaching_sessions_contract_id_contracts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coaching_sessions'))
    )
    with op.batch_alter_table('coaching_sessions', schema=None) as batch_op:
        batch_op.create_index('ix_coaching_sessions_coach_id_starts_at', ['coach_id', 'starts_at'], unique=False)
        batch_op.create_index('ix_coaching_sessions_contract_id_starts_at', ['contract_id', 'starts_at'], unique=False)
        batch_op.create_index('uq_coaching_sessions_coach_id_starts_at_scheduled', ['coach_id', 'starts_at'], unique=True, sqlite_where=sa.text("status = 'scheduled'"), postgresql_where=sa.text("status = 'scheduled'"))



def downgrade():
    with op.batch_alter_table('coaching_sessions', schema=None) as batch_op:
        batch_op.drop_index('uq_coaching_sessions_coach_id_starts_at_scheduled', sqlite_where=sa.text("status = 'scheduled'"), postgresql_where=sa.text("status = 'scheduled'"))
        batch_op.drop_index('ix_coaching_sessions_contract_id_starts_at')
        batch_op.drop_index('ix_coaching_sessions_coach_id_starts_at')

    op.drop_table('coaching_sessions')
