"""Fulfilment: the one idempotent function that settles a Checkout session.

The event pipeline and the success page both call `fulfil_checkout`. It locks
the contract's row first, so whatever the number, order and concurrency of
calls, a paid session activates its contract once (the database decides, not
process memory). Stripe is never called while the lock is held: a second
payment for a paid contract is refunded by a job after commit.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from audit.services import record as audit
from contracts import lifecycle
from contracts.models import Contract, ContractStatus
from contracts.money import format_money
from contracts.services import lock_contract
from extensions import db
from payments.models import Payment, PaymentRecordStatus
from payments.records import move_if_allowed, payment_by
from payments.settle import expected_amount, settle

_SETTLED = (
    PaymentRecordStatus.SUCCEEDED,
    PaymentRecordStatus.REFUNDED,
    PaymentRecordStatus.PARTIALLY_REFUNDED,
)


def metadata_contract_id(stripe_object: dict[str, Any]) -> int | None:
    """The contract id a Stripe object carries in its metadata (or client reference)."""
    raw = (stripe_object.get("metadata") or {}).get("contract_id") or stripe_object.get(
        "client_reference_id"
    )
    try:
        return int(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None


def locked_attempt(session: dict[str, Any]) -> tuple[Payment, Contract] | None:
    """The attempt a Checkout session belongs to, read after its contract's row is locked.

    A session with no record of ours yet (the pay request crashed after Stripe
    answered, say) whose metadata names a real contract gets a record built from
    what Stripe reports, so the payment is never dropped. None when the session
    is not ours.
    """
    contract_id = db.session.scalar(
        select(Payment.contract_id).where(Payment.checkout_session_id == session["id"])
    )
    if contract_id is None:
        contract_id = metadata_contract_id(session)
    contract = lock_contract(contract_id) if contract_id is not None else None
    if contract is None:
        return None
    # Read under the lock: a concurrent call may have recorded or settled it meanwhile.
    payment = payment_by(checkout_session_id=session["id"])
    if payment is None:
        payment = _record_attempt_from_stripe(session, contract)
    return payment, contract


def _record_attempt_from_stripe(session: dict[str, Any], contract: Contract) -> Payment:
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
    return payment


def _mismatch(contract: Contract, session: dict[str, Any]) -> str | None:
    """What Stripe reports that does not match the contract, or None."""
    problems = []
    expected = expected_amount(contract, session.get("metadata"))
    currency = session.get("currency")
    if session.get("amount_total") != expected:
        reported = session.get("amount_total")
        problems.append(
            f"Stripe reported {_money_or_raw(reported, currency)}; the contract expects "
            + (f"{format_money(expected, contract.currency)}." if expected is not None
               else "no such payment (its plan or instalment is not valid).")
        )
    if currency != contract.currency:
        problems.append(
            f"Stripe reported the currency {str(currency).upper()}; the contract is in "
            f"{contract.currency.upper()}."
        )
    if metadata_contract_id(session) != contract.id:
        named = metadata_contract_id(session)
        problems.append(
            f"The Checkout session names contract #{named}, not #{contract.id}."
            if named is not None else
            f"The Checkout session names no contract; this is contract #{contract.id}."
        )
    return " ".join(problems) or None


def _money_or_raw(amount: Any, currency: Any) -> str:
    """An amount Stripe reported, formatted in its currency when both can be read."""
    try:
        return format_money(int(amount), str(currency))
    except (TypeError, ValueError):
        return f"{amount} {currency}"


def _note_charge(payment: Payment, session: dict[str, Any]) -> None:
    """Copy what the session tells about the charge (intent, charge, receipt) onto the record.

    A webhook's session names its payment intent by id only; the success page
    retrieves it expanded, with the charge's receipt and method. Stripe is not
    asked for more here: that would be a network call under the contract's lock.
    """
    intent = session.get("payment_intent")
    if isinstance(intent, str):
        payment.payment_intent_id = intent
    elif isinstance(intent, dict):
        payment.payment_intent_id = intent["id"]
        charge = intent.get("latest_charge")
        if isinstance(charge, dict):
            payment.charge_id = charge.get("id") or payment.charge_id
            payment.receipt_url = charge.get("receipt_url") or payment.receipt_url
            method = (charge.get("payment_method_details") or {}).get("type")
            payment.payment_method_type = method or payment.payment_method_type


def fulfil_checkout(session: dict[str, Any], *, source: str) -> str:
    """Settle a Checkout session Stripe reports; returns what happened, for the event log.

    Idempotent: whatever the number and order of calls, a paid session activates
    its contract once. What Stripe reports must match the contract; a mismatch
    is held for an admin and activates nothing.
    """
    found = locked_attempt(session)
    if found is None:
        return "unrelated"
    payment, contract = found
    _note_charge(payment, session)
    if payment.status in _SETTLED:
        return "already_fulfilled"
    if session.get("payment_status") != "paid":
        if session.get("status") == "complete" and move_if_allowed(
            payment, PaymentRecordStatus.PROCESSING
        ):
            if contract.status is ContractStatus.PENDING:
                lifecycle.mark_payment_processing(contract, actor_label=f"stripe:{source}")
            return "processing"
        return "not_paid"
    reason = _mismatch(contract, session)
    if reason is not None:
        if payment.review_reason is None:
            payment.review_reason = reason
            audit(
                "payment.flagged", payment, actor_label=f"stripe:{source}", after={"reason": reason}
            )
        return "flagged"
    if not payment.stripe_metadata:
        payment.stripe_metadata = dict(session.get("metadata") or {})
    return settle(
        payment,
        contract,
        actor_label=f"stripe:{source}",
        details={
            "checkout_session_id": payment.checkout_session_id,
            "payment_intent_id": payment.payment_intent_id,
        },
    )
