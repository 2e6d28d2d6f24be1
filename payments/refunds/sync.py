"""Refunds and Stripe: asking Stripe for a refund we decided, outside any lock and with
an idempotency key from our row, and mirroring what Stripe says of refunds (its
answer, `refund.*` and `charge.refund.updated` events, the charge's refunds listed
when `charge.refunded` reports more than we know, refunds made in the Stripe
Dashboard). A refund that succeeds reaches the contract once, through
`contracts.lifecycle.record_refund` with where its money now stands.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

import clock
import jobs
from audit.services import record as audit
from contracts import lifecycle
from contracts.models import Contract, ContractStatus
from contracts.money import format_money
from database.locking import lock_by_id
from database.states import check_transition
from extensions import db
from notifications.services import notify
from payments import stripe_api
from payments.models import (
    LIVE_REFUND_STATUSES,
    REFUND_TRANSITIONS,
    REQUEST_TRANSITIONS,
    PaymentRecordStatus,
    Refund,
    RefundRequest,
    RefundSource,
    RefundStatus,
    RequestStatus,
)
from payments.plan_terms import close_plan
from payments.records import lock_with_contract, move_if_allowed, payment_by
from payments.refunds.requests import contract_link, locked_contract, money_in, open_request_of
from payments.standing import standing_of
from scheduling.sessions import consumed_count

log = logging.getLogger(__name__)

# Our row id in each refund's metadata: a refund's event may arrive before its
# job has stored Stripe's id, and this still finds the row.
REFUND_ID_KEY = "coachpact_refund_id"
# A pending refund Stripe has not heard of this long after it was written lost its job.
SEND_GRACE = timedelta(minutes=1)


def live_refunded(payment_id: int) -> int:
    """What a payment's pending and succeeded refunds give back (ours and the Dashboard's)."""
    return _live_refunded([payment_id]).get(payment_id, 0)


def _live_refunded(payment_ids: list[int]) -> dict[int, int]:
    """Per payment (void ones too): what pending and succeeded refunds give back."""
    if not payment_ids:
        return {}
    rows = db.session.execute(
        select(Refund.payment_id, func.sum(Refund.amount))
        .where(Refund.payment_id.in_(payment_ids), Refund.status.in_(LIVE_REFUND_STATUSES))
        .group_by(Refund.payment_id)
    )
    return {payment_id: int(total) for payment_id, total in rows}


# --- asking Stripe, outside any lock ---------------------------------------------


def send_refund(refund_id: int) -> Refund:
    """Ask Stripe for a pending refund that it has not heard of yet; commits what it says.

    Outside any lock, with an idempotency key from the row, so a retry (or two
    jobs at once) makes one refund at Stripe. When Stripe cannot be reached, the
    row stays pending and a PaymentProviderError is raised for the job to retry.
    """
    refund = db.session.get(Refund, refund_id)
    if refund is None:
        raise LookupError(f"no refund {refund_id}")
    if refund.stripe_refund_id or refund.status is not RefundStatus.PENDING:
        return refund
    payment = refund.payment
    params: Any = {
        "payment_intent": payment.payment_intent_id,
        "amount": refund.amount,
        "reason": refund.stripe_reason or "requested_by_customer",
        "metadata": {
            REFUND_ID_KEY: str(refund.id),
            "contract_id": str(refund.contract_id),
            "payment_id": str(payment.id),
        },
    }
    db.session.rollback()  # end the read transaction: no lock while Stripe answers
    try:
        made = stripe_api.create_refund(params, stripe_api.idempotency_key("refund", refund_id))
    except stripe_api.PaymentProviderError as exc:
        if exc.unreached:
            raise  # not refused, just not reached: retried with the same key
        _refused(refund_id, str(exc), exc.code)
    else:
        mirror(made.to_dict(), actor_label="stripe")
    db.session.commit()
    refund = db.session.get(Refund, refund_id)
    assert refund is not None
    return refund


def send_now(refund_id: int) -> Refund:
    """`send_refund` for a person waiting on the answer: Stripe being away is not an error.

    The refund then stays pending (`describe` says so) and the sweep sends it.
    """
    try:
        return send_refund(refund_id)
    except stripe_api.PaymentProviderError:
        db.session.rollback()
        refund = db.session.get(Refund, refund_id)
        assert refund is not None
        return refund


def _refused(refund_id: int, message: str, code: str | None) -> None:
    refund, _ = lock_with_contract(Refund, refund_id)
    reason = message if not code else f"{message} ({code})"
    settle_refund(refund, RefundStatus.FAILED, failure_reason=reason, actor_label="stripe")


# --- mirroring what Stripe says ------------------------------------------------------


def _row_for(stripe_refund: dict[str, Any]) -> Refund | None:
    found = db.session.scalar(select(Refund).where(Refund.stripe_refund_id == stripe_refund["id"]))
    if found is not None:
        return found
    ours = (stripe_refund.get("metadata") or {}).get(REFUND_ID_KEY)
    if ours and str(ours).isdigit():
        return db.session.get(Refund, int(ours))
    return None


def mirror(stripe_refund: dict[str, Any], *, actor_label: str) -> str:
    """Bring our record of a Stripe refund up to what Stripe says; the outcome, in a word.

    A refund we never asked for (made in the Stripe Dashboard) is recorded with
    that source. Raises LookupError when its payment is not known here yet.
    Takes the contract's lock; the caller commits.
    """
    row = _row_for(stripe_refund)
    payment = (
        row.payment if row else payment_by(payment_intent_id=stripe_refund.get("payment_intent"))
    )
    if payment is None:
        raise LookupError("a refund of a payment intent we do not know yet")
    locked_contract(payment.contract_id)
    if row is None:
        # Its other event (or the charge's list) may have recorded it while we waited.
        row = _row_for(stripe_refund)
    if row is not None:
        row = lock_by_id(db.session, Refund, row.id)
        assert row is not None
    else:
        row = Refund(
            payment_id=payment.id,
            contract_id=payment.contract_id,
            amount=int(stripe_refund["amount"]),
            currency=str(stripe_refund["currency"]),
            source=RefundSource.DASHBOARD,
            stripe_reason=stripe_refund.get("reason"),
            note="Made outside Coachpact (the Stripe Dashboard).",
            stripe_refund_id=stripe_refund["id"],
        )
        db.session.add(row)
        db.session.flush()
        audit(
            "refund.created",
            row,
            actor_label=actor_label,
            after={
                "amount": row.amount,
                "source": row.source.value,
                "stripe_refund_id": row.stripe_refund_id,
            },
        )
    if row.stripe_refund_id is None:
        row.stripe_refund_id = stripe_refund["id"]
    if int(stripe_refund["amount"]) != row.amount:
        log.error(
            "refund %s: Stripe reports %s, we asked %s", row.id, stripe_refund["amount"], row.amount
        )
        audit(
            "refund.amount_mismatch",
            row,
            actor_label=actor_label,
            after={"ours": row.amount, "stripe": stripe_refund["amount"]},
        )
        if row.status is RefundStatus.SUCCEEDED:  # already counted on the payment
            row.payment.amount_refunded += int(stripe_refund["amount"]) - row.amount
        row.amount = int(stripe_refund["amount"])  # what Stripe reports is what went back
    status = {
        "succeeded": RefundStatus.SUCCEEDED,
        "failed": RefundStatus.FAILED,
        "canceled": RefundStatus.CANCELED,
    }.get(stripe_refund.get("status") or "", RefundStatus.PENDING)
    return settle_refund(
        row, status, failure_reason=stripe_refund.get("failure_reason"), actor_label=actor_label
    )


def settle_refund(
    refund: Refund, status: RefundStatus, *, failure_reason: str | None, actor_label: str
) -> str:
    """Move a refund (its contract locked) and apply what that means, once."""
    if status is refund.status:
        db.session.flush()
        return "unchanged"
    if status not in REFUND_TRANSITIONS.get(refund.status, frozenset()):
        return "stale"
    was = refund.status
    refund.status = status
    refund.settled_at = clock.now()
    if failure_reason:
        refund.failure_reason = failure_reason[:500]
    db.session.flush()
    audit(
        f"refund.{status.value}",
        refund,
        actor_label=actor_label,
        before={"status": was.value},
        after={
            "status": status.value,
            "amount": refund.amount,
            "failure_reason": refund.failure_reason,
        },
    )
    payment, contract = refund.payment, refund.contract
    if status is RefundStatus.SUCCEEDED:
        payment.amount_refunded += refund.amount
        move_if_allowed(
            payment,
            PaymentRecordStatus.REFUNDED
            if payment.amount_refunded >= payment.amount
            else PaymentRecordStatus.PARTIALLY_REFUNDED,
        )
        if payment.void_reason is None and contract.paid_at is not None:
            _record_on_contract(contract, refund, actor_label)
        return "refunded"
    if was is RefundStatus.SUCCEEDED:
        # The money came back to us after all (a closed card): the records say so.
        payment.amount_refunded -= refund.amount
        if payment.void_reason is None and contract.paid_at is not None:
            _record_on_contract(contract, refund, actor_label)
    _reopen_request(refund)
    amount = format_money(refund.amount, refund.currency)
    if payment.void_reason is None:
        notify(
            contract.student,
            f"The refund of {amount} on “{contract.title}” did not go through"
            f"{': ' + refund.failure_reason if refund.failure_reason else ''}. "
            "An administrator will look at it; nothing else changed.",
            link=contract_link(contract),
            subject=f"Coachpact: a refund on “{contract.title}” did not go through",
        )
    return status.value


def _record_on_contract(contract: Contract, refund: Refund, actor_label: str) -> None:
    """Where the contract's money now stands, on the contract; a contract left with
    nothing closes its plan. Both parties are told of a refund made."""
    lifecycle.record_refund(
        contract,
        received=standing_of(contract).received,
        consumed_sessions=consumed_count(contract.id),
        actor_label=actor_label,
        details={"refund_id": refund.id, "amount": refund.amount, "source": refund.source.value,
                 "refund_status": refund.status.value},
    )
    if contract.status in (ContractStatus.REFUNDED, ContractStatus.CANCELLED):
        close_plan(contract, reason="everything paid went back")
    if refund.status is not RefundStatus.SUCCEEDED:
        return
    amount = money_in(refund.amount, contract)
    notify(
        contract.student,
        f"{amount} for “{contract.title}” was refunded to you.",
        link=contract_link(contract),
        subject=f"Coachpact: {amount} refunded",
    )
    notify(
        contract.coach,
        f"{amount} of “{contract.title}” was refunded to {contract.student.name}.",
        link=contract_link(contract),
    )


def _reopen_request(refund: Refund) -> None:
    """A refund from a request that failed: the request is open again for an admin."""
    if refund.request_id is None:
        return
    request = db.session.get(RefundRequest, refund.request_id)
    if request is None or request.status is not RequestStatus.APPROVED:
        return
    if open_request_of(refund.contract) is not None:
        return
    request.status = check_transition(
        REQUEST_TRANSITIONS, request.status, RequestStatus.OPEN, "request"
    )
    request.decision_note = f"The approved refund did not go through: {refund.failure_reason}"[:500]
    audit("refund_request.reopened", request, actor_label="system", after={"refund_id": refund.id})


def mirror_charge(charge: dict[str, Any]) -> str:
    """`charge.refunded`: when Stripe reports more refunded than we know, list the
    charge's refunds (a job, after commit: Stripe is not asked under a lock).

    Since API version 2022-11-15 the charge carries no `refunds` (not in an event,
    not unless expanded); its `amount_refunded` counts pending refunds too, as our
    live refunds do. The refunds' own `refund.*` events record them as well,
    whichever comes first: `mirror` records a refund once.
    """
    payment = payment_by(payment_intent_id=charge.get("payment_intent"))
    if payment is None:
        raise LookupError("a charge of a payment intent we do not know yet")
    payment.charge_id = payment.charge_id or charge.get("id")
    known = live_refunded(payment.id)
    reported = int(charge.get("amount_refunded") or 0)
    if reported <= known:
        return "known"
    jobs.enqueue_after_commit(db.session(), mirror_charge_refunds_job, str(charge["id"]))
    return "listing refunds"


def mirror_charge_refunds(charge_id: str) -> list[str]:
    """Bring every refund of a charge up to what Stripe lists, oldest first; commits each.

    Stripe is asked outside any lock. When it cannot be reached, nothing is lost: each
    refund's own events (and the hourly reconcile of events) still record it.
    """
    db.session.rollback()  # no transaction, so no lock, while Stripe answers
    listed = stripe_api.list_refunds(charge_id)
    outcomes = []
    for stripe_refund in reversed(listed):
        outcomes.append(mirror(stripe_refund, actor_label="stripe"))
        db.session.commit()
    return outcomes


# --- jobs ----------------------------------------------------------------------------


@jobs.task()
def send_refund_job(refund_id: int) -> None:
    try:
        send_refund(refund_id)
    except stripe_api.PaymentProviderError:
        log.warning("refund %s not sent yet; the sweep retries it", refund_id)


@jobs.task()
def mirror_charge_refunds_job(charge_id: str) -> None:
    try:
        mirror_charge_refunds(charge_id)
    except stripe_api.PaymentProviderError:
        log.warning("the refunds of %s not listed; their own events record them", charge_id)


@jobs.periodic(jobs.every_minute())
def sweep_unsent_refunds() -> None:
    """Send the refunds a lost job (or Stripe being away) left pending and unsent."""
    for refund_id in unsent_refund_ids():
        jobs.enqueue(send_refund_job, refund_id)


def unsent_refund_ids() -> list[int]:
    """Pending refunds Stripe has not heard of, written more than a minute ago."""
    return list(
        db.session.scalars(
            select(Refund.id).where(
                Refund.status == RefundStatus.PENDING,
                Refund.stripe_refund_id.is_(None),
                Refund.created_at <= clock.now() - SEND_GRACE,
            )
        )
    )
