"""Proposal and contract operations. They flush; the caller commits once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from flask import current_app, has_request_context, url_for
from sqlalchemy import or_, select
from sqlalchemy.orm.attributes import set_committed_value

import clock
from accounts.models import Role, User
from accounts.services import find_user_by_email
from accounts.timezones import format_local
from contracts import lifecycle
from contracts.models import (
    PROPOSAL_TRANSITIONS,
    Contract,
    ContractStatus,
    DealTerms,
    PaymentStatus,
    Proposal,
    ProposalStatus,
)
from contracts.money import (
    CURRENCY_DECIMALS,
    MAX_CHARGE_AMOUNT,
    MIN_CHARGE_AMOUNT,
    MoneyError,
    Quote,
    check_coach_earning,
    check_minimum_charge,
    currency_symbol,
    format_money,
    minimum_fee,
    quote,
)
from contracts.plans import DEPOSIT_PERCENT_RANGE, INSTALMENTS_RANGE
from contracts.refund_policy import window_days_in_force
from database.locking import lock_one
from database.states import TransitionError, check_transition
from errors import NotFound
from extensions import db
from notifications.services import notify


class ProposalError(Exception):
    """A proposal that cannot be sent as asked; the message is for the coach."""


class NotAllowed(Exception):
    """The user is a party but not the one who may do this (the view answers 403)."""


def fee_quote(*, price_per_session: int, session_count: int, currency: str) -> Quote:
    """The split for these terms under the configured platform fee."""
    return quote(
        price_per_session=price_per_session,
        session_count=session_count,
        currency=currency,
        fee_percent=current_app.config["PLATFORM_FEE_PERCENT"],
        fee_minimum=current_app.config["PLATFORM_FEE_MINIMUM"],
    )


def least_fee(currency: str) -> int:
    """The configured minimum platform fee in `currency`, in minor units."""
    return minimum_fee(current_app.config["PLATFORM_FEE_MINIMUM"], currency)


@dataclass(frozen=True)
class Preview:
    """What the proposal form's terms come to, as the coach types them."""

    split: Quote | None  # None when the total is too large to be charged at all
    problem: str | None  # why these terms could not be sent, if they could not


def preview_terms(*, price_per_session: int, session_count: int, currency: str) -> Preview:
    """The split `send_proposal` would make of these terms, and what it would refuse."""
    try:
        split = fee_quote(
            price_per_session=price_per_session, session_count=session_count, currency=currency
        )
    except MoneyError as exc:
        return Preview(split=None, problem=str(exc))
    try:
        check_sendable(split, currency)
    except MoneyError as exc:
        return Preview(split=split, problem=str(exc))
    return Preview(split=split, problem=None)


def check_sendable(split: Quote, currency: str) -> None:
    """Refuse (MoneyError) a total Stripe could never charge, or one that would leave the
    coach less than MINIMUM_COACH_EARNING_PERCENT of it."""
    check_minimum_charge(split.total, currency)
    check_coach_earning(
        split, currency, Decimal(current_app.config["MINIMUM_COACH_EARNING_PERCENT"])
    )


def fee_rule() -> dict[str, Any]:
    """What the form's script needs to price terms exactly as `preview_terms` does.

    Decimals travel as plain strings ("2.9", never "2.9E+0") so the script can read them
    as exact fractions; amounts are minor units.
    """
    config = current_app.config
    return {
        "percent": format(Decimal(config["PLATFORM_FEE_PERCENT"]), "f"),
        "minimum": format(Decimal(config["PLATFORM_FEE_MINIMUM"]), "f"),
        "min_earning_percent": format(Decimal(config["MINIMUM_COACH_EARNING_PERCENT"]), "f"),
        "max_total": MAX_CHARGE_AMOUNT,
        "currencies": {
            code: {
                "decimals": decimals,
                "symbol": currency_symbol(code),
                "min_charge": MIN_CHARGE_AMOUNT[code],
            }
            for code, decimals in CURRENCY_DECIMALS.items()
        },
    }


