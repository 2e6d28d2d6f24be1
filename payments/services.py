"""Checkout, fulfilment and Stripe event handling. Services flush; callers commit once.

Every state change here happens inside the caller's one transaction, after the
contract's row is locked (SELECT ... FOR UPDATE on PostgreSQL; on SQLite, which
has no row locks, `lock_sqlite` takes the database's write lock first).
Duplicates and races are settled by that lock and by unique constraints on
Stripe's ids, never by process memory.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeAlias

from flask import abort, url_for
from sqlalchemy import Row, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from accounts.models import User
from audit.services import record as audit
from contracts.models import (
    CONTRACT_TRANSITIONS,
    PAYMENT_STATUS_TRANSITIONS,
    Contract,
    ContractStatus,
    PaymentStatus,
)
from contracts.money import format_money
from contracts.scheduling import cancel_open_sessions
from contracts.services import lock_contract
from contracts.states import check_transition
from db_types import lock_sqlite, one_round_trip, table_of, update_row, utcnow
from extensions import db
from notifications.services import Recipient, notify
from payments import stripe_api
from payments.models import (
    PAYMENT_RECORD_TRANSITIONS,
    Payment,
    PaymentRecordStatus,
    StripeCustomer,
    WebhookEvent,
)

# An open Checkout session is reused only while it has this long left to live.
REUSE_MARGIN = timedelta(minutes=10)
CHECKOUT_LIFETIME = timedelta(hours=2)


class NotPayable(Exception):
    """The contract cannot be paid now (already paid, cancelled, ...); message for the user."""


class RetryLater(Exception):
    """An event we handle but cannot match yet: answer 5xx so that Stripe redelivers it."""


# --- looking things up --------------------------------------------------------


def _payment_by(**criteria: Any) -> Payment | None:
    return db.session.scalar(
        select(Payment).filter_by(**criteria).execution_options(populate_existing=True)
    )


def contract_for_student(contract_id: int, student: User, *, lock: bool = False) -> Contract:
    """The contract if `student` is its student; to anyone else it does not exist (404)."""
    contract = lock_contract(contract_id) if lock else db.session.get(Contract, contract_id)
    if contract is None or contract.student_id != student.id:
        abort(404)
    return contract


def payments_of(contract: Contract) -> list[Payment]:
    return list(
        db.session.scalars(
            select(Payment)
            .where(Payment.contract_id == contract.id)
            .order_by(Payment.created_at.desc(), Payment.id.desc())
        )
    )


def _contract_payment_after(current: PaymentStatus, new: PaymentStatus) -> PaymentStatus:
    """A contract's payment status moved to `new`; staying put needs no transition."""
    if current is new:
        return new
    return check_transition(PAYMENT_STATUS_TRANSITIONS, current, new, "payment")


def _set_contract_payment(contract: Contract, status: PaymentStatus) -> None:
    contract.payment_status = _contract_payment_after(contract.payment_status, status)


def _may_move(current: PaymentRecordStatus, new: PaymentRecordStatus) -> bool:
    """Whether the table lets a payment record move from `current` to `new`.

    False for a late or reordered event: the record already knows better.
    """
    return new is not current and new in PAYMENT_RECORD_TRANSITIONS.get(current, frozenset())


def _move_payment(payment: Payment, status: PaymentRecordStatus) -> bool:
    """Move a payment record if the table allows it; False when it is already past that."""
    if not _may_move(payment.status, status):
        return False
    payment.status = status
    return True


# --- paying ---------------------------------------------------------------------


def _ensure_customer(student: User) -> str:
    row = db.session.scalar(select(StripeCustomer).filter_by(user_id=student.id))
    if row is not None:
        return row.customer_id
    customer = stripe_api.create_customer(
        {"email": student.email, "name": student.name, "metadata": {"user_id": str(student.id)}},
        stripe_api.idempotency_key("customer", student.id, int(student.created_at.timestamp())),
    )
    db.session.add(StripeCustomer(user_id=student.id, customer_id=customer.id))
    db.session.flush()
    return customer.id


