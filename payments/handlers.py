"""What each Stripe event type does to payments: the handlers payments registers in
the inbox's table (`payments.inbox.table.register`), from `payments.init_app`."""

from __future__ import annotations

import functools
from typing import Any

from flask import url_for
from sqlalchemy import select

from audit.services import record as audit
from contracts import lifecycle
from contracts.models import Contract
from contracts.money import format_money
from contracts.services import lock_contract
from extensions import db
from notifications.services import notify
from payments import plans, refunds
from payments.checkout.fulfil import fulfil_checkout, locked_attempt, metadata_contract_id
from payments.inbox.table import Handler, RetryLater, register
from payments.models import Payment, PaymentRecordStatus
from payments.records import move_if_allowed, payment_by
from payments.refunds.disputes import mirror_dispute
from scheduling import holds


def _fail_session(session: dict[str, Any]) -> str:
    found = locked_attempt(session)
    if found is None:
        return "unrelated"
    payment, contract = found
    was_processing = payment.status is PaymentRecordStatus.PROCESSING
    if not move_if_allowed(payment, PaymentRecordStatus.FAILED):
        return "stale"
    payment.failure_reason = "The bank debit did not go through."
    holds.release_for_payment(payment.id, "failed")
    unpaid = lifecycle.mark_payment_failed(contract, actor_label="stripe",
                                           reason=payment.failure_reason)
    audit("payment.failed", payment, actor_label="stripe", after={"reason": payment.failure_reason})
    if was_processing and unpaid:
        _tell_debit_failed(payment, contract)
    return "failed"


def _tell_debit_failed(payment: Payment, contract: Contract) -> None:
    """The student and the coach hear that a bank debit failed after "Processing…".

    Once: called only by the event that moves the payment from `processing` to `failed`
    (the session's or its intent's, whichever comes first); the other, or a replay, finds
    it failed. A contract paid another way meanwhile asks nothing of anyone.
    """
    amount = format_money(payment.amount, payment.currency)
    notify(contract.student,
           f"Your bank debit of {amount} for “{contract.title}” did not go through. "
           "Nothing was taken. You can pay another way, by card for instance, on the "
           "contract's pay page.",
           link=url_for("payments.pay", contract_id=contract.id),
           subject=f"Coachpact: your bank debit for “{contract.title}” did not go through")
    notify(contract.coach,
           f"{contract.student.name}'s bank debit of {amount} for “{contract.title}” "
           "did not go through. They have been asked to pay another way; there is nothing "
           "for you to do.",
           link=url_for("contracts.detail", contract_id=contract.id))


def _expire_session(session: dict[str, Any]) -> str:
    found = locked_attempt(session)
    if found is None:
        return "unrelated"
    payment, _ = found
    # The session can no longer be paid: the time it held is free again at once.
    holds.release_for_payment(payment.id, "expired")
    return "expired" if move_if_allowed(payment, PaymentRecordStatus.EXPIRED) else "stale"


def _intent_failed(intent: dict[str, Any]) -> str:
    if plans.is_instalment_charge(intent):
        return plans.intent_failed(intent)
    contract_id = metadata_contract_id(intent)
    contract = lock_contract(contract_id) if contract_id else None
    if contract is None:
        return "unrelated"
    payment = payment_by(payment_intent_id=intent["id"]) or db.session.scalar(
        select(Payment)
        .where(
            Payment.contract_id == contract.id,
            Payment.status.in_([PaymentRecordStatus.PENDING, PaymentRecordStatus.FAILED]),
        )
        .order_by(Payment.created_at.desc(), Payment.id.desc())
    )
    if payment is None:
        raise RetryLater("payment_intent.payment_failed before its Checkout attempt is known")
    payment.payment_intent_id = payment.payment_intent_id or intent["id"]
    was_processing = payment.status is PaymentRecordStatus.PROCESSING
    if not move_if_allowed(payment, PaymentRecordStatus.FAILED) and (
        payment.status is not PaymentRecordStatus.FAILED
    ):
        return "stale"  # a later attempt of the same Checkout succeeded: its failure is gone
    error = intent.get("last_payment_error") or {}
    payment.failure_reason = (error.get("message") or "The payment failed.")[:500]
    # The method that failed (a bank debit, a card): the pages name it.
    payment.payment_method_type = (
        error.get("payment_method_type") or (error.get("payment_method") or {}).get("type")
        or payment.payment_method_type
    )
    unpaid = lifecycle.mark_payment_failed(contract, actor_label="stripe",
                                           reason=payment.failure_reason)
    audit(
        "payment.failed",
        payment,
        actor_label="stripe",
        after={"reason": payment.failure_reason, "code": error.get("code")},
    )
    if was_processing and unpaid:  # a card declined in Checkout is seen there, live
        _tell_debit_failed(payment, contract)
    return "failed"


def _matched(handler: Handler) -> Handler:
    """A handler whose payment may not be known yet: retried until it is."""

    @functools.wraps(handler)
    def run(obj: dict[str, Any]) -> str:
        try:
            return handler(obj)
        except LookupError as exc:
            # The checkout.session.completed that names this intent may not be here yet.
            raise RetryLater(str(exc)) from None

    return run


# Each handler is made once, at import: `register` tells a repeated registration (the
# same function, from a second create_app) from a conflicting one by identity.


def _fulfil_session(session: dict[str, Any]) -> str:
    return fulfil_checkout(session, source="webhook")


@_matched
def _instalment_paid(intent: dict[str, Any]) -> str:
    return plans.record_intent_paid(intent)


@_matched
def _charge_refunded(charge: dict[str, Any]) -> str:
    return refunds.mirror_charge(charge)


@_matched
def _mirror_refund(refund: dict[str, Any]) -> str:
    return refunds.mirror(refund, actor_label="stripe")


@_matched
def _mirror_dispute(dispute: dict[str, Any]) -> str:
    return mirror_dispute(dispute)


def register_payment_handlers() -> None:
    """Put the types payments applies in the table (`payments.init_app`; repeating is harmless)."""
    register("checkout.session.completed", _fulfil_session)
    register("checkout.session.async_payment_succeeded", _fulfil_session)
    register("checkout.session.async_payment_failed", _fail_session)
    register("checkout.session.expired", _expire_session)
    register("payment_intent.payment_failed", _intent_failed)
    register("payment_intent.succeeded", _instalment_paid)
    register("charge.refunded", _charge_refunded)
    register("refund.created", _mirror_refund)
    register("refund.updated", _mirror_refund)
    register("refund.failed", _mirror_refund)
    register("charge.refund.updated", _mirror_refund)
    register("charge.dispute.created", _mirror_dispute)
    register("charge.dispute.updated", _mirror_dispute)
    register("charge.dispute.closed", _mirror_dispute)


