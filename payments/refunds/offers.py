"""Money back, as a coach offers it: an amount and a reason on one of their contracts.

What the contract's own policy gives back now goes straight through, by the same refund
path an admin's refunds take (written under the contract's lock, sent to Stripe after
commit; the coach's share of what goes back is taken from their transfers as for any
refund). More than that, up to what is still refundable, waits for an admin as a
request marked as the coach's offer (`payments.refunds.decisions.approve_request`).
"""

from __future__ import annotations

from dataclasses import dataclass

from accounts.models import User
from audit.services import record as audit
from contracts.models import Contract
from extensions import db
from notifications.services import notify
from payments.models import RefundCategory, RefundRequest, RefundSource
from payments.refunds.decisions import start_refund
from payments.refunds.requests import (
    RefundRefused,
    contract_link,
    locked_contract,
    money_in,
    open_request_of,
    quote_now,
    refusal,
)
from payments.standing import Standing, standing_of

REASON_LIMIT = 500


@dataclass(frozen=True)
class OfferOutlook:
    """What a coach's offer of `amount` would do now, or why it cannot be made."""

    amount: int
    policy_amount: int  # what the contract's policy gives back now
    refundable: int  # the most that can still go back
    straight_through: bool  # within the policy: refunded at once; else an admin decides


def outlook(contract: Contract, amount: int, money: Standing | None = None) -> OfferOutlook:
    """Where an offer of `amount` would go, from the money core; raises RefundRefused
    with the reason when it cannot be made (nothing paid, a dispute, a bad amount)."""
    money = money or standing_of(contract)
    why_not = refusal(contract, money)
    if why_not:
        raise RefundRefused(why_not)
    if amount <= 0:
        raise RefundRefused("A refund must be more than nothing.")
    if amount > money.refundable:
        raise RefundRefused(
            f"Only {money_in(money.refundable, contract)} is still refundable on this "
            f"contract; {money_in(amount, contract)} is more than that."
        )
    policy_amount = quote_now(contract, money).amount
    straight = amount <= policy_amount
    if not straight and open_request_of(contract) is not None:
        raise RefundRefused(
            f"{contract.student.name} has a refund request waiting for an administrator; "
            f"an offer above what the refund terms give ({money_in(policy_amount, contract)}) "
            "can be made once it is decided."
        )
    return OfferOutlook(amount, policy_amount, money.refundable, straight)


def offer_refund(
    contract_id: int, coach: User, *, amount: int, reason: str
) -> tuple[OfferOutlook, int]:
    """The coach gives `amount` back on their contract; the outlook and the id of the
    refund (straight through) or of the request (for an admin). Flushes; after the
    caller commits, a refund is sent to Stripe by its job (or `send_now`)."""
    contract = locked_contract(contract_id)
    if contract.coach_id != coach.id:
        raise LookupError("only the contract's coach can offer a refund")
    reason = reason.strip()
    if not reason:
        raise RefundRefused(f"Say why you offer this refund; {contract.student.name} sees it.")
    money = standing_of(contract)
    seen = outlook(contract, amount, money)
    if seen.straight_through:
        refund = start_refund(
            contract, money, amount, source=RefundSource.COACH, by=coach,
            note=reason[:REASON_LIMIT],
        )
        audit("refund.offered", refund, actor=coach, after={
            "amount": amount, "policy_amount": seen.policy_amount, "reason": reason[:REASON_LIMIT],
            "straight_through": True, "contract_id": contract.id})
        notify(
            contract.student,
            f"{coach.name} refunded you {money_in(amount, contract)} on “{contract.title}”; "
            f"it is on its way back to how you paid. Their reason: {reason}",
            link=contract_link(contract),
            subject=f"Coachpact: {coach.name} refunded you {money_in(amount, contract)}",
        )
        notify(
            coach,
            f"You refunded {money_in(amount, contract)} of “{contract.title}” to "
            f"{contract.student.name}; your earnings on this contract are reduced by your "
            "share of it.",
            link=contract_link(contract),
        )
        return seen, refund.id
    request = RefundRequest(
        contract_id=contract.id,
        student_id=contract.student_id,
        category=RefundCategory.OTHER,
        reason=reason,
        quoted_amount=seen.policy_amount,
        offered_amount=amount,
    )
    db.session.add(request)
    db.session.flush()
    audit("refund_request.offered", request, actor=coach, after={
        "amount": amount, "policy_amount": seen.policy_amount, "contract_id": contract.id})
    policy = money_in(seen.policy_amount, contract)
    notify(
        contract.student,
        f"{coach.name} offered you a refund of {money_in(amount, contract)} on "
        f"“{contract.title}”. It is more than the refund terms give now ({policy}), so an "
        f"administrator approves it first; you will be told. Their reason: {reason}",
        link=contract_link(contract),
        subject=f"Coachpact: {coach.name} offered you a refund",
    )
    notify(
        coach,
        f"Your refund offer of {money_in(amount, contract)} on “{contract.title}” is more "
        f"than the refund terms give now ({policy}); an administrator decides it.",
        link=contract_link(contract),
    )
    return seen, request.id