def check_terms(
    *,
    price_per_session: int,
    session_count: int,
    currency: str,
    plan_deposit_percent: int | None,
    plan_max_instalments: int | None,
    plan_minimum_total: int | None = None,
) -> Quote:
    """The split of terms a coach may sell, by proposal or offer; refuses (MoneyError) a
    total that could never be charged or would earn the coach too little, and
    (ProposalError) plan terms out of range. The forms check the settings too."""
    split = fee_quote(
        price_per_session=price_per_session, session_count=session_count, currency=currency
    )
    check_sendable(split, currency)
    # A plan is both terms within their ranges, or none.
    if (plan_deposit_percent, plan_max_instalments) != (None, None) and (
        plan_deposit_percent is None
        or plan_max_instalments is None
        or not DEPOSIT_PERCENT_RANGE[0] <= plan_deposit_percent <= DEPOSIT_PERCENT_RANGE[1]
        or not INSTALMENTS_RANGE[0] <= plan_max_instalments <= INSTALMENTS_RANGE[1]
    ):
        raise ProposalError(
            f"A payment plan needs a deposit of {DEPOSIT_PERCENT_RANGE[0]} to "
            f"{DEPOSIT_PERCENT_RANGE[1]} % and {INSTALMENTS_RANGE[0]} to "
            f"{INSTALMENTS_RANGE[1]} instalments."
        )
    if plan_minimum_total is not None and (plan_deposit_percent is None or plan_minimum_total < 1):
        raise ProposalError("A plan's smallest total needs a plan and a positive amount.")
    return split


def send_proposal(
    coach: User,
    *,
    student_email: str,
    title: str,
    description: str,
    session_count: int,
    minutes_per_session: int,
    price_per_session: int,
    currency: str,
    plan_deposit_percent: int | None = None,
    plan_max_instalments: int | None = None,
) -> Proposal:
    """Send a proposal; with both plan terms the student may also pay by a deposit and up
    to `plan_max_instalments` monthly instalments (`contracts.plans`)."""
    if not coach.is_coach:
        raise NotAllowed("Only coaches send proposals.")
    student = find_user_by_email(student_email)
    if student is None or student.role is not Role.STUDENT:
        raise ProposalError("There is no student with this email on Coachpact.")
    split = check_terms(
        price_per_session=price_per_session,
        session_count=session_count,
        currency=currency,
        plan_deposit_percent=plan_deposit_percent,
        plan_max_instalments=plan_max_instalments,
    )
    proposal = Proposal(
        coach=coach,
        student=student,
        title=title.strip(),
        description=description.strip(),
        session_count=session_count,
        minutes_per_session=minutes_per_session,
        price_per_session=price_per_session,
        currency=currency,
        plan_deposit_percent=plan_deposit_percent,
        plan_max_instalments=plan_max_instalments,
        expires_at=_expiry_from_now(),
    )
    db.session.add(proposal)
    db.session.flush()
    amount = format_money(split.total, currency)
    notify(
        student,
        f"{coach.name} sent you a proposal: “{proposal.title}”, {session_count} sessions "
        f"for {amount}. Have a look, and accept it when it suits you.",
        link=path_to("contracts.proposal", proposal_id=proposal.id),
        subject=f"Coachpact: a proposal from {coach.name}",
    )
    return proposal


def _expiry_from_now() -> datetime | None:
    """When a proposal sent now stops being open: PROPOSAL_EXPIRY_DAYS ahead; 0 = never."""
    days = current_app.config["PROPOSAL_EXPIRY_DAYS"]
    return clock.now() + timedelta(days=days) if days else None


def proposal_expired(proposal: Proposal) -> bool:
    """Whether the proposal can no longer be answered because its time ran out.

    A sent proposal past `expires_at` counts as expired before the periodic job has
    marked it: nobody may accept it in between.
    """
    if proposal.status is ProposalStatus.EXPIRED:
        return True
    return (
        proposal.status is ProposalStatus.SENT
        and proposal.expires_at is not None
        and clock.now() >= proposal.expires_at
    )


def shown_status(proposal: Proposal) -> ProposalStatus:
    """The status to show: EXPIRED as soon as the time is up, even before the job ran."""
    return ProposalStatus.EXPIRED if proposal_expired(proposal) else proposal.status


