"""Offer operations and purchases. They flush; the caller commits once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select

import clock
from accounts.models import User
from audit.services import record as audit
from contracts.models import Contract, ContractStatus
from contracts.plans import PlanOption, allowed_plans, plans_in_words
from contracts.services import (
    DEAL_TERMS,
    NotAllowed,
    ProposalError,
    accept_offered_terms,
    check_terms,
)
from database.locking import lock_one
from database.states import check_transition
from errors import NotFound
from extensions import db
from offers.models import OFFER_TRANSITIONS, Offer, OfferStatus
from payments.plan_terms import rules


class OfferError(Exception):
    """An offer that cannot be saved or bought as asked; the message is for the person."""


# --- a coach's offers --------------------------------------------------------------


def offers_of(coach: User, *statuses: OfferStatus) -> list[Offer]:
    """The coach's offers (of `statuses`, else all), active first, in the order the coach
    made them."""
    query = select(Offer).where(Offer.coach_id == coach.id)
    if statuses:
        query = query.where(Offer.status.in_(statuses))
    found = db.session.scalars(query.order_by(Offer.id))
    order = list(OfferStatus)
    return sorted(found, key=lambda offer: order.index(offer.status))


def offer_of_coach(offer_id: int, coach: User) -> Offer:
    """The coach's own offer; anyone else's is a 404."""
    offer = db.session.scalar(
        select(Offer).where(Offer.id == offer_id, Offer.coach_id == coach.id)
    )
    if offer is None:
        raise NotFound()
    return offer


def _checked_terms(terms: dict[str, Any]) -> dict[str, Any]:
    """The terms, checked as a proposal's are; OfferError says what is wrong."""
    try:
        check_terms(
            price_per_session=terms["price_per_session"],
            session_count=terms["session_count"],
            currency=terms["currency"],
            plan_deposit_percent=terms["plan_deposit_percent"],
            plan_max_instalments=terms["plan_max_instalments"],
            plan_minimum_total=terms["plan_minimum_total"],
        )
    except ProposalError as exc:
        raise OfferError(str(exc)) from None
    cleaned = dict(terms)
    cleaned["title"] = terms["title"].strip()
    cleaned["description"] = terms["description"].strip()
    return cleaned


def create_offer(coach: User, **terms: Any) -> Offer:
    """A new active offer with these terms (`DEAL_TERMS`). Raises MoneyError or OfferError."""
    if not coach.is_coach:
        raise NotAllowed("Only coaches make offers.")
    offer = Offer(coach_id=coach.id, **_checked_terms(terms))
    db.session.add(offer)
    db.session.flush()
    audit("offer.created", offer, actor=coach, after=_terms_of(offer))
    return offer


def update_offer(offer: Offer, coach: User, **terms: Any) -> None:
    """Change an offer's terms. Contracts already made keep their own copy; an archived
    offer is not changed any more."""
    if offer.status is OfferStatus.ARCHIVED:
        raise OfferError("This offer is archived; make a new one instead.")
    cleaned = _checked_terms(terms)
    before = _terms_of(offer)
    for name in DEAL_TERMS:
        setattr(offer, name, cleaned[name])
    db.session.flush()
    after = _terms_of(offer)
    changed = [key for key in before if before[key] != after[key]]
    if changed:
        audit("offer.changed", offer, actor=coach,
              before={key: before[key] for key in changed},
              after={key: after[key] for key in changed})


def set_offer_status(offer: Any, coach: User, status: OfferStatus, *,
                     kind: str = "offer") -> None:
    """Pause, resume or archive an offer, or a membership offer (`kind` names it in the
    audit trail); refused (TransitionError) unless the offers' table has the move."""
    before = offer.status
    offer.status = check_transition(OFFER_TRANSITIONS, offer.status, status, "offer")
    db.session.flush()
    audit(f"{kind}.{status.value}", offer, actor=coach,
          before={"status": before.value}, after={"status": status.value})


def _terms_of(offer: Offer) -> dict[str, Any]:
    return {name: getattr(offer, name) for name in DEAL_TERMS}


# --- what a student sees ---------------------------------------------------------


@dataclass(frozen=True)
class OfferPrice:
    """What an offer costs: in full, and by each plan its rules allow today."""

    offer: Offer
    plans: list[PlanOption]
    in_words: str


def price_of(offer: Offer, today: date | None = None) -> OfferPrice:
    """The offer's total and the plans `contracts.plans.allowed_plans` gives it under the
    platform's settings: the same function the pay page asks for a contract."""
    plans = allowed_plans(offer, offer.total, rules(), today or clock.now().date())
    return OfferPrice(offer, plans, plans_in_words(offer.total, offer.currency, plans))


def public_offer(coach: User, offer_id: int) -> Offer:
    """An offer of this coach's page, whatever its status (the page says whether it can
    be bought); another coach's is a 404."""
    offer = db.session.get(Offer, offer_id)
    if offer is None or offer.coach_id != coach.id:
        raise NotFound()
    return offer


# --- buying --------------------------------------------------------------------------


def pending_purchase(student: User, offer_id: int) -> Contract | None:
    """The student's unpaid contract for this offer, if one is waiting."""
    return db.session.scalar(
        select(Contract).where(
            Contract.student_id == student.id,
            Contract.offer_id == offer_id,
            Contract.status == ContractStatus.PENDING,
        )
    )


def buy_refusal(offer: Offer, user: User) -> str | None:
    """Why `user` cannot buy `offer` now, or None when they can."""
    if offer.status is OfferStatus.PAUSED:
        return "This offer is paused by the coach and cannot be bought now."
    if offer.status is OfferStatus.ARCHIVED:
        return "This offer is no longer available."
    if user.id == offer.coach_id:
        return "This is your own offer; students buy it from your page."
    if not user.is_student:
        return "Only student accounts can buy offers."
    return None


def buy_offer(offer_id: int, student: User) -> tuple[Contract, bool]:
    """The student's contract for this offer: (a new one, True), or (the unpaid one they
    already have for it, False). Raises OfferError when the offer cannot be bought.

    One purchase at a time: the offer's row is locked, so two tabs buying at once are
    decided one after the other and the second finds the first's contract; the partial
    unique index on contracts (student, offer, pending) guards the same rule in the
    database. The contract is made by `accept_offered_terms`, the path of an accepted
    proposal.
    """
    offer = lock_one(db.session, select(Offer).where(Offer.id == offer_id))
    if offer is None:
        raise NotFound()
    refusal = buy_refusal(offer, student)
    if refusal is not None:
        raise OfferError(refusal)
    waiting = pending_purchase(student, offer.id)
    if waiting is not None:
        return waiting, False
    contract = accept_offered_terms(offer.coach, student, offer, offer_id=offer.id)
    audit("offer.bought", offer, actor=student, after={"contract_id": contract.id})
    return contract, True
