"""The paying student's whole journey in Chromium, with the sandbox's hosted checkout page."""

from __future__ import annotations

import pytest

from tests.support import log_in, pay_by_card, register, shot, wait_for

pytestmark = pytest.mark.browser


@pytest.fixture
def app_overrides(queued_overrides):
    """Jobs go to a real queue, applied by a consumer process (as `make run` does)."""
    return queued_overrides


def test_propose_accept_pay_with_4242_and_the_coach_is_told(
    page, live_url, sandbox, db, start_consumer
):
    from sqlalchemy import func, select

    from audit.models import AuditEntry
    from payments.models import WebhookEvent

    consumer = start_consumer()
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
    # accepted, then paid; screen readers hear "2 unread"
    assert " ".join(page.locator("#unread-count").text_content().split()) == "2 unread"
    page.locator("#nav-notifications").click()
    notes = page.locator("#notifications").inner_text()
    assert "Ana Ruiz accepted your proposal “Public speaking”" in notes
    assert "Ana Ruiz paid $300.00 for “Public speaking”" in notes
    shot(page, "coach-notifications")

    # Stripe's event went through the inbox: the consumer applied it, once in all.
    def completed_event():
        db.session.expire_all()
        return db.session.scalar(
            select(WebhookEvent).filter_by(type="checkout.session.completed")
        )

    wait_for(lambda: completed_event() and completed_event().status.value == "processed",
             15, "the consumer to process the event")
    assert completed_event().outcome in {"fulfilled", "already_fulfilled"}
    assert "Executing payments.inbox.processing.process_event_job" in consumer.log()
    assert db.session.scalar(
        select(func.count()).select_from(AuditEntry).filter_by(action="contract.paid")
    ) == 1

    # The coach's mail left through the outbox, sent by the consumer.
    wait_for(lambda: "mail to maya@example.com" in consumer.log(), 15, "the coach's mail")
