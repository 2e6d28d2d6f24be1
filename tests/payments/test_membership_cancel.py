"""Ending a membership now: the coach confirms the prorated refund the page shows; Stripe
ends the subscription, the running period closes, the sessions booked from now on are
cancelled and the refund goes back on the invoice's payment, in usd and in yen."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.conftest import login
from tests.payments.test_membership_periods import book, free_starts, joined, period_contracts
from tests.payments.test_memberships import MEMBERSHIP_FORM, membership_of
from tests.support import wait_for


def end_now(client, membership_id: int, reason: str = "Moving abroad."):
    page = client.get(f"/memberships/{membership_id}/end")
    assert page.status_code == 200, page.get_data(as_text=True)[:300]
    text = page.get_data(as_text=True)
    quoted = text.split('name="quoted" value="', 1)[1].split('"', 1)[0]
    return text, client.submit(f"/memberships/{membership_id}/end",
                               {"reason": reason, "quoted": quoted})


@pytest.mark.parametrize(("currency", "period", "price", "sessions", "days_in", "money"), [
    ("usd", "month", "40", 4, 7, "$"),
    ("jpy", "week", "5000", 2, 2, "¥"),
])
def test_the_coach_ends_a_membership_now_with_a_prorated_refund(
        app, client, db, sandbox, coach, member, stripe_client, clock,
        currency, period, price, sessions, days_in, money):
    from contracts.models import CoachingSession
    from offers.models import MembershipOffer
    from payments.models import Payment

    login(client, coach)
    client.submit("/offers/memberships/new", {
        **MEMBERSHIP_FORM, "currency": currency, "period": period, "price_per_period": price,
        "sessions_per_period": str(sessions)})
    offer_id = db.session.scalar(select(MembershipOffer.id))
    client.submit("/auth/logout")
    membership = joined(client, db, sandbox, offer_id, member)
    [running] = period_contracts(db, membership.id)
    starts = [s for s in free_starts(app, running.id)
              if s > clock.now() + timedelta(days=days_in, hours=1)]
    assert book(client, running.id, starts[0]).status_code == 302

    # Some days into the period, the coach ends it.
    moment = running.period_start + timedelta(days=days_in)
    clock.freeze(moment)
    # Whole days: a month of 31 (or 30, 28...) days, a week of 7.
    length = round((running.period_end - running.period_start) / timedelta(days=1))
    left = length - days_in
    expected = running.total_amount * left // length
    client.submit("/auth/logout")
    login(client, coach)
    page, ended = end_now(client, membership.id)
    assert ended.status_code == 302, ended.get_data(as_text=True)[:2000]
    assert money in page and "goes back to the student" in page

    db.session.expire_all()
    gone = membership_of(db, member.id)
    assert gone.status.value == "canceled" and gone.ended
    [closed] = period_contracts(db, membership.id)
    assert closed.status.value == "cancelled"
    booked = db.session.scalar(select(CoachingSession).where(
        CoachingSession.contract_id == closed.id))
    assert booked.status.value == "cancelled" and not booked.late_cancellation
    payment = db.session.scalar(select(Payment).where(Payment.contract_id == closed.id))
    refunds = wait_for(
        lambda: [r for r in stripe_client.v1.refunds.list(
            {"payment_intent": payment.payment_intent_id}).data if r.status == "succeeded"],
        what="Stripe's refund")
    assert [(r.amount, r.currency) for r in refunds] == [(expected, currency)]
    assert 0 < expected < running.total_amount
    wait_for(lambda: (db.session.expire_all() or True)
             and db.session.get(type(closed), closed.id).amount_returned == expected,
             what="the refund mirrored in the period's standing")
    stripe_sub = stripe_client.v1.subscriptions.retrieve(gone.stripe_subscription_id)
    assert stripe_sub.status == "canceled"

    from notifications.models import Notification

    told = [n.message for n in db.session.scalars(select(Notification).where(
        Notification.user_id == member.id))]
    assert any("was ended now by Maya Coach: Moving abroad." in m for m in told), told

    # Ended, it cannot be ended again; the student never could.
    again = client.get(f"/memberships/{membership.id}/end", follow_redirects=True)
    assert "has ended already" in again.get_data(as_text=True)


def test_only_the_coach_ends_it_and_a_changed_refund_is_refused(
        app, client, db, sandbox, membership_offer, member, coach, clock):
    membership = joined(client, db, sandbox, membership_offer, member)
    refused = client.get(f"/memberships/{membership.id}/end", follow_redirects=True)
    assert "coach or an administrator can end it now" in refused.get_data(as_text=True)
    client.submit("/auth/logout")
    login(client, coach)
    page = client.get(f"/memberships/{membership.id}/end").get_data(as_text=True)
    quoted = page.split('name="quoted" value="', 1)[1].split('"', 1)[0]
    clock.advance(timedelta(days=3))  # the refund shrinks meanwhile
    stale = client.submit(f"/memberships/{membership.id}/end",
                          {"reason": "Done.", "quoted": quoted})
    assert "The refund changed since you looked" in stale.get_data(as_text=True)
    empty = client.submit(f"/memberships/{membership.id}/end", {"reason": "", "quoted": "0"})
    assert "Say why the membership ends." in empty.get_data(as_text=True)
    assert membership_of(db, member.id).status.value == "active"
