"""Payment plans at Stripe: the deposit through Checkout, instalments charged off-session.

Our own rows decide when to charge (`Instalment.next_attempt_at`): a periodic
sweep finds what is due and a job charges each instalment with an off-session
PaymentIntent on the card saved at the deposit. The charge is claimed under the
contract's lock (the instalment moves to `processing` and a payment record is
written), then Stripe is asked outside any lock with an idempotency key from
the instalment and its attempt number, so two sweeps at once, a retried job or a
redelivered event charge it once. Stripe's answer, or its `payment_intent.*`
event through the inbox, settles it:

- paid: the payment succeeds, the instalment is paid, the contract records the
  money (`contracts.lifecycle.mark_paid` with the amount) and more sessions unlock;
- declined: retried `PLAN_RETRY_DAYS` after the due date (1, 3 and 7 days by
  default); after the last retry the instalment has failed and the contract is
  past due (scheduling pauses; both parties and the admins are told);
- the bank asks for authentication: the student is mailed a link to pay that
  instalment through Checkout; no retry charges the card meanwhile.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from flask import current_app, url_for
from sqlalchemy import select

import clock
import jobs
from accounts.models import Role, User
from audit.services import record as audit
from contracts import lifecycle
from contracts.models import Contract
from contracts.money import format_money
from extensions import db
from notifications.services import notify
from payments import stripe_api
from payments.models import (
    Instalment,
    InstalmentStatus,
    Payment,
    PaymentPlan,
    PaymentRecordStatus,
    PlanStatus,
)
from payments.plan_terms import (
    charge_instant,
    move_instalment_to,
)
from payments.records import (
    lock_with_contract,
    move,
    move_if_allowed,
    payment_by,
    transfer_group,
)
from payments.settle import settle

log = logging.getLogger(__name__)

# Stripe could not be reached: the charge is tried again this much later (same key).
UNREACHABLE_WAIT = timedelta(minutes=5)


# --- charging an instalment off-session --------------------------------------------


def due_instalment_ids(limit: int = 500, *, as_of: datetime | None = None) -> list[int]:
    """Instalments whose charge is due now (or by `as_of`) on active plans (the sweep's
    look-up)."""
    return list(db.session.scalars(
        select(Instalment.id)
        .join(PaymentPlan, PaymentPlan.id == Instalment.plan_id)
        .where(
            Instalment.status == InstalmentStatus.SCHEDULED,
            Instalment.number > 0,
            Instalment.needs_authentication.is_(False),
            Instalment.next_attempt_at <= (as_of or clock.now()),
            PaymentPlan.status == PlanStatus.ACTIVE,
        )
        .order_by(Instalment.next_attempt_at)
        .limit(limit)
    ))


def locked_instalment(instalment_id: int) -> tuple[Instalment, PaymentPlan, Contract]:
    """The instalment, its plan and contract, locked in the one lock order."""
    instalment, contract = lock_with_contract(
        Instalment, instalment_id, lambda row: row.plan.contract_id
    )
    return instalment, instalment.plan, contract


def _claim(instalment_id: int, as_of: datetime | None) -> int | None:
    """Take an instalment due now (or by `as_of`) for one charge; the payment record's id,
    or None. Commits.

    Under the contract's lock: of two sweeps at once, one claims it and the
    other finds it processing.
    """
    instalment, plan, contract = locked_instalment(instalment_id)
    if (
        instalment.status is not InstalmentStatus.SCHEDULED
        or instalment.needs_authentication
        or instalment.next_attempt_at > (as_of or clock.now())
        or plan.status is not PlanStatus.ACTIVE
    ):
        db.session.rollback()
        return None
    move_instalment_to(instalment, InstalmentStatus.PROCESSING)
    instalment.attempts += 1
    metadata = {"contract_id": str(contract.id), "instalment_id": str(instalment.id),
                "attempt": str(instalment.attempts)}
    payment = Payment(contract_id=contract.id, amount=instalment.amount,
                      currency=contract.currency, customer_id=plan.customer_id,
                      instalment_id=instalment.id, stripe_metadata=metadata,
                      payment_method_type="card")  # a plan charges a saved card, off session
    db.session.add(payment)
    db.session.flush()
    audit("instalment.charge_started", instalment, actor_label="system",
          after={"attempt": instalment.attempts, "amount": instalment.amount,
                 "payment_id": payment.id})
    db.session.commit()
    return payment.id


def card_of(plan: PaymentPlan) -> str | None:
    """The card the plan charges: the one chosen, else the one saved by its latest payment
    through Checkout (the deposit, or an instalment paid by hand), found at Stripe once and
    remembered. Asks Stripe: call it outside any lock; the caller commits."""
    if plan.payment_method_id:
        return plan.payment_method_id
    latest = db.session.scalar(
        select(Payment)
        .join(Instalment, Instalment.id == Payment.instalment_id)
        .where(Instalment.plan_id == plan.id, Payment.checkout_session_id.is_not(None),
               Payment.status == PaymentRecordStatus.SUCCEEDED,
               Payment.payment_intent_id.is_not(None))
        .order_by(Payment.paid_at.desc(), Payment.id.desc())
    )
    if latest is None or latest.payment_intent_id is None:
        return None
    intent = stripe_api.retrieve_payment_intent(latest.payment_intent_id)
    method = intent.payment_method
    found = method if isinstance(method, str) else getattr(method, "id", None)
    plan.payment_method_id = found
    return found


def charge_instalment(instalment_id: int, *, as_of: datetime | None = None) -> str:
    """Charge one due instalment off-session, once; what happened, in a word. Commits.

    `as_of` charges one that falls due by then, early (`payments charge-due --ahead`,
    against the sandbox): what is due is judged at that moment, but every row written
    carries the true time.
    """
    payment_id = _claim(instalment_id, as_of)
    if payment_id is None:
        return "not_due"
    payment = db.session.get(Payment, payment_id)
    assert payment is not None
    instalment = db.session.get(Instalment, instalment_id)
    assert instalment is not None
    plan = instalment.plan
    params: Any = {
        "amount": payment.amount,
        "currency": payment.currency,
        "customer": plan.customer_id,
        "off_session": True,
        "confirm": True,
        "metadata": dict(payment.stripe_metadata),
        "transfer_group": transfer_group(plan.contract_id),
        "description": f"Instalment {instalment.number} of {plan.instalment_count}: "
        f"{plan.contract.title}",
    }
    key = stripe_api.idempotency_key("instalment", instalment.id, instalment.attempts)
    try:
        try:
            method = card_of(plan)
        except stripe_api.PaymentProviderError as exc:
            if exc.unreached:
                raise
            method = None  # Stripe knows no card of this plan's payments
        db.session.commit()  # remember the card found
        if method is None:
            outcome = _failed(payment_id, "no_saved_card", "No saved card for this plan.")
            db.session.commit()
            return outcome
        params["payment_method"] = method
        db.session.rollback()  # no transaction (and no lock) while Stripe answers
        intent = stripe_api.charge_off_session(params, key)
    except stripe_api.CardDeclined as exc:
        if exc.payment_intent_id:
            _note_intent(payment_id, exc.payment_intent_id)
        outcome = _failed(payment_id, exc.code or "card_declined", str(exc))
        db.session.commit()
        return outcome
    except stripe_api.PaymentProviderError as exc:
        if exc.unreached:
            _unreached(payment_id, str(exc))
            return "unreached"
        # Refused (a saved method Stripe will not charge off-session, say a bank
        # account without a mandate): a failed try like a decline, retried, then past due.
        outcome = _failed(payment_id, exc.code or "refused", str(exc))
        db.session.commit()
        return outcome
    if intent.status == "processing":
        _note_intent(payment_id, intent.id)
        return "processing"  # a debit on its way: its payment_intent event settles it
    return settle_intent(intent.to_dict())


def _note_intent(payment_id: int, intent_id: str) -> None:
    payment = db.session.get(Payment, payment_id)
    if payment is not None and payment.payment_intent_id is None:
        payment.payment_intent_id = intent_id
        db.session.commit()


def _unreached(payment_id: int, error: str) -> None:
    """Stripe was not reached: the same attempt is tried again shortly, with the same key."""
    payment = db.session.get(Payment, payment_id)
    assert payment is not None and payment.instalment_id is not None
    instalment, _, _ = locked_instalment(payment.instalment_id)
    if instalment.status is InstalmentStatus.PROCESSING:
        move_instalment_to(instalment, InstalmentStatus.SCHEDULED)
        instalment.attempts -= 1  # not a try: the next one reuses this key
        instalment.next_attempt_at = clock.now() + UNREACHABLE_WAIT
        instalment.last_error = error[:500]
        move_if_allowed(payment, PaymentRecordStatus.CANCELED)
    db.session.commit()


def settle_intent(intent: dict[str, Any]) -> str:
    """A succeeded PaymentIntent of an instalment (Stripe's answer or its event). Commits.

    Idempotent: the payment moves to succeeded once; a second call finds it settled.
    """
    result = record_intent_paid(intent)
    db.session.commit()
    return result


def record_intent_paid(intent: dict[str, Any]) -> str:
    """`payment_intent.succeeded` of an instalment charge (an event, or Stripe's answer).

    Flushes; the caller commits.
    """
    payment = _payment_of_intent(intent)
    if payment is None or payment.checkout_session_id is not None or payment.instalment_id is None:
        # Checkout payments are settled by their session's events, a membership's
        # invoices by `invoice.paid`.
        return "unrelated"
    return _record_paid(payment.id, intent)


def is_instalment_charge(intent: dict[str, Any]) -> bool:
    """Whether a PaymentIntent is one of our off-session instalment charges."""
    metadata = intent.get("metadata") or {}
    return str(metadata.get("instalment_id", "")).isdigit() and str(
        metadata.get("attempt", "")
    ).isdigit()


def _payment_of_intent(intent: dict[str, Any]) -> Payment | None:
    found = payment_by(payment_intent_id=intent["id"])
    if found is not None:
        return found
    ours = (intent.get("metadata") or {})
    if not str(ours.get("instalment_id", "")).isdigit():
        return None
    return db.session.scalar(
        select(Payment).where(
            Payment.instalment_id == int(ours["instalment_id"]),
            Payment.checkout_session_id.is_(None),
            Payment.stripe_metadata["attempt"].as_string() == str(ours.get("attempt")),
        )
    )


def _record_paid(payment_id: int, intent: dict[str, Any]) -> str:
    payment = db.session.get(Payment, payment_id)
    assert payment is not None and payment.instalment_id is not None
    instalment, plan, contract = locked_instalment(payment.instalment_id)
    payment = payment_by(id=payment_id)
    assert payment is not None
    payment.payment_intent_id = payment.payment_intent_id or intent["id"]
    charge = intent.get("latest_charge")
    if isinstance(charge, str):
        payment.charge_id = payment.charge_id or charge
    if payment.status is PaymentRecordStatus.SUCCEEDED:
        return "instalment_paid"  # settled already, by its event or our answer
    if int(intent.get("amount_received") or intent.get("amount") or 0) != payment.amount:
        payment.review_reason = (
            f"Stripe reported {format_money(int(intent.get('amount') or 0), payment.currency)}; "
            f"the instalment expects {format_money(payment.amount, payment.currency)}."
        )
        audit("payment.flagged", payment, actor_label="stripe",
              after={"reason": payment.review_reason})
        return "flagged"
    payment.payment_method_type = payment.payment_method_type or "card"
    return settle(payment, contract, actor_label="stripe")


def _failed(payment_id: int, code: str, message: str) -> str:
    """A charge of an instalment failed: a retry is scheduled, or the contract is past due.

    Flushes; the caller commits. A charge settled already is left as it is.
    """
    payment = db.session.get(Payment, payment_id)
    assert payment is not None and payment.instalment_id is not None
    instalment, plan, contract = locked_instalment(payment.instalment_id)
    payment = payment_by(id=payment_id)
    assert payment is not None
    if payment.status is not PaymentRecordStatus.PENDING:
        return _state_of(instalment)  # its event (or our own answer) settled it already
    move(payment, PaymentRecordStatus.FAILED)
    payment.failure_reason = message[:500]
    instalment.last_error = message[:500]
    amount = format_money(instalment.amount, contract.currency)
    retries = current_app.config["PLAN_RETRY_DAYS"]
    outcome: str
    if code == "authentication_required":
        move_instalment_to(instalment, InstalmentStatus.SCHEDULED)
        instalment.needs_authentication = True
        link = url_for("payments.pay_instalment", contract_id=contract.id,
                       instalment_id=instalment.id)
        notify(contract.student,
               f"Your bank asks you to confirm the instalment of {amount} for "
               f"“{contract.title}”. Pay it here; it takes a minute.",
               link=link, subject=f"Coachpact: confirm your instalment for “{contract.title}”")
        outcome = "authentication_required"
    elif instalment.attempts <= len(retries):
        move_instalment_to(instalment, InstalmentStatus.SCHEDULED)
        instalment.next_attempt_at = (
            charge_instant(instalment.due_on) + timedelta(days=retries[instalment.attempts - 1])
        )
        notify(contract.student,
               f"The instalment of {amount} for “{contract.title}” did not go through "
               f"({message}). We will try again on "
               f"{instalment.next_attempt_at:%d %b %Y}; you can also update your card.",
               link=url_for("payments.payment_methods"),
               subject=f"Coachpact: an instalment for “{contract.title}” did not go through")
        outcome = "retry_scheduled"
    else:
        move_instalment_to(instalment, InstalmentStatus.FAILED)
        lifecycle.mark_past_due(contract, reason=f"instalment {instalment.number} of "
                                f"{amount} unpaid after {instalment.attempts} tries")
        for admin in db.session.scalars(select(User).where(User.role == Role.ADMIN)):
            notify(admin, f"“{contract.title}” is past due: instalment {instalment.number} "
                   f"({amount}) failed {instalment.attempts} times.",
                   link=url_for("admin.contract_detail", contract_id=contract.id))
        outcome = "past_due"
    audit("instalment.failed", instalment, actor_label="stripe",
          after={"code": code, "message": message[:200], "attempt": instalment.attempts,
                 "outcome": outcome})
    return outcome


def _state_of(instalment: Instalment) -> str:
    """Where an instalment stands, in the words `_failed` and `_record_paid` answer with."""
    if instalment.status is InstalmentStatus.PAID:
        return "instalment_paid"
    if instalment.status is InstalmentStatus.FAILED:
        return "past_due"
    if instalment.needs_authentication:
        return "authentication_required"
    return "retry_scheduled"


def intent_failed(intent: dict[str, Any]) -> str:
    """`payment_intent.payment_failed` of an instalment charge (an event). Flushes."""
    payment = _payment_of_intent(intent)
    if payment is None or payment.instalment_id is None or payment.checkout_session_id:
        return "unrelated"
    error = intent.get("last_payment_error") or {}
    return _failed(payment.id, error.get("code") or "card_declined",
                   error.get("message") or "The payment failed.")


# --- jobs ----------------------------------------------------------------------------


@jobs.task()
def charge_instalment_job(instalment_id: int) -> None:
    charge_instalment(instalment_id)


@jobs.periodic(jobs.every_minute())
def charge_due_instalments() -> None:
    """Enqueue a charge for every instalment due now (the claim makes doubles harmless).

    Without Stripe (PAYMENTS_MODE=manual) admins record instalments; nothing is charged.
    """
    if current_app.config["PAYMENTS_MODE"] == "manual":
        return
    for instalment_id in due_instalment_ids():
        jobs.enqueue(charge_instalment_job, instalment_id)
