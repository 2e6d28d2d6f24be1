"""An admin's day in Chromium: dashboard, a payment found by its Stripe id, its timeline,
an event replayed, a manual payment recorded, and the CSV export."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import PASSWORD
from tests.support import shot

pytestmark = pytest.mark.browser


@pytest.fixture
def console_data(db, make_user, make_proposal):
    """A paid contract whose Checkout event is in the inbox, and a pending contract."""
    import clock
    from contracts.services import accept_proposal
    from payments.models import EventStatus, Payment, PaymentRecordStatus, WebhookEvent

    coach = make_user("coach", name="Maya Lindqvist")
    ana = make_user("student", name="Ana Ruiz")
    kenji = make_user("student", name="Kenji Sato")
    speaking = make_proposal(coach, ana, title="Public speaking")
    negotiation = make_proposal(coach, kenji, title="Negotiation skills")
    paid = accept_proposal(speaking, db.session.merge(ana))
    pending = accept_proposal(negotiation, db.session.merge(kenji))
    db.session.flush()
    paid.status, paid.paid_at = paid.status.ACTIVE, clock.now()
    paid.payment_status = paid.payment_status.PAID
    for days in range(6):  # a week of history for the chart
        db.session.add(Payment(
            contract_id=paid.id, amount=paid.total_amount, currency="usd",
            status=PaymentRecordStatus.FAILED if days % 3 == 2 else PaymentRecordStatus.SUCCEEDED,
            checkout_session_id=f"cs_test_week_{days}", failure_reason="Your card was declined.",
            void_reason=None if days == 0 else "duplicate",
            created_at=datetime.now(UTC) - timedelta(days=days, hours=1)))
    db.session.add(Payment(
        contract_id=paid.id, amount=paid.total_amount, currency="usd",
        status=PaymentRecordStatus.SUCCEEDED, checkout_session_id="cs_test_findme",
        payment_intent_id="pi_findme", payment_method_type="card", paid_at=clock.now()))
    body = {"id": "evt_findme", "object": "event", "type": "checkout.session.completed",
            "data": {"object": {"id": "cs_test_findme", "payment_intent": "pi_findme"}}}
    db.session.add(WebhookEvent(
        stripe_event_id="evt_findme", type="checkout.session.completed",
        payload=json.dumps(body), status=EventStatus.PROCESSED, outcome="fulfilled",
        object_id="cs_test_findme", payment_intent_id="pi_findme"))
    db.session.commit()
    admin = make_user("admin", email="ada@example.com", name="Ada Admin")
    return admin, pending


def test_an_admin_works_through_the_console(page, live_url, db, console_data):
    admin, pending = console_data
    page.goto(f"{live_url}/auth/login")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_url}/admin/payments")
    assert page.locator("#volume-chart").is_visible()
    shot(page, "admin-dashboard")

    page.locator("#admin-nav").get_by_role("link", name="Payments").click()
    page.get_by_label("Search", exact=True).fill("pi_findme")
    page.get_by_role("button", name="Show payments").click()
    rows = page.locator("#payments tbody tr")
    assert rows.count() == 1
    shot(page, "admin-payments-search")
    rows.first.get_by_role("link").first.click()
    timeline = page.locator("#timeline")
    assert "evt_findme" in timeline.inner_text()
    shot(page, "admin-payment-timeline")

    timeline.get_by_role("link", name="Stripe: the Checkout session was completed").click()
    page.get_by_role("button", name="Replay").click()
    assert "already processed" in page.locator(".alert").first.inner_text()
    shot(page, "admin-event-replayed")

    page.goto(f"{live_url}/admin/contracts/{pending.id}/manual-payment")
    page.get_by_label("Paid by").select_option("bank_transfer")
    page.get_by_label("Reference").fill("TR-778")
    page.get_by_label("Received on").fill(datetime.now(UTC).date().isoformat())
    page.get_by_role("button", name="received").click()
    assert "TR-778" in page.locator("#confirm-figures").inner_text()  # nothing recorded yet
    page.get_by_role("button", name="received").click()
    assert "Manual payment recorded" in page.locator(".alert").first.inner_text()
    shot(page, "admin-manual-payment")

    page.locator("#admin-nav").get_by_role("link", name="Payments").click()
    with page.expect_download() as download:
        page.locator("#export-csv").click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert text.startswith('"payment_id",') and "cs_test_findme" in text and "TR-778" in text
    assert len(text.strip().splitlines()) == 1 + 8  # the header and every payment
