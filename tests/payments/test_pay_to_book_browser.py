"""From a coach's public page to a booked, paid first session, in Chromium: a visitor
opens Maya's page on the demo data, picks an offer, registers on the way, picks the first
session's time on the pay page, pays with 4242 on the sandbox's hosted checkout, and finds
the contract active with that session booked; on a laptop and on a 390 × 844 phone."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from tests.support import new_page, page_overflow, pay_by_card, register_on_the_way, shot

pytestmark = pytest.mark.browser


@pytest.fixture
def demo(runner, sandbox):
    result = runner.invoke(args=["demo-data"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 900},
                                      {"width": 390, "height": 844}], ids=["laptop", "phone"])
def test_a_visitor_goes_from_a_public_page_to_a_booked_paid_first_session(
    browser, live_url, sandbox, demo, db, viewport
):
    from accounts.models import User
    from contracts.models import CoachingSession, Contract, SessionStatus

    width = viewport["width"]
    email = f"noor-{width}@example.com"
    with new_page(browser, viewport) as page:
        page.goto(f"{live_url}/c/maya-lindqvist")
        offer = page.locator("li", has=page.get_by_role("heading",
                                                        name="Interview preparation"))
        offer.get_by_role("link", name="Book & pay").click()
        register_on_the_way(page, "Noor Haddad", email)
        page.wait_for_url(re.compile(r".*/c/maya-lindqvist/offers/\d+/buy$"))
        page.get_by_role("button", name="Book & pay").click()
        page.wait_for_url(re.compile(r".*/contracts/\d+/pay$"))
        contract_id = int(page.url.rsplit("/", 2)[1])

        # The first session's time: the first day with free time, its first time.
        page.locator("#days a.cp-day").first.click()
        first_time = page.locator("[data-slot]").first
        picked = first_time.get_attribute("data-slot")
        first_time.click()
        assert page.locator("#hold-promise").is_visible()
        assert page_overflow(page) is None
        shot(page, f"pay-to-book-time-{width}")
        page.locator("#pay-button").click()

        pay_by_card(page, sandbox.url, email, "Noor Haddad")
        page.wait_for_url(f"{live_url}/contracts/{contract_id}/payment-success*")
        assert page.locator("#payment-result").inner_text() == "Payment received"
        assert page.locator("#first-session-booked").is_visible()
        page.get_by_role("link", name="Go to the contract").click()
        assert page.locator(".cp-status").first.get_attribute("data-status") == "active"
        assert page.locator("#sessions-upcoming").is_visible()
        shot(page, f"pay-to-book-contract-{width}")

    db.session.expire_all()
    student = db.session.scalar(select(User).filter_by(email=email))
    contract = db.session.get(Contract, contract_id)
    assert contract.student_id == student.id and contract.offer_id is not None
    assert (contract.status.value, contract.payment_status.value) == ("active", "paid")
    [session] = db.session.scalars(select(CoachingSession).filter_by(contract_id=contract_id))
    assert session.status is SessionStatus.SCHEDULED and session.booked_by_id == student.id
    assert session.starts_at.strftime("%Y-%m-%dT%H:%MZ") == picked  # the time picked
