"""Booking a slot inside the late-cancellation window: between the booking notice (12 h)
and the free-cancellation limit (24 h) a slot is bookable, but a student cancelling it
loses the session, so the student is told so before the booking is made."""

from __future__ import annotations

import html
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from contracts.models import CoachingSession
from tests.conftest import PASSWORD, login
from tests.scheduling.conftest import START
from tests.support import serve_in_thread, shot

# START is Monday 1 March 2027, 12:00 UTC; the coach works 09:00–17:00 in Berlin
# (08:00–16:00 UTC). Tuesday 08:00 UTC is 20 hours ahead: inside the window.
INSIDE = datetime(2027, 3, 2, 8, 0, tzinfo=UTC)
# Tuesday 12:00 UTC is exactly 24 hours ahead: free to cancel until the limit.
OUTSIDE = datetime(2027, 3, 2, 12, 0, tzinfo=UTC)


def value(starts_at: datetime) -> str:
    return starts_at.strftime("%Y-%m-%dT%H:%MZ")


def booked_starts(db, contract_id: int) -> list[datetime]:
    db.session.expire_all()
    rows = db.session.scalars(
        select(CoachingSession.starts_at).where(CoachingSession.contract_id == contract_id)
    )
    return [row.replace(tzinfo=UTC) if row.tzinfo is None else row for row in rows]


WARNING = (
    "This session starts in 20 hours, less than the 24 hours' notice a free cancellation "
    "needs: if you cancel it, it will count as used."
)


def test_a_slot_inside_the_window_is_booked_only_once_the_warning_is_confirmed(
    client, db, contract_id, student
):
    login(client, student)
    page = client.get(f"/contracts/{contract_id}/schedule").get_data(as_text=True)
    assert 'id="late-cancel-note"' in page
    assert page.count("no free cancellation</span>") == 8  # 08:00 to 11:30 UTC

    answer = client.submit(
        f"/contracts/{contract_id}/schedule", {"slot": value(INSIDE), "note": "Grammar"}
    )
    text = html.unescape(answer.get_data(as_text=True))
    assert answer.status_code == 200
    assert 'id="late-cancel-warning"' in text and WARNING in text
    assert 'name="confirm_late" value="1"' in text
    # The choice and the note are kept.
    assert "Grammar" in text
    assert f'<input type="hidden" name="slot" value="{value(INSIDE)}">' in text
    assert booked_starts(db, contract_id) == []

    answer = client.submit(
        f"/contracts/{contract_id}/schedule",
        {"slot": value(INSIDE), "note": "Grammar", "confirm_late": "1"},
    )
    assert answer.status_code == 302
    assert booked_starts(db, contract_id) == [INSIDE]


def test_a_slot_outside_the_window_is_booked_at_once(client, db, contract_id, student):
    login(client, student)
    answer = client.submit(f"/contracts/{contract_id}/schedule", {"slot": value(OUTSIDE)})
    assert answer.status_code == 302
    assert booked_starts(db, contract_id) == [OUTSIDE]


def test_a_coach_is_not_warned_whose_cancellation_never_counts(client, db, contract_id, coach):
    login(client, coach)
    page = client.get(f"/contracts/{contract_id}/schedule").get_data(as_text=True)
    assert "no free cancellation" not in page
    answer = client.submit(f"/contracts/{contract_id}/schedule", {"slot": value(INSIDE)})
    assert answer.status_code == 302
    assert booked_starts(db, contract_id) == [INSIDE]


def test_a_time_refused_anyway_gets_its_refusal_not_the_warning(client, db, contract_id, student):
    login(client, student)
    too_soon = START.replace(hour=16)  # four hours ahead, under the booking notice
    answer = client.submit(f"/contracts/{contract_id}/schedule", {"slot": value(too_soon)})
    text = answer.get_data(as_text=True)
    assert 'id="slot-error"' in text and 'id="late-cancel-warning"' not in text
    assert booked_starts(db, contract_id) == []


@pytest.mark.browser
def test_the_booking_page_marks_late_slots_and_asks_before_booking_one(
    app, page, db, contract_id, student
):
    with serve_in_thread(app) as url:
        page.goto(f"{url}/auth/login")
        page.get_by_label("Email").fill(student.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(lambda address: "/auth/login" not in address)
        page.goto(f"{url}/contracts/{contract_id}/schedule")
        slot_id = "slot-" + value(INSIDE).replace(":", "").replace("-", "")
        time_link = page.locator(f"#{slot_id}")
        assert "no free cancellation" in time_link.inner_text()
        time_link.click()
        # The confirm step warns before anything is posted; its one button books anyway.
        warning = page.locator("#late-cancel-warning")
        assert WARNING in warning.inner_text()
        assert page.get_by_role("button", name="Book session").count() == 0
        shot(page, "late-cancel-warning")
        assert booked_starts(db, contract_id) == []
        page.get_by_role("button", name="Book it anyway").click()
        page.wait_for_url(lambda address: "/schedule" not in address)
    assert booked_starts(db, contract_id) == [INSIDE]


def test_a_slot_taken_meanwhile_gets_its_refusal_not_the_warning(
    app, client, db, make_user, make_contract, contract_id, student
):
    from scheduling.sessions import book_session

    other = make_user("student", name="Other Student")
    theirs = make_contract(student_=other)
    with app.test_request_context():
        book_session(theirs, db.session.merge(other), starts_at=INSIDE)
        db.session.commit()
    login(client, student)
    answer = client.submit(f"/contracts/{contract_id}/schedule", {"slot": value(INSIDE)})
    text = answer.get_data(as_text=True)
    assert "Maya Coach already has a session at that time." in text
    assert 'id="late-cancel-warning"' not in text
    assert booked_starts(db, contract_id) == []
