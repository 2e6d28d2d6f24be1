"""Coaching sessions: the payment gate, booking rules, time zones, .ics, completion, access."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from icalendar import Calendar
from sqlalchemy import func, select

from contracts.models import (
    CoachingSession,
    Contract,
    ContractStatus,
    SessionStatus,
)
from notifications.models import Notification
from tests.conftest import login
from tests.support import add_session, at_once

# Every test runs on this clock unless it moves it: a Monday, two weeks before
# the United States change to summer time (Sunday 14 March 2027) and four before
# the United Kingdom's (Sunday 28 March 2027).
START = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def coach(make_user):
    return make_user("coach", email="maya@example.com", name="Maya Coach", timezone="Europe/London")


@pytest.fixture
def student(make_user):
    return make_user(
        "student", email="ana@example.com", name="Ana Student", timezone="America/New_York"
    )


def slot_value(day: str, at: str, zone: str = "America/New_York") -> str:
    """The booking form's value for `day` `at` o'clock on `zone`'s wall clock (UTC start)."""
    from scheduling.localtime import local_to_utc

    starts_at = local_to_utc(date.fromisoformat(day), time.fromisoformat(at), zone)
    return starts_at.strftime("%Y-%m-%dT%H:%MZ")


def book(client, contract_id: int, day: str, at: str, note: str = "", zone="America/New_York"):
    """Post the booking form with the slot starting `day` `at` on the booker's clock."""
    return client.submit(
        f"/contracts/{contract_id}/schedule", {"slot": slot_value(day, at, zone), "note": note}
    )


def book_two(client, db, contract_id: int) -> list[CoachingSession]:
    """Book 10 and 11 March, 10:00 on the booker's clock; both sessions, in order."""
    book(client, contract_id, "2027-03-10", "10:00")
    book(client, contract_id, "2027-03-11", "10:00")
    return sessions(db, contract_id)


def sessions(db, contract_id: int | None = None) -> list[CoachingSession]:
    db.session.expire_all()
    query = select(CoachingSession).order_by(CoachingSession.starts_at)
    if contract_id is not None:
        query = query.where(CoachingSession.contract_id == contract_id)
    return list(db.session.scalars(query))


def contract_status(db, contract_id: int) -> ContractStatus:
    db.session.expire_all()
    return db.session.get(Contract, contract_id).status


def page_text(client, url: str) -> str:
    return client.get(url, follow_redirects=True).get_data(as_text=True)


# --- the gate -------------------------------------------------------------------

CLOSED = ["pending", "completed", "cancelled", "refunded", "disputed"]
SESSION_ACTIONS = ["cancel", "complete", "no-show"]


@pytest.mark.parametrize("status", CLOSED)
@pytest.mark.parametrize("who", ["student", "coach"])
def test_the_gate_closes_every_scheduling_route(
    client, db, clock, make_contract, coach, student, status, who
):
    contract_id = make_contract(status)
    # A session from before the contract left `active` (or forced onto a pending one).
    session_id = add_session(db, contract_id, START + timedelta(days=2))
    login(client, student if who == "student" else coach)
    to_pay = status == "pending" and who == "student"
    expected = f"/contracts/{contract_id}/pay" if to_pay else f"/contracts/{contract_id}"

    responses = [
        client.get(f"/contracts/{contract_id}/schedule"),
        book(client, contract_id, "2027-03-10", "10:00"),
    ]
    clock.freeze(START + timedelta(days=3))  # after the session's start: markable if open
    responses += [client.submit(f"/sessions/{session_id}/{action}") for action in SESSION_ACTIONS]
    for response in responses:
        assert response.status_code == 302
        assert response.headers["Location"].split("#")[0] == expected

    [only] = sessions(db, contract_id)
    assert only.status is SessionStatus.SCHEDULED
    reason = {
        "pending": "once this contract is paid",
        "completed": "the contract is completed",
        "cancelled": "was cancelled",
        "refunded": "was refunded",
        "disputed": "dispute is open",
    }[status]
    assert reason in page_text(client, f"/contracts/{contract_id}/schedule")
    detail = page_text(client, f"/contracts/{contract_id}")
    assert 'id="scheduling-closed"' in detail and "Book a session" not in detail


