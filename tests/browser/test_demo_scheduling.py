"""On the demo data and a phone-sized screen: a coach sets working hours, then a student
books a session inside them and moves it to another free time."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select

from tests.support import PHONE, log_in_anywhere, new_page, serve_in_thread, shot

pytestmark = pytest.mark.browser

# Tomás (Los Angeles) works Mon–Fri 07:00–11:00 and 15:00–19:00 in the demo; he adds
# Saturday mornings. Kenji (Tokyo) books his Portuguese sessions in them.
SATURDAY = 5
TOMAS_WINDOWS = {
    **{weekday: [(7 * 60, 11 * 60), (15 * 60, 19 * 60)] for weekday in range(5)},
    SATURDAY: [(9 * 60, 13 * 60)],
}


@pytest.fixture
def live_url(app, runner):
    assert runner.invoke(args=["demo-data"]).exit_code == 0
    with serve_in_thread(app) as url:
        yield url


def inside_tomas_hours(starts_at: datetime, ends_at: datetime) -> bool:
    from accounts.timezones import to_local

    zone = "America/Los_Angeles"
    start, end = to_local(starts_at, zone), to_local(ends_at, zone)
    minutes = (start.hour * 60 + start.minute, end.hour * 60 + end.minute)
    return any(
        low <= minutes[0] and minutes[1] <= high
        for low, high in TOMAS_WINDOWS.get(start.weekday(), [])
    )


def fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_demo_coach_sets_hours_and_a_student_books_and_moves_a_session_on_a_phone(
    browser, live_url, db
):
    from contracts.models import CoachingSession, Contract, SessionStatus
    from demo import DEMO_PASSWORD
    from scheduling.models import WorkingHours

    with new_page(browser, PHONE) as page:
        log_in_anywhere(page, live_url, "tomas@coachpact.test", DEMO_PASSWORD)
        page.get_by_role("button", name="Show or hide the menu").click()
        page.get_by_role("link", name="Working hours").click()
        saturday = page.locator("#day-5")
        saturday.get_by_label("From", exact=True).select_option("09:00")
        saturday.get_by_label("To").first.select_option("13:00")
        assert fits(page)
        page.get_by_role("button", name="Save working hours").click()
        page.wait_for_load_state("load")
        assert "Sat 09:00–13:00" in page.locator("#hours-summary").inner_text()
        shot(page, "demo-hours-phone")
        saved = db.session.scalars(
            select(WorkingHours).where(WorkingHours.weekday == SATURDAY)
        ).all()
        assert [(row.start_minute, row.end_minute) for row in saved] == [(540, 780)]

        page.context.clear_cookies()
        log_in_anywhere(page, live_url, "kenji@coachpact.test", DEMO_PASSWORD)
        contract_id = db.session.scalar(
            select(Contract.id).filter_by(title="Conversational Portuguese")
        )
        page.goto(f"{live_url}/contracts/{contract_id}/schedule")
        # Next week: far enough ahead that a student may still move the session.
        page.get_by_role("link", name="Later week").click()
        page.locator("#slots a.cp-slot").first.click()
        assert fits(page)
        page.get_by_role("button", name="Book session").click()
        page.wait_for_url(f"{live_url}/contracts/{contract_id}#sessions")
        assert page.get_by_text("Session booked for").is_visible()

        db.session.expire_all()
        booked = db.session.scalars(
            select(CoachingSession)
            .filter_by(contract_id=contract_id, status=SessionStatus.SCHEDULED)
            .order_by(CoachingSession.id.desc())
        ).first()
        first_start = booked.starts_at
        assert inside_tomas_hours(booked.starts_at, booked.ends_at)

        page.locator(f"#session-{booked.id}").get_by_role(
            "link", name="Reschedule the session"
        ).click()
        page.locator("#days a.cp-day").last.click()
        page.locator("#slots a.cp-slot").last.click()
        assert fits(page)
        shot(page, "demo-reschedule-phone")
        page.get_by_role("button", name="Move the session").click()
        page.wait_for_url(f"{live_url}/contracts/{contract_id}#sessions")
        assert page.get_by_text("Session moved to").is_visible()
        assert fits(page)

    db.session.expire_all()
    moved = db.session.get(CoachingSession, booked.id)
    assert moved.starts_at != first_start and moved.sequence == 1
    assert inside_tomas_hours(moved.starts_at, moved.ends_at)
