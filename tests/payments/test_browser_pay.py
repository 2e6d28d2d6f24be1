"""The paying student's whole journey in Chromium, with the sandbox's hosted checkout page."""

from __future__ import annotations

import pytest

from tests.support import log_in, pay_by_card, register, shot

pytestmark = pytest.mark.browser


def test_propose_accept_pay_with_4242_and_the_coach_is_told(page, live_url, sandbox, db):
    register(page, live_url, "Ana Ruiz", "ana@example.com", "student", "America/New_York")
    page.get_by_role("button", name="Log out").click()
    register(page, live_url, "Maya Lindqvist", "maya@example.com", "coach", "Europe/London")
    page.get_by_role("link", name="New proposal").first.click()
    page.get_by_label("Student's email").fill("ana@example.com")
    page.get_by_label("Title").fill("Public speaking")
    page.get_by_label("What the coaching covers").fill("Voice, structure and nerves.")
    page.get_by_label("Price per session").fill("75")
    page.get_by_role("button", name="Send proposal").click()
    page.get_by_role("button", name="Log out").click()

    log_in(page, live_url, "ana@example.com", "a-long-password")
    page.get_by_role("link", name="Public speaking").click()
    page.get_by_role("button", name="Accept and continue to payment").click()
    page.get_by_role("button", name="securely with Stripe").click()

    pay_by_card(page, sandbox.url, "ana@example.com", "Ana Ruiz", shot_name="sandbox-checkout")

    page.wait_for_url(f"{live_url}/contracts/*/payment-success*")
    assert page.locator("#payment-result").inner_text() == "Payment received"
    assert page.locator("#paid-amount").inner_text() == "$300.00"
    shot(page, "payment-success")
    page.get_by_role("link", name="Go to the contract").click()
    assert page.locator(".cp-status").first.get_attribute("data-status") == "active"
    page.get_by_role("button", name="Log out").click()

    log_in(page, live_url, "maya@example.com", "a-long-password")
    assert page.locator("#unread-count").inner_text() == "1"
    page.locator("#nav-notifications").click()
    notes = page.locator("#notifications").inner_text()
    assert "Ana Ruiz paid $300.00 for “Public speaking”" in notes
    shot(page, "coach-notifications")
