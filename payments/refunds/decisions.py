"""An admin's decisions on money back: approve or reject a request, one at a time or
many, an admin's own refund, cancelling a paid contract with its policy's refund, and
a void payment given back in full. Each refund is written under the contract's lock
after every check of amount, then sent to Stripe after commit (`payments.refunds.sync`);
a payment recorded offline is given back offline, recorded as made at once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace

import clock
import jobs
from accounts.models import User
from audit.services import record as audit
from contracts import lifecycle
from contracts.models import Contract, ContractStatus
from contracts.money import format_money
from database.states import TransitionError, check_transition
from extensions import db
from notifications.services import notify
from payments.models import (
    REQUEST_TRANSITIONS,
    Payment,
    Refund,
    RefundRequest,
    RefundSource,
    RefundStatus,
    RequestStatus,
)
from payments.plan_terms import close_plan
from payments.records import lock_with_contract
from payments.refunds.requests import (
    RefundRefused,
    contract_link,
    locked_contract,
    money_in,
    quote_now,
    refusal,
)
from payments.refunds.sync import live_refunded, send_now, send_refund_job, settle_refund
from payments.standing import PaymentLeft, Standing, standing_of

log = logging.getLogger(__name__)

def _locked_request(request_id: int) -> tuple[RefundRequest, Contract]:
    """The request and its contract, the contract locked first (the one lock order)."""
    request, contract = lock_with_contract(RefundRequest, request_id)
    if request.status is RequestStatus.WITHDRAWN:
        when = f" on {request.decided_at:%d %b %Y}" if request.decided_at else ""
        raise RefundRefused(
            f"The student withdrew this request{when}; there is nothing left to decide."
        )
    if request.status is not RequestStatus.OPEN:
        raise RefundRefused(f"This request was {request.status.value} already.")
    return request, contract


def approve_request(
    request_id: int,
    admin: User,
    *,
    amount: int | None = None,
    override_reason: str = "",
    quoted: int | None = None,
) -> Refund:
    """Approve a request: a refund of `amount` (the policy's quote by default, or what
    the coach offered on a coach's offer) is written.

    An amount other than that needs `override_reason`; no amount can go above
    what is still refundable. `quoted` is the amount proposed when the admin confirmed
    (`proposed_amount`): one that changed since is refused. Flushes; after the caller
    commits, `send_refund`
    (or its job) asks Stripe.
    """
    request, contract = _locked_request(request_id)
    money = standing_of(contract)
    offer = quote_now(contract, money)
    expected = proposed_amount(request, offer.amount)
    _check_confirmed(quoted, expected, contract)
    amount = expected if amount is None else amount
    override_reason = override_reason.strip()
    why_not = override_refusal(contract, expected, amount, override_reason, request=request)
    if why_not:
        raise RefundRefused(why_not)
    refund = start_refund(
        contract,
        money,
        amount,
        source=RefundSource.COACH if request.offered_by_coach else RefundSource.STUDENT_REQUEST,
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
        f"{money_in(amount, contract)} is on its way back to you.",
        link=contract_link(contract),
        subject=f"Coachpact: your refund for “{contract.title}” was approved",
    )
    if request.offered_by_coach:
        notify(
            contract.coach,
            f"An administrator approved your refund offer on “{contract.title}”: "
            f"{money_in(amount, contract)} goes back to {contract.student.name}.",
            link=contract_link(contract),
        )
    return refund


def proposed_amount(request: RefundRequest, quote: int) -> int:
    """What approving `request` refunds unless the admin says otherwise: what the coach
    offered on a coach's offer, else the policy's quote of now."""
    if request.offered_by_coach and request.offered_amount is not None:
        return request.offered_amount
    return quote


def override_refusal(
    contract: Contract,
    proposed: int,
    amount: int,
    override_reason: str,
    *,
    request: RefundRequest | None = None,
) -> str | None:
    """An approved amount other than the one proposed (`proposed_amount`) needs a reason."""
    if amount != proposed and not override_reason.strip():
        given = (
            f"{contract.coach.name} offered"
            if request is not None and request.offered_by_coach
            else "The policy gives"
        )
        return f"{given} {money_in(proposed, contract)}; say why a different amount is refunded."
    return None


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
        link=contract_link(contract),
        subject=f"Coachpact: your refund request for “{contract.title}”",
    )
    if request.offered_by_coach:
        notify(
            contract.coach,
            f"An administrator did not approve your refund offer on “{contract.title}”: "
            f"{request.decision_note}",
            link=contract_link(contract),
        )
    return request


@dataclass(frozen=True)
class Outcome:
    """What happened to one request of a bulk decision."""

    request_id: int
    ok: bool
    message: str


def decide_many(
    request_ids: list[int],
    admin: User,
    *,
    approve: bool,
    note: str = "",
    quoted: Mapping[int, int] | None = None,
) -> list[Outcome]:
    """Approve (at each quote) or reject several requests, each in its own transaction.

    `quoted` holds the quotes the admin confirmed, by request: a request whose quote
    changed since is refused. Commits once per request; an approved refund is then
    sent to Stripe at once, so each result says what Stripe answered. A refusal
    leaves its request as it was.
    """
    outcomes = []
    for request_id in dict.fromkeys(request_ids):
        try:
            if approve:
                refund = approve_request(
                    request_id, admin, quoted=quoted.get(request_id) if quoted else None
                )
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
    contract = locked_contract(contract_id)
    if not note.strip():
        raise RefundRefused("Say why this refund is made.")
    return start_refund(
        contract,
        standing_of(contract),
        amount,
        source=RefundSource.ADMIN,
        by=admin,
        note=note.strip(),
    )


def cancel_active_contract(
    contract_id: int, admin: User, *, reason: str, quoted: int | None = None
) -> Refund | None:
    """An admin ends an active contract and refunds what its policy gives now. Flushes.

    The quote is taken before the contract closes; its open sessions are cancelled
    (none counts as used). `quoted` is the refund the admin confirmed: a quote that
    changed since is refused. Returns the refund, or None when the policy gives nothing.
    """
    contract = locked_contract(contract_id)
    if not reason.strip():
        raise RefundRefused("Say why the contract is cancelled; both parties see it.")
    money = standing_of(contract)
    offer = quote_now(contract, money)
    why_not = cancel_refusal(contract, money, offer.amount)
    if why_not:
        raise RefundRefused(why_not)
    _check_confirmed(quoted, offer.amount, contract)
    lifecycle.cancel_paid(contract, by=admin, reason=reason.strip())
    close_plan(contract, reason=reason.strip(), actor=admin)
    if not offer.amount:
        return None
    return start_refund(
        contract,
        money,
        offer.amount,
        source=RefundSource.ADMIN,
        by=admin,
        note=f"Contract cancelled: {reason.strip()}"[:500],
    )


def cancel_refusal(contract: Contract, money: Standing, amount: int) -> str | None:
    """Why `contract` cannot be cancelled now with a refund of `amount`, or None."""
    if contract.status not in (ContractStatus.ACTIVE, ContractStatus.PAST_DUE):
        return (
            f"This contract is {contract.status.value}; only an active one can be "
            "cancelled with a refund."
        )
    return refusal(contract, money) if amount else None


def _check_confirmed(confirmed: int | None, amount: int, contract: Contract) -> None:
    """Refuse when the amount an admin confirmed is no longer the amount of now."""
    if confirmed is not None and confirmed != amount:
        raise RefundRefused(
            f"The refund is now {money_in(amount, contract)}, not the "
            f"{money_in(confirmed, contract)} you confirmed: something changed meanwhile. "
            "Nothing was done; look at the new figures and decide again."
        )


def amount_refusal(contract: Contract, money: Standing, amount: int) -> str | None:
    """Why a refund of `amount` cannot be made on `contract` now, or None."""
    why_not = refusal(contract, money)
    if why_not:
        return why_not
    if amount <= 0:
        return "A refund must be more than nothing."
    if amount > money.refundable:
        return f"Only {money_in(money.refundable, contract)} is still refundable on this contract."
    return None


@dataclass(frozen=True)
class RefundPreview:
    """What a refund of `amount` would do, worked out as `start_refund` writes it."""

    contract: Contract
    amount: int
    money: Standing  # before it
    refusal: str | None  # why it cannot be made now, or None
    to_stripe: int  # the part that goes back through Stripe, to how the student paid
    offline: int  # the part of payments recorded offline, given back by hand
    stripe_method: str | None = None  # how the Stripe part was paid ("card"), if known

    @property
    def after(self) -> Standing:
        """The standing once this refund (and those on their way) went through."""
        returned = self.money.refund_pending + (0 if self.refusal else self.amount)
        return replace(self.money, refunded=self.money.refunded + returned, refund_pending=0)


def preview_refund(contract: Contract, amount: int, money: Standing | None = None) -> RefundPreview:
    """A refund of `amount` on `contract`, shown before it is made (nothing is written)."""
    money = money or standing_of(contract)
    why_not = amount_refusal(contract, money, amount)
    parts = [] if why_not else _parts(money, amount)
    return RefundPreview(
        contract=contract,
        amount=amount,
        money=money,
        refusal=why_not,
        to_stripe=sum(part for item, part in parts if item.through_stripe),
        offline=sum(part for item, part in parts if not item.through_stripe),
        stripe_method=next(
            (item.payment.payment_method_type for item, _ in parts if item.through_stripe), None
        ),
    )


def start_refund(
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
    why_not = amount_refusal(contract, money, amount)
    if why_not:
        raise RefundRefused(why_not)
    written = []
    for payment, part in _parts(money, amount):
        refund = Refund(
            payment_id=payment.payment.id,
            contract_id=contract.id,
            request_id=request.id if request else None,
            amount=part,
            currency=contract.currency,
            source=source,
            stripe_reason="requested_by_customer",
            note=note,
            # Who asked: the student for their request, the coach for their offer (the
            # admin who approved is on the request).
            requested_by_id=_asked_by(contract, request) if request else (by.id if by else None),
        )
        db.session.add(refund)
        db.session.flush()
        audit(
            "refund.created",
            refund,
            actor=by,
            after={"amount": part, "source": source.value, "contract_id": contract.id,
                   "offline": not payment.through_stripe},
        )
        if payment.through_stripe:
            jobs.enqueue_after_commit(db.session(), send_refund_job, refund.id)
        else:
            settle_refund(refund, RefundStatus.SUCCEEDED, failure_reason=None,
                          actor_label=f"admin:{by.id}" if by else "admin")
        written.append(refund)
    return written[0]


def _asked_by(contract: Contract, request: RefundRequest) -> int:
    return contract.coach_id if request.offered_by_coach else request.student_id


def _parts(money: Standing, amount: int) -> list[tuple[PaymentLeft, int]]:
    """How a refund of `amount` is taken from the payments that can give money back: the
    ones made through Stripe first, the most left first, then those made offline; a
    refund larger than one payment's rest becomes one refund per payment."""
    ordered = sorted(
        (item for item in money.payments if item.left > 0),
        key=lambda item: (not item.through_stripe, -item.left, item.payment.id),
    )
    parts, rest = [], amount
    for item in ordered:
        if rest <= 0:
            break
        part = min(rest, item.left)
        parts.append((item, part))
        rest -= part
    return parts


def void_refund_amount(payment: Payment) -> int:
    """What a void payment still has to give back: what refunds have not given back yet."""
    return payment.amount - live_refunded(payment.id)


def refund_void_payment(payment: Payment) -> Refund | None:
    """A payment that does not count for its contract goes back in full (flushes): what
    refunds (one made in the Stripe Dashboard, say) have not given back yet; None when
    nothing is left.

    Called under the contract's lock when the payment is made void; the refund is
    sent after commit.
    """
    rest = void_refund_amount(payment)
    if rest <= 0:
        return None
    refund = Refund(
        payment_id=payment.id,
        contract_id=payment.contract_id,
        amount=rest,
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


