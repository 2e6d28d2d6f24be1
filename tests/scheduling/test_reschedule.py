"""Moving a session to another free slot, cancelling after a confirmation, "My schedule" tabs
and pages, and a phone-sized walk through booking and moving a session in Chromium."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from audit.models import AuditEntry
from contracts.models import CoachingSession, Contract, SessionStatus
from notifications.models import Notification
from scheduling.models import DayOff
from tests.conftest import PASSWORD, login
from tests.support import at_once, log_in, serve_in_thread, shot

START = datetime(2027, 3, 1, 6, 0, tzinfo=UTC)  # a Monday, 07:00 in Berlin
# 26 hours later: 09:00 in Berlin, 03:00 in New York, outside the cancellation notice.
TUESDAY = datetime(2027, 3, 2, 8, 0, tzinfo=UTC)
THURSDAY = datetime(2027, 3, 4, 10, 0, tzinfo=UTC)  # 11:00 in Berlin, 05:00 in New York


@pytest.fixture
def start() -> datetime:
    return START


@pytest.fixture
def booked_id(app, db, contract_id, student) -> int:
    """A session of the contract on Tuesday 2 March, 09:00 in Berlin, booked by the student."""
    from scheduling.sessions import book_session

    with app.test_request_context():
        booked = book_session(contract_id, db.session.merge(student), starts_at=TUESDAY)
        db.session.commit()
        return booked.id


def value(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%MZ")


def fresh(db, session_id: int) -> CoachingSession:
    db.session.expire_all()
    return db.session.get(CoachingSession, session_id)


def move(client, session_id: int, to: datetime, **kwargs):
    return client.submit(f"/sessions/{session_id}/reschedule", {"slot": value(to)}, **kwargs)


def latest_note(db, user) -> str:
    return db.session.scalar(
        select(Notification.message).filter_by(user_id=user.id).order_by(Notification.id.desc())
    )


# --- moving ------------------------------------------------------------------------------


def test_either_party_moves_a_session_and_the_other_is_told(
    client, db, clock, booked_id, contract_id, coach, student
):
    login(client, student)
    page = client.get(f"/sessions/{booked_id}/reschedule").get_data(as_text=True)
    assert "Now: <strong>Tue 02 Mar 2027, 03:00 EST</strong>" in page
    # Its own time is no obstacle: 03:30 overlaps the session being moved, and is offered.
    assert f'data-slot="{value(TUESDAY + timedelta(minutes=30))}"' in page

    response = move(client, booked_id, THURSDAY, follow_redirects=True)
    assert "Session moved to Thu 04 Mar 2027, 05:00 EST." in response.get_data(as_text=True)
    moved = fresh(db, booked_id)
    assert (moved.starts_at, moved.ends_at) == (THURSDAY, THURSDAY + timedelta(hours=1))
    assert (moved.sequence, moved.rescheduled_at) == (1, START)
    assert moved.status is SessionStatus.SCHEDULED
    assert latest_note(db, coach) == (
        "Kenji Sato moved the session of “Interview coaching” from Tue 02 Mar 2027, 09:00 CET "
        "to Thu 04 Mar 2027, 11:00 CET."
    )
    entry = db.session.scalar(select(AuditEntry).filter_by(action="session.rescheduled"))
    assert entry.before == {"starts_at": "2027-03-02T08:00:00+00:00",
                            "ends_at": "2027-03-02T09:00:00+00:00"}
    assert entry.after == {"starts_at": "2027-03-04T10:00:00+00:00",
                           "ends_at": "2027-03-04T11:00:00+00:00"}

    client.submit("/auth/logout")
    login(client, coach)
    later = THURSDAY + timedelta(days=1)
    assert move(client, booked_id, later).status_code == 302
    assert fresh(db, booked_id).sequence == 2
    assert latest_note(db, student) == (
        "Maya Coach moved the session of “Interview coaching” from Thu 04 Mar 2027, 05:00 EST "
        "to Fri 05 Mar 2027, 05:00 EST."
    )
    # Still one session used of four: a move is not a booking.
    assert "3 of 4 left to book" in client.get(f"/contracts/{contract_id}").get_data(
        as_text=True)


def test_the_new_time_follows_the_same_rules_as_a_booking(
    app, client, db, make_user, make_contract, booked_id, coach, student
):
    from scheduling.sessions import book_session

    other = make_user("student", name="Other Student")
    theirs = make_contract(student_=other)
    with app.test_request_context():
        book_session(theirs, db.session.merge(other), starts_at=THURSDAY)
        db.session.commit()
    db.session.add(DayOff(coach_id=coach.id, day=THURSDAY.date() + timedelta(days=1)))
    db.session.commit()
    login(client, student)
    for to, message in (
        (THURSDAY, "Maya Coach already has a session at that time."),
        (THURSDAY + timedelta(minutes=30), "Maya Coach already has a session at that time."),
        (THURSDAY + timedelta(days=1), "(a day off)"),
        (THURSDAY + timedelta(days=2), "that time is outside those hours."),  # Saturday
        (START + timedelta(hours=3), "Sessions are booked at least 12 hours ahead."),
        (TUESDAY, "The session is already at that time."),
    ):
        response = move(client, booked_id, to)
        page = response.get_data(as_text=True)
        assert response.status_code == 200 and message in page, to
        assert 'id="slot-error"' in page
    moved = fresh(db, booked_id)
    assert (moved.starts_at, moved.sequence, moved.rescheduled_at) == (TUESDAY, 0, None)


def test_a_student_cannot_move_a_session_inside_the_cancellation_notice(
    client, db, clock, booked_id, coach, student
):
    clock.freeze(TUESDAY - timedelta(hours=23))
    login(client, student)
    page = client.get(f"/sessions/{booked_id}/reschedule").get_data(as_text=True)
    assert ("This session starts in less than 24 hours, so it can no longer be moved; "
            "cancelling it now would count it as used.") in page
    assert 'id="reschedule-form"' not in page
    response = move(client, booked_id, THURSDAY)
    assert "can no longer be moved" in response.get_data(as_text=True)
    assert fresh(db, booked_id).starts_at == TUESDAY
    detail = client.get(f"/contracts/{fresh(db, booked_id).contract_id}").get_data(as_text=True)
    assert f"/sessions/{booked_id}/reschedule" not in detail

    # The coach may: the student should not pay for the coach's change of plan.
    client.submit("/auth/logout")
    login(client, coach)
    assert f"/sessions/{booked_id}/reschedule" in client.get(
        f"/contracts/{fresh(db, booked_id).contract_id}").get_data(as_text=True)
    assert move(client, booked_id, THURSDAY).status_code == 302
    assert fresh(db, booked_id).starts_at == THURSDAY


def test_nobody_moves_a_started_or_cancelled_session(client, db, clock, booked_id, coach):
    login(client, coach)
    clock.freeze(TUESDAY + timedelta(minutes=1))
    page = move(client, booked_id, THURSDAY).get_data(as_text=True)
    assert "This session has already started; it can no longer be moved." in page
    assert fresh(db, booked_id).starts_at == TUESDAY
    clock.freeze(START)
    client.submit(f"/sessions/{booked_id}/cancel")
    page = move(client, booked_id, THURSDAY).get_data(as_text=True)
    assert "This session is cancelled; it cannot be moved." in page
    assert fresh(db, booked_id).starts_at == TUESDAY


@pytest.mark.parametrize("stranger_role", ["student", "coach"])
def test_strangers_find_nothing(client, db, make_user, booked_id, stranger_role):
    login(client, make_user(stranger_role))
    assert client.get(f"/sessions/{booked_id}/reschedule").status_code == 404
    assert move(client, booked_id, THURSDAY).status_code == 404
    assert client.get(f"/sessions/{booked_id}/cancel").status_code == 404
    assert fresh(db, booked_id).starts_at == TUESDAY


# --- cancelling asks first ------------------------------------------------------------------


def test_the_cancel_page_says_what_cancelling_costs(client, db, clock, booked_id, coach, student):
    login(client, student)
    row = client.get("/schedule").get_data(as_text=True)
    assert f'href="/sessions/{booked_id}/cancel"' in row
    assert "Cancel…<span class=\"visually-hidden\"> the session on Tue 02 Mar, 03:00</span>" in row
    early = client.get(f"/sessions/{booked_id}/cancel").get_data(as_text=True)
    assert "The session goes back to the contract; you can book another time." in early
    assert "Tue 02 Mar 2027, 03:00 EST" in early and "Maya Coach" in early
    assert fresh(db, booked_id).status is SessionStatus.SCHEDULED  # asking changes nothing

    clock.freeze(TUESDAY - timedelta(hours=5))
    late = client.get(f"/sessions/{booked_id}/cancel").get_data(as_text=True)
    assert ("This session will count as used:</strong> you are cancelling with less than "
            "24 hours' notice.") in late
    client.submit("/auth/logout")
    login(client, coach)  # the coach's late cancellation frees the session
    coach_view = client.get(f"/sessions/{booked_id}/cancel").get_data(as_text=True)
    assert "The session goes back to the contract" in coach_view and "Kenji Sato" in coach_view
    client.submit("/auth/logout")
    login(client, student)
    assert client.submit(f"/sessions/{booked_id}/cancel").status_code == 302
    cancelled = fresh(db, booked_id)
    assert cancelled.status is SessionStatus.CANCELLED and cancelled.late_cancellation
    assert cancelled.sequence == 1
    again = client.get(f"/sessions/{booked_id}/cancel").get_data(as_text=True)
    assert "there is nothing to cancel" in again and 'id="confirm-cancel"' not in again


# --- "My schedule": tabs and pages ----------------------------------------------------------


def add_sessions(db, contract_id: int, starts: list[datetime], **values) -> None:
    """Session rows written directly: many of them, in states the rules would not reach."""
    contract = db.session.get(Contract, contract_id)
    for starts_at in starts:
        db.session.add(CoachingSession(
            contract_id=contract_id, coach_id=contract.coach_id,
            booked_by_id=contract.student_id, starts_at=starts_at,
            ends_at=starts_at + timedelta(minutes=30), **values))
    db.session.commit()


def session_ids(page: str) -> list[int]:
    import re

    return [int(found) for found in re.findall(r'id="session-(\d+)"', page)]


def test_my_schedule_has_tabs_and_pages(client, db, make_contract, coach, student):
    contract_id = make_contract(session_count=99)
    hour = timedelta(hours=1)
    add_sessions(db, contract_id, [START + 2 * hour + n * hour for n in range(45)])
    add_sessions(db, contract_id, [START - hour, START - 2 * hour])  # waiting for a mark
    add_sessions(db, contract_id, [START - n * 24 * hour for n in range(1, 24)],
                 status=SessionStatus.COMPLETED)
    add_sessions(db, contract_id, [START - 30 * 24 * hour], status=SessionStatus.CANCELLED,
                 cancelled_by_id=student.id)
    login(client, coach)

    first = client.get("/schedule").get_data(as_text=True)
    assert 'id="tab-upcoming"' in first and 'aria-current="page"' in first
    assert "Waiting for your mark" in first  # the coach's to-mark section stays on top
    upcoming = db.session.scalars(select(CoachingSession.id).where(
        CoachingSession.starts_at > START).order_by(CoachingSession.starts_at)).all()
    to_mark = db.session.scalars(select(CoachingSession.id).where(
        CoachingSession.starts_at <= START, CoachingSession.status == SessionStatus.SCHEDULED
    ).order_by(CoachingSession.starts_at)).all()
    assert session_ids(first) == to_mark + upcoming[:20]
    assert 'href="/schedule?tab=upcoming&amp;page=2"' in first and 'rel="prev"' not in first

    third = client.get("/schedule?tab=upcoming&page=3").get_data(as_text=True)
    assert session_ids(third) == to_mark + upcoming[40:]
    assert 'href="/schedule?tab=upcoming&amp;page=2"' in third and 'rel="next"' not in third

    past = client.get("/schedule?tab=past").get_data(as_text=True)
    past_ids = db.session.scalars(select(CoachingSession.id).where(
        CoachingSession.status != SessionStatus.SCHEDULED
    ).order_by(CoachingSession.starts_at.desc())).all()
    assert len(past_ids) == 24 and session_ids(past) == past_ids[:20]  # newest first
    assert session_ids(client.get("/schedule?tab=past&page=2").get_data(as_text=True)) == (
        past_ids[20:])
    assert "Waiting for your mark" not in past

    marking = client.get("/schedule?tab=to-mark").get_data(as_text=True)
    assert session_ids(marking) == to_mark and "Mark completed" in marking
    nonsense = client.get("/schedule?tab=nope&page=x")
    assert nonsense.status_code == 200 and session_ids(nonsense.get_data(as_text=True))[:2] == (
        to_mark)
    # An edited page number far past any offset the database takes is an empty page.
    beyond = client.get(f"/schedule?tab=past&page={10**30}")
    assert beyond.status_code == 200 and session_ids(beyond.get_data(as_text=True)) == []


# --- concurrency (PostgreSQL row locks) --------------------------------------------------------


@pytest.mark.postgres
def test_a_reschedule_and_a_booking_racing_for_one_slot_one_wins(
    app, db, make_user, make_contract, booked_id, student
):
    from scheduling.sessions import SchedulingError, book_session, reschedule_session

    other = make_user("student", name="Other Student", timezone="Asia/Tokyo")
    theirs = make_contract(student_=other)

    def attempt(arg: tuple[str, datetime]) -> str:
        from extensions import db as extension

        who, slot = arg
        try:
            if who == "move":
                reschedule_session(booked_id, extension.session.merge(student), starts_at=slot)
            else:  # half an hour later: overlapping, so only the locks can tell them apart
                book_session(theirs, extension.session.merge(other),
                             starts_at=slot + timedelta(minutes=30))
            extension.session.commit()
            return who
        except SchedulingError:
            extension.session.rollback()
            return "refused"

    # A few rounds (Thu 4, Tue 9, Wed 10 March): the locks, not luck, decide.
    for slot in (THURSDAY, THURSDAY + timedelta(days=5), THURSDAY + timedelta(days=6)):
        outcomes = at_once(app, attempt, [("move", slot), ("book", slot)])
        assert sorted(outcomes) in (["move", "refused"], ["book", "refused"]), outcomes
        db.session.expire_all()
        around = db.session.scalars(select(CoachingSession).where(
            CoachingSession.starts_at.in_([slot, slot + timedelta(minutes=30)]),
            CoachingSession.status == SessionStatus.SCHEDULED)).all()
        assert len(around) == 1


# --- in Chromium, on a phone ------------------------------------------------------------------


@pytest.fixture
def live_url(app):
    with serve_in_thread(app) as url:
        yield url


@pytest.mark.browser
def test_a_student_books_a_slot_and_moves_it_on_a_phone(
    page, live_url, db, contract_id, student
):
    page.set_viewport_size({"width": 390, "height": 844})

    def fits() -> bool:
        return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    log_in(page, live_url, "kenji@example.com", PASSWORD)
    page.goto(f"{live_url}/contracts/{contract_id}")
    page.get_by_role("link", name="Book a session").click()
    assert "09:00 CET for Maya" in page.locator("#slots").inner_text()
    page.locator("#day-2027-03-02").click()
    page.locator("#slots a.cp-slot", has_text="Tue 02 Mar, 03:00 EST").click()
    assert "Tue 02 Mar, 09:00 CET for Maya Coach" in page.locator("#confirm-time").inner_text()
    page.get_by_label("Note for the session (optional)").fill("Mock interview, round one")
    assert fits()
    shot(page, "slots-book-phone")
    page.get_by_role("button", name="Book session").click()
    page.wait_for_url(f"{live_url}/contracts/{contract_id}#sessions")
    assert page.get_by_text("Session booked for Tue 02 Mar 2027, 03:00 EST.").is_visible()
    assert fits()
    shot(page, "slots-booked-phone")

    page.get_by_role("link", name="Reschedule the session on Tue 02 Mar, 03:00").click()
    page.get_by_role("link", name="Later week").click()
    page.wait_for_url("**/reschedule?from=*")
    page.locator("#day-2027-03-11").click()
    page.locator("#slots a.cp-slot", has_text="Thu 11 Mar, 05:00 EST").click()
    assert fits()
    shot(page, "slots-reschedule-phone")
    page.get_by_role("button", name="Move the session").click()
    page.wait_for_url(f"{live_url}/contracts/{contract_id}#sessions")
    assert page.get_by_text("Session moved to Thu 11 Mar 2027, 05:00 EST.").is_visible()
    assert page.locator("#sessions-upcoming .cp-session-time").inner_text() == (
        "Thu 11 Mar 2027, 05:00 EST")

    page.get_by_role("link", name="Cancel… the session on Thu 11 Mar, 05:00").click()
    assert "The session goes back to the contract" in page.locator("#cancel-cost").inner_text()
    assert fits()
    shot(page, "slots-cancel-confirm-phone")
    page.get_by_role("link", name="Keep it").click()

    [booked] = db.session.scalars(select(CoachingSession)).all()
    db.session.refresh(booked)
    assert booked.starts_at == datetime(2027, 3, 11, 10, 0, tzinfo=UTC)
    assert (booked.sequence, booked.status) == (1, SessionStatus.SCHEDULED)
