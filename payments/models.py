from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
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


class Payment(Model):
    """One Checkout attempt for a contract, and what Stripe told us about it."""

    __tablename__ = "payments"
    __table_args__ = (Index("ix_payments_contract_id_created_at", "contract_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"))
    checkout_session_id: Mapped[str] = mapped_column(String(255), unique=True)
    payment_intent_id: Mapped[str | None] = mapped_column(String(255), unique=True)
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
    # Set when what Stripe reported does not match the contract: an admin decides.
    review_reason: Mapped[str | None] = mapped_column(String(500))
    # A second payment for a contract that was paid already: it goes back in full
    # (`payments.fulfilment.refund_duplicate`) and never counts for the contract.
    is_duplicate: Mapped[bool] = mapped_column(default=False)
    duplicate_refund_id: Mapped[str | None] = mapped_column(String(255))
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    stripe_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now, onupdate=now)

    contract: Mapped[Contract] = relationship()

    @property
    def reference(self) -> str:
        """What we show people: the last 8 characters of the Checkout session id."""
        return self.checkout_session_id[-8:]


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
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    stripe_event_id: Mapped[str] = mapped_column(String(255), unique=True)
    type: Mapped[str] = mapped_column(String(100))
    payload: Mapped[str] = mapped_column(Text)  # the body exactly as Stripe signed it
    status: Mapped[EventStatus] = mapped_column(str_enum(EventStatus), default=EventStatus.RECEIVED)
    outcome: Mapped[str | None] = mapped_column(String(60))
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(1000))
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