def path_to(endpoint: str, **values: Any) -> str:
    """The path of a page, for a notification's link.

    Proposals are also sent and answered outside any request (the demo loader, the
    benchmark's setup): there the path is built against APP_BASE_URL, as jobs do.
    """
    if has_request_context():
        return url_for(endpoint, **values)
    base = urlsplit(current_app.config["APP_BASE_URL"])
    adapter = current_app.url_map.bind(
        base.netloc, script_name=base.path or "/", url_scheme=base.scheme or "http"
    )
    return adapter.build(endpoint, values)


def party_filter(model: type[Proposal] | type[Contract], user: User):
    """Rows of `model` where `user` is the coach or the student."""
    return or_(model.coach_id == user.id, model.student_id == user.id)


def proposal_for_party(proposal_id: int, user: User, *, lock: bool = False) -> Proposal:
    """The proposal if `user` is its coach or student; anyone else gets a 404."""
    query = select(Proposal).where(party_filter(Proposal, user))
    if lock:
        # The lock serialises concurrent answers; the second one then sees the
        # first one's status and is refused by the transition table.
        proposal = lock_one(db.session, query.where(Proposal.id == proposal_id))
    else:
        proposal = db.session.scalar(query.where(Proposal.id == proposal_id))
    if proposal is None:
        raise NotFound()
    return proposal


def lock_contract(contract_id: int) -> Contract | None:
    """The contract, its row locked until the transaction ends (every change to a
    contract's payment or sessions takes this lock first)."""
    return lock_one(db.session, select(Contract).where(Contract.id == contract_id))


def load_parties(contract: Contract) -> None:
    """The contract's coach and student read in one statement, for code about to use both
    (their lazy loads then find them in the session)."""
    found = {user.id: user for user in db.session.scalars(
        select(User).where(User.id.in_((contract.coach_id, contract.student_id)))
    )}
    set_committed_value(contract, "coach", found[contract.coach_id])
    set_committed_value(contract, "student", found[contract.student_id])


def contract_for_party(contract_id: int, user: User) -> Contract:
    """The contract if `user` is its coach or student; anyone else gets a 404."""
    contract = db.session.scalar(
        select(Contract).where(Contract.id == contract_id, party_filter(Contract, user))
    )
    if contract is None:
        raise NotFound()
    return contract


def cancel_refusal(contract: Contract) -> str | None:
    """Why a party cannot cancel `contract`, or None when they can: pending and unpaid only."""
    if contract.paid_at is not None:
        return "This contract is paid; it can only be closed by a refund, not cancelled."
    if contract.payment_status is PaymentStatus.PROCESSING:
        return "A payment for this contract is on its way; it cannot be cancelled now."
    if contract.status is not ContractStatus.PENDING:
        return (
            f"This contract is {contract.status.value}; "
            "only a pending, unpaid contract can be cancelled."
        )
    return None


def cancel_contract(contract_id: int, user: User, *, reason: str) -> Contract:
    """Cancel a pending, unpaid contract as its coach or student; the other party is told.

    Strangers get a 404; a contract that cannot be cancelled raises TransitionError.
    """
    contract = lock_contract(contract_id)
    if contract is None or not contract.party_of(user):
        raise NotFound()
    refusal = cancel_refusal(contract)
    if refusal is not None:
        raise TransitionError(refusal)
    lifecycle.cancel(contract, by=user, reason=reason.strip())
    return contract


def _respond(proposal_id: int, user: User, new: ProposalStatus, *, by_student: bool) -> Proposal:
    proposal = proposal_for_party(proposal_id, user, lock=True)
    allowed_user = proposal.student_id if by_student else proposal.coach_id
    if user.id != allowed_user:
        raise NotAllowed(
            "Only the student can answer this proposal."
            if by_student
            else "Only the coach can withdraw this proposal."
        )
    if proposal_expired(proposal):
        when = format_local(proposal.expires_at, user.timezone)
        raise TransitionError(
            f"This proposal expired on {when}; ask the coach for a new one."
            if by_student
            else f"This proposal expired on {when}; there is nothing left to withdraw."
        )
    proposal.status = check_transition(PROPOSAL_TRANSITIONS, proposal.status, new, "proposal")
    proposal.responded_at = clock.now()
    return proposal


