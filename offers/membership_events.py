"""What Stripe's Billing events do to memberships, applied once each through the inbox.

`customer.subscription.created|updated|deleted` mirror the subscription onto its
`Membership` row; `invoice.paid` grants the invoice's period its session credits, once per
invoice (the grant's unique invoice id), whatever the deliveries, and makes the period a
paid contract (`offers.membership_periods`).

Events come in any order. The mirror never moves backwards: an ended membership stays
ended, a subscription whose period is older than the one recorded changes nothing, and
`created` (the subscription's first state) changes nothing once any later state was
mirrored. An `invoice.paid` for a subscription not known yet finds its membership by the
subscription's metadata; one that names no membership we know is retried later.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import url_for
from sqlalchemy import select

from audit.services import record as audit
from database.locking import lock_one
from extensions import db
from notifications.services import notify
from offers import membership_changes
from offers.membership_periods import end_periods, open_period
from offers.memberships import price_in_words
from offers.models import CreditGrant, Membership, MembershipOffer, MembershipStatus
from payments import stripe_api
from payments.inbox.table import RetryLater, register

STRIPE_STATUSES = {status.value: status for status in MembershipStatus
                   if status is not MembershipStatus.JOINING}


def _moment(seconds: Any) -> datetime | None:
    return datetime.fromtimestamp(int(seconds), UTC) if seconds is not None else None


def _membership_id(metadata: dict[str, Any] | None) -> int | None:
    value = (metadata or {}).get("membership_id")
    return int(value) if isinstance(value, str) and value.isdigit() else None


def _locked(subscription_id: str | None, metadata: dict[str, Any] | None) -> Membership | None:
    """The membership of this subscription (locked): by its recorded id, else by the id our
    Checkout put in the subscription's metadata."""
    if subscription_id:
        found = lock_one(db.session, select(Membership).where(
            Membership.stripe_subscription_id == subscription_id))
        if found is not None:
            return found
    membership_id = _membership_id(metadata)
    if membership_id is None:
        return None
    found = lock_one(db.session, select(Membership).where(Membership.id == membership_id))
    if found is None or (found.stripe_subscription_id not in (None, subscription_id)):
        return None  # another subscription's membership: not this one
    return found


def membership_of_invoice(invoice: dict[str, Any]) -> Membership | None:
    """The membership (locked) of a subscription invoice; None when it names none of ours.
    Raises RetryLater for a membership of ours not known yet."""
    details = (invoice.get("parent") or {}).get("subscription_details") or {}
    subscription_id = details.get("subscription") or invoice.get("subscription")
    if not subscription_id:
        return None
    membership = _locked(subscription_id, details.get("metadata"))
    if membership is None and _membership_id(details.get("metadata")) is not None:
        raise RetryLater(f"membership of {subscription_id} not known yet")
    if membership is not None:
        membership.stripe_subscription_id = membership.stripe_subscription_id or subscription_id
    return membership


def mirror_subscription(subscription: dict[str, Any], *, first: bool = False) -> str:
    """Copy a subscription's status, period and cancellation onto its membership, unless
    the row already holds a newer state (see the module's docstring). `first`: the
    subscription as created."""
    membership = _locked(subscription.get("id"), subscription.get("metadata"))
    if membership is None:
        if _membership_id(subscription.get("metadata")) is None:
            return "unrelated"
        raise RetryLater(f"membership of {subscription.get('id')} not known yet")
    status = STRIPE_STATUSES.get(subscription.get("status") or "")
    if status is None:
        raise ValueError(f"unknown subscription status {subscription.get('status')!r}")
    if membership.ended:
        return "stale"
    if first and membership.status is not MembershipStatus.JOINING:
        return "stale"
    items = (subscription.get("items") or {}).get("data") or [{}]
    item = items[0]
    start = _moment(item.get("current_period_start") or subscription.get("current_period_start"))
    end = _moment(item.get("current_period_end") or subscription.get("current_period_end"))
    if (start is not None and membership.current_period_start is not None
            and start < membership.current_period_start):
        return "stale"
    before = {"status": membership.status.value,
              "cancel_at_period_end": membership.cancel_at_period_end}
    pause = subscription.get("pause_collection") or {}
    membership.paused_until = _moment(pause.get("resumes_at"))
    membership.stripe_subscription_id = subscription["id"]
    membership.status = status
    membership.current_period_start = start or membership.current_period_start
    membership.current_period_end = end or membership.current_period_end
    membership.cancel_at_period_end = bool(subscription.get("cancel_at_period_end"))
    price = item.get("price") or {}
    if isinstance(price, dict) and price.get("id"):
        membership.stripe_price_id = price["id"]
    if status in (MembershipStatus.CANCELED, MembershipStatus.INCOMPLETE_EXPIRED):
        membership.ended_at = _moment(subscription.get("ended_at")) or end
        if membership.ended_at is not None:
            end_periods(membership, membership.ended_at)
    db.session.flush()
    after = {"status": membership.status.value,
             "cancel_at_period_end": membership.cancel_at_period_end}
    if before != after:
        audit(f"membership.{status.value}", membership, actor_label="stripe",
              before=before, after=after)
    if before["status"] == MembershipStatus.JOINING.value and status is MembershipStatus.ACTIVE:
        _tell_joined(membership)
    if membership.ended:  # just now: an ended one was stale above
        membership_changes.tell_ended(membership, subscription)
    return status.value


