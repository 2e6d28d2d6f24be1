"""Memberships: a coach's recurring offers on Stripe Billing, and students joining them.

A membership offer is a Stripe Product with a recurring Price. Saving the offer writes
our row first; the Price is then asked of Stripe with no lock held and an idempotency key
from the offer's id and price version, so a retry (or a double click) gets the same
objects. A new price, currency or period is a new Price version: members already on the
old Price stay on it.

Joining claims, commits, then asks Stripe, as paying a contract does: the student's
`Membership` row is written (status `joining`) under the offer's lock and committed, then
Checkout is asked for a `subscription` session keyed by that row and its attempt. The
subscription's events fill the row (`offers.membership_events`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import url_for
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

import clock
from accounts.models import User
from audit.services import record as audit
from contracts.money import format_money
from contracts.services import NotAllowed, check_sendable, fee_quote
from database.locking import lock_one
from errors import NotFound
from extensions import db
from offers.models import (
    CreditGrant,
    Membership,
    MembershipOffer,
    MembershipPeriod,
    MembershipStatus,
    OfferStatus,
)
from offers.services import set_offer_status
from payments import stripe_api
from payments.checkout.start import ensure_customer, manual_only

# The terms a membership offer is made of, as `create_membership_offer` takes them.
MEMBERSHIP_TERMS = (
    "title", "description", "sessions_per_period", "minutes_per_session",
    "price_per_period", "currency", "period",
)
# What Stripe's Price is made from: a change of any makes a new Price.
PRICE_TERMS = ("price_per_period", "currency", "period")
# An open Checkout session is reused only while it has this long left to live.
REUSE_MARGIN = timedelta(minutes=10)

PERIOD_WORDS = {MembershipPeriod.MONTH: "month", MembershipPeriod.WEEK: "week"}


class MembershipError(Exception):
    """A membership offer that cannot be saved, or joined, as asked; message for the person."""


# --- a coach's membership offers ---------------------------------------------------------


def _checked(terms: dict[str, Any]) -> dict[str, Any]:
    """The terms, checked as a proposal's total is (Stripe's minimum charge for the
    currency, the coach's least share after the platform fee), each period's price being
    one charge. Raises MoneyError or MembershipError."""
    if terms["sessions_per_period"] < 1 or terms["minutes_per_session"] < 1:
        raise MembershipError("A membership needs at least one session of at least a minute.")
    if not isinstance(terms["period"], MembershipPeriod):
        raise MembershipError("A membership is monthly or weekly.")
    check_sendable(
        fee_quote(price_per_session=terms["price_per_period"], session_count=1,
                  currency=terms["currency"]),
        terms["currency"],
    )
    return {**terms, "title": terms["title"].strip(),
            "description": (terms["description"] or "").strip()}


def create_membership_offer(coach: User, **terms: Any) -> MembershipOffer:
    """A new active membership offer (`MEMBERSHIP_TERMS`); on sale once Stripe holds its
    Price (`publish_price`, after the caller commits)."""
    if not coach.is_coach:
        raise NotAllowed("Only coaches make offers.")
    offer = MembershipOffer(coach_id=coach.id, **_checked(terms))
    db.session.add(offer)
    db.session.flush()
    audit("membership_offer.created", offer, actor=coach, after=_terms_of(offer))
    return offer


def update_membership_offer(offer: MembershipOffer, coach: User, **terms: Any) -> bool:
    """Change the offer's terms; True when the Price changes (a new Price version, to be
    published once the caller commits). Members keep their own copy and Price."""
    if offer.status is OfferStatus.ARCHIVED:
        raise MembershipError("This offer is archived; make a new one instead.")
    cleaned = _checked(terms)
    before = _terms_of(offer)
    for name in MEMBERSHIP_TERMS:
        setattr(offer, name, cleaned[name])
    after = _terms_of(offer)
    changed = [key for key in before if before[key] != after[key]]
    new_price = any(key in PRICE_TERMS for key in changed)
    if new_price:
        offer.price_version += 1
        offer.stripe_price_id = None  # not for sale until Stripe holds the new Price
    db.session.flush()
    if changed:
        audit("membership_offer.changed", offer, actor=coach,
              before={key: before[key] for key in changed},
              after={key: after[key] for key in changed})
    return new_price


def set_membership_offer_status(offer: MembershipOffer, coach: User,
                                status: OfferStatus) -> None:
    """Pause, resume or archive; the offers' own table decides (TransitionError)."""
    set_offer_status(offer, coach, status, kind="membership_offer")


