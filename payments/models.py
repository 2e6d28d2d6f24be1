from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ColumnElement,
    Date,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    and_,
    case,
    func,
    text,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from accounts.models import User
from clock import now
from contracts.models import Contract
from database.text import Ending, trigram_index_kwargs
from database.types import UTCDateTime, str_enum
from extensions import Model

# How many of a Stripe id's last characters we print as a payment's reference.
REFERENCE_LENGTH = 8


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
    # A charge we took for unreached (Stripe did not answer) that went through after all.
    PaymentRecordStatus.CANCELED: frozenset({PaymentRecordStatus.SUCCEEDED}),
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
        # The admin's search (`admin.search`): a customer quotes the reference we show (the
        # end of the Checkout session or payment intent id), or a Stripe id.
        Index(
            "ix_payments_checkout_session_id_trgm",
            "checkout_session_id",
            **trigram_index_kwargs("checkout_session_id"),
        ),
        Index(
            "ix_payments_payment_intent_id_trgm",
            "payment_intent_id",
            **trigram_index_kwargs("payment_intent_id"),
        ),
        Index("ix_payments_customer_id", "customer_id"),
        # A membership period's payment is its paid invoice's: one each.
        Index("uq_payments_stripe_invoice_id", "stripe_invoice_id", unique=True),
        Index("ix_payments_balance_transaction_id", "balance_transaction_id"),
        Index(
            "ix_payments_manual_reference",
            "manual_reference",
            sqlite_where=text("manual_reference IS NOT NULL"),
            postgresql_where=text("manual_reference IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"))
    # None for a manual (offline) payment, which never went through Checkout.
    checkout_session_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    payment_intent_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    charge_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    customer_id: Mapped[str | None] = mapped_column(String(255))
    stripe_invoice_id: Mapped[str | None] = mapped_column(String(255))
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
    # who accepts it or refunds it (`payments.checkout.review`).
    review_reason: Mapped[str | None] = mapped_column(String(500))
    review_resolution: Mapped[ReviewResolution | None] = mapped_column(str_enum(ReviewResolution))
    review_note: Mapped[str | None] = mapped_column(String(500))
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set when the money arrived but does not count for the contract: it goes back in
    # full through a refund of source `duplicate` (`payments.refunds.refund_void_payment`).
    void_reason: Mapped[VoidReason | None] = mapped_column(str_enum(VoidReason))
    # A manual (offline) payment: how it was paid, its reference, who recorded it.
    manual_method: Mapped[ManualMethod | None] = mapped_column(str_enum(ManualMethod))
    manual_reference: Mapped[str | None] = mapped_column(String(100))
    received_on: Mapped[date | None] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(String(500))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    stripe_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    # The plan instalment this payment pays (the deposit is number 0); None for a whole total.
    instalment_id: Mapped[int | None] = mapped_column(ForeignKey("instalments.id"), index=True)
    # The shortfall an admin wrote off when accepting this payment short (`payments.settle`).
    amount_waived: Mapped[int] = mapped_column(default=0)
    # From the charge's balance transaction at Stripe (`books.fees`): Stripe's fee, its id,
    # and when the money became (or becomes) available. None until it has been read.
    stripe_fee: Mapped[int | None]
    balance_transaction_id: Mapped[str | None] = mapped_column(String(255))
    available_on: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When Stripe answered that it knows no such payment: the fee sweep asks no more.
    fee_refused_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now, onupdate=now)

    contract: Mapped[Contract] = relationship()

    @property
    def reference(self) -> str:
        """What we show people: the end of the Checkout session (or off-session payment
        intent) id, or the manual reference."""
        if self.checkout_session_id:
            return self.checkout_session_id[-REFERENCE_LENGTH:]
        if self.payment_intent_id and not self.manual_method:
            return self.payment_intent_id[-REFERENCE_LENGTH:]
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


# A quoted reference (`Payment.reference`) found in one look-up of the id it ends.
Index("ix_payments_checkout_session_id_end",
      func.lower(Ending(Payment.checkout_session_id, REFERENCE_LENGTH)))
Index("ix_payments_payment_intent_id_end",
      func.lower(Ending(Payment.payment_intent_id, REFERENCE_LENGTH)))


class PlanStatus(enum.Enum):
    ACTIVE = "active"  # instalments are charged on their dates
    PAUSED = "paused"  # an admin paused it: nothing is charged; dates move on resume
    COMPLETED = "completed"  # every instalment is paid
    CANCELLED = "cancelled"  # an admin ended it; what was paid goes back by the refund path