def test_the_gate_opens_every_scheduling_route_on_an_active_paid_contract(
    client, db, clock, contract_id, coach, student
):
    login(client, student)
    page = client.get(f"/contracts/{contract_id}/schedule")
    assert page.status_code == 200 and 'id="book-form"' in page.get_data(as_text=True)
    assert book(client, contract_id, "2027-03-10", "10:00").status_code == 302
    assert book(client, contract_id, "2027-03-11", "10:00").status_code == 302
    first, second = sessions(db, contract_id)
    assert client.submit(f"/sessions/{first.id}/cancel").status_code == 302
    client.submit("/auth/logout")
    login(client, coach)
    clock.freeze(second.starts_at + timedelta(minutes=5))
    assert client.submit(f"/sessions/{second.id}/no-show").status_code == 302
    assert [s.status for s in sessions(db, contract_id)] == [
        SessionStatus.CANCELLED,
        SessionStatus.NO_SHOW,
    ]


def test_the_pending_gate_sends_the_coach_to_the_contract_and_the_student_to_pay(
    client, make_contract, coach, student
):
    contract_id = make_contract("pending")
    login(client, student)
    page = page_text(client, f"/contracts/{contract_id}/schedule")
    assert "Sessions can be scheduled once this contract is paid." in page
    assert 'id="amount"' in page  # the pay page
    client.submit("/auth/logout")
    login(client, coach)
    page = page_text(client, f"/contracts/{contract_id}/schedule")
    assert "Sessions can be scheduled once this contract is paid." in page
    assert 'id="scheduling-closed"' in page


# --- booking rules ----------------------------------------------------------------


def test_booking_notifies_the_other_party_in_their_own_time_zone(
    client, db, contract_id, coach, student
):
    login(client, student)
    response = book(client, contract_id, "2027-03-10", "10:00", note="Opening lines")
    assert response.headers["Location"] == f"/contracts/{contract_id}#sessions"
    [booked] = sessions(db, contract_id)
    assert booked.starts_at == datetime(2027, 3, 10, 15, 0, tzinfo=UTC)  # 10:00 EST
    assert booked.ends_at - booked.starts_at == timedelta(minutes=60)
    assert booked.booked_by_id == student.id and booked.note == "Opening lines"
    # The latest: accepting the proposal told the coach before.
    note = db.session.scalar(
        select(Notification).filter_by(user_id=coach.id).order_by(Notification.id.desc())
    )
    assert note.message == (
        "Ana Student booked a session of “Interview coaching” for Wed 10 Mar 2027, 15:00 GMT."
    )
    assert note.link.endswith(f"/contracts/{contract_id}")
    page = page_text(client, f"/contracts/{contract_id}")
    assert "Session booked for Wed 10 Mar 2027, 10:00 EST." in page
    assert "3 of 4 left to book" in page


def test_at_most_the_contracts_session_count(client, db, make_contract, student):
    contract_id = make_contract(session_count=2)
    login(client, student)
    book(client, contract_id, "2027-03-10", "10:00")
    book(client, contract_id, "2027-03-11", "10:00")
    page = book(client, contract_id, "2027-03-12", "10:00").get_data(as_text=True)
    assert "booked or used" in page and "Book session" not in page
    assert len(sessions(db, contract_id)) == 2
    assert 'id="book-session"' not in page_text(client, f"/contracts/{contract_id}")


