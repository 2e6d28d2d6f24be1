"""The private calendar feed (`/calendar/<token>.ics`) and what every session's event carries."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest
from icalendar import Calendar
from sqlalchemy import event

from accounts.models import User
from contracts.models import Contract, SessionStatus
from tests.conftest import login
from tests.support import add_session

# A Monday; sessions below are placed around it.
START = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def coach(make_user):
    return make_user("coach", name="Maya Coach", timezone="Europe/London")


@pytest.fixture
def student(make_user):
    return make_user("student", name="Kenji Student", timezone="Asia/Tokyo")


def turn_feed_on(db, user) -> str:
    """What the settings page does: a fresh token (a reset replaces the old one)."""
    token = secrets.token_urlsafe(32)
    db.session.get(User, user.id).calendar_token = token
    db.session.commit()
    return token


def read_feed(client, token: str):
    response = client.get(f"/calendar/{token}.ics")
    assert response.status_code == 200, response.status_code
    calendar = Calendar.from_ical(response.data)
    events = {int(str(e["uid"]).split("-")[2].split("@")[0]): e for e in calendar.walk("VEVENT")}
    return response, calendar, events


def test_the_feed_needs_a_known_token_and_no_login(client, db, make_user, student):
    turn_feed_on(db, student)
    for address in (
        f"/calendar/{secrets.token_urlsafe(32)}.ics",
        "/calendar/None.ics",
        f"/calendar/{'x' * 200}.ics",
    ):
        response = client.get(address)
        assert response.status_code == 404
        assert "text/calendar" not in response.content_type
    # A user who never turned the feed on has no address at all.
    assert db.session.get(User, make_user("student").id).calendar_token is None


def test_a_reset_token_closes_the_old_address(client, db, student):
    old = turn_feed_on(db, student)
    assert client.get(f"/calendar/{old}.ics").status_code == 200
    new = turn_feed_on(db, student)
    assert client.get(f"/calendar/{old}.ics").status_code == 404
    assert client.get(f"/calendar/{new}.ics").status_code == 200


def test_the_feed_lists_the_users_own_sessions_with_private_headers(
    client, db, make_user, make_contract, coach, student
):
    other_student = make_user("student", name="Lea Other")
    mine = make_contract(title="Interview coaching")
    theirs = make_contract(student_=other_student, title="Guitar basics")
    my_session = add_session(db, mine, START + timedelta(days=3))
    their_session = add_session(db, theirs, START + timedelta(days=4))

    response, calendar, events = read_feed(client, turn_feed_on(db, student))
    assert set(events) == {my_session}
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert response.headers["Cache-Control"] == "private, max-age=300"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "Set-Cookie" not in response.headers
    assert str(calendar["x-wr-calname"]) == "Coachpact — Kenji Student"
    assert str(events[my_session]["summary"]) == (
        "Interview coaching with Maya Coach and Kenji Student"
    )

    # The coach's feed holds the sessions of both contracts.
    _, _, coach_events = read_feed(client, turn_feed_on(db, coach))
    assert set(coach_events) == {my_session, their_session}
    # Other pages keep the site-wide referrer policy.
    assert client.get("/auth/login").headers["Referrer-Policy"] == (
        "strict-origin-when-cross-origin"
    )


def test_events_carry_the_instants_the_contract_page_shows(client, db, make_contract, student):
    contract_id = make_contract()
    starts_at = datetime(2027, 3, 4, 10, 0, tzinfo=UTC)
    session_id = add_session(db, contract_id, starts_at)

    response, _, events = read_feed(client, turn_feed_on(db, student))
    assert events[session_id].decoded("dtstart") == starts_at
    assert events[session_id].decoded("dtend") == starts_at + timedelta(minutes=60)
    raw = response.get_data(as_text=True)
    assert "DTSTART:20270304T100000Z" in raw and "DTEND:20270304T110000Z" in raw
    # Tokyo is UTC+9 all year: the student's contract page shows 19:00 on the same day.
    login(client, student)
    page = client.get(f"/contracts/{contract_id}").get_data(as_text=True)
    assert "Thu 04 Mar 2027, 19:00 JST" in page


def test_past_sessions_stay_for_ninety_days_and_unmarked_ones_stay(
    client, db, make_contract, student
):
    contract_id = make_contract(session_count=6)
    recent = add_session(
        db, contract_id, START - timedelta(days=10), status=SessionStatus.COMPLETED
    )
    missed = add_session(db, contract_id, START - timedelta(days=20), status=SessionStatus.NO_SHOW)
    called_off = add_session(
        db, contract_id, START - timedelta(days=30), status=SessionStatus.CANCELLED, sequence=1
    )
    unmarked = add_session(db, contract_id, START - timedelta(days=120))
    add_session(db, contract_id, START - timedelta(days=91), status=SessionStatus.COMPLETED)
    add_session(db, contract_id, START - timedelta(days=100), status=SessionStatus.CANCELLED)

    _, _, events = read_feed(client, turn_feed_on(db, student))
    assert set(events) == {recent, missed, called_off, unmarked}
    assert str(events[called_off]["status"]) == "CANCELLED"
    assert int(events[called_off]["sequence"]) == 1
    assert {str(events[i]["status"]) for i in (recent, missed, unmarked)} == {"CONFIRMED"}


def test_a_cancelled_session_comes_back_cancelled_with_a_higher_sequence(
    client, db, make_contract, student
):
    contract_id = make_contract()
    session_id = add_session(db, contract_id, START + timedelta(days=5))
    token = turn_feed_on(db, student)
    _, _, before = read_feed(client, token)
    assert str(before[session_id]["status"]) == "CONFIRMED"

    login(client, student)
    assert client.submit(f"/sessions/{session_id}/cancel").status_code == 302
    _, _, after = read_feed(client, token)
    assert str(after[session_id]["status"]) == "CANCELLED"
    assert str(after[session_id]["uid"]) == str(before[session_id]["uid"])
    assert int(after[session_id]["sequence"]) > int(before[session_id]["sequence"])


def test_location_is_the_contracts_place_or_the_sessions_own(client, db, make_contract, student):
    contract_id = make_contract()
    db.session.get(Contract, contract_id).meeting_location = "https://meet.example.com/abc-defg"
    db.session.commit()
    online = add_session(db, contract_id, START + timedelta(days=2))
    in_person = add_session(
        db, contract_id, START + timedelta(days=3), location="Café Central, Herrengasse 14, Vienna"
    )

    _, _, events = read_feed(client, turn_feed_on(db, student))
    assert str(events[online]["location"]) == "https://meet.example.com/abc-defg"
    assert str(events[online]["url"]) == "https://meet.example.com/abc-defg"
    assert "Join: https://meet.example.com/abc-defg" in str(events[online]["description"])
    assert str(events[in_person]["location"]) == "Café Central, Herrengasse 14, Vienna"
    assert "Join:" not in str(events[in_person]["description"])
    assert str(events[in_person]["url"]).endswith(f"/contracts/{contract_id}")

    # The single-session download is built by the same code.
    login(client, student)
    [single] = Calendar.from_ical(client.get(f"/sessions/{in_person}.ics").data).walk("VEVENT")
    assert str(single["location"]) == "Café Central, Herrengasse 14, Vienna"


def test_a_place_that_is_not_a_web_address_never_becomes_the_events_url(
    client, db, make_contract, student
):
    contract_id = make_contract()
    session_id = add_session(
        db, contract_id, START + timedelta(days=2), location="javascript:alert(1)"
    )
    _, _, events = read_feed(client, turn_feed_on(db, student))
    assert str(events[session_id]["location"]) == "javascript:alert(1)"
    assert str(events[session_id]["url"]).endswith(f"/contracts/{contract_id}")
    assert "Join:" not in str(events[session_id]["description"])


def test_the_feed_reads_its_sessions_in_one_query(client, db, make_contract, student):
    for title in ("Interview coaching", "Public speaking", "Negotiation"):
        contract_id = make_contract(title=title)
        for day in (2, 3):
            add_session(db, contract_id, START + timedelta(days=day, hours=len(title)))
    token = turn_feed_on(db, student)

    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        _, _, events = read_feed(client, token)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert len(events) == 6
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    # the token's owner, the feed's version (its ETag), then the sessions with all they need
    assert len(selects) == 3, selects


def test_an_unchanged_feed_answers_304_and_a_change_makes_it_whole_again(
    client, db, make_contract, student, clock
):
    contract_id = make_contract()
    session_id = add_session(db, contract_id, START + timedelta(days=5))
    token = turn_feed_on(db, student)
    first = client.get(f"/calendar/{token}.ics")
    etag = first.headers["ETag"]
    assert first.status_code == 200 and etag

    again = client.get(f"/calendar/{token}.ics", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b""
    assert again.headers["ETag"] == etag
    assert again.headers["Referrer-Policy"] == "no-referrer"

    # The contract's new meeting place changes every event: the feed is sent again.
    clock.advance(timedelta(minutes=1))
    login(client, student)
    place = "https://meet.example.com/new-room"
    client.submit(f"/contracts/{contract_id}/meeting-place", {"meeting_location": place})
    changed = client.get(f"/calendar/{token}.ics", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert place in changed.get_data(as_text=True).replace("\r\n ", "")

    # And a cancelled session, with the latest validator.
    etag = changed.headers["ETag"]
    clock.advance(timedelta(minutes=1))
    assert client.submit(f"/sessions/{session_id}/cancel").status_code == 302
    cancelled = client.get(f"/calendar/{token}.ics", headers={"If-None-Match": etag})
    assert cancelled.status_code == 200 and "STATUS:CANCELLED" in cancelled.get_data(as_text=True)


def test_the_feed_is_rate_limited_per_address(client, db):
    unknown = f"/calendar/{secrets.token_urlsafe(32)}.ics"
    codes = [client.get(unknown).status_code for _ in range(61)]
    assert codes[:60] == [404] * 60 and codes[60] == 429


def test_a_feed_fetched_again_renders_only_the_events_that_changed(
    client, db, make_contract, student, clock
):
    from scheduling.ics import _event_text

    contract_id = make_contract()
    ids = [add_session(db, contract_id, START + timedelta(days=day)) for day in (5, 6, 7)]
    token = turn_feed_on(db, student)
    _event_text.cache_clear()
    first, _, _ = read_feed(client, token)
    assert _event_text.cache_info().misses == 3
    # The spliced text is what icalendar itself writes for the same calendar.
    assert Calendar.from_ical(first.data).to_ical() == first.data

    clock.advance(timedelta(minutes=1))
    login(client, student)
    assert client.submit(f"/sessions/{ids[1]}/cancel").status_code == 302
    _, _, events = read_feed(client, token)
    info = _event_text.cache_info()
    assert (info.misses, info.hits) == (4, 2)
    assert [str(events[i]["status"]) for i in ids] == ["CONFIRMED", "CANCELLED", "CONFIRMED"]

    # A party's new name is part of every event's text: none is served stale.
    db.session.get(User, student.id).name = "Kenji Renamed"
    db.session.commit()
    _, _, events = read_feed(client, token)
    assert all("Kenji Renamed" in str(events[i]["summary"]) for i in ids)
