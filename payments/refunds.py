"""Money back: refund requests, refunds as records, and what Stripe says of them.

A refund we start is decided under the contract's lock: the row is written
`pending` with no Stripe id, counting at once against what is still refundable
(paid − succeeded − pending), so two approvals at once can never give back
more than was paid. After commit, `send_refund` asks Stripe outside any lock,
with an idempotency key derived from the row; a job and the sweep retry it
when Stripe could not be reached. Stripe's answer, and later its `refund.*`
and `charge.refunded` events, move the row along its table; a refund that
succeeds reaches the contract through `contracts.lifecycle.record_refund`
once. A refund made elsewhere (the Stripe Dashboard) is recorded from its
event with its source.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import url_for
from sqlalchemy import func, select

import clock
import jobs
from accounts.models import User
from audit.services import record as audit
from contracts import lifecycle
from contracts.models import Contract, ContractStatus
from contracts.money import format_money
from contracts.refund_policy import RefundQuote, quote
from contracts.scheduling import consumed_count
from contracts.services import lock_contract
from database.locking import lock_by_id
from database.states import TransitionError, check_transition
from extensions import db
from notifications.services import notify
from payments import stripe_api
from payments.models import (
    LIVE_REFUND_STATUSES,
    REFUND_TRANSITIONS,
    REQUEST_TRANSITIONS,
    Dispute,
    Payment,
    PaymentRecordStatus,
    Refund,
    RefundCategory,
    RefundRequest,
    RefundSource,
    RefundStatus,
    RequestStatus,
)
from payments.plan_terms import close_plan
from payments.records import lock_with_contract, move_if_allowed, payment_by
from payments.standing import Standing, standing_of

log = logging.getLogger(__name__)

# Our row id in each refund's metadata: a refund's event may arrive before its
# job has stored Stripe's id, and this still finds the row.
REFUND_ID_KEY = "coachpact_refund_id"
# A pending refund Stripe has not heard of this long after it was written lost its job.
SEND_GRACE = timedelta(minutes=1)
class RefundRefused(Exception):
    """A refund or request that cannot be made now; the message is for the person asking."""


# --- reading: what was paid, what is left, what the policy gives ----------------


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


def refundable(contract: Contract) -> Standing:
    """Where the contract's money stands (`payments.standing`); decide amounts from it
    only under the contract's lock."""
    return standing_of(contract)


def quote_now(contract: Contract, money: Standing | None = None) -> RefundQuote:
    """The contract's own policy applied now, net of what went back or is on its way."""
    money = money or standing_of(contract)
    return quote(
        contract,
        used_sessions=consumed_count(contract.id),
        now=clock.now(),
        already_refunded=money.returned + money.refund_pending,
        paid=money.arrived,
    )


def open_dispute_of(contract: Contract) -> Dispute | None:
    """The contract's open dispute, if any."""
    return db.session.scalar(
        select(Dispute)
        .where(Dispute.contract_id == contract.id, Dispute.closed_at.is_(None))
        .order_by(Dispute.id.desc())
    )


def refusal(contract: Contract, money: Standing | None = None) -> str | None:
    """Why no refund can be made on `contract` now, or None when one can."""
    if contract.paid_at is None:
        return "Nothing has been paid for this contract, so there is nothing to refund."
    money = money or standing_of(contract)
    if money.refund_blocked_by_dispute:
        return (
            "The student's bank has opened a dispute on this payment; the bank decides "
            "what goes back, so no refund can be made until the dispute is closed."
        )
    if money.refundable <= 0:
        if money.lost:
            return (
                "The student's bank took the disputed payment back; nothing more can be "
                "refunded on this contract."
            )
        return "Everything paid for this contract has been refunded already."
    return None


def open_request_of(contract: Contract) -> RefundRequest | None:
    return db.session.scalar(
        select(RefundRequest).where(
            RefundRequest.contract_id == contract.id, RefundRequest.status == RequestStatus.OPEN
        )
    )


def refunds_of_contract(contract_id: int) -> list[Refund]:
    """A contract's refunds, newest first."""
    return list(
        db.session.scalars(
            select(Refund)
            .where(Refund.contract_id == contract_id)
            .order_by(Refund.created_at.desc(), Refund.id.desc())
        )
    )