PLAN_TRANSITIONS: dict[PlanStatus, frozenset[PlanStatus]] = {
    PlanStatus.ACTIVE: frozenset({PlanStatus.PAUSED, PlanStatus.COMPLETED, PlanStatus.CANCELLED}),
    # An admin may record the last instalment paid offline while the plan is paused.
    PlanStatus.PAUSED: frozenset({PlanStatus.ACTIVE, PlanStatus.COMPLETED, PlanStatus.CANCELLED}),
}


class InstalmentStatus(enum.Enum):
    SCHEDULED = "scheduled"  # due on its date (or waiting for its next retry)
    PROCESSING = "processing"  # a charge was asked for and has not answered yet
    PAID = "paid"  # the money arrived
    FAILED = "failed"  # the last retry failed too: the contract is past due
    CANCELLED = "cancelled"  # the plan was cancelled before it was paid


INSTALMENT_TRANSITIONS: dict[InstalmentStatus, frozenset[InstalmentStatus]] = {
    InstalmentStatus.SCHEDULED: frozenset(
        {InstalmentStatus.PROCESSING, InstalmentStatus.PAID, InstalmentStatus.CANCELLED}
    ),
    InstalmentStatus.PROCESSING: frozenset(
        {
            InstalmentStatus.SCHEDULED,
            InstalmentStatus.PAID,
            InstalmentStatus.FAILED,
            InstalmentStatus.CANCELLED,
        }
    ),
    # An admin may give a failed instalment a new date, or record it paid offline.
    InstalmentStatus.FAILED: frozenset(
        {InstalmentStatus.SCHEDULED, InstalmentStatus.PAID, InstalmentStatus.CANCELLED}
    ),
}


class PaymentPlan(Model):
    """A contract paid by a deposit and monthly instalments, charged off-session by us."""

    __tablename__ = "payment_plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"), unique=True)
    status: Mapped[PlanStatus] = mapped_column(str_enum(PlanStatus), default=PlanStatus.ACTIVE)
    deposit_percent: Mapped[int]
    instalment_count: Mapped[int]
    # The student's Stripe customer and the saved card instalments are charged to.
    customer_id: Mapped[str | None] = mapped_column(String(255))
    payment_method_id: Mapped[str | None] = mapped_column(String(255))
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now, onupdate=now)

    contract: Mapped[Contract] = relationship()
    instalments: Mapped[list[Instalment]] = relationship(
        back_populates="plan", order_by="Instalment.number"
    )


