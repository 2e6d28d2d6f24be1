from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, ColumnElement, Date, ForeignKey, Index, String, Text, and_, case, text
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from clock import now
from contracts.models import Contract
from database.types import UTCDateTime, str_enum
from extensions import Model


class PaymentRecordStatus(enum.Enum):
    PENDING = "pending"  # Checkout session open, nothing paid yet
    PROCESSING = "processing"  # an async method (bank debit) is on its way
    SUCCEEDED = "succeeded"  # the money arrived
    FAILED = "failed"  # the attempt failed (decline, failed debit)
    EXPIRED = "expired"  # the Checkout session expired unpaid
    CANCELED = "canceled"  # we closed it (e.g. the contract was cancelled)
    REFUNDED = "refunded"  # all of it went back
    PARTIALLY_REFUNDED = "partially_refunded"  # some of it went back


PAYMENT_RECORD_TRANSITIONS: dict[PaymentRecordStatus, frozenset[PaymentRecordStatus]] = {
    PaymentRecordStatus.PENDING: frozenset(
        {
            PaymentRecordStatus.PROCESSING,
            PaymentRecordStatus.SUCCEEDED,
            PaymentRecordStatus.FAILED,
            PaymentRecordStatus.EXPIRED,
            PaymentRecordStatus.CANCELED,
        }
    ),
    PaymentRecordStatus.PROCESSING: frozenset(
        {PaymentRecordStatus.SUCCEEDED, PaymentRecordStatus.FAILED}
    ),
    # A declined card leaves the Checkout session open: the student may try again.
    PaymentRecordStatus.FAILED: frozenset(
        {
            PaymentRecordStatus.PROCESSING,
            PaymentRecordStatus.SUCCEEDED,
            PaymentRecordStatus.EXPIRED,
        }
    ),
    PaymentRecordStatus.SUCCEEDED: frozenset(
        {PaymentRecordStatus.REFUNDED, PaymentRecordStatus.PARTIALLY_REFUNDED}
    ),
    PaymentRecordStatus.PARTIALLY_REFUNDED: frozenset(
        {PaymentRecordStatus.PARTIALLY_REFUNDED, PaymentRecordStatus.REFUNDED}
    ),
}


class ReviewResolution(enum.Enum):
    ACCEPTED = "accepted"  # an admin accepted what Stripe reported; the contract is paid
    REFUNDED = "refunded"  # an admin refused it; it goes back in full


class VoidReason(enum.Enum):
    DUPLICATE = "duplicate"  # a second payment for a contract that was paid already
    REVIEW = "review"  # held for review and refused by an admin
    CLOSED = "closed"  # arrived after the contract was cancelled unpaid


class ManualMethod(enum.Enum):
    CASH = "cash"  # paid in cash, recorded by an admin
    CHEQUE = "cheque"  # paid by cheque
    BANK_TRANSFER = "bank_transfer"  # paid by a bank transfer outside Stripe


