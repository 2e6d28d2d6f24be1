"""Ending a membership now: the coach or an admin cancels the subscription at Stripe, the
running period's contract closes and its unused time goes back to the student.

The refund is computed from the period's standing (`payments.standing`): what the period
kept, in proportion to the time left of it, rounded down to the minor unit, never more
than is still refundable. It goes back through the money core as any contract's refund
(`payments.refunds.decisions.start_refund`), on the invoice's payment. Sessions booked
from now on (the running period's, and rolled-over credits of an earlier one) are
cancelled; sessions already delivered stay delivered, and their coach is paid for them.
"""

from __future__ import annotations

from datetime import datetime

from flask import url_for
from sqlalchemy import select

import clock
from accounts.models import User
from audit.services import record as audit
from contracts import lifecycle
from contracts.models import Contract, ContractStatus
from contracts.money import format_money
from contracts.services import lock_contract
from database.locking import lock_one
from errors import NotFound
from extensions import db
from notifications.services import notify
from offers.membership_events import mirror_subscription
from offers.membership_periods import bookable_periods, end_periods
from offers.memberships import MembershipError
from offers.models import Membership
from payments import stripe_api
from payments.models import Refund, RefundSource
from payments.refunds.decisions import amount_refusal, start_refund
from payments.standing import Standing, standing_of

# A period's contract that ending the membership closes (and refunds in part).
OPEN = (ContractStatus.ACTIVE, ContractStatus.PAST_DUE)


def prorated_refund(period: Contract, moment: datetime, money: Standing) -> int:
    """The share of what the period kept that its time left stands for (minor units,
    rounded down), within what is still refundable."""
    start, end = period.period_start, period.period_end
    if start is None or end is None or moment >= end:
        return 0
    length = int((end - start).total_seconds())
    left = int((end - max(moment, start)).total_seconds())
    kept = money.arrived - money.returned
    return max(min(kept * left // length, money.refundable), 0)


def cancel_refusal(membership: Membership, actor: User) -> str | None:
    """Why `actor` cannot end `membership` now, or None."""
    if not (actor.is_admin or actor.id == membership.coach_id):
        return "Only the membership's coach or an administrator can end it now."
    if membership.ended:
        return "This membership has ended already."
    if membership.stripe_subscription_id is None:
        return "This membership has no subscription at Stripe yet; nothing to end."
    return None


def _closes(period: Contract, moment: datetime) -> bool:
    """Whether ending the membership at `moment` closes this period: it runs, and is open."""
    return (period.status in OPEN and period.period_end is not None
            and moment < period.period_end)


def _refund_now(period: Contract, moment: datetime, money: Standing) -> int:
    """What ending the membership at `moment` gives back of this period: its prorated
    refund when it closes and can be refunded (no dispute holds it); else nothing."""
    if not _closes(period, moment):
        return 0
    amount = prorated_refund(period, moment, money)
    return amount if amount > 0 and amount_refusal(period, money, amount) is None else 0


def refund_preview(membership: Membership, moment: datetime | None = None) -> int:
    """What ending the membership at `moment` (now) would give back, for the confirm page."""
    moment = moment or clock.now()
    return sum(_refund_now(period, moment, standing_of(period))
               for period in bookable_periods(membership, moment))


def cancel_now(membership_id: int, actor: User, *, reason: str,
               quoted: int | None = None) -> Refund | None:
    """End the membership at once: Stripe first (no lock held, a key from our id), then
    one transaction closes the running period with its prorated refund and cancels the
    sessions booked from now on. Raises MembershipError when it cannot be done (or the
    refund changed since `quoted`, the amount the person confirmed), PaymentProviderError
    when Stripe refused. The caller commits."""
    membership = db.session.get(Membership, membership_id)
    if membership is None:
        raise NotFound()
    refused = cancel_refusal(membership, actor)
    if refused is None and not reason.strip():
        refused = "Say why the membership ends; the student and the coach see it."
    if refused is None and quoted is not None and refund_preview(membership) != quoted:
        refused = "The refund changed since you looked; check it again."
    if refused:
        raise MembershipError(refused)
    subscription_id = membership.stripe_subscription_id
    assert subscription_id is not None  # cancel_refusal
    # The windows of the periods running now: Stripe's event of the end, if it is mirrored
    # before the lock below, closes them at Stripe's moment of the end, and these periods
    # close here with their refunds all the same.
    windows = {period.id: period.period_end for period in bookable_periods(membership)}
    db.session.rollback()  # no transaction, so no lock, while Stripe answers
    subscription = stripe_api.cancel_subscription(
        subscription_id, stripe_api.idempotency_key("membership-cancel", membership_id))
    membership = lock_one(db.session, select(Membership).where(Membership.id == membership_id))
    moment = clock.now()
    note = f"Membership ended now: {reason.strip()}"[:500]
    refund: Refund | None = None
    for period_id, end in windows.items():
        contract = lock_contract(period_id)
        assert contract is not None
        contract.period_end = end  # closed again from Stripe's end below
        money = standing_of(contract)
        amount = _refund_now(contract, moment, money)
        if _closes(contract, moment):
            lifecycle.cancel_paid(contract, by=actor, reason=note)
        if amount > 0:
            refund = start_refund(
                contract, money, amount, by=actor, note=note,
                source=RefundSource.ADMIN if actor.is_admin else RefundSource.COACH)
    # Ended as Stripe says: the other periods' windows close and their bookings from now
    # on are cancelled (`membership_periods.end_periods`), also when the event came first.
    mirror_subscription(subscription.to_dict())
    if membership.ended_at is not None:
        end_periods(membership, membership.ended_at)
    back = refund.amount if refund is not None else 0
    audit("membership.cancelled_now", membership, actor=actor,
          after={"reason": reason.strip(), "refund": back})
    words = (f"{format_money(back, membership.currency)} of the running period goes back "
             "to the card that paid it." if back else "Nothing of the period is refunded.")
    who = "an administrator" if actor.is_admin else membership.coach.name
    _tell_both(membership, f"The membership “{membership.title}” was ended now by {who}: "
                           f"{reason.strip()} {words}")
    return refund


def _tell_both(membership: Membership, message: str) -> None:
    """Both parties of the membership hear `message` (mailed too)."""
    link = url_for("memberships.detail", membership_id=membership.id)
    for person in (membership.student, membership.coach):
        notify(person, message, link=link, subject=f"Coachpact: “{membership.title}” ended")