def test_no_overlap_with_the_coachs_other_contracts(
    client, db, make_user, make_contract, coach, student
):
    other_student = make_user("student", name="Kenji Other", timezone="America/New_York")
    mine = make_contract(minutes_per_session=60)
    theirs = make_contract(student_=other_student, minutes_per_session=90)
    login(client, other_student)
    assert book(client, theirs, "2027-03-10", "09:00").status_code == 302  # 09:00-10:30 EST
    client.submit("/auth/logout")
    login(client, student)
    for at in ("08:30", "09:00", "09:30", "10:00"):
        page = book(client, mine, "2027-03-10", at).get_data(as_text=True)
        assert "Maya Coach already has a session at that time." in page, at
    assert book(client, mine, "2027-03-10", "08:00").status_code == 302  # ends as theirs starts
    assert book(client, mine, "2027-03-10", "10:30").status_code == 302  # starts as theirs ends
    # The coach's other session is simply not offered, without whose it is.
    page = page_text(client, f"/contracts/{mine}/schedule?from=2027-03-10")
    assert 'data-slot="2027-03-10T14:00Z"' not in page
    assert 'data-slot="2027-03-10T14:30Z"' not in page
    assert 'data-slot="2027-03-10T09:00Z"' in page and "Kenji" not in page
    # A cancelled session frees its time.
    [theirs_session] = sessions(db, theirs)
    client.submit("/auth/logout")
    login(client, other_student)
    client.submit(f"/sessions/{theirs_session.id}/cancel")
    client.submit("/auth/logout")
    login(client, student)
    assert book(client, mine, "2027-03-10", "09:00").status_code == 302


def test_past_off_grid_and_unknown_times_are_refused(client, db, contract_id, student):
    login(client, student)
    past = book(client, contract_id, "2027-03-01", "06:45").get_data(as_text=True)  # 11:45 UTC
    assert "That time has passed." in past
    for at in ("10:07", "10:50"):
        page = book(client, contract_id, "2027-03-10", at).get_data(as_text=True)
        assert "Sessions start on the quarter hour" in page, at
    for value in ("2027-03-10T15:00:30Z", "tomorrow", ""):
        page = client.submit(f"/contracts/{contract_id}/schedule", {"slot": value})
        text = page.get_data(as_text=True)
        assert page.status_code == 200 and 'id="slot-error"' in text, value
        assert "Pick one of the times offered." in text or "Pick a time" in text, value
    assert sessions(db, contract_id) == []
    assert book(client, contract_id, "2027-03-10", "10:00").status_code == 302


def test_early_cancellation_frees_the_slot_and_late_cancellation_uses_it(
    client, db, clock, make_contract, coach, student
):
    contract_id = make_contract(session_count=2)
    login(client, student)
    early, late = book_two(client, db, contract_id)

    clock.freeze(early.starts_at - timedelta(hours=24, minutes=1))
    client.submit(f"/sessions/{early.id}/cancel")
    assert "1 of 2 left to book" in page_text(client, f"/contracts/{contract_id}")

    clock.freeze(late.starts_at - timedelta(hours=23, minutes=59))
    detail = page_text(client, f"/contracts/{contract_id}")
    assert "(counts as used)" in detail
    assert "This session will count as used" in page_text(client, f"/sessions/{late.id}/cancel")
    client.submit(f"/sessions/{late.id}/cancel")
    early, late = sessions(db, contract_id)
    assert early.status is late.status is SessionStatus.CANCELLED
    assert (early.late_cancellation, late.late_cancellation) == (False, True)
    assert "1 of 2 left to book" in page_text(client, f"/contracts/{contract_id}")
    note = db.session.scalar(
        select(Notification).filter_by(user_id=coach.id).order_by(Notification.id.desc())
    )
    assert note.message.startswith("Ana Student cancelled the session of “Interview coaching”")


def test_the_notice_period_is_a_setting_and_a_coachs_late_cancellation_frees_the_slot(
    app, client, db, clock, make_contract, coach, student
):
    app.config["SESSION_CANCEL_NOTICE_HOURS"] = 2
    contract_id = make_contract(session_count=2)
    login(client, student)
    first, second = book_two(client, db, contract_id)
    clock.freeze(first.starts_at - timedelta(hours=3))
    client.submit(f"/sessions/{first.id}/cancel")
    client.submit("/auth/logout")
    login(client, coach)
    clock.freeze(second.starts_at - timedelta(minutes=30))
    client.submit(f"/sessions/{second.id}/cancel")
    assert [s.late_cancellation for s in sessions(db, contract_id)] == [False, False]
    assert "2 of 2 left to book" in page_text(client, f"/contracts/{contract_id}")


