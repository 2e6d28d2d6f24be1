"""Changes to a running membership: renewals Stripe could not collect, and what the student,
the coach or an admin changes (cancel at period end, pause collection, another offer).

Renewal failures are Stripe's to retry: `invoice.payment_failed` (a decline) and
`invoice.payment_action_required` (the bank wants the student to confirm) record the unpaid
invoice on the membership, its hosted page and Stripe's next attempt, and tell both parties
once per attempt (the invoice's `attempt_count`), however often and in whatever order the
events come. `invoice.paid` clears it (`clear_unpaid`, from `grant_credits`). When Stripe
gives up and cancels, the mirror's move to `canceled` tells both, once (`tell_ended`).

A person's change claims, commits, then asks Stripe as joining does: the membership's
`changes_asked` is counted up under its lock and committed, Stripe is asked with a key from
it, and Stripe's answer is mirrored at once (`mirror_subscription`), so the event that
follows finds it done. Each service takes the acting user, for the pages and the console.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import url_for
from sqlalchemy import select

import clock
from accounts.models import User
from accounts.timezones import format_local
from audit.services import record as audit
from contracts.money import format_money
from contracts.plans import add_months
from contracts.services import NotAllowed
from database.locking import lock_one
from errors import NotFound
from extensions import db
from notifications.services import notify
from offers import membership_events as events
from offers.memberships import MembershipError, price_in_words
from offers.models import Membership, MembershipOffer, MembershipPeriod, MembershipStatus
from payments import stripe_api
from payments.checkout import customer_of
from payments.inbox.table import register

PAUSE_PERIODS = range(1, 7)  # a coach pauses collection for one to six periods
DATE = "%d %b %Y"
ACTION_REQUIRED = "payment_action_required"
# Memberships a person may still change: Stripe bills them.
CHANGEABLE = (MembershipStatus.ACTIVE, MembershipStatus.PAST_DUE)


def _when(seconds: Any) -> datetime | None:
    return datetime.fromtimestamp(int(seconds), UTC) if seconds else None


def _date(moment: datetime | None, user: User) -> str:
    return format_local(moment, user.timezone, DATE)


def _link(membership: Membership) -> str:
    return url_for("memberships.detail", membership_id=membership.id)


# --- renewals Stripe could not collect ---------------------------------------------------


def renewal_unpaid(invoice: dict[str, Any], reason: str) -> str:
    """Record the subscription invoice Stripe could not collect on its membership and tell
    both parties, once per attempt. `reason`: the event's kind, `payment_failed` or
    `payment_action_required`."""
    membership = events.membership_of_invoice(invoice)
    if membership is None:
        return "unrelated"
    attempt = int(invoice.get("attempt_count") or 1)
    if membership.ended or membership.paid_invoice_id == invoice["id"]:
        return "stale"
    told = membership.unpaid_attempt or 0
    if membership.unpaid_invoice_id == invoice["id"] and told >= attempt:
        return "duplicate"  # this attempt, or a later one, was told already
    membership.unpaid_invoice_id = invoice["id"]
    membership.unpaid_invoice_url = invoice.get("hosted_invoice_url")
    membership.next_payment_attempt = _when(invoice.get("next_payment_attempt"))
    membership.payment_failed_at = clock.now()
    membership.unpaid_attempt = attempt
    membership.unpaid_reason = reason
    db.session.flush()
    audit(f"membership.{reason}", membership, actor_label="stripe",
          after={"invoice": invoice["id"], "attempt": attempt,
                 "amount_due": invoice.get("amount_due")})
    _tell_unpaid(membership, int(invoice.get("amount_due") or membership.price_per_period))
    return reason


def _tell_unpaid(membership: Membership, amount: int) -> None:
    """The student, with Stripe's invoice page as the link (in the mail too), and the coach."""
    student, coach = membership.student, membership.coach
    money = format_money(amount, membership.currency)
    if membership.unpaid_reason == ACTION_REQUIRED:
        told = (f"Your bank asks you to confirm the {money} payment for “{membership.title}”: "
                "confirm it with your bank on Stripe’s invoice page (the link).")
        subject = f"Coachpact: confirm your payment for “{membership.title}”"
    else:
        told = (f"The {money} payment for “{membership.title}” did not go through: pay it on "
                "Stripe’s invoice page (the link), or update your card under “Manage billing” "
                "on the membership page.")
        subject = f"Coachpact: your payment for “{membership.title}” failed"
    retry = membership.next_payment_attempt
    told += (f" Stripe tries again on {_date(retry, student)}." if retry else
             " Stripe will not try again: without payment the membership ends.")
    page = membership.unpaid_invoice_url
    notify(student, told, subject=subject,  # a notification's link holds 300 characters
           link=page if page and len(page) <= 300 else _link(membership))
    notify(coach, f"{student.name}’s {money} payment for “{membership.title}” has not gone "
           "through yet; they were asked to pay" + (", and Stripe tries again." if retry
                                                    else ": Stripe will not try again."),
           link=_link(membership))