def requests_of_contract(contract_id: int) -> list[RefundRequest]:
    """A contract's refund requests, newest first."""
    return list(
        db.session.scalars(
            select(RefundRequest)
            .where(RefundRequest.contract_id == contract_id)
            .order_by(RefundRequest.created_at.desc(), RefundRequest.id.desc())
        )
    )


# --- a student's request, an admin's decision ------------------------------------


def _locked(contract_id: int) -> Contract:
    contract = lock_contract(contract_id)
    if contract is None:
        raise LookupError(f"no contract {contract_id}")
    return contract


def _link(contract: Contract) -> str:
    return url_for("contracts.detail", contract_id=contract.id)


def _money(amount: int, contract: Contract) -> str:
    return format_money(amount, contract.currency)


def request_refund(
    contract_id: int, student: User, *, category: RefundCategory, reason: str
) -> RefundRequest:
    """The student asks for money back; an admin decides. Flushes; the caller commits.

    One open request per contract, none while a dispute is open or when the
    policy gives nothing back. Raises RefundRefused with the reason.
    """
    contract = _locked(contract_id)
    if contract.student_id != student.id:
        raise LookupError("only the contract's student can ask for a refund")
    if open_request_of(contract) is not None:
        raise RefundRefused("You have already asked for a refund on this contract.")
    money = standing_of(contract)
    why_not = refusal(contract, money)
    if why_not:
        raise RefundRefused(why_not)
    offer = quote_now(contract, money)
    if offer.amount <= 0:
        raise RefundRefused(offer.explanation)
    request = RefundRequest(
        contract_id=contract.id,
        student_id=student.id,
        category=category,
        reason=reason.strip(),
        quoted_amount=offer.amount,
    )
    db.session.add(request)
    db.session.flush()
    audit(
        "refund_request.created",
        request,
        actor=student,
        after={"contract_id": contract.id, "category": category.value, "quoted": offer.amount},
    )
    notify(
        contract.coach,
        f"{student.name} asked for a refund on “{contract.title}”; an administrator will decide.",
        link=_link(contract),
    )
    return request


def _locked_request(request_id: int) -> tuple[RefundRequest, Contract]:
    """The request and its contract, the contract locked first (the one lock order)."""
    request, contract = lock_with_contract(RefundRequest, request_id)
    if request.status is not RequestStatus.OPEN:
        raise RefundRefused(f"This request was {request.status.value} already.")
    return request, contract


def approve_request(
    request_id: int, admin: User, *, amount: int | None = None, override_reason: str = ""
) -> Refund:
    """Approve a request: a refund of `amount` (the policy's quote by default) is written.

    An amount other than the quote needs `override_reason`; no amount can go above
    what is still refundable. Flushes; after the caller commits, `send_refund`
    (or its job) asks Stripe.
    """
    request, contract = _locked_request(request_id)
    money = standing_of(contract)
    offer = quote_now(contract, money)
    amount = offer.amount if amount is None else amount
    override_reason = override_reason.strip()
    if amount != offer.amount and not override_reason:
        raise RefundRefused(
            f"The policy gives {_money(offer.amount, contract)}; say why a different "
            "amount is refunded."
        )
    refund = _start_refund(
        contract,
        money,
        amount,
        source=RefundSource.STUDENT_REQUEST,
        by=admin,
        request=request,
        note=override_reason or None,
    )
    request.status = check_transition(
        REQUEST_TRANSITIONS, request.status, RequestStatus.APPROVED, "request"
    )
    request.approved_amount = amount
    request.override_reason = override_reason or None
    request.decided_by_id = admin.id
    request.decided_at = clock.now()
    audit(
        "refund_request.approved",
        request,
        actor=admin,
        after={"amount": amount, "quoted": offer.amount, "override_reason": override_reason},
    )
    notify(
        contract.student,
        f"Your refund request on “{contract.title}” was approved: "
        f"{_money(amount, contract)} is on its way back to you.",
        link=_link(contract),
        subject=f"Coachpact: your refund for “{contract.title}” was approved",
    )
    return refund


