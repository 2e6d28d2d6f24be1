"""After paying in Chromium, the student books a session; the coach sees it and completes it."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from tests.conftest import PASSWORD
from tests.support import log_in, pay_by_card, shot

pytestmark = pytest.mark.browser


def test_pay_then_book_a_session_and_the_coach_completes_it(
    page, live_url, sandbox, db, make_user, make_proposal, clock
):
    from accounts.timezones import SESSION_FORMAT, format_local
    from contracts.models import CoachingSession, Contract, ContractStatus, SessionStatus
    from contracts.services import accept_proposal

    coach = make_user(
        "coach", email="maya@example.com", name="Maya Lindqvist", timezone="Europe/London"
    )
    student = make_user(
        "student", email="ana@example.com", name="Ana Ruiz", timezone="America/New_York"
    )
    proposal_id = make_proposal(
        coach,
        student,
        title="Public speaking",
        session_count=1,
        minutes_per_session=45,
        price_per_session=7500,
    )
    contract_id = accept_proposal(proposal_id, db.session.merge(student)).id
    db.session.commit()

    # Before paying, the scheduling page sends the student to the pay page.
    log_in(page, live_url, "ana@example.com", PASSWORD)
    page.goto(f"{live_url}/contracts/{contract_id}/schedule")
    page.wait_for_url(f"{live_url}/contracts/{contract_id}/pay")
    assert page.get_by_text("Sessions can be scheduled once this contract is paid.").is_visible()
    page.get_by_role("button", name="securely with Stripe").click()
    pay_by_card(page, sandbox.url, "ana@example.com", "Ana Ruiz")
    page.wait_for_url(f"{live_url}/contracts/*/payment-success*")
    assert page.locator("#payment-result").inner_text() == "Payment received"
    page.get_by_role("link", name="Go to the contract").click()

    # Book the first free slot offered, shown on the student's own (New York) clock.
    page.get_by_role("link", name="Book a session").click()
    # The first day with free time is open; its first time leads to the confirm step.
    first = page.locator("#slots a.cp-slot").first
    starts_at = datetime.strptime(first.get_attribute("data-slot"), "%Y-%m-%dT%H:%MZ").replace(
        tzinfo=ZoneInfo("UTC"))
    first.click()
    assert format_local(starts_at, "America/New_York", "%a %d %b, %H:%M %Z") in page.locator(
        "#confirm-time").inner_text()
    page.get_by_label("Note for the session (optional)").fill("Wedding toast, first draft")
    shot(page, "sessions-book-form")
    if starts_at - datetime.now(ZoneInfo("UTC")) < timedelta(hours=24):
        # Inside the late-cancel window (the time of day the test runs decides): the
        # confirm step says so, and its button books it anyway.
        assert page.locator("#late-cancel-warning").is_visible()
        page.get_by_role("button", name="Book it anyway").click()
    else:
        page.get_by_role("button", name="Book session").click()
    page.wait_for_url(f"{live_url}/contracts/{contract_id}#sessions")
    student_view = format_local(starts_at, "America/New_York", SESSION_FORMAT)
    assert page.get_by_text(f"Session booked for {student_view}.").is_visible()
    assert page.locator("#sessions-upcoming .cp-session-time").inner_text() == student_view
    assert page.locator("#remaining").inner_text().startswith("0 of 1 left to book")
    shot(page, "sessions-student-contract")

    with page.expect_download() as download:
        page.locator("#sessions-upcoming").get_by_role("link", name=".ics").click()
    ics = download.value.path().read_text(encoding="utf-8")
    utc = starts_at.astimezone(ZoneInfo("UTC"))
    assert f"DTSTART:{utc:%Y%m%dT%H%M%S}Z" in ics
    assert download.value.suggested_filename.endswith(".ics")
    page.get_by_role("button", name="Log out").click()

    # The coach sees it on "My schedule" on London's clock.
    log_in(page, live_url, "maya@example.com", PASSWORD)
    page.locator("#nav-schedule").click()
    coach_view = format_local(starts_at, "Europe/London", SESSION_FORMAT)
    row = page.locator("#schedule-upcoming .cp-session").first
    assert row.locator(".cp-session-time").inner_text() == coach_view
    assert "Public speaking" in row.inner_text() and "Ana Ruiz" in row.inner_text()
    shot(page, "sessions-coach-schedule")

    # An hour after its start the coach marks it completed, which completes the contract.
    later = starts_at + timedelta(hours=1)
    clock.freeze(later)
    page.reload()
    assert page.locator("#schedule-upcoming").get_by_role("button").count() == 0
    page.locator("#schedule-to-mark").get_by_role("button", name="Mark completed").click()
    page.wait_for_url(f"{live_url}/contracts/{contract_id}#sessions")
    assert page.get_by_text("Session marked completed.").is_visible()
    assert page.locator(".cp-status").first.get_attribute("data-status") == "completed"
    shot(page, "sessions-coach-completed")

    db.session.expire_all()
    booked = db.session.scalar(select(CoachingSession))
    assert booked.status is SessionStatus.COMPLETED and booked.starts_at == starts_at
    assert db.session.get(Contract, contract_id).status is ContractStatus.COMPLETED
