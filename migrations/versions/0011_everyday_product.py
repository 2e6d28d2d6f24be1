"""Everyday product: coaches' working hours and days off, meeting places, rescheduling,
calendar feeds, proposal expiry, login versions (a password change logs other browsers out).

Revision ID: 0011
Revises: 0010
Reviewed by hand. New tables and nullable columns; `coaching_sessions.sequence` starts at
0 for existing rows. Existing proposals keep `expires_at` NULL (they never expire), so
nothing a student was already sent disappears; the new status 'expired' fits the
proposal status column as it is.
Create Date: 2026-11-26 09:49:39.592408

"""
from alembic import op
import sqlalchemy as sa

import database.types  # noqa: F401  (custom column types used by autogenerate)


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('days_off',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('coach_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('note', sa.String(length=200), nullable=True),
    sa.Column('created_at', database.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['coach_id'], ['users.id'], name=op.f('fk_days_off_coach_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_days_off')),
    sa.UniqueConstraint('coach_id', 'day', name=op.f('uq_days_off_coach_id_day'))
    )
    op.create_table('working_hours',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('coach_id', sa.Integer(), nullable=False),
    sa.Column('weekday', sa.Integer(), nullable=False),
    sa.Column('start_minute', sa.Integer(), nullable=False),
    sa.Column('end_minute', sa.Integer(), nullable=False),
    sa.CheckConstraint('start_minute >= 0 AND end_minute <= 1440 AND start_minute < end_minute', name=op.f('ck_working_hours_minutes_in_day')),
    sa.CheckConstraint('weekday BETWEEN 0 AND 6', name=op.f('ck_working_hours_weekday_range')),
    sa.ForeignKeyConstraint(['coach_id'], ['users.id'], name=op.f('fk_working_hours_coach_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_working_hours'))
    )
    with op.batch_alter_table('working_hours', schema=None) as batch_op:
        batch_op.create_index('ix_working_hours_coach_id_weekday', ['coach_id', 'weekday'], unique=False)

    with op.batch_alter_table('coaching_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('location', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('sequence', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('rescheduled_at', database.types.UTCDateTime(), nullable=True))

    with op.batch_alter_table('contracts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('meeting_location', sa.String(length=500), nullable=True))

    with op.batch_alter_table('proposals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expires_at', database.types.UTCDateTime(), nullable=True))

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('calendar_token', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('login_version', sa.Integer(), server_default='0', nullable=False))
        batch_op.create_unique_constraint(batch_op.f('uq_users_calendar_token'), ['calendar_token'])



def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_users_calendar_token'), type_='unique')
        batch_op.drop_column('login_version')
        batch_op.drop_column('calendar_token')

    with op.batch_alter_table('proposals', schema=None) as batch_op:
        batch_op.drop_column('expires_at')

    with op.batch_alter_table('contracts', schema=None) as batch_op:
        batch_op.drop_column('meeting_location')

    with op.batch_alter_table('coaching_sessions', schema=None) as batch_op:
        batch_op.drop_column('rescheduled_at')
        batch_op.drop_column('sequence')
        batch_op.drop_column('location')

    with op.batch_alter_table('working_hours', schema=None) as batch_op:
        batch_op.drop_index('ix_working_hours_coach_id_weekday')

    op.drop_table('working_hours')
    op.drop_table('days_off')
