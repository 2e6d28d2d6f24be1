"""The admin's money pages in Chromium, on the demo data: refunds, disputes, plans, payouts."""

from __future__ import annotations

import pytest

from tests.support import shot

pytestmark = pytest.mark.browser


@pytest.fixture
def live_url(app):
    from tests.support import serve_in_thread

    with serve_in_thread(app) as url:
        yield url


def test_the_demo_admin_reads_refunds_disputes_plans_and_payouts(page, live_url, runner, db):
    from demo import DEMO_PASSWORD

    assert runner.invoke(args=["demo-data"]).exit_code == 0
    page.goto(f"{live_url}/auth/login")
    page.get_by_label("Email").fill("admin@coachpact.test")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_url}/admin/**")

    nav = page.locator("#admin-nav")
    nav.get_by_role("link", name="Refunds").click()
    request = page.locator("[data-request-id]").first
    assert "Lisbon" in request.inner_text()  # the demo request waiting for a decision
    assert request.get_by_role("button", name="Approve and refund").is_enabled()
    shot(page, "admin-refunds-demo")
    page.get_by_role("link", name="Refunds", exact=True).last.click()
    assert page.locator("table").first.inner_text().count("Succeeded") >= 2
    shot(page, "admin-refunds-list-demo")

    nav.get_by_role("link", name="Review queue").click()
    held = page.locator("[id^=held-]").first
    assert held.get_by_role("button", name="Accept payment").first.is_visible()
    assert "Stripe reported" in held.inner_text()  # what did not match, in the admin's words
    assert "write off the missing" in held.inner_text()  # half arrived: the rest, offered
    shot(page, "admin-reviews-demo")

    nav.get_by_role("link", name="Disputes").click()
    disputes = page.locator("main").inner_text()
    assert "Negotiation skills" in disputes and "product not received" in disputes
    assert "Under 3 days" in disputes  # the nearest deadlines stand out
    shot(page, "admin-disputes-demo")

    nav.locator("summary").click()  # Plans waits under "More"
    nav.get_by_role("link", name="Plans").click()
    plans = page.locator("main").inner_text()
    assert "Presentation skills programme" in plans and "Spanish for work" in plans
    shot(page, "admin-plans-demo")
    page.get_by_role("link", name="Spanish for work").first.click()
    section = page.locator("main").inner_text()
    assert "Payment plan" in section and "insufficient funds" in section
    shot(page, "admin-plan-contract-demo")

    nav.get_by_role("link", name="Payouts").click()
    payouts = page.locator("main").inner_text()
    assert "tr_demo_" in payouts  # Maya's transfers
    assert "Tomás Ferreira" in payouts  # waiting for an account
    shot(page, "admin-payouts-demo")
