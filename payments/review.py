"""The review queue: payments whose amount, currency or contract did not match.

Held payments activate nothing until an admin decides: accept (the contract is
paid, once) or refund in full (through Stripe, by a job after commit). Each
decision is audited and both parties are told.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import joinedload

import clock
from accounts.models import User
from audit.services import record as audit
from contracts import lifecycle
from contracts.models import Contract
from contracts.services import lock_contract
from extensions import db
from payments.fulfilment import void_payment
from payments.invoices import issue_invoice
from payments.models import Payment, PaymentRecordStatus, ReviewResolution, VoidReason
from payments.records import move, payment_by


class ReviewRefused(Exception):
    """The decision cannot be taken (already decided, contract paid, ...); for the admin."""


def held_payments() -> list[Payment]:
    """Payments waiting for a decision, oldest first."""
    return list(
        db.session.scalars(
            select(Payment)
            .where(Payment.held_for_review)
            # The queue shows each payment's contract and parties: loaded with the rows.
            .options(
                joinedload(Payment.contract).joinedload(Contract.student),
                joinedload(Payment.contract).joinedload(Contract.coach),
            )
            .order_by(Payment.created_at, Payment.id)
        )
    )


def _locked_held(payment_id: int) -> tuple[Payment, Contract]:
    found = db.session.get(Payment, payment_id)
    if found is None:
        raise LookupError(payment_id)
    contract = lock_contract(found.contract_id)
    payment = payment_by(id=payment_id)  # fresh, under the contract's lock
    assert contract is not None and payment is not None
    if not payment.held_for_review:
        raise ReviewRefused("This payment was decided already; nothing changed.")
    return payment, contract


def _decide(payment: Payment, admin: User, resolution: ReviewResolution, note: str) -> None:
    move(payment, PaymentRecordStatus.SUCCEEDED)  # the money was taken either way
    payment.paid_at = clock.now()
    payment.review_resolution = resolution
    payment.review_note = note.strip() or None
    payment.reviewed_by_id = admin.id
    payment.reviewed_at = payment.paid_at
    audit(
        f"payment.review_{resolution.value}",
        payment,
        actor=admin,
        before={"review_reason": payment.review_reason},
        after={"resolution": resolution.value, "note": payment.review_note},
    )


def accept_held_payment(payment_id: int, admin: User, note: str) -> Payment:
    """Accept what Stripe reported: the contract is activated, once."""
    payment, contract = _locked_held(payment_id)
    if contract.paid_at is not None:
        raise ReviewRefused("The contract is paid already: refund this payment instead.")
    _decide(payment, admin, ReviewResolution.ACCEPTED, note)
    lifecycle.mark_paid(
        contract,
        paid_at=payment.paid_at or clock.now(),
        actor=admin,
        details={"payment_id": payment.id, "review": "accepted"},
    )
    issue_invoice(payment)
    lifecycle.tell_parties(
        contract, f"The payment for “{contract.title}” was checked and accepted."
    )
    return payment


def refund_held_payment(payment_id: int, admin: User, note: str) -> Payment:
    """Refuse a held payment: it goes back to the student in full, by a job after commit."""
    payment, contract = _locked_held(payment_id)
    if payment.payment_intent_id is None:
        raise ReviewRefused("Stripe has not named this payment's intent yet; try again later.")
    _decide(payment, admin, ReviewResolution.REFUNDED, note)
    void_payment(payment, VoidReason.REVIEW)
    lifecycle.tell_parties(
        contract,
        f"A payment for “{contract.title}” could not be accepted and is being refunded in full.",
    )
    return payment
