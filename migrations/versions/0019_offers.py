"""Offers and coaches' public pages: the offers table, a coach's page address and bio,
the addresses given up, and each proposal's and contract's offer and plan minimum.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 18:30:00

Reviewed by hand. On SQLite the new foreign-key columns are added with ALTER TABLE (as
0009 does) so that the big tables are not copied; the partial unique index keeps one
pending contract per student and offer on both databases.
"""
from alembic import op
import sqlalchemy as sa

import database.types


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

PENDING_PER_OFFER = "status = 'pending' AND offer_id IS NOT NULL"


def upgrade():
    op.create_table(
        'offers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('coach_id', sa.Integer(), nullable=False),
        sa.Column('status', sa.Enum('active', 'paused', 'archived', name='offerstatus',
                                    native_enum=False, length=24), nullable=False),
        sa.Column('created_at', database.types.UTCDateTime(), nullable=False),
        sa.Column('updated_at', database.types.UTCDateTime(), nullable=False),
        sa.Column('title', sa.String(length=120), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('session_count', sa.Integer(), nullable=False),
        sa.Column('minutes_per_session', sa.Integer(), nullable=False),
        sa.Column('price_per_session', sa.Integer(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('plan_deposit_percent', sa.Integer(), nullable=True),
        sa.Column('plan_max_instalments', sa.Integer(), nullable=True),
        sa.Column('plan_minimum_total', sa.Integer(), nullable=True),
        sa.CheckConstraint('session_count BETWEEN 1 AND 100',
                           name=op.f('ck_offers_session_count_range')),
        sa.CheckConstraint('minutes_per_session BETWEEN 15 AND 240',
                           name=op.f('ck_offers_minutes_range')),
        sa.CheckConstraint('price_per_session > 0', name=op.f('ck_offers_price_positive')),
        sa.ForeignKeyConstraint(['coach_id'], ['users.id'],
                                name=op.f('fk_offers_coach_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_offers')),
    )
    op.create_index('ix_offers_coach_id_status', 'offers', ['coach_id', 'status'])

    op.create_table(
        'old_slugs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('slug', sa.String(length=60), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('retired_at', database.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name=op.f('fk_old_slugs_user_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_old_slugs')),
        sa.UniqueConstraint('slug', name=op.f('uq_old_slugs_slug')),
    )
    op.create_index(op.f('ix_old_slugs_user_id'), 'old_slugs', ['user_id'])

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('slug', sa.String(length=60), nullable=True))
        batch_op.add_column(sa.Column('bio', sa.Text(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_users_slug'), ['slug'])

    sqlite = op.get_bind().dialect.name == 'sqlite'
    for table in ('proposals', 'contracts'):
        op.add_column(table, sa.Column('plan_minimum_total', sa.Integer(), nullable=True))
        if sqlite:
            op.execute(f'ALTER TABLE {table} ADD COLUMN offer_id INTEGER '
                       f'CONSTRAINT fk_{table}_offer_id_offers REFERENCES offers (id)')
        else:
            op.add_column(table, sa.Column('offer_id', sa.Integer(), nullable=True))
            op.create_foreign_key(op.f(f'fk_{table}_offer_id_offers'), table, 'offers',
                                  ['offer_id'], ['id'])
    op.create_index('uq_contracts_student_id_offer_id_pending', 'contracts',
                    ['student_id', 'offer_id'], unique=True,
                    sqlite_where=sa.text(PENDING_PER_OFFER),
                    postgresql_where=sa.text(PENDING_PER_OFFER))


def downgrade():
    op.drop_index('uq_contracts_student_id_offer_id_pending', table_name='contracts')
    sqlite = op.get_bind().dialect.name == 'sqlite'
    for table in ('proposals', 'contracts'):
        if not sqlite:
            op.drop_constraint(op.f(f'fk_{table}_offer_id_offers'), table, type_='foreignkey')
        op.drop_column(table, 'offer_id')
        op.drop_column(table, 'plan_minimum_total')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_users_slug'), type_='unique')
        batch_op.drop_column('bio')
        batch_op.drop_column('slug')
    op.drop_index(op.f('ix_old_slugs_user_id'), table_name='old_slugs')
    op.drop_table('old_slugs')
    op.drop_index('ix_offers_coach_id_status', table_name='offers')
    op.drop_table('offers')