def publish_price(offer_id: int) -> MembershipOffer:
    """Make sure Stripe holds the offer's Product and current Price, and record them.

    Called after the offer's change is committed, with no lock held: each object is asked
    for with a key from our ids (the product's from the offer, the price's from its
    version), so asking again gets the same objects. Commits what it records. Raises
    PaymentProviderError when Stripe refused or was not reached (the offer then waits,
    not for sale; saving it again, or this again, finishes the job).
    """
    offer = db.session.get(MembershipOffer, offer_id)
    if offer is None:
        raise NotFound()
    version = offer.price_version
    product_id = offer.stripe_product_id
    if product_id is None:
        product = stripe_api.create_product(
            {"name": offer.title, "metadata": {"membership_offer_id": str(offer.id)}},
            stripe_api.idempotency_key("membership-product", offer.id),
        )
        product_id = product.id
    price_id = offer.stripe_price_id
    if price_id is None:
        price = stripe_api.create_price(
            {"product": product_id, "currency": offer.currency,
             "unit_amount": offer.price_per_period,
             "recurring": {"interval": offer.period.value},
             "metadata": {"membership_offer_id": str(offer.id), "version": str(version)}},
            stripe_api.idempotency_key("membership-price", offer.id, version),
        )
        price_id = price.id
    offer = lock_one(db.session, select(MembershipOffer).where(MembershipOffer.id == offer_id))
    offer.stripe_product_id = product_id
    if offer.price_version == version:  # else a newer change publishes its own Price
        offer.stripe_price_id = price_id
    db.session.commit()
    return offer


def membership_offers_of(coach: User, *statuses: OfferStatus) -> list[MembershipOffer]:
    """The coach's membership offers (of `statuses`, else all), active first."""
    query = select(MembershipOffer).where(MembershipOffer.coach_id == coach.id)
    if statuses:
        query = query.where(MembershipOffer.status.in_(statuses))
    order = list(OfferStatus)
    found = db.session.scalars(query.order_by(MembershipOffer.id))
    return sorted(found, key=lambda offer: order.index(offer.status))


def membership_offer_of_coach(offer_id: int, coach: User) -> MembershipOffer:
    offer = db.session.scalar(select(MembershipOffer).where(
        MembershipOffer.id == offer_id, MembershipOffer.coach_id == coach.id))
    if offer is None:
        raise NotFound()
    return offer


def public_membership_offer(coach: User, offer_id: int) -> MembershipOffer:
    offer = db.session.get(MembershipOffer, offer_id)
    if offer is None or offer.coach_id != coach.id:
        raise NotFound()
    return offer


def price_in_words(offer: MembershipOffer | Membership) -> str:
    """"$40.00 / month, 4 sessions": what the public page and the lists say."""
    sessions = offer.sessions_per_period
    return (f"{format_money(offer.price_per_period, offer.currency)} / "
            f"{PERIOD_WORDS[offer.period]}, {sessions} session{'s' if sessions != 1 else ''}")


def _terms_of(offer: MembershipOffer) -> dict[str, Any]:
    return {name: (value.value if isinstance(value := getattr(offer, name), MembershipPeriod)
                   else value) for name in MEMBERSHIP_TERMS}


# --- joining ---------------------------------------------------------------------------------


def live_membership(student: User, offer_id: int) -> Membership | None:
    """The student's membership of this offer that has not ended, if any."""
    return db.session.scalar(select(Membership).where(
        Membership.student_id == student.id, Membership.offer_id == offer_id,
        Membership.status.not_in([MembershipStatus.CANCELED,
                                  MembershipStatus.INCOMPLETE_EXPIRED])))


def join_refusal(offer: MembershipOffer, user: User) -> str | None:
    """Why `user` cannot join `offer` now, or None when they can."""
    if offer.status is OfferStatus.PAUSED:
        return "This membership is paused by the coach and cannot be joined now."
    if offer.status is OfferStatus.ARCHIVED:
        return "This membership is no longer available."
    if offer.stripe_price_id is None:
        return "This membership is not on sale yet; try again in a moment."
    if user.id == offer.coach_id:
        return "This is your own membership; students join it from your page."
    if not user.is_student:
        return "Only student accounts can join memberships."
    if manual_only():
        return "Memberships are paid by card through Stripe, which is turned off here."
    return None


