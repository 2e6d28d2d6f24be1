"""Memberships end to end: a coach's membership offer becomes a Stripe Product and Price,
a student joins through subscription Checkout with 4242, the subscription is mirrored from
its events and each paid invoice grants its period's sessions once."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from tests.conftest import login
from tests.payments.conftest import deliver
from tests.support import wait_for

DAY = 86400
MEMBERSHIP_FORM = {
    "title": "Weekly-ish coaching",
    "description": "Four sessions a month, written notes after each.",
    "sessions_per_period": "4",
    "minutes_per_session": "45",
    "period": "month",
    "currency": "usd",
    "price_per_period": "40",
}


def membership_of(db, student_id: int):
    from offers.models import Membership

    db.session.expire_all()
    return db.session.scalar(select(Membership).where(Membership.student_id == student_id)
                             .order_by(Membership.id.desc()))


def grants(db, membership_id: int) -> list[Any]:
    from offers.models import CreditGrant

    db.session.expire_all()
    return list(db.session.scalars(select(CreditGrant).where(
        CreditGrant.membership_id == membership_id).order_by(CreditGrant.period_start)))


def join(client, db, sandbox, offer_id: int, student) -> str:
    """Join through the public page and pay with 4242 at the sandbox; the session's id."""
    response = client.submit(f"/c/maya/memberships/{offer_id}/join")
    assert response.status_code == 303, response.get_data(as_text=True)[:400]
    session_id = response.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
    paid = sandbox.pay(session_id, email=student.email)
    assert paid.status_code == 200, paid.text
    return session_id


def advance_sandbox_clock(sandbox, seconds: int) -> None:
    moved = requests.post(f"{sandbox.url}/_sandbox/clock",
                          data={"advance_seconds": seconds}, timeout=30)
    assert moved.status_code == 200, moved.text


def move_clock_to(sandbox, moment: float) -> None:
    """Move the sandbox's clock to `moment` (unix seconds): what fell due runs, each at its
    own time."""
    now = requests.get(f"{sandbox.url}/_sandbox/clock", timeout=10).json()["now"]
    advance_sandbox_clock(sandbox, int(moment) - now)


# --- the offer ---------------------------------------------------------------------------------


def test_saving_a_membership_offer_makes_its_product_and_price_and_a_new_price_on_change(
        client, db, coach, sandbox, stripe_client):
    from offers.models import MembershipOffer

    login(client, coach)
    response = client.submit("/offers/memberships/new", MEMBERSHIP_FORM)
    assert response.status_code == 302, response.get_data(as_text=True)[:400]
    offer = db.session.scalar(select(MembershipOffer))
    assert offer.stripe_product_id.startswith("prod_")
    first_price = stripe_client.v1.prices.retrieve(offer.stripe_price_id)
    assert (first_price.unit_amount, first_price.currency, first_price.type) == (
        4000, "usd", "recurring")
    assert first_price.recurring.interval == "month"
    assert first_price.product == offer.stripe_product_id
    assert stripe_client.v1.products.retrieve(offer.stripe_product_id).name == (
        "Weekly-ish coaching")

    page = client.get("/c/maya").get_data(as_text=True)
    assert "$40.00 / month, 4 sessions" in page

    # Saving again with the same price makes nothing new at Stripe.
    client.submit(f"/offers/memberships/{offer.id}/edit", MEMBERSHIP_FORM)
    db.session.expire_all()
    assert db.session.get(MembershipOffer, offer.id).stripe_price_id == first_price.id

    # A new price is a new Price; the old one is left as it was, for its members.
    client.submit(f"/offers/memberships/{offer.id}/edit",
                  {**MEMBERSHIP_FORM, "price_per_period": "55"})
    db.session.expire_all()
    changed = db.session.get(MembershipOffer, offer.id)
    assert changed.stripe_price_id != first_price.id and changed.price_version == 2
    new_price = stripe_client.v1.prices.retrieve(changed.stripe_price_id)
    assert (new_price.unit_amount, new_price.product) == (5500, offer.stripe_product_id)
    assert stripe_client.v1.prices.retrieve(first_price.id).active
    listed = stripe_client.v1.prices.list(params={"product": offer.stripe_product_id})
    assert len(listed.data) == 2
    assert "$55.00 / month, 4 sessions" in client.get("/c/maya").get_data(as_text=True)


def test_a_membership_price_stripe_could_not_charge_is_refused(client, db, coach):
    from offers.models import MembershipOffer

    login(client, coach)
    page = client.submit("/offers/memberships/new",
                         {**MEMBERSHIP_FORM, "price_per_period": "0.30"}).get_data(as_text=True)
    assert "0.50" in page
    assert db.session.scalar(select(func.count()).select_from(MembershipOffer)) == 0


# --- joining -----------------------------------------------------------------------------------