def clear_unpaid(membership: Membership, invoice_id: str) -> None:
    """The invoice was paid: it is owed no longer (a failure event of it coming late is
    stale). Called by `grant_credits`, the membership locked."""
    membership.paid_invoice_id = invoice_id
    if membership.unpaid_invoice_id != invoice_id:
        return
    membership.unpaid_invoice_id = membership.unpaid_invoice_url = None
    membership.next_payment_attempt = membership.payment_failed_at = None
    membership.unpaid_attempt = None
    membership.unpaid_reason = None


def tell_ended(membership: Membership, subscription: dict[str, Any]) -> None:
    """The mirror moved the membership to `canceled` (once): when Stripe ended it because
    the renewal was never paid, both parties hear why."""
    reason = (subscription.get("cancellation_details") or {}).get("reason")
    if reason != "payment_failed":
        return
    words = (f"The membership “{membership.title}” of {membership.student.name} with "
             f"{membership.coach.name} has ended: the renewal payment failed after "
             "Stripe’s last try.")
    tell_both(membership, words, subject=f"Coachpact: “{membership.title}” ended, payment failed")


def tell_both(membership: Membership, message: str, *, subject: str) -> None:
    """The membership's student and coach hear `message`, mailed too."""
    for person in (membership.student, membership.coach):
        notify(person, message, link=_link(membership), subject=subject)


def _payment_failed(invoice: dict[str, Any]) -> str:
    return renewal_unpaid(invoice, "payment_failed")


def _payment_action_required(invoice: dict[str, Any]) -> str:
    return renewal_unpaid(invoice, ACTION_REQUIRED)


def register_change_handlers() -> None:
    """The inbox's handlers for renewals Stripe could not collect (`offers.init_app`)."""
    register("invoice.payment_failed", _payment_failed)
    register("invoice.payment_action_required", _payment_action_required)


# --- the student's billing portal ---------------------------------------------------------


def portal_url(student: User) -> str:
    """A Stripe customer portal session for the student (their cards, invoices and
    subscriptions), coming back to the Payments page. Raises MembershipError when the
    student has no Stripe customer, PaymentProviderError when Stripe refused."""
    customer = customer_of(student)
    if customer is None:
        raise MembershipError("You have no billing details with Stripe yet.")
    session = stripe_api.create_portal_session(
        {"customer": customer, "return_url": url_for("payments.mine", _external=True)})
    return session.url


# --- changes people ask of Stripe --------------------------------------------------------


def _check_actor(membership: Membership, actor: User, *, coach_side: bool = False) -> None:
    """Raise NotAllowed unless `actor` is the membership's student (with `coach_side` its
    coach) or an admin."""
    party = membership.coach_id if coach_side else membership.student_id
    if actor.id != party and not actor.is_admin:
        raise NotAllowed("Only the " + ("coach" if coach_side else "student")
                         + " of this membership can do that.")


def _claim(membership_id: int, actor: User, *, coach_side: bool = False) -> tuple[str, str]:
    """Lock the membership, check `actor` may change it (its student, or with `coach_side`
    its coach; an admin either way) and that Stripe bills it, count the change and commit.
    The subscription id and the change's idempotency key."""
    membership = lock_one(db.session, select(Membership).where(Membership.id == membership_id))
    if membership is None:
        raise NotFound()
    try:
        _check_actor(membership, actor, coach_side=coach_side)
    except NotAllowed:
        db.session.rollback()
        raise
    if membership.status not in CHANGEABLE or membership.stripe_subscription_id is None:
        db.session.rollback()
        raise MembershipError("This membership can no longer be changed.")
    membership.changes_asked += 1
    claimed = (membership.stripe_subscription_id,
               stripe_api.idempotency_key("membership-change", membership.id,
                                          membership.changes_asked))
    db.session.commit()
    return claimed