def test_a_started_session_cannot_be_cancelled(client, db, clock, contract_id, student):
    login(client, student)
    book(client, contract_id, "2027-03-10", "10:00")
    [booked] = sessions(db, contract_id)
    clock.freeze(booked.starts_at + timedelta(minutes=1))
    response = client.submit(f"/sessions/{booked.id}/cancel", follow_redirects=True)
    assert "already started" in response.get_data(as_text=True)
    assert sessions(db, contract_id)[0].status is SessionStatus.SCHEDULED


# --- concurrency (PostgreSQL row locks) ---------------------------------------------


def _race(app, attempts) -> list[str]:
    """Each (contract id, user, start) booking at the same moment; "booked" or "refused"."""
    from extensions import db
    from scheduling.sessions import SchedulingError, book_session

    def booking(attempt) -> str:
        contract_id, user, starts_at = attempt
        try:
            book_session(contract_id, db.session.merge(user), starts_at=starts_at)
        except SchedulingError:
            db.session.rollback()
            return "refused"
        db.session.commit()
        return "booked"

    return at_once(app, booking, attempts)


@pytest.mark.postgres
def test_two_bookings_of_the_same_coach_slot_at_once_one_wins(
    app, db, database_uri, make_user, make_contract, student
):
    other = make_user("student", timezone="Asia/Tokyo")
    first, second = make_contract(), make_contract(student_=other)
    slot = datetime(2027, 3, 10, 15, 0, tzinfo=UTC)
    for _ in range(3):  # a few rounds: the lock, not luck, decides
        outcomes = _race(
            app, [(first, student, slot), (second, other, slot + timedelta(minutes=30))]
        )
        assert sorted(outcomes) == ["booked", "refused"]
        slot += timedelta(days=1)
    assert len(sessions(db)) == 3


@pytest.mark.postgres
def test_two_bookings_of_a_contracts_last_session_at_once_one_wins(
    app, db, database_uri, make_contract, coach, student
):
    contract_id = make_contract(session_count=1)
    slot = datetime(2027, 3, 10, 15, 0, tzinfo=UTC)
    outcomes = _race(
        app, [(contract_id, student, slot), (contract_id, coach, slot + timedelta(days=1))]
    )
    assert sorted(outcomes) == ["booked", "refused"]
    assert len(sessions(db, contract_id)) == 1


def test_the_database_refuses_two_scheduled_sessions_of_a_coach_at_one_instant(
    db, contract_id, make_contract, make_user
):
    from sqlalchemy.exc import IntegrityError

    other = make_contract(student_=make_user("student"))
    slot = START + timedelta(days=3)
    add_session(db, contract_id, slot)
    with pytest.raises(IntegrityError):
        add_session(db, other, slot)
    db.session.rollback()
    add_session(db, other, slot, status=SessionStatus.CANCELLED)  # only live ones collide


# --- time zones and .ics -----------------------------------------------------------


def ics_event(client, session_id: int):
    response = client.get(f"/sessions/{session_id}.ics")
    assert response.status_code == 200
    assert response.mimetype == "text/calendar"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="coachpact-session-{session_id}.ics"'
    )
    [event] = Calendar.from_ical(response.data).walk("VEVENT")
    return event, response.get_data(as_text=True)