def start_joining(offer_id: int, student: User) -> str:
    """The Checkout URL for joining this membership: an open session reused, or a new one.

    Commits: the claim (the student's `joining` row, one per offer at a time) before
    Stripe is asked, then the session on it. Raises MembershipError when the offer cannot
    be joined or the student is a member already, PaymentProviderError when Stripe
    refused or was not reached (the claim stays; trying again asks with the same key).
    """
    offer = lock_one(db.session, select(MembershipOffer).where(MembershipOffer.id == offer_id))
    if offer is None:
        raise NotFound()
    refusal = join_refusal(offer, student)
    if refusal is not None:
        db.session.rollback()
        raise MembershipError(refusal)
    moment = clock.now()
    membership = live_membership(student, offer.id)
    if membership is not None and membership.status is not MembershipStatus.JOINING:
        db.session.rollback()
        raise MembershipError("You are a member already: see it under Memberships.")
    if membership is None:
        membership = Membership(
            student_id=student.id, coach_id=offer.coach_id, offer_id=offer.id,
            title=offer.title, sessions_per_period=offer.sessions_per_period,
            minutes_per_session=offer.minutes_per_session,
            price_per_period=offer.price_per_period, currency=offer.currency,
            period=offer.period, stripe_price_id=offer.stripe_price_id,
        )
        db.session.add(membership)
        db.session.flush()
        audit("membership.joining", membership, actor=student, after={"offer_id": offer.id})
    elif (membership.checkout_url and membership.checkout_expires_at
          and membership.checkout_expires_at > moment + REUSE_MARGIN
          and membership.stripe_price_id == offer.stripe_price_id):
        db.session.rollback()
        return membership.checkout_url
    elif membership.checkout_session_id is not None:
        # The last session expired (or the price changed): a new attempt, a new key.
        membership.checkout_attempt += 1
        membership.checkout_session_id = membership.checkout_url = None
        membership.checkout_expires_at = None
        membership.stripe_price_id = offer.stripe_price_id
    membership_id, attempt = membership.id, membership.checkout_attempt
    price_id = membership.stripe_price_id
    if price_id is None:  # join_refusal saw the offer's Price; the claim copied it
        raise MembershipError("This membership is not on sale yet; try again in a moment.")
    try:
        db.session.commit()  # the claim, and the lock let go, before Stripe is asked
    except IntegrityError:
        # Another tab's claim for the same offer committed first: join through it.
        db.session.rollback()
        return start_joining(offer_id, student)
    customer = ensure_customer(student)
    db.session.commit()  # the customer, if new, is kept whatever follows
    metadata = {"membership_id": str(membership_id), "student_id": str(student.id),
                "membership_offer_id": str(offer_id)}
    session = stripe_api.create_checkout_session(
        {
            "mode": "subscription",
            "customer": customer,
            "line_items": [{"price": price_id, "quantity": 1}],
            "subscription_data": {"metadata": metadata},
            "metadata": metadata,
            "client_reference_id": f"membership-{membership_id}",
            "success_url": url_for("memberships.detail", membership_id=membership_id,
                                   _external=True) + "?joined=1",
            "cancel_url": url_for("memberships.index", _external=True),
        },
        stripe_api.idempotency_key("membership-checkout", membership_id, attempt),
    )
    membership = lock_one(db.session, select(Membership).where(Membership.id == membership_id))
    if membership.checkout_attempt == attempt and membership.checkout_session_id is None:
        membership.checkout_session_id = session.id
        membership.checkout_url = session.url
        # Stripe's own lifetime for the session (a day), as Stripe says it.
        membership.checkout_expires_at = datetime.fromtimestamp(session.expires_at, UTC)
    db.session.commit()
    return session.url or ""


# --- what the pages show ---------------------------------------------------------------------


@dataclass(frozen=True)
class MembershipView:
    """A membership with the credits its current period was granted."""

    membership: Membership
    credits: int
    credits_from: datetime | None
    credits_until: datetime | None


def credits_now(membership: Membership, moment: datetime | None = None) -> MembershipView:
    """The session credits granted for the period running at `moment` (now): those of
    the paid invoices whose period holds it."""
    return _with_credits([membership], moment)[0]


def _with_credits(memberships: list[Membership],
                  moment: datetime | None = None) -> list[MembershipView]:
    """Each membership with its running period's credits, read in one statement."""
    moment = moment or clock.now()
    grants: dict[int, list[CreditGrant]] = {membership.id: [] for membership in memberships}
    for grant in db.session.scalars(select(CreditGrant).where(
        CreditGrant.membership_id.in_(list(grants)),
        CreditGrant.period_start <= moment, CreditGrant.period_end > moment,
    )):
        grants[grant.membership_id].append(grant)
    return [
        MembershipView(
            membership, sum(grant.sessions for grant in grants[membership.id]),
            min((g.period_start for g in grants[membership.id]), default=None),
            max((g.period_end for g in grants[membership.id]), default=None),
        )
        for membership in memberships
    ]


def memberships_of(user: User) -> list[MembershipView]:
    """The user's memberships (as student or coach) that got past Checkout, newest first,
    with the other party loaded: three statements whatever their number."""
    column = Membership.coach_id if user.is_coach else Membership.student_id
    other = Membership.student if user.is_coach else Membership.coach
    found = list(db.session.scalars(
        select(Membership).where(column == user.id,
                                 Membership.status != MembershipStatus.JOINING)
        .options(selectinload(other))
        .order_by(Membership.created_at.desc(), Membership.id.desc())))
    return _with_credits(found)


def membership_for(membership_id: int, user: User) -> Membership:
    """The membership if `user` is its student or coach; to anyone else a 404."""
    membership = db.session.get(Membership, membership_id)
    if membership is None or user.id not in (membership.student_id, membership.coach_id):
        raise NotFound()
    return membership


def grants_of(membership: Membership) -> list[CreditGrant]:
    """The membership's credit grants, one per paid invoice, newest period first."""
    return list(db.session.scalars(select(CreditGrant).where(
        CreditGrant.membership_id == membership.id
    ).order_by(CreditGrant.period_start.desc(), CreditGrant.id.desc())))
