from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from accounts.models import User
from clock import now
from contracts.models import DealTerms, terms_checks
from database.types import UTCDateTime, str_enum
from extensions import Model


class OfferStatus(enum.Enum):
    ACTIVE = "active"  # shown on the coach's public page; students may buy it
    PAUSED = "paused"  # hidden and not for sale for now; the coach may resume it
    ARCHIVED = "archived"  # retired for good; contracts made from it keep their copy


OFFER_TRANSITIONS: dict[OfferStatus, frozenset[OfferStatus]] = {
    OfferStatus.ACTIVE: frozenset({OfferStatus.PAUSED, OfferStatus.ARCHIVED}),
    OfferStatus.PAUSED: frozenset({OfferStatus.ACTIVE, OfferStatus.ARCHIVED}),
}


class Offer(DealTerms, Model):
    """Terms a coach sells to any student: the proposal's terms without a student.

    Each purchase copies them into an accepted proposal and its contract, so changing or
    archiving an offer never changes a contract made from it.
    """

    __tablename__ = "offers"
    __table_args__ = (
        *terms_checks(),
        Index("ix_offers_coach_id_status", "coach_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    coach_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    status: Mapped[OfferStatus] = mapped_column(
        str_enum(OfferStatus), default=OfferStatus.ACTIVE
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now, onupdate=now)

    coach: Mapped[User] = relationship()

    @property
    def total(self) -> int:
        return self.price_per_session * self.session_count

    @property
    def for_sale(self) -> bool:
        return self.status is OfferStatus.ACTIVE

    def __repr__(self) -> str:
        return f"<Offer {self.id} {self.title!r} {self.status.value}>"


# --- memberships --------------------------------------------------------------------


class MembershipPeriod(enum.Enum):
    MONTH = "month"  # billed and credited every calendar month from the day of joining
    WEEK = "week"  # every seven days


class MembershipOffer(Model):
    """A recurring offer: so many sessions each period for a price per period, sold on
    Stripe Billing. It shares the offer's statuses and their table (`OFFER_TRANSITIONS`).

    Stripe holds it as a Product and a recurring Price. A Price's amount is fixed, so a
    new price, currency or period makes a new Price (`price_version` counts them); a member
    keeps the Price of their subscription (`Membership.stripe_price_id`).
    """

    __tablename__ = "membership_offers"
    __table_args__ = (
        CheckConstraint("sessions_per_period > 0", name="sessions_positive"),
        CheckConstraint("minutes_per_session > 0", name="minutes_positive"),
        CheckConstraint("price_per_period > 0", name="price_positive"),
        Index("ix_membership_offers_coach_id_status", "coach_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    coach_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    title: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    sessions_per_period: Mapped[int] = mapped_column(Integer)
    minutes_per_session: Mapped[int] = mapped_column(Integer)
    price_per_period: Mapped[int] = mapped_column(Integer)  # minor units
    currency: Mapped[str] = mapped_column(String(3))
    period: Mapped[MembershipPeriod] = mapped_column(str_enum(MembershipPeriod))
    status: Mapped[OfferStatus] = mapped_column(
        str_enum(OfferStatus), default=OfferStatus.ACTIVE
    )
    stripe_product_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    # The Price new members join on; None until Stripe has made the current one.
    stripe_price_id: Mapped[str | None] = mapped_column(String(255))
    price_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now, onupdate=now)

    coach: Mapped[User] = relationship()

    @property
    def for_sale(self) -> bool:
        """Active, and Stripe holds its current Price."""
        return self.status is OfferStatus.ACTIVE and self.stripe_price_id is not None

    def __repr__(self) -> str:
        return f"<MembershipOffer {self.id} {self.title!r} {self.status.value}>"


class MembershipStatus(enum.Enum):
    JOINING = "joining"  # Checkout started; Stripe has no subscription for it yet
    # Stripe's own subscription statuses, mirrored from customer.subscription.* events:
    INCOMPLETE = "incomplete"  # the first invoice is not paid yet
    INCOMPLETE_EXPIRED = "incomplete_expired"  # the first invoice was never paid: over
    TRIALING = "trialing"  # not offered by Coachpact; mirrored should Stripe say it
    ACTIVE = "active"  # paid up
    PAST_DUE = "past_due"  # a renewal failed; Stripe retries
    UNPAID = "unpaid"  # Stripe's retries ran out and it was left open
    PAUSED = "paused"  # Stripe's paused status
    CANCELED = "canceled"  # ended for good


# The statuses a membership never leaves: a late event for it changes nothing.
MEMBERSHIP_ENDED = frozenset({MembershipStatus.CANCELED, MembershipStatus.INCOMPLETE_EXPIRED})
LIVE_MEMBERSHIP = "status NOT IN ('canceled', 'incomplete_expired')"


class Membership(Model):
    """A student's membership of a coach's membership offer: a Stripe subscription, mirrored.

    The row is written when the student starts Checkout (status `joining`), so that one
    student has one membership per offer at a time (a partial unique index); the
    subscription's events then fill it. The offer's terms are copied, so a changed offer
    never changes a membership made from it.
    """

    __tablename__ = "memberships"
    __table_args__ = (
        Index(
            "uq_memberships_student_id_offer_id_live", "student_id", "offer_id", unique=True,
            sqlite_where=text(LIVE_MEMBERSHIP), postgresql_where=text(LIVE_MEMBERSHIP),
        ),
        Index("ix_memberships_coach_id", "coach_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    coach_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    offer_id: Mapped[int] = mapped_column(ForeignKey("membership_offers.id"))
    title: Mapped[str] = mapped_column(String(120))
    sessions_per_period: Mapped[int] = mapped_column(Integer)
    minutes_per_session: Mapped[int] = mapped_column(Integer)
    price_per_period: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    period: Mapped[MembershipPeriod] = mapped_column(str_enum(MembershipPeriod))
    status: Mapped[MembershipStatus] = mapped_column(
        str_enum(MembershipStatus), default=MembershipStatus.JOINING
    )
    # The Checkout attempt (claim, then session) while joining.
    checkout_attempt: Mapped[int] = mapped_column(Integer, default=1)
    checkout_session_id: Mapped[str | None] = mapped_column(String(255))
    checkout_url: Mapped[str | None] = mapped_column(Text)
    checkout_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    stripe_price_id: Mapped[str | None] = mapped_column(String(255))
    current_period_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    current_period_end: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Collection paused by the coach until then (Stripe's `pause_collection.resumes_at`).
    paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A renewal Stripe could not collect (`offers.membership_changes`): the invoice, its
    # hosted page, Stripe's next attempt (None once it gave up), when we heard, the attempt
    # last told and why it failed (`payment_failed` or `payment_action_required`). Cleared
    # when the invoice is paid; kept when the membership ends unpaid.
    unpaid_invoice_id: Mapped[str | None] = mapped_column(String(255))
    unpaid_invoice_url: Mapped[str | None] = mapped_column(Text)
    next_payment_attempt: Mapped[datetime | None] = mapped_column(UTCDateTime())
    payment_failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    unpaid_attempt: Mapped[int | None] = mapped_column(Integer)
    unpaid_reason: Mapped[str | None] = mapped_column(String(32))
    # The last invoice paid: a late failure event of it changes nothing.
    paid_invoice_id: Mapped[str | None] = mapped_column(String(255))
    # Changes asked of Stripe (cancel, pause, move): each one's idempotency key.
    changes_asked: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now, onupdate=now)

    student: Mapped[User] = relationship(foreign_keys=[student_id])
    coach: Mapped[User] = relationship(foreign_keys=[coach_id])
    offer: Mapped[MembershipOffer] = relationship()

    @property
    def ended(self) -> bool:
        return self.status in MEMBERSHIP_ENDED

    @property
    def unpaid(self) -> bool:
        """A renewal is waiting to be paid (and the membership has not ended)."""
        return self.unpaid_invoice_id is not None and not self.ended

    def __repr__(self) -> str:
        return f"<Membership {self.id} {self.status.value}>"


class CreditGrant(Model):
    """The session credits one paid invoice gave a membership: one row per invoice, ever
    (the unique invoice id), whatever the number of deliveries of `invoice.paid`."""

    __tablename__ = "membership_credit_grants"
    __table_args__ = (
        Index("uq_membership_credit_grants_contract_id", "contract_id", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id"), index=True)
    stripe_invoice_id: Mapped[str] = mapped_column(String(255), unique=True)
    sessions: Mapped[int] = mapped_column(Integer)
    period_start: Mapped[datetime] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime] = mapped_column(UTCDateTime())
    amount_paid: Mapped[int] = mapped_column(Integer)  # minor units, as the invoice says
    currency: Mapped[str] = mapped_column(String(3))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    # The period's contract, where its sessions are booked and its money stands; None for
    # an invoice that charged nothing.
    contract_id: Mapped[int | None] = mapped_column(ForeignKey("contracts.id"))

    membership: Mapped[Membership] = relationship()