def start_checkout(contract_id: int, student: User) -> str:
    """The Checkout URL for paying this contract: an open session reused, or a new one.

    The price comes from the contract alone. The idempotency key is derived from
    the contract and the attempt number, so a double-click or a retried request
    gets the very same session from Stripe instead of a second one.
    """
    contract = contract_for_student(contract_id, student, lock=True)
    if contract.payment_status is PaymentStatus.PAID or contract.paid_at is not None:
        raise NotPayable("This contract is already paid.")
    if contract.status is not ContractStatus.PENDING:
        raise NotPayable(f"This contract is {contract.status.value}; it cannot be paid.")
    now = utcnow()
    attempts = payments_of(contract)
    for payment in attempts:
        if (
            payment.status in (PaymentRecordStatus.PENDING, PaymentRecordStatus.FAILED)
            and payment.checkout_url
            and payment.expires_at
            and payment.expires_at > now + REUSE_MARGIN
        ):
            return payment.checkout_url
    attempt = 1 + len(attempts)
    metadata = {"contract_id": str(contract.id), "attempt": str(attempt)}
    success = url_for("payments.success", contract_id=contract.id, _external=True)
    session = stripe_api.create_checkout_session(
        {
            "mode": "payment",
            "customer": _ensure_customer(student),
            "client_reference_id": str(contract.id),
            "line_items": [
                {
                    "quantity": contract.session_count,
                    "price_data": {
                        "currency": contract.currency,
                        "unit_amount": contract.price_per_session,
                        "product_data": {
                            "name": f"{contract.title} — {contract.minutes_per_session}-minute "
                            "coaching session",
                        },
                    },
                }
            ],
            "metadata": metadata,
            "payment_intent_data": {"metadata": metadata},
            "success_url": success + "?session_id={CHECKOUT_SESSION_ID}",
            "cancel_url": url_for("payments.cancel", contract_id=contract.id, _external=True),
            "expires_at": int((now + CHECKOUT_LIFETIME).timestamp()),
        },
        stripe_api.idempotency_key(
            "checkout", contract.id, int(contract.created_at.timestamp()), attempt
        ),
    )
    if session.amount_total != contract.total_amount or session.currency != contract.currency:
        raise NotPayable("The payment provider quoted a different amount. Nothing was charged.")
    replayed = _payment_by(checkout_session_id=session.id)
    if replayed is not None:
        return replayed.checkout_url or session.url or ""
    payment = Payment(
        contract_id=contract.id,
        checkout_session_id=session.id,
        customer_id=session.customer if isinstance(session.customer, str) else None,
        amount=contract.total_amount,
        currency=contract.currency,
        checkout_url=session.url,
        expires_at=datetime.fromtimestamp(session.expires_at, now.tzinfo),
        stripe_metadata=metadata,
    )
    db.session.add(payment)
    db.session.flush()
    audit(
        "payment.checkout_started",
        payment,
        actor=student,
        after={"checkout_session_id": session.id, "amount": payment.amount},
    )
    return session.url or ""


# --- fulfilment -----------------------------------------------------------------