def _tell_joined(membership: Membership) -> None:
    """Both parties hear of a new membership once: only the move out of `joining` tells."""
    link = url_for("memberships.detail", membership_id=membership.id)
    notify(membership.student,
           f"You joined “{membership.title}” with {membership.coach.name}: "
           f"{price_in_words(membership)}.", link=link,
           subject=f"Coachpact: you joined “{membership.title}”")
    notify(membership.coach,
           f"{membership.student.name} joined your membership “{membership.title}”.",
           link=link)


def grant_credits(invoice: dict[str, Any]) -> str:
    """Grant the paid invoice's period its sessions, once per invoice, and open the period's
    contract (`membership_periods.open_period`).

    The period is the invoice line's: for a renewal Stripe sets the invoice's own
    `period_start`/`period_end` to the period that ended, and the line's to the new one.
    A move to a membership with more sessions is invoiced at once (`subscription_update`):
    its line is the rest of the running period, which gets the extra sessions.
    """
    parent = invoice.get("parent") or {}
    details = parent.get("subscription_details") or {}
    if not (details.get("subscription") or invoice.get("subscription")):
        return "unrelated"
    if _granted(invoice["id"]):
        return "duplicate"
    amount = int(invoice.get("amount_paid") or 0)
    # Asked before any lock is taken: which PaymentIntent and charge paid the invoice.
    paid_by = stripe_api.invoice_charge(invoice["id"]) if amount > 0 else None
    if amount > 0 and paid_by is None:
        raise RetryLater(f"invoice {invoice['id']} is paid but lists no paid payment yet")
    membership = membership_of_invoice(invoice)
    if membership is None:
        return "unrelated"
    if _granted(invoice["id"]):  # under the membership's lock: decided once
        return "duplicate"
    line = _period_line(invoice)
    period = line.get("period") or {}
    start = _moment(period.get("start") or invoice.get("period_start"))
    end = _moment(period.get("end") or invoice.get("period_end"))
    if start is None or end is None:
        raise ValueError(f"invoice {invoice['id']} has no period")
    membership_changes.clear_unpaid(membership, invoice["id"])
    sessions = membership.sessions_per_period
    if invoice.get("billing_reason") == "subscription_update":
        sessions = _extra_sessions(membership, line, start, end, paid=amount > 0)
    grant = CreditGrant(
        membership_id=membership.id, stripe_invoice_id=invoice["id"],
        sessions=sessions, period_start=start, period_end=end,
        amount_paid=amount, currency=str(invoice.get("currency") or membership.currency),
    )
    db.session.add(grant)
    db.session.flush()
    intent_id, charge_id = paid_by or (None, None)
    open_period(membership, grant, invoice, intent_id, charge_id)
    audit("membership.credits_granted", membership, actor_label="stripe",
          after={"invoice": invoice["id"], "sessions": grant.sessions,
                 "period_start": start.isoformat(), "period_end": end.isoformat()})
    return "granted"


def _period_line(invoice: dict[str, Any]) -> dict[str, Any]:
    """The invoice's line for the period it pays: the first that charges (a proration's
    credit for the unused old price comes first and is negative), else the first."""
    lines = (invoice.get("lines") or {}).get("data") or []
    return next((line for line in lines if int(line.get("amount") or 0) > 0),
                lines[0] if lines else {})


def _extra_sessions(membership: Membership, line: dict[str, Any], start: datetime,
                    end: datetime, *, paid: bool) -> int:
    """The sessions a move's prorated invoice adds to the running period: the new
    membership's sessions beyond those granted for it, in proportion to the time left,
    rounded up (at least one for money paid; none for a credit)."""
    price = ((line.get("pricing") or {}).get("price_details") or {}).get("price")
    offer = db.session.scalar(select(MembershipOffer).where(
        MembershipOffer.stripe_price_id == price)) if price else None
    wanted = offer.sessions_per_period if offer is not None else membership.sessions_per_period
    running = list(db.session.scalars(select(CreditGrant).where(
        CreditGrant.membership_id == membership.id, CreditGrant.period_start <= start,
        CreditGrant.period_end > start)))
    granted = sum(grant.sessions for grant in running)
    full = max((g.period_end - g.period_start for g in running), default=end - start)
    extra = -(-max(wanted - granted, 0) * int((end - start).total_seconds())
              // max(int(full.total_seconds()), 1))
    return max(extra, 1) if paid else extra


def _granted(invoice_id: str) -> bool:
    return db.session.scalar(select(CreditGrant.id).where(
        CreditGrant.stripe_invoice_id == invoice_id)) is not None


# Made once, at import: `register` tells a repeated registration from a conflicting one.


def _subscription_created(subscription: dict[str, Any]) -> str:
    return mirror_subscription(subscription, first=True)


def _subscription_changed(subscription: dict[str, Any]) -> str:
    return mirror_subscription(subscription)


def register_membership_handlers() -> None:
    """Put the Billing types memberships apply in the inbox's table (`offers.init_app`)."""
    register("customer.subscription.created", _subscription_created)
    register("customer.subscription.updated", _subscription_changed)
    register("customer.subscription.deleted", _subscription_changed)
    register("invoice.paid", grant_credits)