def test_joining_with_4242_makes_an_active_membership_with_its_sessions(
        client, db, sandbox, membership_offer, member, coach, make_user):
    # Logged out, "Join" leads to the login page and back.
    page = client.get("/c/maya").get_data(as_text=True)
    assert "$40.00 / month, 4 sessions" in page, page[page.find("<main"):][:3000]
    assert client.get(f"/c/maya/memberships/{membership_offer}/join").status_code == 302
    login(client, member)
    confirm = client.get(f"/c/maya/memberships/{membership_offer}/join").get_data(as_text=True)
    assert "Join &amp; pay" in confirm

    join(client, db, sandbox, membership_offer, member)
    membership = wait_for(
        lambda: (m := membership_of(db, member.id)) is not None
        and m.status.value == "active" and grants(db, m.id) and m,
        what="the membership to be active with its credits")
    assert membership.stripe_subscription_id.startswith("sub_")
    assert membership.current_period_start < membership.current_period_end
    assert not membership.cancel_at_period_end
    [grant] = grants(db, membership.id)
    assert (grant.sessions, grant.amount_paid, grant.currency) == (4, 4000, "usd")
    assert grant.period_start == membership.current_period_start

    from notifications.models import Notification

    told = {(n.user_id, n.message) for n in db.session.scalars(select(Notification))}
    period = (f"Monthly coaching · {grant.period_start:%d %b %Y} – "
              f"{grant.period_end:%d %b %Y}")  # the coach's calendar: UTC here
    assert told == {
        (member.id, "You joined “Monthly coaching” with Maya Coach: "
                    "$40.00 / month, 4 sessions."),
        (coach.id, "Ana Student joined your membership “Monthly coaching”."),
        # The period's contract is paid: its receipt, and the go-ahead to book.
        (member.id, f"Your payment of $40.00 for “{period}” is confirmed. "
                    "You can book your sessions with Maya Coach now."),
        (coach.id, f"Ana Student paid $40.00 for “{period}”. You can schedule sessions now."),
    }
    mine = client.get("/memberships/").get_data(as_text=True)
    assert "Monthly coaching" in mine and "$40.00 / month, 4 sessions" in mine
    assert f'id="membership-{membership.id}-credits">4' in mine
    detail = client.get(f"/memberships/{membership.id}").get_data(as_text=True)
    assert "$40.00" in detail and 'id="grants"' in detail

    # One membership per student and offer at a time.
    again = client.submit(f"/c/maya/memberships/{membership_offer}/join", follow_redirects=True)
    assert "You are a member already" in again.get_data(as_text=True)

    # The coach sees the member, the period and the credits.
    client.submit("/auth/logout")
    login(client, coach)
    theirs = client.get("/memberships/").get_data(as_text=True)
    assert "Ana Student" in theirs and f'id="membership-{membership.id}-credits">4' in theirs
    assert client.get(f"/memberships/{membership.id}").status_code == 200
    # Another student cannot read it.
    client.submit("/auth/logout")
    login(client, make_user("student", name="Someone Else"))
    assert client.get(f"/memberships/{membership.id}").status_code == 404


def test_a_double_join_reuses_the_open_checkout(client, db, sandbox, membership_offer, member):
    from offers.models import Membership

    login(client, member)
    first = client.submit(f"/c/maya/memberships/{membership_offer}/join")
    second = client.submit(f"/c/maya/memberships/{membership_offer}/join")
    assert first.headers["Location"] == second.headers["Location"]
    assert db.session.scalar(select(func.count()).select_from(Membership)) == 1


# --- events: once, in any order ------------------------------------------------------------------


def test_invoice_paid_three_times_and_out_of_order_grants_once(
        client, db, sandbox, membership_offer, member):
    from offers.models import CreditGrant

    sandbox.configure(hold_events=True)  # the sandbox records events; we deliver them
    login(client, member)
    join(client, db, sandbox, membership_offer, member)
    sub_created = sandbox.events("customer.subscription.created")[0]
    first_paid = sandbox.events("invoice.paid")[0]
    subscription = sub_created["data"]["object"]
    period_end = subscription["items"]["data"][0]["current_period_end"]
    advance_sandbox_clock(sandbox, period_end - int(first_paid["created"]) + 60)
    renewed = [e for e in sandbox.events("customer.subscription.updated")
               if e["data"]["object"]["id"] == subscription["id"]][-1]
    renewal_paid = sandbox.events("invoice.paid")[-1]
    assert renewal_paid["data"]["object"]["id"] != first_paid["data"]["object"]["id"]

    # The renewal's invoice.paid first (three times, once as a second event with the same
    # invoice), then the renewed subscription, then the older events.
    copy = json.loads(json.dumps(renewal_paid))
    copy["id"] = renewal_paid["id"] + "x"
    for event in (renewal_paid, renewal_paid, copy, renewed, first_paid, sub_created,
                  renewal_paid, first_paid):
        assert deliver(client, event).status_code == 200

    membership = membership_of(db, member.id)
    assert membership.status.value == "active"
    renewal_start = renewed["data"]["object"]["items"]["data"][0]["current_period_start"]
    assert int(membership.current_period_start.timestamp()) == renewal_start  # never back
    found = grants(db, membership.id)
    assert [g.stripe_invoice_id for g in found] == [
        first_paid["data"]["object"]["id"], renewal_paid["data"]["object"]["id"]]
    assert [g.sessions for g in found] == [4, 4]
    assert int(found[1].period_start.timestamp()) == renewal_start
    assert db.session.scalar(select(func.count()).select_from(CreditGrant)) == 2