def reject_request(request_id: int, admin: User, *, note: str) -> RefundRequest:
    """Reject a request; the note is shown to the student. Flushes."""
    note = note.strip()
    if not note:
        raise RefundRefused("Say why the request is rejected; the student sees it.")
    request, contract = _locked_request(request_id)
    request.status = check_transition(
        REQUEST_TRANSITIONS, request.status, RequestStatus.REJECTED, "request"
    )
    request.decision_note = note[:500]
    request.decided_by_id = admin.id
    request.decided_at = clock.now()
    db.session.flush()
    audit("refund_request.rejected", request, actor=admin, after={"note": request.decision_note})
    notify(
        contract.student,
        f"Your refund request on “{contract.title}” was not approved: {request.decision_note}",
        link=_link(contract),
        subject=f"Coachpact: your refund request for “{contract.title}”",
    )
    return request


@dataclass(frozen=True)
class Outcome:
    """What happened to one request of a bulk decision."""

    request_id: int
    ok: bool
    message: str


def decide_many(
    request_ids: list[int], admin: User, *, approve: bool, note: str = ""
) -> list[Outcome]:
    """Approve (at each quote) or reject several requests, each in its own transaction.

    Commits once per request; an approved refund is then sent to Stripe at once,
    so each result says what Stripe answered. A refusal leaves its request as it was.
    """
    outcomes = []
    for request_id in dict.fromkeys(request_ids):
        try:
            if approve:
                refund = approve_request(request_id, admin)
            else:
                reject_request(request_id, admin, note=note)
            db.session.commit()
        except (RefundRefused, TransitionError, LookupError) as exc:
            db.session.rollback()
            outcomes.append(Outcome(request_id, False, str(exc)))
            continue
        if not approve:
            outcomes.append(Outcome(request_id, True, "Rejected."))
            continue
        sent = send_now(refund.id)
        outcomes.append(Outcome(request_id, sent.status is not RefundStatus.FAILED, describe(sent)))
    return outcomes


def describe(refund: Refund) -> str:
    """One line on where a refund stands, for the admin who started it."""
    amount = format_money(refund.amount, refund.currency)
    if refund.status is RefundStatus.FAILED:
        return f"Stripe refused the refund of {amount}: {refund.failure_reason}"
    if refund.status is RefundStatus.SUCCEEDED:
        return f"Refunded {amount}."
    if refund.stripe_refund_id:
        return f"Refund of {amount} accepted by Stripe; the bank has not confirmed it yet."
    return (
        f"Refund of {amount} recorded; Stripe could not be reached just now, so it will "
        "be sent shortly. Nothing more to do."
    )


# --- refunds an admin starts -------------------------------------------------------


def refund_contract(contract_id: int, admin: User, *, amount: int, note: str) -> Refund:
    """An admin's own refund on a contract (a goodwill gesture, a correction). Flushes."""
    contract = _locked(contract_id)
    if not note.strip():
        raise RefundRefused("Say why this refund is made.")
    return _start_refund(
        contract,
        standing_of(contract),
        amount,
        source=RefundSource.ADMIN,
        by=admin,
        note=note.strip(),
    )


def cancel_active_contract(contract_id: int, admin: User, *, reason: str) -> Refund | None:
    """An admin ends an active contract and refunds what its policy gives now. Flushes.

    The quote is taken before the contract closes; its open sessions are cancelled
    (none counts as used). Returns the refund, or None when the policy gives nothing.
    """
    contract = _locked(contract_id)
    if contract.status not in (ContractStatus.ACTIVE, ContractStatus.PAST_DUE):
        raise RefundRefused(
            f"This contract is {contract.status.value}; only an active one can be "
            "cancelled with a refund."
        )
    if not reason.strip():
        raise RefundRefused("Say why the contract is cancelled; both parties see it.")
    money = standing_of(contract)
    why_not = refusal(contract, money)
    offer = quote_now(contract, money)
    if why_not and offer.amount:
        raise RefundRefused(why_not)
    lifecycle.cancel_paid(contract, by=admin, reason=reason.strip())
    close_plan(contract, reason=reason.strip(), actor=admin)
    if not offer.amount:
        return None
    return _start_refund(
        contract,
        money,
        offer.amount,
        source=RefundSource.ADMIN,
        by=admin,
        note=f"Contract cancelled: {reason.strip()}"[:500],
    )


