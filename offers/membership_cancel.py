"""Ending a membership now: the coach or an admin cancels the subscription at Stripe, the
running period's contract closes and its unused time goes back to the student.

The refund is computed from the period's standing (`payments.standing`): what the period
kept, in proportion to the whole days left of it, rounded down to the minor unit, never
more than is still refundable. It goes back through the money core as any contract's refund
(`payments.refunds.decisions.start_refund`), on the invoice's payment. Sessions booked
from now on (the running period's, and rolled-over credits of an earlier one) are
cancelled; sessions already delivered stay delivered, and their coach is paid for them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

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
from offers.membership_changes import tell_both
from offers.membership_events import mirror_subscription
from offers.memberships import MembershipError
from offers.models import CreditGrant, Membership
from payments import stripe_api
from payments.models import Refund, RefundSource
from payments.refunds.decisions import amount_refusal, start_refund
from payments.standing import Standing, standing_of

DAY = timedelta(days=1)
# A period's contract that ending the membership closes (and refunds in part).
OPEN = (ContractStatus.ACTIVE, ContractStatus.PAST_DUE)


def days_left(start: datetime, end: datetime, moment: datetime) -> tuple[int, int]:
    """(whole days left at `moment`, days in the period from `start` to `end`): a refund
    counts whole days, so the amount a person confirms holds for the rest of the day."""
    length = max(round((end - start) / DAY), 1)
    return min(max((end - max(moment, start)) // DAY, 0), length), length


def prorated_refund(start: datetime, end: datetime, moment: datetime, money: Standing) -> int:
    """The share of what a period paid from `start` to `end` kept that its whole days left
    at `moment` stand for (minor units, rounded down), within what is still refundable."""
    left, length = days_left(start, end, moment)
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


def _running(membership: Membership, moment: datetime) -> list[tuple[int, CreditGrant]]:
    """The period contracts whose paid period (their invoice's, as granted: not the window
    an ending may have closed) holds `moment`, with their grant."""
    return [(grant.contract_id, grant) for grant in db.session.scalars(
        select(CreditGrant).where(
            CreditGrant.membership_id == membership.id, CreditGrant.contract_id.is_not(None),
            CreditGrant.period_start <= moment, CreditGrant.period_end > moment)
        .order_by(CreditGrant.period_start, CreditGrant.id)) if grant.contract_id]


def _refund_now(period: Contract, grant: CreditGrant, moment: datetime,
                money: Standing) -> int:
    """What ending the membership at `moment` gives back of this period: its prorated
    refund while it is open and can be refunded (no dispute holds it); else nothing."""
    if period.status not in OPEN:
        return 0
    amount = prorated_refund(grant.period_start, grant.period_end, moment, money)
    return amount if amount > 0 and amount_refusal(period, money, amount) is None else 0


def refund_preview(membership: Membership, moment: datetime | None = None) -> int:
    """What ending the membership at `moment` (now) would give back, for the confirm page."""
    moment = moment or clock.now()
    total = 0
    for contract_id, grant in _running(membership, moment):
        period = db.session.get(Contract, contract_id)
        assert period is not None
        total += _refund_now(period, grant, moment, standing_of(period))
    return total


def cancel_now(membership_id: int, actor: User, *, reason: str,
               quoted: int | None = None) -> Refund | None:
    """End the membership at once, at the moment the person confirmed: Stripe first (no
    lock held, a key from our id), then one transaction closes the periods paid for that
    moment with their prorated refunds, and the membership ends as Stripe says, its
    sessions booked from then on cancelled (`membership_periods.end_periods`).

    The periods and refunds are those of the paid periods (the invoices' grants), so
    Stripe's own `customer.subscription.deleted`, applied first by another worker, cannot
    shrink them. Raises MembershipError when it cannot be done (or the refund changed
    since `quoted`, the amount the person confirmed), PaymentProviderError when Stripe
    refused. The caller commits."""
    membership = db.session.get(Membership, membership_id)
    if membership is None:
        raise NotFound()
    moment = clock.now()
    refused = cancel_refusal(membership, actor)
    if refused is None and not reason.strip():
        refused = "Say why the membership ends; the student and the coach see it."
    if refused is None and quoted is not None and refund_preview(membership, moment) != quoted:
        refused = "The refund changed since you looked; check it again."
    if refused:
        raise MembershipError(refused)
    subscription_id = membership.stripe_subscription_id
    assert subscription_id is not None  # cancel_refusal
    db.session.rollback()  # no transaction, so no lock, while Stripe answers
    subscription = stripe_api.cancel_subscription(
        subscription_id, stripe_api.idempotency_key("membership-cancel", membership_id))
    membership = lock_one(db.session, select(Membership).where(Membership.id == membership_id))
    note = f"Membership ended now: {reason.strip()}"[:500]
    refund: Refund | None = None
    for contract_id, grant in _running(membership, moment):
        contract = lock_contract(contract_id)
        assert contract is not None
        money = standing_of(contract)
        amount = _refund_now(contract, grant, moment, money)
        if contract.status in OPEN:
            lifecycle.cancel_paid(contract, by=actor, reason=note)
        if amount > 0:
            refund = start_refund(
                contract, money, amount, by=actor, note=note,
                source=RefundSource.ADMIN if actor.is_admin else RefundSource.COACH)
    # Ended as Stripe says: the other periods' windows close and their bookings from now
    # on are cancelled (`membership_periods.end_periods`).
    mirror_subscription(subscription.to_dict())
    back = refund.amount if refund is not None else 0
    audit("membership.cancelled_now", membership, actor=actor,
          after={"reason": reason.strip(), "refund": back})
    words = (f"{format_money(back, membership.currency)} of the running period goes back "
             "to the card that paid it." if back else "Nothing of the period is refunded.")
    who = "an administrator" if actor.is_admin else membership.coach.name
    tell_both(membership, f"The membership “{membership.title}” was ended now by {who}: "
                          f"{reason.strip()} {words}",
              subject=f"Coachpact: “{membership.title}” ended")
    return refund
