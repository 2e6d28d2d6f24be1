"""A coach's working hours and days off, the free slots they leave, and the booking rules.

The coach is in Berlin and the student in New York. In 2027 the United States change
to summer time on 14 March and back on 7 November; the European Union on 28 March and
back on 31 October. Between the two changes New York is an hour closer to Berlin.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import event, func, select

from audit.models import AuditEntry
from contracts.models import CoachingSession, Contract
from scheduling.models import DayOff, WorkingHours
from tests.conftest import login

START = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)  # a Monday, before both spring changes


@pytest.fixture
def every_day(db, coach):
    """Give the coach the same window every day of the week: every_day(start, end) in minutes."""

    def give(start: int = 9 * 60, end: int = 17 * 60, second: tuple[int, int] | None = None):
        db.session.execute(WorkingHours.__table__.delete())
        for weekday in range(7):
            db.session.add(WorkingHours(coach_id=coach.id, weekday=weekday,
                                        start_minute=start, end_minute=end))
            if second:
                db.session.add(WorkingHours(coach_id=coach.id, weekday=weekday,
                                            start_minute=second[0], end_minute=second[1]))
        db.session.commit()

    return give


def slots(app, db, contract_id: int, day: date, days: int = 1, **kwargs) -> list[datetime]:
    from scheduling.availability import free_slots

    with app.test_request_context():
        contract = db.session.get(Contract, contract_id)
        return [s.starts_at for s in free_slots(contract, from_day=day, days=days, **kwargs)]


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def sessions(db) -> list[CoachingSession]:
    db.session.expire_all()
    return list(db.session.scalars(select(CoachingSession).order_by(CoachingSession.starts_at)))


# --- slots across the daylight-saving changes ----------------------------------------


def test_a_berlin_working_day_has_the_same_slots_on_both_change_days(
    app, db, clock, contract_id, every_day
):
    every_day()  # 09:00–17:00 every day, Sundays included
    clock.freeze(utc(2027, 3, 20, 12))
    before, change, after = (slots(app, db, contract_id, date(2027, 3, d)) for d in (27, 28, 29))
    # 09:00, 09:30 … 16:00 (a 60-minute session fits until 17:00): 15 starts every day.
    assert len(before) == len(change) == len(after) == 15
    assert (before[0], before[-1]) == (utc(2027, 3, 27, 8), utc(2027, 3, 27, 15))  # CET
    assert (change[0], change[-1]) == (utc(2027, 3, 28, 7), utc(2027, 3, 28, 14))  # CEST
    assert after[0] == utc(2027, 3, 29, 7)
    assert all(b - a == timedelta(minutes=30) for a, b in zip(change, change[1:], strict=False))

    clock.freeze(utc(2027, 10, 20, 12))
    before, change, after = (
        slots(app, db, contract_id, date(2027, m, d)) for m, d in ((10, 30), (10, 31), (11, 1))
    )
    assert len(before) == len(change) == len(after) == 15
    assert before[0] == utc(2027, 10, 30, 7)  # CEST
    assert (change[0], change[-1]) == (utc(2027, 10, 31, 8), utc(2027, 10, 31, 15))  # CET
    assert after[0] == utc(2027, 11, 1, 8)


def test_a_window_edge_in_the_spring_gap_moves_to_the_first_real_instant(
    app, db, clock, contract_id, coach, every_day
):
    clock.freeze(utc(2027, 3, 20, 12))
    every_day(150, 360)  # 02:30–06:00: on 28 March 02:30 does not exist in Berlin
    change = slots(app, db, contract_id, date(2027, 3, 28))
    assert change[0] == utc(2027, 3, 28, 1)  # 03:00 CEST, the moment of the jump
    assert change == [utc(2027, 3, 28, 1, 0), utc(2027, 3, 28, 1, 30), utc(2027, 3, 28, 2, 0),
                      utc(2027, 3, 28, 2, 30), utc(2027, 3, 28, 3, 0)]  # the last ends 06:00
    assert len(slots(app, db, contract_id, date(2027, 3, 21))) == 6  # 02:30 … 05:00 a week before

    every_day(0, 150)  # 00:00–02:30: the end moves to 03:00 CEST, two real hours after 00:00
    change = slots(app, db, contract_id, date(2027, 3, 28))
    assert change == [utc(2027, 3, 27, 23, 0), utc(2027, 3, 27, 23, 30), utc(2027, 3, 28, 0, 0)]

    every_day(120, 180)  # 02:00–03:00 is skipped entirely that day
    assert slots(app, db, contract_id, date(2027, 3, 28)) == []
    assert len(slots(app, db, contract_id, date(2027, 3, 21))) == 1


def test_the_repeated_autumn_hour_is_offered_once(app, db, clock, contract_id, every_day):
    from zoneinfo import ZoneInfo

    clock.freeze(utc(2027, 10, 20, 12))
    every_day(0, 300)  # 00:00–05:00: on 31 October 02:00–03:00 happens twice
    change = slots(app, db, contract_id, date(2027, 10, 31))
    normal = slots(app, db, contract_id, date(2027, 10, 24))
    berlin = ZoneInfo("Europe/Berlin")
    walls = [s.astimezone(berlin).strftime("%H:%M") for s in change]
    assert walls == [s.astimezone(berlin).strftime("%H:%M") for s in normal]  # none missing
    assert len(set(walls)) == len(walls) == 9  # 00:00 … 04:00, none twice
    # 02:00 and 02:30 are their first occurrence (summer time), as typed times are read.
    assert utc(2027, 10, 31, 0, 0) in change and utc(2027, 10, 31, 0, 30) in change
    assert utc(2027, 10, 31, 1, 0) not in change  # 02:00 CET, the second time round
    assert utc(2027, 10, 31, 2, 0) in change  # 03:00 CET


def test_the_students_labels_shift_by_an_hour_between_the_two_changes(
    app, db, clock, contract_id, student
):
    from scheduling.availability import slot_week

    def first_of_week(day: date) -> tuple[str, str, str]:
        with app.test_request_context():
            contract = db.session.get(Contract, contract_id)
            week = slot_week(contract, db.session.merge(student), day)
            first_day, choices = week.days[0]
            return first_day.isoformat(), choices[0].label, choices[0].other_label

    # Maya's 09:00 in Berlin on Kenji's clock: six hours behind, then five, then six.
    assert first_of_week(date(2027, 3, 8)) == ("2027-03-08", "03:00 EST", "09:00 CET for Maya")
    assert first_of_week(date(2027, 3, 15)) == ("2027-03-15", "04:00 EDT", "09:00 CET for Maya")
    assert first_of_week(date(2027, 3, 29)) == ("2027-03-29", "03:00 EDT", "09:00 CEST for Maya")
    clock.freeze(utc(2027, 10, 20, 12))
    assert first_of_week(date(2027, 10, 25)) == ("2027-10-25", "03:00 EDT", "09:00 CEST for Maya")
    assert first_of_week(date(2027, 11, 1)) == ("2027-11-01", "04:00 EDT", "09:00 CET for Maya")
    assert first_of_week(date(2027, 11, 8)) == ("2027-11-08", "03:00 EST", "09:00 CET for Maya")


# --- what a slot may not touch ------------------------------------------------------------


def test_slots_skip_days_off_sessions_of_either_party_the_notice_and_the_horizon(
    app, db, clock, make_user, make_contract, contract_id, coach, student
):
    from scheduling.sessions import book_session

    # Monday 1 March 12:00 UTC = 13:00 in Berlin: the 12-hour notice rules out today.
    assert slots(app, db, contract_id, date(2027, 3, 1)) == []
    tuesday = slots(app, db, contract_id, date(2027, 3, 2))
    assert tuesday[0] == utc(2027, 3, 2, 8) and len(tuesday) == 15
    clock.freeze(utc(2027, 3, 1, 20, 30))  # 12 hours before Tuesday 09:30 Berlin
    assert slots(app, db, contract_id, date(2027, 3, 2))[0] == utc(2027, 3, 2, 8, 30)
    clock.freeze(START)

    db.session.add(DayOff(coach_id=coach.id, day=date(2027, 3, 3), note="Dentist"))
    db.session.commit()
    assert slots(app, db, contract_id, date(2027, 3, 3)) == []

    # The coach's session on another contract, and the student's with another coach.
    other_student = make_user("student", timezone="Asia/Tokyo")
    other_coach = make_user("coach", timezone="Europe/Berlin")
    theirs, elsewhere = make_contract(student_=other_student), make_contract(coach_=other_coach)
    with app.test_request_context():
        book_session(theirs, db.session.merge(other_student), starts_at=utc(2027, 3, 4, 9))
        book_session(elsewhere, db.session.merge(student), starts_at=utc(2027, 3, 4, 13))
        own = book_session(contract_id, db.session.merge(student), starts_at=utc(2027, 3, 4, 11))
        db.session.commit()
        own_id = own.id
    thursday = slots(app, db, contract_id, date(2027, 3, 4))
    for taken in (utc(2027, 3, 4, 8, 30), utc(2027, 3, 4, 9), utc(2027, 3, 4, 9, 30),
                  utc(2027, 3, 4, 12, 30), utc(2027, 3, 4, 13, 30), utc(2027, 3, 4, 11)):
        assert taken not in thursday, taken
    assert utc(2027, 3, 4, 8) in thursday and utc(2027, 3, 4, 10) in thursday
    # Moving its own session, a party is not in its own way.
    moving = slots(app, db, contract_id, date(2027, 3, 4), exclude_session_id=own_id)
    assert utc(2027, 3, 4, 11) in moving and utc(2027, 3, 4, 10, 30) in moving

    # 90 days ahead: 30 May 2027 12:00 UTC. Nothing after it.
    horizon_week = slots(app, db, contract_id, date(2027, 5, 24), days=14)
    assert horizon_week and max(horizon_week) <= START + timedelta(days=90)
    assert slots(app, db, contract_id, date(2027, 5, 31), days=7) == []


def test_a_weeks_sessions_are_read_in_one_query(app, db, contract_id, student):
    from extensions import db as extension
    from scheduling.sessions import book_session

    with app.test_request_context():
        for day in (2, 3, 4):
            book_session(contract_id, db.session.merge(student), starts_at=utc(2027, 3, day, 9))
        db.session.commit()
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    event.listen(extension.engine, "before_cursor_execute", count)
    try:
        found = slots(app, db, contract_id, date(2027, 3, 1), days=7)
    finally:
        event.remove(extension.engine, "before_cursor_execute", count)
    # Tuesday to Friday (Monday is inside the notice), less three starts per session booked.
    assert len(found) == 4 * 15 - 3 * 3
    reading_sessions = [s for s in statements if "FROM coaching_sessions" in s]
    assert len(reading_sessions) == 1


# --- the write path refuses what is not a free slot ------------------------------------


def post_slot(client, contract_id: int, value: str):
    return client.submit(f"/contracts/{contract_id}/schedule", {"slot": value})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2027-03-10T17:00Z", "Maya Coach works Mon–Fri 09:00–17:00 (Europe/Berlin); that time "
                              "is outside those hours."),  # 18:00 in Berlin
        ("2027-03-13T10:00Z", "that time is outside those hours."),  # a Saturday
        ("2027-03-10T15:30Z", "a 60-minute session at that time would end outside those hours"),
        ("2027-03-10T08:15Z", "start every 30 minutes from the start of a working window"),
        ("2027-03-01T15:00Z", "Sessions are booked at least 12 hours ahead."),
        ("2027-06-01T08:00Z", "Sessions can be booked at most 90 days ahead."),
    ],
)
def test_booking_outside_the_coachs_calendar_is_refused_with_its_reason(
    client, db, contract_id, student, value, message
):
    login(client, student)
    response = post_slot(client, contract_id, value)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and message in page.replace("&#39;", "'")
    assert sessions(db) == []
    assert db.session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "session.booked")) == 0


def test_booking_on_a_day_off_is_refused(client, db, contract_id, coach, student):
    db.session.add(DayOff(coach_id=coach.id, day=date(2027, 3, 10), note="Private"))
    db.session.commit()
    login(client, student)
    page = post_slot(client, contract_id, "2027-03-10T09:00Z").get_data(as_text=True)
    assert "Maya Coach is not working on Wed 10 Mar 2027 (a day off)." in page
    assert "Private" not in page  # the note is the coach's own
    assert sessions(db) == []
    assert post_slot(client, contract_id, "2027-03-11T09:00Z").status_code == 302


def test_the_day_off_is_the_coachs_own_date(client, db, make_user, make_contract, coach):
    # 00:30 on 11 March in Tokyo is still the 10th in Berlin (16:30): the coach's day off.
    tokyo = make_user("student", name="Aiko Tokyo", timezone="Asia/Tokyo")
    contract_id = make_contract(student_=tokyo, minutes_per_session=30)
    db.session.add(DayOff(coach_id=coach.id, day=date(2027, 3, 10)))
    db.session.commit()
    login(client, tokyo)
    assert "(a day off)" in post_slot(client, contract_id, "2027-03-10T15:30Z").get_data(
        as_text=True)
    assert post_slot(client, contract_id, "2027-03-11T08:00Z").status_code == 302


# --- the booking page ----------------------------------------------------------------------


def test_the_booking_page_offers_a_week_of_slots_in_both_clocks(client, contract_id, student):
    login(client, student)
    page = client.get(f"/contracts/{contract_id}/schedule").get_data(as_text=True)
    assert "Maya Coach has not set working hours" in page
    assert "Mon–Fri 09:00–17:00 (Europe/Berlin)" in page
    assert "Times are in your time zone, <strong>New York (EST)</strong>" in page
    # Tuesday 2 March, the first day with free time, is the day shown: 09:00 in Berlin is
    # 03:00 in New York.
    assert "Pick a time on Tuesday 02 March" in page
    # Each time's label names its day too, for screen readers (the heading shows it).
    assert '<span class="visually-hidden">Tue 02 Mar, </span>03:00 EST' in page
    assert '<span class="cp-slot-other">09:00 CET for Maya</span>' in page
    assert 'data-slot="2027-03-02T08:00Z"' in page
    assert 'data-slot="2027-03-01T15:00Z"' not in page  # inside the notice
    assert 'data-slot="2027-03-03T08:00Z"' not in page  # another day's: one day at a time
    assert 'id="slots-earlier"' not in page  # nothing before today
    assert f'href="/contracts/{contract_id}/schedule?from=2027-03-08"' in page
    later = client.get(f"/contracts/{contract_id}/schedule?from=2027-03-08").get_data(
        as_text=True)
    assert 'data-slot="2027-03-08T08:00Z"' in later and 'data-slot="2027-03-02T08:00Z"' not in later
    assert f'href="/contracts/{contract_id}/schedule?from=2027-03-01"' in later
    # The last week within the horizon has no "Later week"; beyond it shows that last week.
    last = client.get(f"/contracts/{contract_id}/schedule?from=2027-12-01&day=2027-05-28")
    last_page = last.get_data(as_text=True)
    assert 'id="slots-later"' not in last_page
    assert 'data-slot="2027-05-28T07:00Z"' in last_page  # CEST
    bad = client.get(f"/contracts/{contract_id}/schedule?from=someday&day=never")
    assert bad.status_code == 200
    assert 'data-slot="2027-03-02T08:00Z"' in bad.get_data(as_text=True)


def test_an_empty_week_says_why_and_offers_the_next(client, db, contract_id, coach, student):
    for day in range(8, 13):
        db.session.add(DayOff(coach_id=coach.id, day=date(2027, 3, day)))
    db.session.commit()
    login(client, student)
    page = client.get(f"/contracts/{contract_id}/schedule?from=2027-03-08").get_data(
        as_text=True)
    assert 'id="slots-empty"' in page and "has no working hours on these days" in page
    assert "Later week</a>" in page and 'id="book-form"' in page
    assert "Book session" not in page  # nothing to book this week


def test_a_slot_taken_meanwhile_is_refused_on_the_page(
    app, client, db, make_user, make_contract, contract_id, student
):
    from scheduling.sessions import book_session

    login(client, student)
    page = client.get(f"/contracts/{contract_id}/schedule").get_data(as_text=True)
    assert 'data-slot="2027-03-02T08:00Z"' in page
    other = make_user("student", name="Other Student")
    theirs = make_contract(student_=other)
    with app.test_request_context():
        book_session(theirs, db.session.merge(other), starts_at=utc(2027, 3, 2, 8))
        db.session.commit()
    response = post_slot(client, contract_id, "2027-03-02T08:00Z")
    text = response.get_data(as_text=True)
    assert response.status_code == 200 and 'id="slot-error"' in text
    assert "Maya Coach already has a session at that time." in text
    assert 'aria-describedby="slot-error"' in text
    [only] = sessions(db)
    assert only.contract_id != contract_id


def test_a_session_can_have_its_own_meeting_place(client, db, contract_id, student):
    login(client, student)
    bad = client.submit(f"/contracts/{contract_id}/schedule",
                        {"slot": "2027-03-02T08:00Z", "location": "javascript:alert(1)"})
    assert "Only web addresses starting with http:// or https://" in bad.get_data(as_text=True)
    assert sessions(db) == []
    client.submit(f"/contracts/{contract_id}/schedule",
                  {"slot": "2027-03-02T08:00Z", "location": "https://meet.example.com/kenji",
                   "confirm_late": "1"})  # 20 hours ahead: no free cancellation, confirmed
    client.submit(f"/contracts/{contract_id}/schedule",
                  {"slot": "2027-03-03T08:00Z", "location": "Café Central,   Vienna"})
    first, second = sessions(db)
    assert (first.location, second.location) == ("https://meet.example.com/kenji",
                                                 "Café Central, Vienna")
    detail = client.get(f"/contracts/{contract_id}").get_data(as_text=True)
    assert '<a href="https://meet.example.com/kenji"' in detail
    assert "Café Central, Vienna" in detail


# --- the coach's page -----------------------------------------------------------------------


def hours_form(**days: tuple) -> dict[str, str]:
    """The hours form's fields: days={0: ("09:00", "12:00", "13:00", "17:00")}, others off."""
    data = {}
    for weekday in range(7):
        values = (list(days.get(f"d{weekday}", ())) + ["", "", "", ""])[:4]
        for name, value in zip(("first_from", "first_to", "second_from", "second_to"), values,
                               strict=True):
            data[f"days-{weekday}-{name}"] = value
    return data


