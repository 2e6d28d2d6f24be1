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
from extensions import db
from payments.models import (
    Dispute,
    Payment,
    PaymentRecordStatus,
    ReviewResolution,
    VoidReason,
)
from payments.records import lock_with_contract, move
from payments.refunds import live_refunded, refund_void_payment
from payments.settle import expected_amount, settle


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
    payment, contract = lock_with_contract(Payment, payment_id)
    if not payment.held_for_review:
        raise ReviewRefused("This payment was decided already; nothing changed.")
    return payment, contract


def _decide(payment: Payment, admin: User, resolution: ReviewResolution, note: str) -> None:
    payment.review_resolution = resolution
    payment.review_note = note.strip() or None
    payment.reviewed_by_id = admin.id
    payment.reviewed_at = clock.now()
    audit(
        f"payment.review_{resolution.value}",
        payment,
        actor=admin,
        before={"review_reason": payment.review_reason},
        after={"resolution": resolution.value, "note": payment.review_note},
    )


def shortfall(payment: Payment, contract: Contract) -> int:
    """What a held payment brought less than it should have (0 when it brought enough)."""
    expected = expected_amount(contract, payment.stripe_metadata)
    return max((expected or 0) - payment.amount, 0)


def accept_held_payment(
    payment_id: int, admin: User, note: str, *, waive_shortfall: bool = False
) -> Payment:
    """Accept what Stripe reported: the payment counts for what arrived (`payments.settle`).

    A short payment leaves the rest to pay, unless the admin writes the shortfall
    off (`waive_shortfall`), which is recorded and shown as a write-off. A plan's
    deposit starts its plan; an instalment is paid.
    """
    payment, contract = _locked_held(payment_id)
    if contract.paid_at is not None and payment.instalment_id is None and not str(
        (payment.stripe_metadata or {}).get("instalment_id", "")
    ).isdigit():
        raise ReviewRefused("The contract is paid already: refund this payment instead.")
    if db.session.scalar(select(Dispute.id).where(Dispute.payment_id == payment.id)):
        # The bank took it up: what it decides is what this payment is worth.
        raise ReviewRefused(
            "The student's bank opened a dispute on this payment; it cannot be accepted. "
            "See the dispute, and refund or close it once the bank decides."
        )
    if live_refunded(payment.id):
        # Money of it went back already (a refund made in the Stripe Dashboard): counting
        # it would count money the student has back.
        raise ReviewRefused(
            "Some of this payment was refunded outside Coachpact (in the Stripe Dashboard); "
            "it cannot be accepted. Refund the rest of it instead."
        )
    missing = shortfall(payment, contract)
    if waive_shortfall and not missing:
        raise ReviewRefused("This payment brought all it should; there is nothing to write off.")
    _decide(payment, admin, ReviewResolution.ACCEPTED, note)
    settle(
        payment,
        contract,
        actor=admin,
        waive=missing if waive_shortfall else 0,
        details={"review": "accepted"},
    )
    lifecycle.tell_parties(
        contract, f"The payment for “{contract.title}” was checked and accepted."
    )
    return payment


def refund_held_payment(payment_id: int, admin: User, note: str) -> Payment:
    """Refuse a held payment: it goes back to the student in full, by a job after commit
    (what a refund made in the Stripe Dashboard did not give back already)."""
    payment, contract = _locked_held(payment_id)
    if payment.payment_intent_id is None:
        raise ReviewRefused("Stripe has not named this payment's intent yet; try again later.")
    _decide(payment, admin, ReviewResolution.REFUNDED, note)
    move(payment, PaymentRecordStatus.SUCCEEDED)  # the money was taken either way
    payment.paid_at = payment.reviewed_at
    payment.failure_reason = None
    payment.void_reason = VoidReason.REVIEW
    refund_void_payment(payment)
    lifecycle.tell_parties(
        contract,
        f"A payment for “{contract.title}” could not be accepted and is being refunded in full.",
    )
    return payment