def _start_refund(
    contract: Contract,
    money: Standing,
    amount: int,
    *,
    source: RefundSource,
    by: User | None,
    request: RefundRequest | None = None,
    note: str | None = None,
) -> Refund:
    """Write a refund under the contract's lock, after every check of amount. Flushes.

    A payment made through Stripe is refunded through Stripe after commit. A payment
    recorded offline is given back the way it came: the admin's refund is recorded
    as made at once.
    """
    why_not = refusal(contract, money)
    if why_not:
        raise RefundRefused(why_not)
    if amount <= 0:
        raise RefundRefused("A refund must be more than nothing.")
    if amount > money.refundable:
        raise RefundRefused(
            f"Only {_money(money.refundable, contract)} is still refundable on this contract."
        )
    target = money.refund_target(through_stripe=True) or money.refund_target(
        through_stripe=False
    )
    assert target is not None
    if amount > target.left:
        raise RefundRefused(
            f"One payment can give back at most {_money(target.left, contract)}; "
            "refund the rest separately."
        )
    refund = Refund(
        payment_id=target.payment.id,
        contract_id=contract.id,
        request_id=request.id if request else None,
        amount=amount,
        currency=contract.currency,
        source=source,
        stripe_reason="requested_by_customer",
        note=note,
        # Who asked: the student for their request (the admin who approved is on it).
        requested_by_id=request.student_id if request else (by.id if by else None),
    )
    db.session.add(refund)
    db.session.flush()
    audit(
        "refund.created",
        refund,
        actor=by,
        after={"amount": amount, "source": source.value, "contract_id": contract.id,
               "offline": not target.through_stripe},
    )
    if target.through_stripe:
        jobs.enqueue_after_commit(db.session(), send_refund_job, refund.id)
    else:
        _settle(refund, RefundStatus.SUCCEEDED, failure_reason=None,
                actor_label=f"admin:{by.id}" if by else "admin")
    return refund


def refund_void_payment(payment: Payment) -> Refund:
    """A payment that does not count for its contract goes back in full (flushes).

    Called under the contract's lock when the payment is made void; the refund is
    sent after commit.
    """
    refund = Refund(
        payment_id=payment.id,
        contract_id=payment.contract_id,
        amount=payment.amount,
        currency=payment.currency,
        source=RefundSource.DUPLICATE,
        stripe_reason="duplicate",
        note=f"Void payment: {payment.void_reason.value if payment.void_reason else ''}",
    )
    db.session.add(refund)
    db.session.flush()
    audit(
        "refund.created",
        refund,
        actor_label="system",
        after={"amount": refund.amount, "source": refund.source.value},
    )
    jobs.enqueue_after_commit(db.session(), send_refund_job, refund.id)
    return refund


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
    _settle(refund, RefundStatus.FAILED, failure_reason=reason, actor_label="stripe")


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
    _locked(payment.contract_id)
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
    return _settle(
        row, status, failure_reason=stripe_refund.get("failure_reason"), actor_label=actor_label
    )


def _settle(
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
            link=_link(contract),
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
    amount = _money(refund.amount, contract)
    notify(
        contract.student,
        f"{amount} for “{contract.title}” was refunded to you.",
        link=_link(contract),
        subject=f"Coachpact: {amount} refunded",
    )
    notify(
        contract.coach,
        f"{amount} of “{contract.title}” was refunded to {contract.student.name}.",
        link=_link(contract),
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
    """`charge.refunded`: record the refunds it lists that we lack; check the total.

    Stripe's `amount_refunded` counts pending refunds too. When it is more than
    what we know and the charge lists no refunds, the refund's own event is still
    to come: retried until it has arrived.
    """
    listed = (charge.get("refunds") or {}).get("data") or []
    outcomes = [mirror(item, actor_label="stripe") for item in listed]
    payment = payment_by(payment_intent_id=charge.get("payment_intent"))
    if payment is None:
        raise LookupError("a charge of a payment intent we do not know yet")
    payment.charge_id = payment.charge_id or charge.get("id")
    known = _live_refunded([payment.id]).get(payment.id, 0)
    reported = int(charge.get("amount_refunded") or 0)
    if reported > known:
        raise LookupError(
            f"Stripe reports {reported} refunded on {charge.get('id')}, we know of {known}"
        )
    return "refunded" if "refunded" in outcomes else "known"


# --- jobs ----------------------------------------------------------------------------


@jobs.task()
def send_refund_job(refund_id: int) -> None:
    try:
        send_refund(refund_id)
    except stripe_api.PaymentProviderError:
        log.warning("refund %s not sent yet; the sweep retries it", refund_id)


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