def test_the_availability_page_is_for_coaches_only(client, student, make_user):
    login(client, student)
    assert client.get("/availability").status_code == 404
    assert client.submit("/availability", hours_form(d0=("09:00", "17:00"))).status_code == 404
    assert client.submit("/availability/days-off", {"day": "2027-03-10"}).status_code == 404


def test_the_coach_saves_weekly_hours_in_one_go(client, db, coach, contract_id, student):
    login(client, coach)
    page = client.get("/availability").get_data(as_text=True)
    assert "Times are in your zone, <strong>Europe/Berlin</strong>" in page
    assert "You have not set your hours yet, so the default hours apply" in page
    assert 'selected value="09:00"' in page or 'value="09:00" selected' in page

    week = hours_form(d0=("09:00", "12:00", "13:00", "17:00"), d2=("10:00", "14:00"),
                      d5=("08:00", "24:00"))
    response = client.submit("/availability", week, follow_redirects=True)
    assert "Working hours saved: Mon 09:00–12:00, 13:00–17:00; Wed 10:00–14:00; " \
           "Sat 08:00–24:00." in response.get_data(as_text=True)
    rows = db.session.execute(select(WorkingHours.weekday, WorkingHours.start_minute,
                                     WorkingHours.end_minute).order_by(WorkingHours.weekday,
                                                                       WorkingHours.start_minute)
                              ).all()
    assert [tuple(r) for r in rows] == [(0, 540, 720), (0, 780, 1020), (2, 600, 840),
                                        (5, 480, 1440)]
    entry = db.session.scalar(select(AuditEntry).filter_by(action="availability.hours_changed"))
    assert entry.before == {"hours": "Mon–Fri 09:00–17:00", "default": True}
    assert entry.after == {"hours": "Mon 09:00–12:00, 13:00–17:00; Wed 10:00–14:00; "
                                    "Sat 08:00–24:00"}
    # Saving again replaces the rows.
    client.submit("/availability", hours_form(d1=("09:00", "10:00")))
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(WorkingHours)) == 1

    # The student now sees only Tuesday 09:00 (one 60-minute slot) a week.
    client.submit("/auth/logout")
    login(client, student)
    booking = client.get(f"/contracts/{contract_id}/schedule").get_data(as_text=True)
    assert booking.count('data-slot="') == 1 and 'data-slot="2027-03-02T08:00Z"' in booking
    assert "Tue 09:00–10:00 (Europe/Berlin)" in booking


