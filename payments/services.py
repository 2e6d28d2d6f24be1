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
from typing import Any

from flask import abort, url_for
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

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
from db_types import lock_sqlite, one_round_trip, table_of, utcnow, write_row
from extensions import db
from notifications.services import notify
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


def _set_contract_payment(contract: Contract, status: PaymentStatus) -> None:
    if contract.payment_status is not status:
        contract.payment_status = check_transition(
            PAYMENT_STATUS_TRANSITIONS, contract.payment_status, status, "payment"
        )


def _may_move(payment: Payment, status: PaymentRecordStatus) -> bool:
    """Whether the table lets the record move to `status`.

    False for a late or reordered event: the record already knows better.
    """
    return status is not payment.status and status in PAYMENT_RECORD_TRANSITIONS.get(
        payment.status, frozenset()
    )


def _move_payment(payment: Payment, status: PaymentRecordStatus) -> bool:
    """Move a payment record if the table allows it; False when it is already past that."""
    if not _may_move(payment, status):
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


# Built once (the webhook runs it for every Checkout event): the payment of a
# Checkout session joined to its contract, whose row it locks, with both parties.
_ATTEMPT_AND_LOCKED_CONTRACT = (
    select(Payment, Contract)
    .join(Contract, Payment.contract_id == Contract.id)
    .where(Payment.checkout_session_id == bindparam("session_id"))
    .options(
        joinedload(Contract.coach, innerjoin=True),
        joinedload(Contract.student, innerjoin=True),
    )
    .with_for_update(of=Contract)
    .execution_options(populate_existing=True)
)


def _payment_for_session(session: dict[str, Any]) -> tuple[Payment | None, Contract | None]:
    """The payment record and locked contract a Checkout session belongs to.

    One statement in the usual case: the payment joined to its contract, the
    contract row locked, its coach and student loaded for the notification.
    A session with no record of ours yet (the pay request crashed after Stripe
    answered, say) whose metadata names a real contract gets a record built from
    what Stripe reports, so the payment is never dropped.
    """
    lock_sqlite(db.session, Payment.checkout_session_id, session["id"])
    row = db.session.execute(_ATTEMPT_AND_LOCKED_CONTRACT, {"session_id": session["id"]}).first()
    if row is not None:
        return row.Payment, row.Contract
    contract_id = _metadata_contract_id(session)
    contract = lock_contract(contract_id) if contract_id is not None else None
    if contract is None:
        return None, None
    # Under the contract's lock: a concurrent delivery may have recorded it meanwhile.
    payment = _payment_by(checkout_session_id=session["id"])
    if payment is None:
        payment = Payment(
            contract_id=contract.id,
            checkout_session_id=session["id"],
            customer_id=session.get("customer")
            if isinstance(session.get("customer"), str)
            else None,
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
    return payment, contract


def _mismatch(contract: Contract, payment: Payment, session: dict[str, Any]) -> str | None:
    problems = []
    if session.get("amount_total") != contract.total_amount:
        problems.append(f"amount {session.get('amount_total')} ≠ {contract.total_amount}")
    if session.get("currency") != contract.currency:
        problems.append(f"currency {session.get('currency')} ≠ {contract.currency}")
    if _metadata_contract_id(session) != contract.id or payment.contract_id != contract.id:
        problems.append(f"contract {_metadata_contract_id(session)} ≠ {contract.id}")
    return "; ".join(problems) or None


def _charge_details(payment: Payment, session: dict[str, Any]) -> dict[str, Any]:
    """What the session tells about the charge, as payment columns; never calls Stripe.

    A webhook's session names its payment intent by id only; the success page
    retrieves it expanded, with the charge's receipt URL and method. Fetching it
    here would put a network round trip inside the contract's row lock.
    """
    intent = session.get("payment_intent")
    if isinstance(intent, str):
        return {"payment_intent_id": payment.payment_intent_id or intent}
    if not isinstance(intent, dict):
        return {}
    details: dict[str, Any] = {"payment_intent_id": intent["id"]}
    charge = intent.get("latest_charge")
    if isinstance(charge, dict):
        method = (charge.get("payment_method_details") or {}).get("type")
        details["receipt_url"] = charge.get("receipt_url") or payment.receipt_url
        details["payment_method_type"] = method or payment.payment_method_type
    return details


def fulfil_checkout(session: dict[str, Any], *, source: str) -> str:
    """Settle a Checkout session Stripe reports; the one path for webhook and success page.

    Idempotent: whatever the number and order of calls, a paid session activates
    its contract once. Returns what happened, for the event log. The hottest
    path Stripe drives: rows are written with plain UPDATEs, and the writes that
    activate a contract go to the database in one round trip.
    """
    payment, contract = _payment_for_session(session)
    if payment is None or contract is None:
        return "unrelated"
    charge = _charge_details(payment, session)
    if payment.status in (
        PaymentRecordStatus.SUCCEEDED,
        PaymentRecordStatus.REFUNDED,
        PaymentRecordStatus.PARTIALLY_REFUNDED,
    ):
        write_row(db.session, payment, **charge)  # the success page may bring the receipt
        return "already_fulfilled"
    if session.get("payment_status") != "paid":
        if session.get("status") == "complete" and _may_move(
            payment, PaymentRecordStatus.PROCESSING
        ):
            write_row(db.session, payment, status=PaymentRecordStatus.PROCESSING, **charge)
            return "processing"
        return "not_paid"
    reason = _mismatch(contract, payment, session)
    if reason is not None:
        if payment.review_reason is None:
            write_row(db.session, payment, review_reason=reason)
            audit(
                "payment.flagged", payment, actor_label=f"stripe:{source}", after={"reason": reason}
            )
        return "flagged"
    succeeded = check_transition(
        PAYMENT_RECORD_TRANSITIONS, payment.status, PaymentRecordStatus.SUCCEEDED, "payment"
    )
    paid_at = utcnow()
    if contract.paid_at is not None:
        write_row(db.session, payment, status=succeeded, paid_at=paid_at, **charge)
        return _refund_duplicate(payment, contract)
    before = {"status": contract.status.value, "payment_status": contract.payment_status.value}
    active = check_transition(
        CONTRACT_TRANSITIONS, contract.status, ContractStatus.ACTIVE, "contract"
    )
    paid = check_transition(
        PAYMENT_STATUS_TRANSITIONS, contract.payment_status, PaymentStatus.PAID, "payment"
    )
    with one_round_trip(db.session):
        write_row(db.session, payment, status=succeeded, paid_at=paid_at, **charge)
        write_row(db.session, contract, status=active, payment_status=paid, paid_at=paid_at)
        audit(
            "contract.paid",
            contract,
            actor_label=f"stripe:{source}",
            before=before,
            after={
                "status": active.value,
                "payment_status": paid.value,
                "payment_id": payment.id,
                "checkout_session_id": payment.checkout_session_id,
                "payment_intent_id": payment.payment_intent_id,
            },
        )
        notify(
            contract.coach,
            f"{contract.student.name} paid "
            f"{format_money(contract.total_amount, contract.currency)} "
            f"for “{contract.title}”. You can schedule sessions now.",
            link=url_for("contracts.detail", contract_id=contract.id),
            subject=f"Coachpact: “{contract.title}” is paid",
        )
    return "fulfilled"


def _refund_duplicate(payment: Payment, contract: Contract) -> str:
    """A second paid session for an already paid contract goes back in full."""
    if payment.payment_intent_id is None:
        raise RetryLater("duplicate payment without a payment intent yet")
    refund = stripe_api.create_refund(
        {
            "payment_intent": payment.payment_intent_id,
            "reason": "duplicate",
            "metadata": {"contract_id": str(contract.id), "payment_id": str(payment.id)},
        },
        stripe_api.idempotency_key("refund-duplicate", payment.checkout_session_id),
    )
    write_row(
        db.session, payment, status=PaymentRecordStatus.REFUNDED, amount_refunded=refund.amount
    )
    audit(
        "payment.duplicate_refunded",
        payment,
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
    db.session.flush()
    return payment


# --- Stripe events --------------------------------------------------------------


def _fail_session(session: dict[str, Any]) -> str:
    payment, contract = _payment_for_session(session)
    if payment is None or contract is None:
        return "unrelated"
    if not _move_payment(payment, PaymentRecordStatus.FAILED):
        return "stale"
    payment.failure_reason = "The bank debit did not go through."
    if contract.paid_at is None:
        _set_contract_payment(contract, PaymentStatus.FAILED)
    audit("payment.failed", payment, actor_label="stripe", after={"reason": payment.failure_reason})
    return "failed"


def _expire_session(session: dict[str, Any]) -> str:
    payment, contract = _payment_for_session(session)
    if payment is None or contract is None:
        return "unrelated"
    return "expired" if _move_payment(payment, PaymentRecordStatus.EXPIRED) else "stale"


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
