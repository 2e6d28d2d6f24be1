"""A past-due membership in Chromium: the student reads the banner, goes to Stripe's portal,
saves the 4242 card there, which pays the renewal, and comes back to an active membership;
then moves to another offer and ends it at the period's end, and the coach pauses it."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD
from tests.payments.test_membership_changes import renewal_unpaid
from tests.support import log_in, shot, wait_for

pytestmark = pytest.mark.browser


def test_a_past_due_student_updates_the_card_in_the_portal(
        page, live_url, client, db, sandbox, membership_offer, member, coach):
    from offers.memberships import create_membership_offer, publish_price
    from offers.models import MembershipPeriod

    other = create_membership_offer(
        db.session.merge(coach), title="More coaching", description="", sessions_per_period=6,
        minutes_per_session=45, price_per_period=6000, currency="usd",
        period=MembershipPeriod.MONTH)
    db.session.commit()
    publish_price(other.id)
    membership = renewal_unpaid(client, db, sandbox, membership_offer, member)

    log_in(page, live_url, member.email, PASSWORD)
    page.goto(f"{live_url}/memberships/{membership.id}")
    banner = page.locator("#past-due")
    assert "This period’s payment did not go through." in banner.inner_text()
    assert page.locator("#pay-now").get_attribute("href") == membership.unpaid_invoice_url
    assert page.locator('[data-status="past_due"]').is_visible()
    shot(page, "membership-past-due")

    page.locator("#update-card").click()
    page.wait_for_url(f"{sandbox.url}/billing_portal/*")
    assert "Past due" in page.locator(f"#sub-{membership.stripe_subscription_id}").inner_text()
    page.locator("#card-number").fill("4242 4242 4242 4242")
    page.locator("#card-expiry").fill("12/34")
    page.locator("#card-cvc").fill("123")
    page.locator("#save-card").click()
    page.wait_for_url(f"{sandbox.url}/billing_portal/*")
    assert "•••• 4242" in page.locator("#card").inner_text()
    shot(page, "membership-portal-card-saved")

    page.locator("#return-link").click()
    page.wait_for_url(f"{live_url}/payments")
    assert page.locator("#manage-billing").is_visible()
    shot(page, "payments-manage-billing")
    page.goto(f"{live_url}/memberships/{membership.id}")
    # The renewal's invoice.paid and the subscription's update arrive by webhook.
    wait_for(lambda: page.reload() and page.locator('[data-status="active"]').count(),
             what="the membership to be active again")
    assert page.locator("#past-due").count() == 0
    shot(page, "membership-active-again")

    # Moving to the coach's other offer: Stripe's prorated amount first.
    page.locator("#move-offer").select_option(label="More coaching · $60.00 / month, 6 sessions")
    page.locator("#move-membership").click()
    assert "you pay $" in page.locator("#confirm-lines").inner_text()
    shot(page, "membership-move-confirm")
    page.locator("#confirm-change").click()
    assert "More coaching" in page.locator("#membership-title").inner_text()

    # Ending it at the period's end: a confirmation first, then the date and the way back.
    page.locator("#cancel-membership").click()
    assert "you keep your sessions until" not in page.content()
    shot(page, "membership-cancel-confirm")
    page.locator("#confirm-change").click()
    assert "you keep your sessions until then" in page.locator("#membership-ending").inner_text()
    shot(page, "membership-ending")
    page.locator("#keep-membership").click()
    assert page.locator("#membership-ending").count() == 0

    # The coach pauses collection for two periods.
    page.get_by_role("button", name="Log out").click()
    log_in(page, live_url, coach.email, PASSWORD)
    page.goto(f"{live_url}/memberships/{membership.id}")
    page.locator("#pause-periods").select_option("2")
    page.locator("#pause-membership").click()
    shot(page, "membership-pause-confirm")
    page.locator("#confirm-change").click()
    assert "Paused: nothing is charged" in page.locator("#membership-paused").inner_text()
    shot(page, "membership-paused-coach")
