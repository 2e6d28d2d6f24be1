"""Money back, as a student asks for it: what the contract's own policy gives back today,
why nothing can be given back now, and the student's request (an admin decides it,
`payments.refunds.decisions`), which the student can withdraw until then. Every figure
is read from the money core (`payments.standing`), under the contract's lock when it
decides an amount.
"""

from __future__ import annotations

import logging

from flask import url_for
from sqlalchemy import select

import clock
from accounts.models import User
from audit.services import record as audit
from contracts.models import Contract
from contracts.money import format_money
from contracts.refund_policy import RefundQuote, quote
from contracts.services import lock_contract
from database.states import check_transition
from extensions import db
from notifications.services import notify
from payments.models import (
    REQUEST_TRANSITIONS,
    Dispute,
    Refund,
    RefundCategory,
    RefundRequest,
    RequestStatus,
)
from payments.records import lock_with_contract
from payments.standing import Standing, standing_of
from scheduling.sessions import consumed_count

log = logging.getLogger(__name__)

class RefundRefused(Exception):
    """A refund or request that cannot be made now; the message is for the person asking."""


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


def locked_contract(contract_id: int) -> Contract:
    contract = lock_contract(contract_id)
    if contract is None:
        raise LookupError(f"no contract {contract_id}")
    return contract


def contract_link(contract: Contract) -> str:
    return url_for("contracts.detail", contract_id=contract.id)


def money_in(amount: int, contract: Contract) -> str:
    return format_money(amount, contract.currency)


def request_refund(
    contract_id: int, student: User, *, category: RefundCategory, reason: str
) -> RefundRequest:
    """The student asks for money back; an admin decides. Flushes; the caller commits.

    One open request per contract, none while a dispute is open or when the
    policy gives nothing back. Raises RefundRefused with the reason.
    """
    contract = locked_contract(contract_id)
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
        link=contract_link(contract),
    )
    return request




def withdraw_request(request_id: int, student: User) -> RefundRequest:
    """The student takes back their request before an admin decides it. Flushes.

    The request leaves the admins' queue for good (no admin can approve or reject it
    afterwards); the student may ask again later if the policy still gives something.
    A coach's offer is not the student's to withdraw.
    """
    request, contract = lock_with_contract(RefundRequest, request_id)
    if request.student_id != student.id or contract.student_id != student.id:
        raise LookupError("only the student who asked can withdraw a request")
    if request.offered_by_coach:
        raise RefundRefused(
            f"This refund was offered by {contract.coach.name}; an administrator decides it."
        )
    if request.status is not RequestStatus.OPEN:
        raise RefundRefused(
            f"This request was {request.status.value} already; there is nothing to withdraw."
        )
    request.status = check_transition(
        REQUEST_TRANSITIONS, request.status, RequestStatus.WITHDRAWN, "request"
    )
    request.decided_by_id = student.id
    request.decided_at = clock.now()
    db.session.flush()
    audit(
        "refund_request.withdrawn",
        request,
        actor=student,
        before={"status": RequestStatus.OPEN.value},
        after={"status": request.status.value, "quoted": request.quoted_amount},
    )
    notify(
        contract.coach,
        f"{student.name} withdrew their refund request on “{contract.title}”; "
        "nothing is refunded and nothing else changed.",
        link=contract_link(contract),
    )
    notify(
        student,
        f"You withdrew your refund request on “{contract.title}”; nothing is refunded. "
        "You can ask again while the refund terms give something back.",
        link=contract_link(contract),
        subject=f"Coachpact: your refund request for “{contract.title}” was withdrawn",
    )
    return request