def _metadata_contract_id(stripe_object: dict[str, Any]) -> int | None:
    raw = (stripe_object.get("metadata") or {}).get("contract_id") or stripe_object.get(
        "client_reference_id"
    )
    try:
        return int(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None


# --- the Checkout attempt a Stripe event is about ----------------------------
#
# Checkout events are what Stripe sends most. Their handlers read the attempt,
# its contract and the coach in one statement, decide in Python with the state
# tables, and write with plain UPDATE and INSERT statements: the ORM's
# bookkeeping would be most of the cost of this path.

_PAYMENTS = table_of(Payment)
_CONTRACTS = table_of(Contract)
_COACH = table_of(User).alias("coach")
_STUDENT = table_of(User).alias("student")

# Built once: the attempt of a Checkout session, its contract (whose row it
# locks) and what the coach's notification needs.
_LOCKED_ATTEMPT = (
    select(
        *_PAYMENTS.c[
            "id",
            "contract_id",
            "checkout_session_id",
            "payment_intent_id",
            "status",
            "review_reason",
            "receipt_url",
            "payment_method_type",
        ],
        _CONTRACTS.c.status.label("contract_status"),
        _CONTRACTS.c.payment_status.label("contract_payment_status"),
        _CONTRACTS.c.paid_at.label("contract_paid_at"),
        _CONTRACTS.c.total_amount,
        _CONTRACTS.c.currency,
        _CONTRACTS.c.title,
        _COACH.c.id.label("coach_id"),
        _COACH.c.email.label("coach_email"),
        _STUDENT.c.name.label("student_name"),
    )
    .join(_CONTRACTS, _PAYMENTS.c.contract_id == _CONTRACTS.c.id)
    .join(_COACH, _COACH.c.id == _CONTRACTS.c.coach_id)
    .join(_STUDENT, _STUDENT.c.id == _CONTRACTS.c.student_id)
    .where(_PAYMENTS.c.checkout_session_id == bindparam("session_id"))
    .with_for_update(of=_CONTRACTS)
)

# A row of `_LOCKED_ATTEMPT`, its columns read by name.
Attempt: TypeAlias = Row[*tuple[Any, ...]]

_SETTLED = (
    PaymentRecordStatus.SUCCEEDED,
    PaymentRecordStatus.REFUNDED,
    PaymentRecordStatus.PARTIALLY_REFUNDED,
)


def _locked_attempt(session: dict[str, Any]) -> Attempt | None:
    """The attempt a Checkout session belongs to, its contract's row locked.

    A session with no record of ours yet (the pay request crashed after Stripe
    answered, say) whose metadata names a real contract gets a record built from
    what Stripe reports, so the payment is never dropped.
    """
    lock_sqlite(db.session, Payment.checkout_session_id, session["id"])
    params = {"session_id": session["id"]}
    attempt = db.session.execute(_LOCKED_ATTEMPT, params).first()
    if attempt is None and _record_attempt_from_stripe(session):
        attempt = db.session.execute(_LOCKED_ATTEMPT, params).first()
    return attempt


def _record_attempt_from_stripe(session: dict[str, Any]) -> bool:
    """Record a Checkout session we have no attempt for; False if it names no contract."""
    contract_id = _metadata_contract_id(session)
    contract = lock_contract(contract_id) if contract_id is not None else None
    if contract is None:
        return False
    # Under the contract's lock: a concurrent delivery may have recorded it meanwhile.
    if _payment_by(checkout_session_id=session["id"]) is None:
        customer = session.get("customer")
        payment = Payment(
            contract_id=contract.id,
            checkout_session_id=session["id"],
            customer_id=customer if isinstance(customer, str) else None,
            amount=int(session.get("amount_total") or 0),
            currency=str(session.get("currency") or contract.currency),
            stripe_metadata=dict(session.get("metadata") or {}),
        )
        db.session.add(payment)
        db.session.flush()
        audit(
            "payment.recorded_from_stripe",
            payment,
            actor_label="stripe",
            after={"checkout_session_id": session["id"]},
        )
    return True


def _mismatch(attempt: Attempt, session: dict[str, Any]) -> str | None:
    problems = []
    if session.get("amount_total") != attempt.total_amount:
        problems.append(f"amount {session.get('amount_total')} ≠ {attempt.total_amount}")
    if session.get("currency") != attempt.currency:
        problems.append(f"currency {session.get('currency')} ≠ {attempt.currency}")
    if _metadata_contract_id(session) != attempt.contract_id:
        problems.append(f"contract {_metadata_contract_id(session)} ≠ {attempt.contract_id}")
    return "; ".join(problems) or None


def _charge_details(attempt: Attempt, session: dict[str, Any]) -> dict[str, Any]:
    """What the session tells about the charge that the record lacks, as payment columns.

    Never calls Stripe: a webhook's session names its payment intent by id only;
    the success page retrieves it expanded, with the charge's receipt URL and
    method. Fetching it here would put a network round trip inside the
    contract's row lock.
    """
    intent = session.get("payment_intent")
    told: dict[str, Any] = {}
    if isinstance(intent, str):
        told["payment_intent_id"] = intent
    elif isinstance(intent, dict):
        told["payment_intent_id"] = intent["id"]
        charge = intent.get("latest_charge")
        if isinstance(charge, dict):
            told["receipt_url"] = charge.get("receipt_url")
            told["payment_method_type"] = (charge.get("payment_method_details") or {}).get("type")
    return {
        column: value
        for column, value in told.items()
        if value and value != getattr(attempt, column)
    }


def fulfil_checkout(session: dict[str, Any], *, source: str) -> str:
    """Settle a Checkout session Stripe reports; the one path for webhook and success page.

    Idempotent: whatever the number and order of calls, a paid session activates
    its contract once. Returns what happened, for the event log. The writes that
    activate a contract go to the database in one round trip.
    """
    attempt = _locked_attempt(session)
    if attempt is None:
        return "unrelated"
    charge = _charge_details(attempt, session)
    if attempt.status in _SETTLED:
        if charge:  # the success page may bring the receipt
            update_row(db.session, _PAYMENTS, attempt.id, **charge)
        return "already_fulfilled"
    if session.get("payment_status") != "paid":
        if session.get("status") == "complete" and _may_move(
            attempt.status, PaymentRecordStatus.PROCESSING
        ):
            update_row(
                db.session, _PAYMENTS, attempt.id, status=PaymentRecordStatus.PROCESSING, **charge
            )
            return "processing"
        return "not_paid"
    reason = _mismatch(attempt, session)
    if reason is not None:
        if attempt.review_reason is None:
            update_row(db.session, _PAYMENTS, attempt.id, review_reason=reason)
            audit(
                "payment.flagged",
                ("payments", attempt.id),
                actor_label=f"stripe:{source}",
                after={"reason": reason},
            )
        return "flagged"
    succeeded = check_transition(
        PAYMENT_RECORD_TRANSITIONS, attempt.status, PaymentRecordStatus.SUCCEEDED, "payment"
    )
    paid_at = utcnow()
    intent_id = charge.get("payment_intent_id", attempt.payment_intent_id)
    if attempt.contract_paid_at is not None:
        return _refund_duplicate(attempt, intent_id, paid_at, charge)
    active = check_transition(
        CONTRACT_TRANSITIONS, attempt.contract_status, ContractStatus.ACTIVE, "contract"
    )
    paid = _contract_payment_after(attempt.contract_payment_status, PaymentStatus.PAID)
    amount = format_money(attempt.total_amount, attempt.currency)
    with one_round_trip(db.session):
        update_row(db.session, _PAYMENTS, attempt.id, status=succeeded, paid_at=paid_at, **charge)
        update_row(
            db.session,
            _CONTRACTS,
            attempt.contract_id,
            status=active,
            payment_status=paid,
            paid_at=paid_at,
        )
        audit(
            "contract.paid",
            ("contracts", attempt.contract_id),
            actor_label=f"stripe:{source}",
            before={
                "status": attempt.contract_status.value,
                "payment_status": attempt.contract_payment_status.value,
            },
            after={
                "status": active.value,
                "payment_status": paid.value,
                "payment_id": attempt.id,
                "checkout_session_id": attempt.checkout_session_id,
                "payment_intent_id": intent_id,
            },
        )
        notify(
            Recipient(attempt.coach_id, attempt.coach_email),
            f"{attempt.student_name} paid {amount} for “{attempt.title}”. "
            "You can schedule sessions now.",
            link=url_for("contracts.detail", contract_id=attempt.contract_id),
            subject=f"Coachpact: “{attempt.title}” is paid",
        )
    return "fulfilled"


def _refund_duplicate(
    attempt: Attempt, intent_id: str | None, paid_at: datetime, charge: dict[str, Any]
) -> str:
    """A second paid session for an already paid contract goes back in full."""
    if intent_id is None:
        raise RetryLater("duplicate payment without a payment intent yet")
    refund = stripe_api.create_refund(
        {
            "payment_intent": intent_id,
            "reason": "duplicate",
            "metadata": {"contract_id": str(attempt.contract_id), "payment_id": str(attempt.id)},
        },
        stripe_api.idempotency_key("refund-duplicate", attempt.checkout_session_id),
    )
    update_row(
        db.session,
        _PAYMENTS,
        attempt.id,
        status=PaymentRecordStatus.REFUNDED,
        paid_at=paid_at,
        amount_refunded=refund.amount,
        **charge,
    )
    audit(
        "payment.duplicate_refunded",
        ("payments", attempt.id),
        actor_label="system",
        after={"refund_id": refund.id, "amount": refund.amount},
    )
    return "duplicate_refunded"


def confirm_return(contract_id: int, student: User, session_id: str) -> Payment | None:
    """The success page: ask Stripe about the session and fulfil it if it is paid.

    A session id that is not one of this contract's attempts activates nothing.
    """
    contract = contract_for_student(contract_id, student)
    payment = _payment_by(checkout_session_id=session_id, contract_id=contract.id)
    if payment is None:
        return None
    session = stripe_api.retrieve_checkout_session(session_id)
    if session is None:
        return None
    fulfil_checkout(session.to_dict(), source="success_page")
    # Fulfilment writes with plain statements: what the page shows is read afresh.
    db.session.expire_all()
    return payment


# --- Stripe events --------------------------------------------------------------


def _fail_session(session: dict[str, Any]) -> str:
    attempt = _locked_attempt(session)
    if attempt is None:
        return "unrelated"
    if not _may_move(attempt.status, PaymentRecordStatus.FAILED):
        return "stale"
    reason = "The bank debit did not go through."
    update_row(
        db.session,
        _PAYMENTS,
        attempt.id,
        status=PaymentRecordStatus.FAILED,
        failure_reason=reason,
    )
    if attempt.contract_paid_at is None:
        failed = _contract_payment_after(attempt.contract_payment_status, PaymentStatus.FAILED)
        if failed is not attempt.contract_payment_status:
            update_row(db.session, _CONTRACTS, attempt.contract_id, payment_status=failed)
    audit(
        "payment.failed", ("payments", attempt.id), actor_label="stripe", after={"reason": reason}
    )
    return "failed"


def _expire_session(session: dict[str, Any]) -> str:
    attempt = _locked_attempt(session)
    if attempt is None:
        return "unrelated"
    if not _may_move(attempt.status, PaymentRecordStatus.EXPIRED):
        return "stale"
    update_row(db.session, _PAYMENTS, attempt.id, status=PaymentRecordStatus.EXPIRED)
    return "expired"


def _intent_failed(intent: dict[str, Any]) -> str:
    contract_id = _metadata_contract_id(intent)
    contract = lock_contract(contract_id) if contract_id else None
    if contract is None:
        return "unrelated"
    payment = _payment_by(payment_intent_id=intent["id"]) or db.session.scalar(
        select(Payment)
        .where(
            Payment.contract_id == contract.id,
            Payment.status.in_([PaymentRecordStatus.PENDING, PaymentRecordStatus.FAILED]),
        )
        .order_by(Payment.created_at.desc(), Payment.id.desc())
    )
    if payment is None:
        raise RetryLater("payment_intent.payment_failed before its Checkout attempt is known")
    error = intent.get("last_payment_error") or {}
    payment.failure_reason = (error.get("message") or "The payment failed.")[:500]
    payment.payment_intent_id = payment.payment_intent_id or intent["id"]
    _move_payment(payment, PaymentRecordStatus.FAILED)
    if contract.paid_at is None:
        _set_contract_payment(contract, PaymentStatus.FAILED)
    audit(
        "payment.failed",
        payment,
        actor_label="stripe",
        after={"reason": payment.failure_reason, "code": error.get("code")},
    )
    return "failed"


def _payment_by_intent(intent_id: str | None, what: str) -> tuple[Payment, Contract]:
    payment = _payment_by(payment_intent_id=intent_id) if intent_id else None
    if payment is None:
        # The checkout.session.completed that names this intent may not be here yet.
        raise RetryLater(f"{what} for a payment intent we do not know yet")
    contract = lock_contract(payment.contract_id)
    assert contract is not None
    return payment, contract


def _charge_refunded(charge: dict[str, Any]) -> str:
    payment, contract = _payment_by_intent(charge.get("payment_intent"), "charge.refunded")
    refunded = int(charge.get("amount_refunded") or 0)
    if refunded <= payment.amount_refunded:
        return "stale"
    full = refunded >= payment.amount
    before = {"payment_status": contract.payment_status.value, "status": contract.status.value}
    payment.amount_refunded = refunded
    _move_payment(
        payment, PaymentRecordStatus.REFUNDED if full else PaymentRecordStatus.PARTIALLY_REFUNDED
    )
    if payment.paid_at is not None and contract.payment_status in (
        PaymentStatus.PAID,
        PaymentStatus.PARTIALLY_REFUNDED,
    ):
        _set_contract_payment(
            contract, PaymentStatus.REFUNDED if full else PaymentStatus.PARTIALLY_REFUNDED
        )
        if full and ContractStatus.REFUNDED in CONTRACT_TRANSITIONS.get(contract.status, ()):
            contract.status = ContractStatus.REFUNDED
            cancel_open_sessions(contract, "the contract was refunded in full.")
    audit(
        "contract.refund_recorded",
        contract,
        actor_label="stripe",
        before=before,
        after={
            "payment_status": contract.payment_status.value,
            "status": contract.status.value,
            "amount_refunded": refunded,
        },
    )
    return "refunded" if full else "partially_refunded"


def _dispute_created(dispute: dict[str, Any]) -> str:
    payment, contract = _payment_by_intent(dispute.get("payment_intent"), "charge.dispute.created")
    if contract.status is ContractStatus.DISPUTED:
        return "stale"
    before = {"payment_status": contract.payment_status.value, "status": contract.status.value}
    contract.status = check_transition(
        CONTRACT_TRANSITIONS, contract.status, ContractStatus.DISPUTED, "contract"
    )
    _set_contract_payment(contract, PaymentStatus.DISPUTED)
    audit(
        "contract.disputed",
        contract,
        actor_label="stripe",
        before=before,
        after={
            "dispute_id": dispute.get("id"),
            "reason": dispute.get("reason"),
            "payment_id": payment.id,
        },
    )
    return "disputed"


EVENT_HANDLERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "checkout.session.completed": lambda s: fulfil_checkout(s, source="webhook"),
    "checkout.session.async_payment_succeeded": lambda s: fulfil_checkout(s, source="webhook"),
    "checkout.session.async_payment_failed": _fail_session,
    "checkout.session.expired": _expire_session,
    "payment_intent.payment_failed": _intent_failed,
    "charge.refunded": _charge_refunded,
    "charge.dispute.created": _dispute_created,
}