@pytest.mark.parametrize(
    ("day", "message"),
    [
        (("12:00", "09:00"), "The end time must be after the start time."),
        (("09:00", "12:00", "11:00", "17:00"),
         "The second window starts after the first one ends."),
        (("09:00", ""), "Give both ends of the window."),
        (("", "", "13:00", "17:00"), "Set the first window before a second one."),
        (("09:10", "12:00"), "Not a valid choice"),
    ],
)
def test_invalid_hours_are_refused_and_nothing_changes(client, db, coach, day, message):
    login(client, coach)
    response = client.submit("/availability", hours_form(d0=("08:00", "09:00"), d3=day))
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and message in page
    assert 'aria-invalid="true"' in page
    assert db.session.scalar(select(func.count()).select_from(WorkingHours)) == 0


def test_an_empty_week_cannot_be_saved(client, db, coach):
    login(client, coach)
    page = client.submit("/availability", hours_form()).get_data(as_text=True)
    assert "Keep at least one working window." in page and 'id="hours-error"' in page
    assert db.session.scalar(select(func.count()).select_from(WorkingHours)) == 0


def test_days_off_are_added_and_removed(client, db, make_user, coach, contract_id, student):
    from scheduling.sessions import book_session

    with client.application.test_request_context():
        book_session(contract_id, db.session.merge(student), starts_at=utc(2027, 3, 10, 9))
        db.session.commit()
    login(client, coach)
    added = client.submit("/availability/days-off", {"day": "2027-03-10", "note": "Conference"},
                          follow_redirects=True).get_data(as_text=True)
    assert "Wed 10 Mar 2027 added as a day off." in added
    assert "You have 1 session booked that day" in added
    assert "Conference" in added and 'data-label="Date"' in added
    for day, message in (("2027-03-10", "Wed 10 Mar 2027 is already a day off."),
                         ("2027-02-28", "Sun 28 Feb 2027 has passed."),
                         ("", "Give the date of the day off.")):
        page = client.submit("/availability/days-off", {"day": day}).get_data(as_text=True)
        assert message in page, day
    [off] = db.session.scalars(select(DayOff)).all()
    assert (off.day, off.note) == (date(2027, 3, 10), "Conference")

    # Another coach cannot remove it.
    client.submit("/auth/logout")
    login(client, make_user("coach"))
    assert client.submit(f"/availability/days-off/{off.id}/remove").status_code == 404
    client.submit("/auth/logout")
    login(client, coach)
    removed = client.submit(f"/availability/days-off/{off.id}/remove", follow_redirects=True)
    assert "Wed 10 Mar 2027 is a working day again." in removed.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(DayOff)) == 0
    actions = db.session.scalars(select(AuditEntry.action).where(
        AuditEntry.action.like("availability.%")).order_by(AuditEntry.id)).all()
    assert actions == ["availability.day_off_added", "availability.day_off_removed"]