def _ask(membership_id: int, actor: User, params: Any, *,
         coach_side: bool = False) -> tuple[Membership, dict[str, Any]]:
    """Claim, ask Stripe for the change, mirror its answer: the membership (locked, its
    state before the mirror in the dict)."""
    subscription_id, key = _claim(membership_id, actor, coach_side=coach_side)
    subscription = stripe_api.modify_subscription(subscription_id, params, key).to_dict()
    membership = lock_one(db.session, select(Membership).where(Membership.id == membership_id))
    before = _state(membership)
    events.mirror_subscription(subscription)
    return membership, before


def _state(membership: Membership) -> dict[str, Any]:
    return {"cancel_at_period_end": membership.cancel_at_period_end,
            "paused_until": membership.paused_until.isoformat() if membership.paused_until
            else None}


def cancel_at_period_end(membership_id: int, actor: User, *, undo: bool = False) -> Membership:
    """The membership ends when its period does (`undo`: it renews after all). Commits."""
    membership = db.session.get(Membership, membership_id)
    if membership is not None and membership.cancel_at_period_end is not undo:
        raise MembershipError("Your membership renews already." if undo
                              else "Your membership ends at the end of this period already.")
    membership, before = _ask(membership_id, actor, {"cancel_at_period_end": not undo})
    audit("membership.renewal_resumed" if undo else "membership.cancel_at_period_end",
          membership, actor=actor, before=before, after=_state(membership))
    ends = _date(membership.current_period_end, membership.coach)
    notify(membership.coach,
           f"{membership.student.name} keeps “{membership.title}”: it renews as before." if undo
           else f"{membership.student.name} leaves “{membership.title}” on {ends}, at the end "
                "of the period.", link=_link(membership))
    db.session.commit()
    return membership


def _periods_on(membership: Membership, moment: datetime, count: int) -> datetime:
    """`moment` plus `count` of the membership's periods (months by the calendar)."""
    if membership.period is MembershipPeriod.WEEK:
        return moment + timedelta(weeks=count)
    return datetime.combine(add_months(moment.date(), count), moment.timetz())


def pause_resumes_at(membership: Membership, periods: int) -> datetime:
    """When collection paused for `periods` resumes: the end of the current period and
    `periods` − 1 periods more. The renewals up to then, that one included, are voided."""
    if periods not in PAUSE_PERIODS:
        raise MembershipError("Pause for one to six periods.")
    end = membership.current_period_end
    if end is None:
        raise MembershipError("This membership has no period yet.")
    return _periods_on(membership, end, periods - 1)


def next_charge(membership: Membership, resumes_at: datetime) -> datetime:
    """The first renewal Stripe charges after a pause resuming at `resumes_at`."""
    return _periods_on(membership, resumes_at, 1)


def pause(membership_id: int, actor: User, periods: int) -> Membership:
    """The coach (or an admin) pauses collection: the next `periods` renewals are voided,
    no payment and no sessions, then Stripe charges again by itself. Commits."""
    membership = db.session.get(Membership, membership_id)
    if membership is None:
        raise NotFound()
    if membership.cancel_at_period_end:
        raise MembershipError("This membership ends at the end of this period: there is "
                              "nothing to pause.")
    resumes_at = pause_resumes_at(membership, periods)
    membership, before = _ask(membership_id, actor, {"pause_collection": {
        "behavior": "void", "resumes_at": int(resumes_at.timestamp())}}, coach_side=True)
    audit("membership.paused", membership, actor=actor, before=before,
          after={**_state(membership), "periods": periods})
    student = membership.student
    _tell(membership, actor, f"paused “{membership.title}”: nothing is charged and no new "
          f"sessions are given from {_date(membership.current_period_end, student)} until "
          f"{_date(next_charge(membership, resumes_at), student)}.",
          subject=f"Coachpact: “{membership.title}” is paused")
    db.session.commit()
    return membership


def resume(membership_id: int, actor: User) -> Membership:
    """Collection resumes at the next renewal. Commits."""
    membership, before = _ask(membership_id, actor, {"pause_collection": ""}, coach_side=True)
    audit("membership.resumed", membership, actor=actor, before=before,
          after=_state(membership))
    _tell(membership, actor, f"resumed “{membership.title}”: {price_in_words(membership)} "
          "from the next renewal.", subject=f"Coachpact: “{membership.title}” is resumed")
    db.session.commit()
    return membership