_EVENTS = table_of(WebhookEvent)
_RECORD_EVENT = insert(_EVENTS).inline()  # no RETURNING: the id is never read
_EVENT_OUTCOME = (
    update(_EVENTS)
    .where(_EVENTS.c.stripe_event_id == bindparam("event_id"))
    .values(outcome=bindparam("outcome"), processed_at=bindparam("processed_at"))
)


def process_event(event: dict[str, Any]) -> str:
    """Record a verified Stripe event and act on it, in the caller's transaction.

    The event row goes in first: its unique id makes a redelivery a no-op, also
    when several processes receive the same event at once (the database lets one
    insert win). Raises RetryLater when the event cannot be matched yet.
    Plain INSERT/UPDATE statements rather than the ORM's unit of work: this is
    the hottest path Stripe drives.
    """
    handler = EVENT_HANDLERS.get(event["type"])
    try:
        db.session.execute(
            _RECORD_EVENT,
            {"stripe_event_id": event["id"], "type": event["type"], "received_at": utcnow()},
        )
    except IntegrityError:
        db.session.rollback()
        return "duplicate"
    outcome = "ignored" if handler is None else handler(event["data"]["object"])
    db.session.execute(
        _EVENT_OUTCOME,
        {"event_id": event["id"], "outcome": outcome, "processed_at": utcnow()},
    )
    return outcome


def reconcile(since: datetime) -> dict[str, int]:
    """Process every event since `since` that the webhook missed; safe to run any time."""
    events = list(
        stripe_api.list_events({"created": {"gte": int(since.timestamp())}, "limit": 100})
    )
    counts: dict[str, int] = {}
    for event in sorted(events, key=lambda e: (e["created"], e["id"])):
        if event["type"] not in EVENT_HANDLERS:
            continue
        try:
            outcome = process_event(event)
            db.session.commit()
        except RetryLater:
            db.session.rollback()
            outcome = "retry_later"
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts
