"""Paying a contract: the Checkout session, and the student's return from it."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import abort, url_for
from sqlalchemy import select

import clock
from accounts.models import User
from audit.services import record as audit
from contracts.models import Contract, ContractStatus, PaymentStatus
from contracts.services import lock_contract
from extensions import db
from payments import stripe_api
from payments.fulfilment import fulfil_checkout
from payments.models import Payment, PaymentRecordStatus, StripeCustomer
from payments.records import payment_by, payments_of

# An open Checkout session is reused only while it has this long left to live.
REUSE_MARGIN = timedelta(minutes=10)
CHECKOUT_LIFETIME = timedelta(hours=2)
ON_ITS_WAY = (
    "A payment for this contract is on its way (a bank debit takes a few days); "
    "nothing more to pay now."
)


class NotPayable(Exception):
    """The contract cannot be paid now (already paid, cancelled, ...); message for the user."""


def contract_for_student(contract_id: int, student: User, *, lock: bool = False) -> Contract:
    """The contract if `student` is its student; to anyone else it does not exist (404)."""
    contract = lock_contract(contract_id) if lock else db.session.get(Contract, contract_id)
    if contract is None or contract.student_id != student.id:
        abort(404)
    return contract


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


def _reusable(attempts: list[Payment], moment: datetime) -> Payment | None:
    for payment in attempts:
        if (
            payment.status in (PaymentRecordStatus.PENDING, PaymentRecordStatus.FAILED)
            and payment.checkout_url
            and payment.expires_at
            and payment.expires_at > moment + REUSE_MARGIN
        ):
            return payment
    return None


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
    moment = clock.now()
    attempts = payments_of(contract)
    if any(payment.status is PaymentRecordStatus.PROCESSING for payment in attempts):
        # The debit settles in days; a second session now would charge the student twice.
        raise NotPayable(ON_ITS_WAY)
    reusable = _reusable(attempts, moment)
    if reusable is not None:
        return reusable.checkout_url or ""
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
            "expires_at": int((moment + CHECKOUT_LIFETIME).timestamp()),
        },
        stripe_api.idempotency_key(
            "checkout", contract.id, int(contract.created_at.timestamp()), attempt
        ),
    )
    if session.amount_total != contract.total_amount or session.currency != contract.currency:
        raise NotPayable("The payment provider quoted a different amount. Nothing was charged.")
    replayed = payment_by(checkout_session_id=session.id)
    if replayed is not None:
        return replayed.checkout_url or session.url or ""
    payment = Payment(
        contract_id=contract.id,
        checkout_session_id=session.id,
        customer_id=session.customer if isinstance(session.customer, str) else None,
        amount=contract.total_amount,
        currency=contract.currency,
        checkout_url=session.url,
        expires_at=datetime.fromtimestamp(session.expires_at, moment.tzinfo),
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


def confirm_return(contract_id: int, student: User, session_id: str) -> Payment | None:
    """The success page: ask Stripe about the session and fulfil it if it is paid.

    The same fulfilment the event pipeline runs, synchronously, so the student
    sees the result at once. A session id that is not one of this contract's
    attempts activates nothing.
    """
    contract = contract_for_student(contract_id, student)
    if payment_by(checkout_session_id=session_id, contract_id=contract.id) is None:
        return None
    session = stripe_api.retrieve_checkout_session(session_id)
    if session is None:
        return None
    fulfil_checkout(session.to_dict(), source="success_page")
    return payment_by(checkout_session_id=session_id)
