"""The contract list (status filter, search, pages of 20) and the notifications (pages of 25)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from contracts.models import Contract, ContractStatus, Proposal, ProposalStatus
from notifications.models import Notification
from tests.conftest import login

START = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def coach(make_user):
    return make_user("coach", email="coach@example.com", name="Maya Coach")


@pytest.fixture
def student(make_user):
    return make_user("student", email="student@example.com", name="Ana Student")


@pytest.fixture
def make_contracts(db):
    """Write `count` contracts between two users, one minute apart (the last is the newest),
    titled "<title> 01", "<title> 02", ...; as accepted proposals make them."""
    made = {"n": 0}

    def make(coach, student, count: int, *, status=ContractStatus.ACTIVE, title="Contract"):
        for number in range(1, count + 1):
            made["n"] += 1
            when = START + timedelta(minutes=made["n"])
            terms = {
                "coach_id": coach.id, "student_id": student.id, "title": f"{title} {number:02}",
                "description": "Coaching.", "session_count": 2, "minutes_per_session": 60,
                "price_per_session": 5000, "currency": "usd",
            }
            proposal = Proposal(**terms, status=ProposalStatus.ACCEPTED, created_at=when)
            db.session.add(proposal)
            db.session.add(
                Contract(**terms, proposal=proposal, total_amount=10000, platform_fee=500,
                         coach_earning=9500, status=status, created_at=when)
            )
        db.session.commit()

    return make


def titles(page: str) -> list[str]:
    table = re.search(r'<table[^>]*id="contracts".*?</table>', page, re.S)
    if table is None:
        return []
    return re.findall(r'<a class="text-break" href="/contracts/\d+">([^<]+)</a>', table.group(0))


def listing(client, **params) -> str:
    response = client.get("/contracts/", query_string=params)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def count_line(page: str, element_id: str = "contracts-count") -> str:
    return re.search(rf'id="{element_id}">([^<]+)<', page).group(1)


# --- contracts ------------------------------------------------------------------------


def test_pages_of_twenty_newest_first(client, coach, student, make_contracts):
    make_contracts(coach, student, 57)
    login(client, student)

    first = listing(client)
    assert titles(first) == [f"Contract {n:02}" for n in range(57, 37, -1)]
    assert count_line(first) == "Showing 1–20 of 57"
    assert 'id="contracts-prev"' not in first and 'href="/contracts/?page=2"' in first

    second = listing(client, page=2)
    assert titles(second) == [f"Contract {n:02}" for n in range(37, 17, -1)]
    assert count_line(second) == "Showing 21–40 of 57"
    assert 'href="/contracts/?page=3"' in second
    assert re.search(r'id="contracts-prev" href="/contracts/"', second)  # page 1 has no number

    last = listing(client, page=3)
    assert titles(last) == [f"Contract {n:02}" for n in range(17, 0, -1)]
    assert count_line(last) == "Showing 41–57 of 57"
    assert 'id="contracts-next"' not in last and 'href="/contracts/?page=2"' in last


def test_exactly_one_page_has_no_page_links(client, coach, student, make_contracts):
    make_contracts(coach, student, 20)
    login(client, coach)
    page = listing(client)
    assert len(titles(page)) == 20 and count_line(page) == "Showing 1–20 of 20"
    assert 'id="contracts-next"' not in page and 'id="contracts-prev"' not in page


@pytest.mark.parametrize(
    ("page", "shown"),
    [("0", "Showing 1–20 of 45"), ("-1", "Showing 1–20 of 45"), ("x", "Showing 1–20 of 45"),
     ("", "Showing 1–20 of 45"), ("2.5", "Showing 1–20 of 45"),
     ("4", "Showing 41–45 of 45"), ("99999999999999999999999999", "Showing 41–45 of 45")],
)
def test_a_bad_page_number_shows_the_first_or_the_last_page(
    client, coach, student, make_contracts, page, shown
):
    make_contracts(coach, student, 45)
    login(client, coach)
    assert count_line(listing(client, page=page)) == shown


def test_a_page_number_with_nothing_to_list(client, coach):
    login(client, coach)
    page = listing(client, page="7")
    assert titles(page) == [] and "No contracts yet." in page


def test_the_status_filter(client, coach, student, make_contracts):
    make_contracts(coach, student, 2, status=ContractStatus.PENDING, title="Pending")
    make_contracts(coach, student, 3, status=ContractStatus.ACTIVE, title="Active")
    make_contracts(coach, student, 1, status=ContractStatus.COMPLETED, title="Completed")
    make_contracts(coach, student, 1, status=ContractStatus.CANCELLED, title="Cancelled")
    make_contracts(coach, student, 1, status=ContractStatus.REFUNDED, title="Refunded")
    make_contracts(coach, student, 1, status=ContractStatus.PAST_DUE, title="Late")
    make_contracts(coach, student, 1, status=ContractStatus.DISPUTED, title="Disputed")
    login(client, coach)
    assert len(titles(listing(client))) == 10
    assert titles(listing(client, status="pending")) == ["Pending 02", "Pending 01"]
    assert titles(listing(client, status="active")) == ["Active 03", "Active 02", "Active 01"]
    assert titles(listing(client, status="completed")) == ["Completed 01"]
    assert titles(listing(client, status="ended")) == ["Refunded 01", "Cancelled 01"]
    assert titles(listing(client, status="past_due")) == ["Late 01"]
    assert titles(listing(client, status="disputed")) == ["Disputed 01"]
    assert len(titles(listing(client, status="nonsense"))) == 10  # unknown: all of them
    page = listing(client, status="ended")
    assert re.search(r'class="nav-link[^"]* active" aria-current="true"\s*href="/contracts/\?'
                     r'status=ended">Ended</a>', page)
    assert count_line(page) == "Showing 1–2 of 2"


def test_search_on_title_or_the_other_partys_name(
    client, coach, student, make_user, make_contracts
):
    other_student = make_user("student", name="Zoë O'Brien")
    make_contracts(coach, student, 2, title="Public speaking")
    make_contracts(coach, other_student, 2, title="Interview practice")
    make_contracts(coach, other_student, 1, title="100% confidence", status=ContractStatus.PENDING)
    login(client, coach)
    assert titles(listing(client, q="SPEAK")) == ["Public speaking 02", "Public speaking 01"]
    assert titles(listing(client, q="o'brien")) == [
        "100% confidence 01", "Interview practice 02", "Interview practice 01",
    ]
    assert titles(listing(client, q="ana stu")) == ["Public speaking 02", "Public speaking 01"]
    # LIKE's wildcards are searched for as they are.
    assert titles(listing(client, q="100%")) == ["100% confidence 01"]
    assert titles(listing(client, q="_")) == []
    # The search and the filter together, and the filter links keep the search.
    page = listing(client, q="o'brien", status="pending")
    assert titles(page) == ["100% confidence 01"]
    assert 'href="/contracts/?status=active&amp;q=o&#39;brien"' in page
    empty = listing(client, q="nothing like it")
    assert titles(empty) == [] and "No contracts match" in empty
    # The student's search looks at the coach's name, not their own.
    client.submit("/auth/logout")
    login(client, student)
    assert titles(listing(client, q="ana")) == []
    assert len(titles(listing(client, q="maya"))) == 2


def test_page_links_keep_the_filter_and_the_search(client, coach, student, make_contracts):
    make_contracts(coach, student, 25, title="Speaking")
    login(client, coach)
    page = listing(client, q="speak", status="active")
    assert 'href="/contracts/?status=active&amp;q=speak&amp;page=2"' in page
    second = listing(client, q="speak", status="active", page=2)
    assert count_line(second) == "Showing 21–25 of 25"
    assert 'id="contracts-prev" href="/contracts/?status=active&amp;q=speak"' in second


def test_another_users_contracts_never_appear(
    client, coach, student, make_user, make_contracts
):
    other_coach = make_user("coach", name="Other Coach")
    other_student = make_user("student", name="Other Student")
    make_contracts(coach, student, 3, title="Ours")
    make_contracts(other_coach, other_student, 30, title="Theirs")
    make_contracts(other_coach, student, 2, title="Student's other")
    for user, expected in ((coach, 3), (student, 5)):
        login(client, user)
        for params in ({}, {"q": "theirs"}, {"q": "other"}, {"status": "active"}, {"page": 2}):
            page = listing(client, **params)
            assert not any(title.startswith("Theirs") for title in titles(page))
        assert count_line(listing(client)) == f"Showing 1–{expected} of {expected}"
        client.submit("/auth/logout")


def test_the_list_is_fetched_a_page_at_a_time(app, db, coach, student, make_contracts):
    """LIMIT/OFFSET in SQL, not slicing in Python: a page loads at most 20 rows."""
    from sqlalchemy import event

    from contracts.lists import contracts_page

    make_contracts(coach, student, 45)
    statements: list[str] = []

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        with app.test_request_context():
            found = contracts_page(db.session.merge(coach), page=2)
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    assert len(found.items) == 20 and found.total == 45
    [listed] = [s for s in statements if "FROM contracts" in s and "count(" not in s]
    assert "LIMIT" in listed and "OFFSET" in listed


def test_open_proposals_come_first_and_ended_ones_below(
    client, coach, student, make_proposal, make_contracts
):
    make_contracts(coach, student, 1, title="Running")
    waiting = make_proposal(coach, student, title="Waiting for Ana")
    declined = make_proposal(coach, student, title="Said no")
    login(client, student)
    client.submit(f"/contracts/proposals/{declined}/decline")
    page = listing(client)
    assert page.index('id="proposals"') < page.index('id="contracts"')
    assert page.index('id="contracts"') < page.index('id="closed-proposals"')
    open_part = page[page.index('id="proposals"'):page.index('id="contracts"')]
    assert f"/contracts/proposals/{waiting}" in open_part and "Said no" not in open_part
    assert "Said no" in page[page.index('id="closed-proposals"'):]


# --- notifications --------------------------------------------------------------------


@pytest.fixture
def make_notifications(db):
    def make(user, count: int) -> None:
        for number in range(1, count + 1):
            db.session.add(Notification(user_id=user.id, message=f"Note {number:02}",
                                        created_at=START + timedelta(minutes=number)))
        db.session.commit()

    return make


def notes(page: str) -> list[str]:
    return re.findall(r"(Note \d\d)", page)


def unread_count(db, user) -> int:
    db.session.expire_all()
    return db.session.scalar(
        select(func.count()).select_from(Notification)
        .where(Notification.user_id == user.id, Notification.read_at.is_(None))
    )


def test_notifications_come_in_pages_of_25(client, db, student, make_notifications):
    make_notifications(student, 60)
    login(client, student)
    first = client.get("/notifications/").get_data(as_text=True)
    assert notes(first) == [f"Note {n:02}" for n in range(60, 35, -1)]
    assert count_line(first, "notifications-count") == "Showing 1–25 of 60"
    assert 'href="/notifications/?page=2"' in first and 'id="notifications-prev"' not in first
    # What a page showed is read; the rest still counts as new.
    assert unread_count(db, student) == 35
    third = client.get("/notifications/?page=3").get_data(as_text=True)
    assert notes(third) == [f"Note {n:02}" for n in range(10, 0, -1)]
    assert count_line(third, "notifications-count") == "Showing 51–60 of 60"
    assert 'id="notifications-next"' not in third
    assert 'id="notifications-prev" href="/notifications/?page=2"' in third
    for bad in ("0", "-1", "x", "99999999999999999999"):
        page = client.get(f"/notifications/?page={bad}")
        assert page.status_code == 200
        assert count_line(page.get_data(as_text=True), "notifications-count") in (
            "Showing 1–25 of 60", "Showing 51–60 of 60",
        )


def test_the_unread_filter_shows_what_was_unread_then_marks_it_read(
    client, db, student, make_user, make_notifications
):
    make_notifications(student, 30)
    make_notifications(make_user("student"), 5)  # someone else's: never shown
    login(client, student)
    # Read the newest 25 once.
    client.get("/notifications/")
    assert unread_count(db, student) == 5
    new_ones = client.get("/notifications/?show=unread").get_data(as_text=True)
    assert notes(new_ones) == ["Note 05", "Note 04", "Note 03", "Note 02", "Note 01"]
    assert new_ones.count(">New</span>") == 5  # highlighted as unread, as they were
    assert count_line(new_ones, "notifications-count") == "Showing 1–5 of 5 unread"
    assert unread_count(db, student) == 0
    empty = client.get("/notifications/?show=unread").get_data(as_text=True)
    assert notes(empty) == [] and "Nothing unread." in empty


def test_more_unread_than_a_page_are_read_a_page_at_a_time(
    client, db, student, make_notifications
):
    make_notifications(student, 40)
    login(client, student)
    first = client.get("/notifications/?show=unread&page=2").get_data(as_text=True)
    assert notes(first) == [f"Note {n:02}" for n in range(40, 15, -1)]  # no page 2 to skip to
    assert re.search(r'id="notifications-next" href="/notifications/\?show=unread"', first)
    following = client.get("/notifications/?show=unread").get_data(as_text=True)
    assert notes(following) == [f"Note {n:02}" for n in range(15, 0, -1)]
    assert 'id="notifications-next"' not in following
    assert unread_count(db, student) == 0