def test_new_york_student_books_across_the_march_change_and_london_coach_sees_it(
    client, db, contract_id, coach, student
):
    login(client, student)
    book(client, contract_id, "2027-03-12", "10:00")  # Friday, EST (UTC-5)
    book(client, contract_id, "2027-03-15", "10:00")  # Monday, EDT (UTC-4)
    before, after = sessions(db, contract_id)
    assert before.starts_at == datetime(2027, 3, 12, 15, 0, tzinfo=UTC)
    assert after.starts_at == datetime(2027, 3, 15, 14, 0, tzinfo=UTC)
    mine = page_text(client, "/schedule")
    assert "Fri 12 Mar 2027, 10:00 EST" in mine and "Mon 15 Mar 2027, 10:00 EDT" in mine

    client.submit("/auth/logout")
    login(client, coach)
    theirs = page_text(client, "/schedule")
    # London is still on GMT: the same 10:00 in New York is 15:00, then 14:00.
    assert "Fri 12 Mar 2027, 15:00 GMT" in theirs and "Mon 15 Mar 2027, 14:00 GMT" in theirs
    event, raw = ics_event(client, after.id)
    assert "DTSTART:20270315T140000Z" in raw and "DTEND:20270315T150000Z" in raw
    assert event.decoded("dtstart") == after.starts_at
    assert event.decoded("dtend") == after.ends_at


def test_a_half_hour_zone(client, db, make_user, make_contract, coach):
    priya = make_user("student", name="Priya Nair", timezone="Asia/Kolkata")
    contract_id = make_contract(student_=priya)
    login(client, priya)
    assert "Sessions start on the quarter hour" in book(
        client, contract_id, "2027-03-16", "14:40", zone="Asia/Kolkata"
    ).get_data(as_text=True)
    # 14:30 in Kolkata is 09:00 in London, the start of the coach's day.
    book(client, contract_id, "2027-03-16", "14:30", zone="Asia/Kolkata")
    [booked] = sessions(db, contract_id)
    assert booked.starts_at == datetime(2027, 3, 16, 9, 0, tzinfo=UTC)
    assert "Tue 16 Mar 2027, 14:30 IST" in page_text(client, "/schedule")
    event, raw = ics_event(client, booked.id)
    assert "DTSTART:20270316T090000Z" in raw
    client.submit("/auth/logout")
    login(client, coach)
    assert "Tue 16 Mar 2027, 09:00 GMT" in page_text(client, "/schedule")
    assert ics_event(client, booked.id)[1] == raw  # the same file, whoever downloads it


def test_the_ics_file_describes_the_session_with_a_stable_uid(
    client, db, clock, contract_id, student
):
    login(client, student)
    book(client, contract_id, "2027-03-10", "10:00", note="Bring the slides")
    [booked] = sessions(db, contract_id)
    event, _ = ics_event(client, booked.id)
    assert str(event["uid"]) == f"coaching-session-{booked.id}@coachpact"
    assert str(event["summary"]) == "Interview coaching with Maya Coach and Ana Student"
    description = str(event["description"])
    assert "Coach: Maya Coach. Student: Ana Student." in description
    assert "Note: Bring the slides" in description
    assert f"/contracts/{contract_id}" in description and str(event["status"]) == "CONFIRMED"
    client.submit(f"/sessions/{booked.id}/cancel")
    cancelled, _ = ics_event(client, booked.id)
    assert str(cancelled["uid"]) == str(event["uid"])
    assert str(cancelled["status"]) == "CANCELLED" and int(cancelled["sequence"]) == 1


# --- completion ----------------------------------------------------------------------


def test_completed_and_no_show_sessions_complete_the_contract(
    client, db, clock, make_contract, coach, student
):
    contract_id = make_contract(session_count=2)
    login(client, student)
    first, second = book_two(client, db, contract_id)
    client.submit("/auth/logout")
    login(client, coach)

    early = client.submit(f"/sessions/{first.id}/complete", follow_redirects=True)
    assert "A session can be marked once it has started." in early.get_data(as_text=True)
    clock.freeze(first.starts_at + timedelta(minutes=50))
    detail = page_text(client, f"/contracts/{contract_id}")
    assert "Waiting for your mark" in detail and "Mark completed" in detail
    client.submit(f"/sessions/{first.id}/complete")
    assert contract_status(db, contract_id) is ContractStatus.ACTIVE
    again = client.submit(f"/sessions/{first.id}/no-show", follow_redirects=True)
    assert ("This session was completed already, so it can no longer be marked a no-show."
            in again.get_data(as_text=True))

    clock.freeze(second.starts_at + timedelta(minutes=20))
    client.submit(f"/sessions/{second.id}/no-show")
    first, second = sessions(db, contract_id)
    assert (first.status, second.status) == (SessionStatus.COMPLETED, SessionStatus.NO_SHOW)
    assert first.marked_at == first.starts_at + timedelta(minutes=50)
    assert contract_status(db, contract_id) is ContractStatus.COMPLETED
    notes = db.session.scalars(select(Notification.message).filter_by(user_id=student.id))
    assert "All sessions of “Interview coaching” are done; the contract is completed." in notes


