"""The event pipeline: the webhook inbox and the mail outbox.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26

Reviewed by hand. Events stored before the inbox existed were processed inside
the webhook's request: they become `processed`, with an empty payload (their
bodies were never kept) and their receipt time as their due time.
"""
import sqlalchemy as sa
from alembic import op

from database import types as db_types


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

EVENT_STATUS = sa.Enum('received', 'processed', 'failed', name='eventstatus',
                       native_enum=False, length=24)


def upgrade():
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('payload', sa.Text(), nullable=False, server_default='{}'))
        batch_op.add_column(sa.Column('status', EVENT_STATUS, nullable=False,
                                      server_default='processed'))
        batch_op.add_column(sa.Column('attempts', sa.Integer(), nullable=False,
                                      server_default='1'))
        batch_op.add_column(sa.Column('last_error', sa.String(length=1000), nullable=True))
        batch_op.add_column(sa.Column('next_attempt_at', db_types.UTCDateTime(), nullable=True))
        batch_op.alter_column('outcome', existing_type=sa.String(length=60), nullable=True)
    op.execute("UPDATE webhook_events SET next_attempt_at = received_at")
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.alter_column('next_attempt_at', existing_type=db_types.UTCDateTime(),
                              nullable=False)
        batch_op.alter_column('payload', server_default=None)
        batch_op.alter_column('status', server_default=None)
        batch_op.alter_column('attempts', server_default=None)
        batch_op.create_index('ix_webhook_events_status_next_attempt_at',
                              ['status', 'next_attempt_at'], unique=False)

    op.create_table('outbox_mails',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('recipient', sa.String(length=254), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('status', sa.Enum('pending', 'sent', 'failed', name='mailstatus',
                                native_enum=False, length=24), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('next_attempt_at', db_types.UTCDateTime(), nullable=False),
    sa.Column('created_at', db_types.UTCDateTime(), nullable=False),
    sa.Column('sent_at', db_types.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_mails'))
    )
    with op.batch_alter_table('outbox_mails', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_mails_status_next_attempt_at',
                              ['status', 'next_attempt_at'], unique=False)


def downgrade():
    with op.batch_alter_table('outbox_mails', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_mails_status_next_attempt_at')
    op.drop_table('outbox_mails')
    op.execute("UPDATE webhook_events SET outcome = 'received' WHERE outcome IS NULL")
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_events_status_next_attempt_at')
        batch_op.alter_column('outcome', existing_type=sa.String(length=60), nullable=False)
        batch_op.drop_column('next_attempt_at')
        batch_op.drop_column('last_error')
        batch_op.drop_column('attempts')
        batch_op.drop_column('status')
        batch_op.drop_column('payload')