def accept_proposal(proposal_id: int, student: User) -> Contract:
    """Accept a sent proposal and create its one contract, pending payment; the coach is told."""
    proposal = _respond(proposal_id, student, ProposalStatus.ACCEPTED, by_student=True)
    return _open_contract(
        proposal,
        f"{proposal.student.name} accepted your proposal “{proposal.title}”. "
        "We will tell you as soon as it is paid.",
        subject=f"Coachpact: “{proposal.title}” was accepted",
    )


def accept_offered_terms(
    coach: User, student: User, terms: DealTerms, *, offer_id: int
) -> Contract:
    """A student takes a coach's standing offer: the same path as a proposal accepted at
    once. An accepted proposal snapshots the offer's terms (and remembers the offer),
    then `_open_contract` makes the contract exactly as `accept_proposal` does. Flushes;
    the caller holds the offer's lock and checked that it may be bought."""
    if not coach.is_coach:
        raise NotAllowed("Only a coach's offers can be bought.")
    if not student.is_student:
        raise NotAllowed("Only students can buy an offer.")
    proposal = Proposal(
        coach=coach,
        student=student,
        offer_id=offer_id,
        **{name: getattr(terms, name) for name in DEAL_TERMS},
    )
    db.session.add(proposal)
    db.session.flush()
    proposal.status = check_transition(
        PROPOSAL_TRANSITIONS, proposal.status, ProposalStatus.ACCEPTED, "proposal"
    )
    proposal.responded_at = clock.now()
    return _open_contract(
        proposal,
        f"{student.name} bought your offer “{proposal.title}”. "
        "We will tell you as soon as it is paid.",
        subject=f"Coachpact: “{proposal.title}” was bought",
    )


# The columns of `DealTerms`: what an offer, a proposal and a contract all carry.
DEAL_TERMS = (
    "title",
    "description",
    "session_count",
    "minutes_per_session",
    "price_per_session",
    "currency",
    "plan_deposit_percent",
    "plan_max_instalments",
    "plan_minimum_total",
)


def _open_contract(proposal: Proposal, coach_notice: str, *, subject: str) -> Contract:
    """The one contract of an accepted proposal, pending payment; the coach is told."""
    split = fee_quote(
        price_per_session=proposal.price_per_session,
        session_count=proposal.session_count,
        currency=proposal.currency,
    )
    # A proposal sent before the minimum was checked must not become an unpayable contract.
    check_minimum_charge(split.total, proposal.currency)
    contract = Contract(
        proposal=proposal,
        coach_id=proposal.coach_id,
        student_id=proposal.student_id,
        offer_id=proposal.offer_id,
        **{name: getattr(proposal, name) for name in DEAL_TERMS},
        total_amount=split.total,
        platform_fee=split.platform_fee,
        coach_earning=split.coach_earning,
        # The refund policy is part of the deal: later setting changes never reach it.
        # So are the plans the coach allows (DEAL_TERMS; the student chooses one, if
        # any, at payment).
        refund_full_window_days=window_days_in_force(),
    )
    db.session.add(contract)
    db.session.flush()
    notify(
        proposal.coach,
        coach_notice,
        link=path_to("contracts.detail", contract_id=contract.id),
        subject=subject,
    )
    return contract


def decline_proposal(proposal_id: int, student: User) -> Proposal:
    """Decline a sent proposal; the coach is told."""
    proposal = _respond(proposal_id, student, ProposalStatus.DECLINED, by_student=True)
    notify(
        proposal.coach,
        f"{proposal.student.name} declined your proposal “{proposal.title}”.",
        link=path_to("contracts.proposal", proposal_id=proposal.id),
        subject=f"Coachpact: “{proposal.title}” was declined",
    )
    return proposal


def withdraw_proposal(proposal_id: int, coach: User) -> Proposal:
    return _respond(proposal_id, coach, ProposalStatus.WITHDRAWN, by_student=False)


__all__ = [
    "NotAllowed",
    "ProposalError",
    "TransitionError",
    "accept_offered_terms",
    "accept_proposal",
    "check_terms",
    "cancel_contract",
    "cancel_refusal",
    "contract_for_party",
    "decline_proposal",
    "fee_quote",
    "preview_terms",
    "proposal_expired",
    "proposal_for_party",
    "send_proposal",
    "shown_status",
    "withdraw_proposal",
]
