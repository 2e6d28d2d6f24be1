"""Three months of payment history for the demo, so the admin console has something to show.

Deterministic (a seeded generator) and idempotent: `load_history` does nothing
when the history is there already. Rows are written directly, as the events of
the past would have left them: the services rightly refuse to backdate.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta

from sqlalchemy import func, select

import clock
from accounts.models import User
from contracts.models import Contract, ContractStatus, PaymentStatus, Proposal, ProposalStatus
from contracts.money import format_money, quote
from extensions import db
from payments.models import (
    Dispute,
    EventStatus,
    Payment,
    PaymentRecordStatus,
    Refund,
    RefundSource,
    RefundStatus,
    VoidReason,
    WebhookEvent,
)

HISTORY_PAYMENTS = 320
DAYS = 90
TITLES = [
    "Interview sprint", "Pitch practice", "Writing clinic", "Running form check",
    "Spanish conversation", "Career review", "Portfolio critique", "Negotiation drills",
]
PRICES = {"usd": 6000, "eur": 5500, "gbp": 4800, "jpy": 7000}
DECLINES = [
    "Your card was declined.", "Your card has insufficient funds.", "Your card has expired.",
    "Your card's security code is incorrect.", "The bank debit did not go through.",
]
# What became of each purchase, and how often (out of 100).
OUTCOMES = [
    ("paid", 62), ("failed_then_paid", 12), ("failed", 8), ("refunded", 5),
    ("partially_refunded", 4), ("disputed", 3), ("held", 3), ("expired", 3),
]


def history_exists() -> bool:
    ours = Payment.checkout_session_id.like("cs_demo_%")
    return bool(db.session.scalar(select(func.count()).select_from(Payment).where(ours)))


def load_history(fee_percent, fee_minimum) -> int:
    """Add the history if it is missing; returns how many payments were written (flushes)."""
    if history_exists():
        return 0
    rng = random.Random(2026)
    coaches = list(db.session.scalars(select(User).where(User.email.in_(
        ["maya@coachpact.test", "tomas@coachpact.test"]))))
    students = list(db.session.scalars(select(User).where(User.email.in_(
        ["ana@coachpact.test", "kenji@coachpact.test", "priya@coachpact.test"]))))
    today = clock.now()
    outcomes = [name for name, weight in OUTCOMES for _ in range(weight)]
    written = 0
    for n in range(HISTORY_PAYMENTS):
        # Up to yesterday: today's money is what the demo moves at the sandbox for real, so
        # that the day's reconciliation with Stripe's books has real transactions to match.
        created = today - timedelta(days=1 + rng.randrange(DAYS - 1), hours=rng.randrange(24),
                                    minutes=rng.randrange(60))
        currency = rng.choice(list(PRICES))
        contract = _contract(rng, n, created, rng.choice(coaches), rng.choice(students), currency,
                             fee_percent, fee_minimum)
        written += _payments(rng, n, contract, created, rng.choice(outcomes))
    _events(today)
    db.session.flush()
    return written


def _contract(rng, n, created, coach, student, currency, fee_percent, fee_minimum) -> Contract:
    sessions = rng.choice([2, 3, 4, 6])
    price = PRICES[currency] * rng.choice([2, 3, 4]) // 2
    split = quote(price_per_session=price, session_count=sessions, currency=currency,
                  fee_percent=fee_percent, fee_minimum=fee_minimum)
    terms = {
        "coach_id": coach.id, "student_id": student.id,
        "title": f"{rng.choice(TITLES)} #{n + 1}",
        "description": f"{sessions} sessions with {coach.name}.",
        "session_count": sessions, "minutes_per_session": rng.choice([45, 60]),
        "price_per_session": price, "currency": currency,
    }
    proposal = Proposal(status=ProposalStatus.ACCEPTED, created_at=created - timedelta(hours=2),
                        responded_at=created - timedelta(hours=1), **terms)
    contract = Contract(proposal=proposal, total_amount=split.total,
                        platform_fee=split.platform_fee, coach_earning=split.coach_earning,
                        created_at=created - timedelta(hours=1), **terms)
    db.session.add(contract)
    db.session.flush()
    return contract


def _payment(n: int, attempt: int, contract: Contract, created: datetime, status,
             amount: int | None = None, **more):
    key = f"{n:04d}{attempt}"
    payment = Payment(
        contract_id=contract.id, checkout_session_id=f"cs_demo_{key}",
        payment_intent_id=f"pi_demo_{key}", customer_id=f"cus_demo_{contract.student_id}",
        amount=contract.total_amount if amount is None else amount,
        currency=contract.currency, status=status,
        payment_method_type="card", created_at=created, updated_at=created,
        stripe_metadata={"contract_id": str(contract.id), "attempt": str(attempt)}, **more,
    )
    if status is not PaymentRecordStatus.FAILED and status is not PaymentRecordStatus.EXPIRED:
        payment.charge_id = f"ch_demo_{key}"
    db.session.add(payment)
    return payment


def _payments(rng, n, contract: Contract, created: datetime, outcome: str) -> int:
    paid = PaymentRecordStatus.SUCCEEDED
    if outcome in ("failed", "failed_then_paid"):
        _payment(n, 1, contract, created, PaymentRecordStatus.FAILED,
                 failure_reason=rng.choice(DECLINES))
        created += timedelta(minutes=rng.randrange(5, 240))
        if outcome == "failed":
            contract.payment_status = PaymentStatus.FAILED
            return 1
    if outcome == "expired":
        _payment(n, 1, contract, created, PaymentRecordStatus.EXPIRED)
        return 1
    if outcome == "held":
        # Half the total arrived: Stripe reported less than the contract asks.
        half, total = contract.total_amount // 2, contract.total_amount
        _payment(n, 1, contract, created, PaymentRecordStatus.PENDING, amount=half,
                 review_reason=f"Stripe reported {format_money(half, contract.currency)}; "
                 f"the contract expects {format_money(total, contract.currency)}.")
        return 1
    refunded = 0
    if outcome == "refunded":
        paid, refunded = PaymentRecordStatus.REFUNDED, contract.total_amount
    elif outcome == "partially_refunded":
        paid, refunded = PaymentRecordStatus.PARTIALLY_REFUNDED, contract.total_amount // 3
    attempt = 2 if outcome == "failed_then_paid" else 1
    payment = _payment(n, attempt, contract, created, paid, amount_refunded=refunded,
                       paid_at=created, receipt_url=None)
    contract.paid_at, contract.amount_paid = created, contract.total_amount
    if refunded:
        _refund(rng, n, payment, refunded, created)
        contract.amount_returned = refunded
        contract.sessions_released = (
            contract.session_count if outcome == "refunded"
            else refunded // contract.price_per_session
        )
    if outcome == "disputed":
        _dispute(rng, n, payment, created)
    contract.payment_status = {
        "refunded": PaymentStatus.REFUNDED,
        "partially_refunded": PaymentStatus.PARTIALLY_REFUNDED,
        "disputed": PaymentStatus.DISPUTED,
    }.get(outcome, PaymentStatus.PAID)
    age = clock.now() - created
    contract.status = {
        "refunded": ContractStatus.REFUNDED,
        "disputed": ContractStatus.DISPUTED,
    }.get(outcome, ContractStatus.COMPLETED if age > timedelta(days=45) else ContractStatus.ACTIVE)
    if outcome == "paid" and rng.random() < 0.02:
        # Now and then a student paid twice; the second payment went back in full.
        twice = _payment(n, 3, contract, created + timedelta(minutes=3),
                         PaymentRecordStatus.REFUNDED, amount_refunded=contract.total_amount,
                         paid_at=created, void_reason=VoidReason.DUPLICATE)
        _refund(rng, n, twice, contract.total_amount, created, source=RefundSource.DUPLICATE)
        return attempt + 1
    return attempt


def _refund(rng, n, payment: Payment, amount: int, paid: datetime,
            source: RefundSource | None = None) -> None:
    """The refund that gave `amount` of `payment` back, a few days after it was paid."""
    db.session.flush()  # the payment's id
    at = min(paid + timedelta(days=rng.randrange(1, 12), hours=rng.randrange(24)),
             _before_today())
    source = source or rng.choice(
        (RefundSource.STUDENT_REQUEST, RefundSource.STUDENT_REQUEST, RefundSource.ADMIN,
         RefundSource.DASHBOARD))
    db.session.add(Refund(
        payment_id=payment.id, contract_id=payment.contract_id, amount=amount,
        currency=payment.currency, status=RefundStatus.SUCCEEDED, source=source,
        stripe_reason="duplicate" if source is RefundSource.DUPLICATE else "requested_by_customer",
        stripe_refund_id=f"re_demo_{n:04d}_{payment.id}", created_at=at, updated_at=at,
        settled_at=at,
    ))


def _before_today() -> datetime:
    """The last minute of yesterday (UTC): the history stays out of today."""
    now = clock.now()
    return now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(minutes=1)


def _dispute(rng, n, payment: Payment, paid: datetime) -> None:
    """An open chargeback; its evidence is due within days (one or two are overdue)."""
    db.session.flush()
    opened = min(paid + timedelta(days=rng.randrange(3, 30)), _before_today())
    db.session.add(Dispute(
        stripe_dispute_id=f"dp_demo_{n:04d}", payment_id=payment.id,
        contract_id=payment.contract_id, amount=payment.amount, currency=payment.currency,
        reason=rng.choice(("fraudulent", "product_not_received", "subscription_canceled",
                           "duplicate")),
        status=rng.choice(("needs_response", "needs_response", "under_review")),
        evidence_due_by=clock.now() + timedelta(days=rng.randrange(-2, 14)),
        contract_status_before="active", payment_status_before="paid",
        created_at=opened, updated_at=opened,
    ))


def _events(today: datetime) -> None:
    """The inbox: recent events applied, and a few an admin should look at."""
    recent = db.session.scalars(
        select(Payment).where(Payment.checkout_session_id.like("cs_demo_%"),
                              Payment.created_at > today - timedelta(days=3))
    ).all()
    for payment in recent:
        paid = payment.status is not PaymentRecordStatus.FAILED
        kind = "checkout.session.completed" if paid else "payment_intent.payment_failed"
        about = payment.checkout_session_id if paid else payment.payment_intent_id
        _event(f"evt_demo_{payment.id:05d}", kind, about, payment.payment_intent_id,
               payment.created_at, EventStatus.PROCESSED, "fulfilled" if paid else "failed")
    # Refunds Stripe reported for payments we never knew: retried for three days, given up.
    for n, age in enumerate((4, 6)):
        _event(f"evt_demo_orphan_{n}", "charge.refunded", f"ch_demo_orphan_{n}",
               f"pi_demo_orphan_{n}", today - timedelta(days=age), EventStatus.FAILED, None,
               attempts=79, last_error="RetryLater: charge.refunded for a payment intent we "
               "do not know yet")
    _event("evt_demo_waiting", "charge.dispute.created", "dp_demo_waiting", "pi_demo_waiting",
           today - timedelta(minutes=20), EventStatus.RECEIVED, None, attempts=6,
           last_error="RetryLater: charge.dispute.created for a payment intent we do not "
           "know yet", next_attempt_at=today + timedelta(minutes=10))


def _event(stripe_id, kind, object_id, intent_id, at, status, outcome, **more) -> None:
    body = {"id": stripe_id, "object": "event", "type": kind, "created": int(at.timestamp()),
            "livemode": False, "data": {"object": {"id": object_id, "payment_intent": intent_id}}}
    more.setdefault("attempts", 1)
    more.setdefault("next_attempt_at", at)
    db.session.add(WebhookEvent(
        stripe_event_id=stripe_id, type=kind, payload=json.dumps(body), object_id=object_id,
        payment_intent_id=intent_id, status=status, outcome=outcome, received_at=at,
        processed_at=at if status is EventStatus.PROCESSED else None, **more,
    ))