def test_a_late_cancellation_counts_towards_completion(
    client, db, clock, make_contract, coach, student
):
    contract_id = make_contract(session_count=2)
    login(client, student)
    first, second = book_two(client, db, contract_id)
    clock.freeze(second.starts_at - timedelta(hours=2))
    client.submit(f"/sessions/{second.id}/cancel")  # late: used
    client.submit("/auth/logout")
    login(client, coach)
    client.submit(f"/sessions/{first.id}/complete")
    assert contract_status(db, contract_id) is ContractStatus.COMPLETED


def test_only_the_coach_marks_sessions(client, db, clock, contract_id, student):
    login(client, student)
    book(client, contract_id, "2027-03-10", "10:00")
    [booked] = sessions(db, contract_id)
    clock.freeze(booked.starts_at + timedelta(hours=1))
    for action in ("complete", "no-show"):
        assert client.submit(f"/sessions/{booked.id}/{action}").status_code == 403
    assert sessions(db, contract_id)[0].status is SessionStatus.SCHEDULED


# --- access ----------------------------------------------------------------------------


@pytest.mark.parametrize("stranger_role", ["student", "coach", "admin"])
def test_every_session_url_is_not_found_for_a_stranger(
    client, db, make_user, contract_id, student, stranger_role
):
    login(client, student)
    book(client, contract_id, "2027-03-10", "10:00")
    [booked] = sessions(db, contract_id)
    client.submit("/auth/logout")
    login(client, make_user(stranger_role))
    assert client.get(f"/contracts/{contract_id}/schedule").status_code == 404
    assert book(client, contract_id, "2027-03-11", "10:00").status_code == 404
    assert client.get(f"/sessions/{booked.id}.ics").status_code == 404
    for action in SESSION_ACTIONS:
        assert client.submit(f"/sessions/{booked.id}/{action}").status_code == 404
    assert booked.starts_at.strftime("%H:%M") not in page_text(client, "/schedule")
    assert [s.status for s in sessions(db)] == [SessionStatus.SCHEDULED]


def test_scheduling_pages_need_a_login(client, db, contract_id):
    for url in (f"/contracts/{contract_id}/schedule", "/schedule", "/sessions/1.ics"):
        response = client.get(url)
        assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


def test_my_schedule_lists_upcoming_sessions_across_contracts(
    client, db, clock, make_user, make_contract, coach, student
):
    other_coach = make_user("coach", name="Tomás Coach", timezone="America/Los_Angeles")
    first = make_contract(title="Interview coaching")
    second = make_contract(coach_=other_coach, title="Guitar basics")
    login(client, student)
    book(client, first, "2027-03-10", "10:00")
    book(client, second, "2027-03-09", "18:00")
    book(client, first, "2027-03-12", "10:00")
    cancelled = sessions(db, first)[-1]
    client.submit(f"/sessions/{cancelled.id}/cancel")
    page = page_text(client, "/schedule")
    assert page.index("Guitar basics") < page.index("Interview coaching")  # soonest first
    assert "Tue 09 Mar 2027, 18:00 EST" in page and "Wed 10 Mar 2027, 10:00 EST" in page
    assert "Fri 12 Mar 2027" not in page  # cancelled
    assert 'id="nav-schedule"' in page
    clock.freeze(datetime(2027, 3, 11, tzinfo=UTC))
    assert "No sessions booked." in page_text(client, "/schedule")
    count = db.session.scalar(select(func.count()).select_from(CoachingSession))
    assert count == 3