def test_invoice_paid_for_an_unknown_membership_waits_for_it(client, db, sandbox,
                                                               membership_offer, member):
    """An invoice naming a membership we have no row for yet is retried, not dropped."""
    from payments.models import WebhookEvent

    sandbox.configure(hold_events=True)
    login(client, member)
    join(client, db, sandbox, membership_offer, member)
    paid = json.loads(json.dumps(sandbox.events("invoice.paid")[0]))
    paid["id"] = "evt_unknown_membership"
    details = paid["data"]["object"]["parent"]["subscription_details"]
    details["subscription"] = "sub_not_ours_yet"
    details["metadata"] = {**details["metadata"], "membership_id": "999999"}
    assert deliver(client, paid).status_code == 200
    db.session.expire_all()
    event = db.session.scalar(select(WebhookEvent).filter_by(stripe_event_id=paid["id"]))
    assert event.status.value == "received" and "not known yet" in event.last_error


# --- renewal and the end ----------------------------------------------------------------------


def test_a_renewal_grants_the_next_periods_sessions_and_deletion_ends_it(
        client, db, sandbox, membership_offer, member, stripe_client):
    login(client, member)
    join(client, db, sandbox, membership_offer, member)
    membership = wait_for(
        lambda: (m := membership_of(db, member.id)) is not None and len(grants(db, m.id)) == 1
        and m, what="the first period's credits")
    first_end = membership.current_period_end
    move_clock_to(sandbox, first_end.timestamp() + 60)

    wait_for(lambda: len(grants(db, membership.id)) == 2, what="the renewal's credits")
    renewed = membership_of(db, member.id)
    assert renewed.current_period_start == first_end and renewed.status.value == "active"
    second = grants(db, membership.id)[1]
    assert (second.period_start, second.sessions, second.amount_paid) == (first_end, 4, 4000)

    stripe_client.v1.subscriptions.cancel(renewed.stripe_subscription_id)
    ended = wait_for(lambda: (m := membership_of(db, member.id)).status.value == "canceled"
                     and m, what="the membership to end")
    assert ended.ended_at is not None and ended.ended
    page = client.get(f"/memberships/{ended.id}").get_data(as_text=True)
    assert 'data-status="canceled"' in page
    # Ended, it no longer holds the place: the student may join again.
    again = client.submit(f"/c/maya/memberships/{membership_offer}/join")
    assert again.status_code == 303
    assert len(grants(db, membership.id)) == 2  # nothing more was granted


def test_a_weekly_membership_in_yen(client, db, coach, sandbox, stripe_client):
    from offers.models import MembershipOffer

    login(client, coach)
    client.submit("/offers/memberships/new", {**MEMBERSHIP_FORM, "period": "week",
                                               "currency": "jpy", "price_per_period": "5000",
                                               "sessions_per_period": "1"})
    offer = db.session.scalar(select(MembershipOffer))
    assert (offer.price_per_period, offer.currency, offer.period.value) == (5000, "jpy", "week")
    price = stripe_client.v1.prices.retrieve(offer.stripe_price_id)
    assert (price.unit_amount, price.currency, price.recurring.interval) == (5000, "jpy", "week")
    assert "¥5,000 / week, 1 session<" in client.get("/c/maya").get_data(as_text=True)


def test_a_paused_membership_is_hidden_and_cannot_be_joined(
        client, db, sandbox, membership_offer, coach, member):
    from offers.models import Membership

    login(client, coach)
    client.submit(f"/offers/memberships/{membership_offer}/status", {"action": "pause"})
    assert f'id="membership-offer-{membership_offer}"' not in client.get(
        "/c/maya").get_data(as_text=True)
    client.submit("/auth/logout")
    login(client, member)
    refused = client.submit(f"/c/maya/memberships/{membership_offer}/join",
                            follow_redirects=True).get_data(as_text=True)
    assert "paused by the coach" in refused
    assert db.session.scalar(select(func.count()).select_from(Membership)) == 0


def test_the_database_holds_one_live_membership_per_student_and_offer(
        db, membership_offer, member, coach):
    from sqlalchemy.exc import IntegrityError

    from offers.models import Membership, MembershipPeriod, MembershipStatus

    def row(status: MembershipStatus) -> Membership:
        return Membership(
            student_id=member.id, coach_id=coach.id, offer_id=membership_offer, title="M",
            sessions_per_period=4, minutes_per_session=45, price_per_period=4000,
            currency="usd", period=MembershipPeriod.MONTH, status=status)

    db.session.add_all([row(MembershipStatus.CANCELED), row(MembershipStatus.CANCELED),
                        row(MembershipStatus.ACTIVE)])
    db.session.commit()  # ended ones do not count
    db.session.add(row(MembershipStatus.JOINING))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()