class Instalment(Model):
    """One charge of a plan: number 0 is the deposit. Retries and moves are rows of ours."""

    __tablename__ = "instalments"
    __table_args__ = (
        UniqueConstraint("plan_id", "number", name="uq_instalments_plan_id_number"),
        CheckConstraint("amount > 0", name="amount_positive"),
        # The sweep's look-up: what is due now.
        Index("ix_instalments_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("payment_plans.id"))
    number: Mapped[int]
    amount: Mapped[int]  # minor units
    due_on: Mapped[date] = mapped_column(Date)
    status: Mapped[InstalmentStatus] = mapped_column(
        str_enum(InstalmentStatus), default=InstalmentStatus.SCHEDULED
    )
    # When the next charge is due: the due date at first, then each retry's time.
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    # The bank asked the student to authenticate: they pay this one through Checkout.
    needs_authentication: Mapped[bool] = mapped_column(default=False)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now, onupdate=now)

    plan: Mapped[PaymentPlan] = relationship(back_populates="instalments")


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


EVENT_TRANSITIONS: dict[EventStatus, frozenset[EventStatus]] = {
    EventStatus.RECEIVED: frozenset({EventStatus.PROCESSED, EventStatus.FAILED}),
    # An admin's "retry now" makes a failed event due again.
    EventStatus.FAILED: frozenset({EventStatus.RECEIVED}),
}


class WebhookEvent(Model):
    """The inbox: every Stripe event we received, as received, and how processing went.

    The unique Stripe id makes a redelivery a no-op. The webhook only inserts the
    row; a job applies it (`payments.inbox.processing.process_event`).
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


class RefundStatus(enum.Enum):
    PENDING = "pending"  # written by us or reported by Stripe; the money is not back yet
    SUCCEEDED = "succeeded"  # the money went back to the student
    FAILED = "failed"  # Stripe refused it or the bank returned it; nothing went back
    CANCELED = "canceled"  # cancelled before it was made; nothing went back


REFUND_TRANSITIONS: dict[RefundStatus, frozenset[RefundStatus]] = {
    RefundStatus.PENDING: frozenset(
        {RefundStatus.SUCCEEDED, RefundStatus.FAILED, RefundStatus.CANCELED}
    ),
    # A card refund can still fail after it succeeded (the card was closed meanwhile).
    RefundStatus.SUCCEEDED: frozenset({RefundStatus.FAILED}),
}

# Refunds that count against what is still refundable: asked for, or made.
LIVE_REFUND_STATUSES = (RefundStatus.PENDING, RefundStatus.SUCCEEDED)


class RefundSource(enum.Enum):
    STUDENT_REQUEST = "student_request"  # a student's request, approved by an admin
    ADMIN = "admin"  # an admin's own refund (a cancelled contract, a goodwill gesture)
    DUPLICATE = "duplicate"  # a payment that did not count for its contract, back in full
    DASHBOARD = "dashboard"  # made outside Coachpact (the Stripe Dashboard), mirrored
    COACH = "coach"  # offered by the contract's coach: within the policy, or approved by an admin


class Refund(Model):
    """One Stripe refund of one payment, from the moment we decide it (or hear of it).

    A refund we start is written first (pending, no Stripe id), then a job asks
    Stripe with an idempotency key derived from this row, outside any lock.
    What is still refundable counts pending and succeeded rows, decided under
    the contract's lock (`payments.refunds`).
    """

    __tablename__ = "refunds"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_refunds_contract_id_status", "contract_id", "status"),
        Index("ix_refunds_payment_id", "payment_id"),
        Index("ix_refunds_created_at_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"))
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"))
    request_id: Mapped[int | None] = mapped_column(ForeignKey("refund_requests.id"))
    amount: Mapped[int]  # minor units
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[RefundStatus] = mapped_column(
        str_enum(RefundStatus), default=RefundStatus.PENDING
    )
    source: Mapped[RefundSource] = mapped_column(str_enum(RefundSource))
    # Stripe's reason (duplicate, fraudulent, requested_by_customer) and ours, in words.
    stripe_reason: Mapped[str | None] = mapped_column(String(40))
    note: Mapped[str | None] = mapped_column(String(500))
    stripe_refund_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    failure_reason: Mapped[str | None] = mapped_column(String(500))
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now, onupdate=now)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    payment: Mapped[Payment] = relationship()
    contract: Mapped[Contract] = relationship()
    requested_by: Mapped[User | None] = relationship()


class RefundCategory(enum.Enum):
    SCHEDULE = "schedule"  # the sessions no longer fit the student's schedule
    NOT_AS_DESCRIBED = "not_as_described"  # the coaching was not what was agreed
    COACH_UNAVAILABLE = "coach_unavailable"  # the coach could not give the sessions
    PERSONAL = "personal"  # personal or financial reasons
    OTHER = "other"  # anything else; the text says


CATEGORY_LABELS = {
    RefundCategory.SCHEDULE: "The sessions no longer fit my schedule",
    RefundCategory.NOT_AS_DESCRIBED: "The coaching is not what was agreed",
    RefundCategory.COACH_UNAVAILABLE: "The coach is not available",
    RefundCategory.PERSONAL: "Personal or financial reasons",
    RefundCategory.OTHER: "Something else",
}


class RequestStatus(enum.Enum):
    OPEN = "open"  # waiting for an admin
    APPROVED = "approved"  # an admin approved it; its refund is on its way (or made)
    REJECTED = "rejected"  # an admin said no; the note says why
    WITHDRAWN = "withdrawn"  # the student took it back before an admin decided (decided_at)


REQUEST_TRANSITIONS: dict[RequestStatus, frozenset[RequestStatus]] = {
    RequestStatus.OPEN: frozenset(
        {RequestStatus.APPROVED, RequestStatus.REJECTED, RequestStatus.WITHDRAWN}
    ),
    # The approved refund did not go through: the request is open again for an admin.
    RequestStatus.APPROVED: frozenset({RequestStatus.OPEN}),
}


class RefundRequest(Model):
    """A student's request for money back on a contract, and an admin's decision.

    A coach's offer of more than the policy gives back is a request too, for the
    contract's student, with the amount offered (`offered_amount`): an admin decides it.
    A request the student withdrew keeps when (`decided_at`) and by whom (`decided_by`).
    """

    __tablename__ = "refund_requests"
    __table_args__ = (
        # One open request per contract, whatever two clicks at once do.
        Index(
            "uq_refund_requests_contract_id_open",
            "contract_id",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
        Index("ix_refund_requests_status_created_at", "status", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"))
    student_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    category: Mapped[RefundCategory] = mapped_column(str_enum(RefundCategory))
    reason: Mapped[str] = mapped_column(Text)
    # The quote shown to the student when they asked (the admin sees today's too).
    quoted_amount: Mapped[int]
    # Set when the contract's coach offered this refund above the policy: what they offered.
    offered_amount: Mapped[int | None]
    status: Mapped[RequestStatus] = mapped_column(
        str_enum(RequestStatus), default=RequestStatus.OPEN
    )
    approved_amount: Mapped[int | None]
    override_reason: Mapped[str | None] = mapped_column(String(500))
    decision_note: Mapped[str | None] = mapped_column(String(500))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)

    contract: Mapped[Contract] = relationship()
    student: Mapped[User] = relationship(foreign_keys="RefundRequest.student_id")
    decided_by: Mapped[User | None] = relationship(foreign_keys="RefundRequest.decided_by_id")

    @property
    def offered_by_coach(self) -> bool:
        return self.offered_amount is not None

    @property
    def category_label(self) -> str:
        if self.offered_by_coach:
            return "The coach offered this refund"
        return CATEGORY_LABELS[self.category]


# Stripe's dispute statuses that are still open (a decision is to come).
OPEN_DISPUTE_STATUSES = (
    "warning_needs_response",
    "warning_under_review",
    "needs_response",
    "under_review",
)


class Dispute(Model):
    """A dispute (chargeback or inquiry) on a payment, mirrored from Stripe's events.

    `status` is Stripe's own word. The contract's state before the dispute opened
    is kept, so a dispute won returns the contract to it.
    """

    __tablename__ = "disputes"
    __table_args__ = (
        Index("ix_disputes_status_evidence_due_by", "status", "evidence_due_by"),
        Index("ix_disputes_contract_id", "contract_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    stripe_dispute_id: Mapped[str] = mapped_column(String(255), unique=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"))
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"))
    amount: Mapped[int]  # minor units
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(60))
    status: Mapped[str] = mapped_column(String(40))
    is_charge_refundable: Mapped[bool] = mapped_column(default=False)
    evidence_due_by: Mapped[datetime | None] = mapped_column(UTCDateTime())
    contract_status_before: Mapped[str] = mapped_column(String(40))
    payment_status_before: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now, onupdate=now)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    payment: Mapped[Payment] = relationship()
    contract: Mapped[Contract] = relationship()

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_DISPUTE_STATUSES


class InvoiceCounter(Model):
    """The last invoice number taken in one calendar year (UTC): one row per year.

    Locked for update in the transaction that records the payment
    (`payments.invoices`), so numbers are consecutive, never reused and never
    skipped: a rolled-back payment rolls its number back with it.
    """

    __tablename__ = "invoice_counters"
    __table_args__ = (CheckConstraint("last_number >= 0", name="last_number_not_negative"),)

    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last_number: Mapped[int] = mapped_column(default=0)


class Invoice(Model):
    """The numbered invoice of one payment that counts for its contract (never a void one).

    Written once, in the payment's transaction, and never changed: the parties'
    names and emails and the contract's terms are frozen copies, so a user who
    renames later does not change an invoice already issued. `platform_fee` and
    `coach_earning` are this payment's cumulative shares of the contract's split
    (`payments.standing.payment_split`).
    """

    __tablename__ = "invoices"
    __table_args__ = (
        CheckConstraint("coach_earning = amount - platform_fee", name="earning_is_net"),
        CheckConstraint("platform_fee >= 0 AND coach_earning >= 0", name="split_not_negative"),
        CheckConstraint("sequence > 0", name="sequence_positive"),
        Index("uq_invoices_year_sequence", "year", "sequence", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)  # CP-2026-000001
    year: Mapped[int]  # the UTC year of the payment's paid_at
    sequence: Mapped[int]  # 1, 2, ... within the year
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), unique=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"))
    student_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    coach_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    amount: Mapped[int]  # minor units
    currency: Mapped[str] = mapped_column(String(3))
    platform_fee: Mapped[int]  # minor units, this payment's share
    coach_earning: Mapped[int]  # minor units, this payment's share
    # Frozen copies, as they were when the invoice was issued.
    student_name: Mapped[str] = mapped_column(String(100))
    student_email: Mapped[str] = mapped_column(String(254))
    coach_name: Mapped[str] = mapped_column(String(100))
    coach_email: Mapped[str] = mapped_column(String(254))
    contract_title: Mapped[str] = mapped_column(String(120))
    session_count: Mapped[int]
    minutes_per_session: Mapped[int]
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)

    payment: Mapped[Payment] = relationship()
    contract: Mapped[Contract] = relationship()