class Payment(Model):
    """One Checkout attempt for a contract, and what Stripe told us about it."""

    __tablename__ = "payments"
    __table_args__ = (
        Index("ix_payments_contract_id_created_at", "contract_id", "created_at"),
        # The admin's lists: newest first, optionally by status and currency (keyset pages).
        Index("ix_payments_created_at_id", "created_at", "id"),
        Index("ix_payments_status_currency_created_at", "status", "currency", "created_at", "id"),
        Index("ix_payments_currency_created_at", "currency", "created_at", "id"),
        # Payments held for review (the queue, the dashboard, the list's filter): a few.
        Index(
            "ix_payments_held_created_at",
            "created_at",
            "id",
            sqlite_where=text("review_reason IS NOT NULL AND review_resolution IS NULL"),
            postgresql_where=text("review_reason IS NOT NULL AND review_resolution IS NULL"),
        ),
        # The dashboard's top failure reasons over a range, read from the index alone.
        Index(
            "ix_payments_failed_created_at",
            "created_at",
            sqlite_where=text("failure_reason IS NOT NULL"),
            postgresql_where=text("failure_reason IS NOT NULL"),
            postgresql_include=["failure_reason"],
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"))
    # None for a manual (offline) payment, which never went through Checkout.
    checkout_session_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    payment_intent_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    charge_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    customer_id: Mapped[str | None] = mapped_column(String(255))
    amount: Mapped[int]  # minor units, what we asked Stripe for
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[PaymentRecordStatus] = mapped_column(
        str_enum(PaymentRecordStatus), default=PaymentRecordStatus.PENDING
    )
    amount_refunded: Mapped[int] = mapped_column(default=0)  # minor units
    payment_method_type: Mapped[str | None] = mapped_column(String(40))
    checkout_url: Mapped[str | None] = mapped_column(String(2000))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    receipt_url: Mapped[str | None] = mapped_column(String(2000))
    failure_reason: Mapped[str | None] = mapped_column(String(500))
    # Set when what Stripe reported does not match the contract: held for an admin,
    # who accepts it or refunds it (`payments.review`).
    review_reason: Mapped[str | None] = mapped_column(String(500))
    review_resolution: Mapped[ReviewResolution | None] = mapped_column(str_enum(ReviewResolution))
    review_note: Mapped[str | None] = mapped_column(String(500))
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set when the money arrived but does not count for the contract, and goes back in
    # full by a job (`payments.fulfilment.refund_void_payment`); the refund's id once asked.
    void_reason: Mapped[VoidReason | None] = mapped_column(str_enum(VoidReason))
    void_refund_id: Mapped[str | None] = mapped_column(String(255))
    # A manual (offline) payment: how it was paid, its reference, who recorded it.
    manual_method: Mapped[ManualMethod | None] = mapped_column(str_enum(ManualMethod))
    manual_reference: Mapped[str | None] = mapped_column(String(100))
    received_on: Mapped[date | None] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(String(500))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    stripe_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now, onupdate=now)

    contract: Mapped[Contract] = relationship()

    @property
    def reference(self) -> str:
        """What we show people: the end of the Checkout session id, or the manual reference."""
        if self.checkout_session_id:
            return self.checkout_session_id[-8:]
        return self.manual_reference or f"manual-{self.id}"

    # Each of these reads the same on a loaded payment and in a query (`Payment.method == ...`).

    @hybrid_property
    def held_for_review(self) -> bool:
        """Held for review and not decided yet."""
        return self.review_reason is not None and self.review_resolution is None

    @held_for_review.inplace.expression
    @classmethod
    def _held_for_review_expression(cls) -> ColumnElement[bool]:
        return and_(cls.review_reason.is_not(None), cls.review_resolution.is_(None))

    @hybrid_property
    def method(self) -> str | None:
        """`manual` for an offline payment, else the Stripe method type (card, ...)."""
        return "manual" if self.manual_method else self.payment_method_type

    @method.inplace.expression
    @classmethod
    def _method_expression(cls) -> ColumnElement[str | None]:
        return case((cls.manual_method.is_not(None), "manual"), else_=cls.payment_method_type)


class StripeCustomer(Model):
    """The one Stripe customer of a student, made at their first payment."""

    __tablename__ = "stripe_customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), unique=True)
    customer_id: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)


class EventStatus(enum.Enum):
    RECEIVED = "received"  # stored by the webhook; processing is due at next_attempt_at
    PROCESSED = "processed"  # applied (or ignored) once; `outcome` says what happened
    FAILED = "failed"  # still failing after Stripe's retry window: an admin looks


class WebhookEvent(Model):
    """The inbox: every Stripe event we received, as received, and how processing went.

    The unique Stripe id makes a redelivery a no-op. The webhook only inserts the
    row; a job applies it (`payments.events.process_event`).
    """

    __tablename__ = "webhook_events"
    __table_args__ = (
        Index("ix_webhook_events_received_at", "received_at"),
        Index("ix_webhook_events_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_webhook_events_object_id", "object_id"),
        Index("ix_webhook_events_payment_intent_id", "payment_intent_id"),
        Index("ix_webhook_events_type_id", "type", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    stripe_event_id: Mapped[str] = mapped_column(String(255), unique=True)
    type: Mapped[str] = mapped_column(String(100))
    payload: Mapped[str] = mapped_column(Text)  # the body exactly as Stripe signed it
    # What the event is about (its data.object's id, and the payment intent it names),
    # so a payment's page can show its events without reading payloads.
    object_id: Mapped[str | None] = mapped_column(String(255))
    payment_intent_id: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[EventStatus] = mapped_column(str_enum(EventStatus), default=EventStatus.RECEIVED)
    outcome: Mapped[str | None] = mapped_column(String(60))
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(1000))
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
