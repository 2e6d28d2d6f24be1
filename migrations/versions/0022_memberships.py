"""Memberships: recurring offers on Stripe Billing, members, and the credits paid invoices grant.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 19:18:26

Reviewed by hand. A member's row is written when Checkout starts (`joining`), so the
partial unique index keeps one membership per student and offer until it has ended; a
credit grant's unique invoice id makes each paid invoice grant its period once.
"""
from alembic import op
import sqlalchemy as sa

import database.types  # noqa: F401  (custom column types used by autogenerate)


# revision identifiers, used by Alembic.
revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('membership_offers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('coach_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=120), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('sessions_per_period', sa.Integer(), nullable=False),
    sa.Column('minutes_per_session', sa.Integer(), nullable=False),
    sa.Column('price_per_period', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('period', sa.Enum('month', 'week', name='membershipperiod', native_enum=False, length=24), nullable=False),
    sa.Column('status', sa.Enum('active', 'paused', 'archived', name='offerstatus', native_enum=False, length=24), nullable=False),
    sa.Column('stripe_product_id', sa.String(length=255), nullable=True),
    sa.Column('stripe_price_id', sa.String(length=255), nullable=True),
    sa.Column('price_version', sa.Integer(), nullable=False),
    sa.Column('created_at', database.types.UTCDateTime(), nullable=False),
    sa.Column('updated_at', database.types.UTCDateTime(), nullable=False),
    sa.CheckConstraint('minutes_per_session > 0', name=op.f('ck_membership_offers_minutes_positive')),
    sa.CheckConstraint('price_per_period > 0', name=op.f('ck_membership_offers_price_positive')),
    sa.CheckConstraint('sessions_per_period > 0', name=op.f('ck_membership_offers_sessions_positive')),
    sa.ForeignKeyConstraint(['coach_id'], ['users.id'], name=op.f('fk_membership_offers_coach_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_membership_offers')),
    sa.UniqueConstraint('stripe_product_id', name=op.f('uq_membership_offers_stripe_product_id'))
    )
    with op.batch_alter_table('membership_offers', schema=None) as batch_op:
        batch_op.create_index('ix_membership_offers_coach_id_status', ['coach_id', 'status'], unique=False)

    op.create_table('memberships',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('student_id', sa.Integer(), nullable=False),
    sa.Column('coach_id', sa.Integer(), nullable=False),
    sa.Column('offer_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=120), nullable=False),
    sa.Column('sessions_per_period', sa.Integer(), nullable=False),
    sa.Column('minutes_per_session', sa.Integer(), nullable=False),
    sa.Column('price_per_period', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('period', sa.Enum('month', 'week', name='membershipperiod', native_enum=False, length=24), nullable=False),
    sa.Column('status', sa.Enum('joining', 'incomplete', 'incomplete_expired', 'trialing', 'active', 'past_due', 'unpaid', 'paused', 'canceled', name='membershipstatus', native_enum=False, length=24), nullable=False),
    sa.Column('checkout_attempt', sa.Integer(), nullable=False),
    sa.Column('checkout_session_id', sa.String(length=255), nullable=True),
    sa.Column('checkout_url', sa.Text(), nullable=True),
    sa.Column('checkout_expires_at', database.types.UTCDateTime(), nullable=True),
    sa.Column('stripe_subscription_id', sa.String(length=255), nullable=True),
    sa.Column('stripe_price_id', sa.String(length=255), nullable=True),
    sa.Column('current_period_start', database.types.UTCDateTime(), nullable=True),
    sa.Column('current_period_end', database.types.UTCDateTime(), nullable=True),
    sa.Column('cancel_at_period_end', sa.Boolean(), nullable=False),
    sa.Column('ended_at', database.types.UTCDateTime(), nullable=True),
    sa.Column('created_at', database.types.UTCDateTime(), nullable=False),
    sa.Column('updated_at', database.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['coach_id'], ['users.id'], name=op.f('fk_memberships_coach_id_users')),
    sa.ForeignKeyConstraint(['offer_id'], ['membership_offers.id'], name=op.f('fk_memberships_offer_id_membership_offers')),
    sa.ForeignKeyConstraint(['student_id'], ['users.id'], name=op.f('fk_memberships_student_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_memberships')),
    sa.UniqueConstraint('stripe_subscription_id', name=op.f('uq_memberships_stripe_subscription_id'))
    )
    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.create_index('ix_memberships_coach_id', ['coach_id'], unique=False)
        batch_op.create_index('uq_memberships_student_id_offer_id_live', ['student_id', 'offer_id'], unique=True, sqlite_where=sa.text("status NOT IN ('canceled', 'incomplete_expired')"), postgresql_where=sa.text("status NOT IN ('canceled', 'incomplete_expired')"))

    op.create_table('membership_credit_grants',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('membership_id', sa.Integer(), nullable=False),
    sa.Column('stripe_invoice_id', sa.String(length=255), nullable=False),
    sa.Column('sessions', sa.Integer(), nullable=False),
    sa.Column('period_start', database.types.UTCDateTime(), nullable=False),
    sa.Column('period_end', database.types.UTCDateTime(), nullable=False),
    sa.Column('amount_paid', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('granted_at', database.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['membership_id'], ['memberships.id'], name=op.f('fk_membership_credit_grants_membership_id_memberships')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_membership_credit_grants')),
    sa.UniqueConstraint('stripe_invoice_id', name=op.f('uq_membership_credit_grants_stripe_invoice_id'))
    )
    with op.batch_alter_table('membership_credit_grants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_membership_credit_grants_membership_id'), ['membership_id'], unique=False)



def downgrade():
    with op.batch_alter_table('membership_credit_grants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_membership_credit_grants_membership_id'))

    op.drop_table('membership_credit_grants')
    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.drop_index('uq_memberships_student_id_offer_id_live', sqlite_where=sa.text("status NOT IN ('canceled', 'incomplete_expired')"), postgresql_where=sa.text("status NOT IN ('canceled', 'incomplete_expired')"))
        batch_op.drop_index('ix_memberships_coach_id')

    op.drop_table('memberships')
    with op.batch_alter_table('membership_offers', schema=None) as batch_op:
        batch_op.drop_index('ix_membership_offers_coach_id_status')

    op.drop_table('membership_offers')