def _tell(membership: Membership, actor: User, done: str, *, subject: str) -> None:
    """Tell the student what the coach did (`done`, mailed too); when an admin did it,
    both parties hear that an administrator did."""
    if actor.id == membership.coach_id:
        notify(membership.student, f"{membership.coach.name} {done}", link=_link(membership),
               subject=subject)
        return
    tell_both(membership, f"An administrator {done}", subject=subject)


# --- moving to another offer of the same coach ---------------------------------------------


def move_targets(membership: Membership) -> list[MembershipOffer]:
    """The coach's other membership offers the member may move to: for sale, in the same
    currency and period (Stripe keeps a subscription's interval). None while it is not
    active and paid up, or while collection is paused."""
    if (membership.status is not MembershipStatus.ACTIVE or membership.unpaid
            or membership.paused_until is not None):
        return []
    return [offer for offer in db.session.scalars(select(MembershipOffer).where(
        MembershipOffer.coach_id == membership.coach_id,
        MembershipOffer.id != membership.offer_id,
        MembershipOffer.currency == membership.currency,
        MembershipOffer.period == membership.period,
    ).order_by(MembershipOffer.id)) if offer.for_sale]


@dataclass(frozen=True)
class MovePreview:
    """What moving costs now: Stripe's prorated invoice (negative: a credit for later)."""

    offer: MembershipOffer
    amount: int
    currency: str


def _target(membership: Membership, offer_id: int) -> MembershipOffer:
    offer = next((o for o in move_targets(membership) if o.id == offer_id), None)
    if offer is None:
        raise MembershipError("You cannot move to that membership.")
    return offer


def _item_id(membership: Membership) -> str:
    """The subscription's one item (asked of Stripe), whose Price a move changes."""
    assert membership.stripe_subscription_id is not None
    subscription = stripe_api.retrieve_subscription(membership.stripe_subscription_id)
    return str(subscription["items"]["data"][0]["id"])


def proration(membership: Membership, offer: MembershipOffer) -> str:
    """How a move is charged: to more sessions a period, the prorated difference at once
    (its invoice adds the extra sessions to the running period, `grant_credits`); to as
    many or fewer, nothing now: the period keeps what was paid, and the new price starts
    with the next one."""
    return ("always_invoice" if offer.sessions_per_period > membership.sessions_per_period
            else "none")


def preview_move(membership: Membership, offer_id: int) -> MovePreview:
    """What moving to `offer_id` now costs at once (Stripe's prorated invoice, nothing
    changed), or nothing for a move that takes effect with the next period."""
    offer = _target(membership, offer_id)
    if proration(membership, offer) == "none":
        return MovePreview(offer, 0, membership.currency)
    invoice = stripe_api.preview_invoice({
        "subscription": membership.stripe_subscription_id or "",
        "subscription_details": {
            "items": [{"id": _item_id(membership), "price": offer.stripe_price_id or ""}],
            "proration_behavior": "always_invoice"}})
    return MovePreview(offer, int(invoice.total or 0), invoice.currency)


def move(membership_id: int, actor: User, offer_id: int) -> Membership:
    """The member moves to another offer of the coach: Stripe changes the subscription's
    Price and invoices the prorated difference at once; the membership takes the offer's
    terms. Commits."""
    membership = db.session.get(Membership, membership_id)
    if membership is None:
        raise NotFound()
    _check_actor(membership, actor)
    offer = _target(membership, offer_id)
    item = {"id": _item_id(membership), "price": offer.stripe_price_id or ""}
    membership, _ = _ask(membership_id, actor, {
        "items": [item], "proration_behavior": proration(membership, offer)})
    terms = ("offer_id", "title", "sessions_per_period", "minutes_per_session",
             "price_per_period", "stripe_price_id")
    before = {name: getattr(membership, name) for name in terms}
    membership.offer_id = offer.id
    for name in terms[1:]:
        setattr(membership, name, getattr(offer, name))
    db.session.flush()
    audit("membership.moved", membership, actor=actor, before=before,
          after={name: getattr(membership, name) for name in terms})
    on_moved(membership, before["sessions_per_period"])
    notify(membership.coach, f"{membership.student.name} moved from “{before['title']}” to "
           f"“{membership.title}”.", link=_link(membership))
    db.session.commit()
    return membership


def on_moved(membership: Membership, old_sessions: int) -> None:
    """The running period's sessions after a move (from `old_sessions` a period to the new
    offer's): the period's credits stay as granted for now; only recorded."""
    audit("membership.sessions_changed", membership, actor_label="system",
          before={"sessions_per_period": old_sessions},
          after={"sessions_per_period": membership.sessions_per_period})
