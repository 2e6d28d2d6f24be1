"""Slot holds: a first session's time kept for a contract while its student pays.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 18:10:00

Reviewed by hand. One row per hold, tied to the payment attempt (the Checkout claim)
it lives for; the coach is copied on the row so the calendar reads holds by coach and
time without a join. No unique guard on the time: a hold past its expiry stays `held`
until its payment settles or its session's expiry is heard, and another contract may
hold or book the time meanwhile; the row locks of booking decide (`scheduling.holds`).
"""
from alembic import op
import sqlalchemy as sa

import database.types


revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'slot_holds',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('coach_id', sa.Integer(), nullable=False),
        sa.Column('contract_id', sa.Integer(), nullable=False),
        sa.Column('payment_id', sa.Integer(), nullable=False),
        sa.Column('starts_at', database.types.UTCDateTime(), nullable=False),
        sa.Column('ends_at', database.types.UTCDateTime(), nullable=False),
        sa.Column('expires_at', database.types.UTCDateTime(), nullable=False),
        sa.Column('status', sa.Enum('held', 'booked', 'released', 'lapsed', name='holdstatus',
                                    native_enum=False, length=24), nullable=False),
        sa.Column('ended_because', sa.String(length=40), nullable=True),
        sa.Column('session_id', sa.Integer(), nullable=True),
        sa.Column('created_at', database.types.UTCDateTime(), nullable=False),
        sa.Column('updated_at', database.types.UTCDateTime(), nullable=False),
        sa.CheckConstraint('ends_at > starts_at', name=op.f('ck_slot_holds_ends_after_start')),
        sa.ForeignKeyConstraint(['coach_id'], ['users.id'],
                                name=op.f('fk_slot_holds_coach_id_users')),
        sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'],
                                name=op.f('fk_slot_holds_contract_id_contracts')),
        sa.ForeignKeyConstraint(['payment_id'], ['payments.id'],
                                name=op.f('fk_slot_holds_payment_id_payments')),
        sa.ForeignKeyConstraint(['session_id'], ['coaching_sessions.id'],
                                name=op.f('fk_slot_holds_session_id_coaching_sessions')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_slot_holds')),
    )
    with op.batch_alter_table('slot_holds', schema=None) as batch_op:
        batch_op.create_index('ix_slot_holds_coach_id_starts_at', ['coach_id', 'starts_at'],
                              unique=False)
        batch_op.create_index('ix_slot_holds_contract_id', ['contract_id'], unique=False)
        batch_op.create_index('ix_slot_holds_payment_id', ['payment_id'], unique=False)


def downgrade():
    with op.batch_alter_table('slot_holds', schema=None) as batch_op:
        batch_op.drop_index('ix_slot_holds_payment_id')
        batch_op.drop_index('ix_slot_holds_contract_id')
        batch_op.drop_index('ix_slot_holds_coach_id_starts_at')
    op.drop_table('slot_holds')
