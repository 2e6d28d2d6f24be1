"""Where a contract's sessions take place: set, changed and cleared by either party."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from audit.models import AuditEntry
from contracts.models import Contract
from notifications.models import Notification
from tests.conftest import login

START = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
VIDEO_CALL = "https://meet.example.com/abc-defg-hij"
CAFE = "Café Central, Herrengasse 14, Vienna"


@pytest.fixture
def coach(make_user):
    return make_user("coach", name="Maya Coach")


@pytest.fixture
def student(make_user):
    return make_user("student", name="Ana Student")


def set_place(client, contract_id: int, value: str):
    return client.submit(f"/contracts/{contract_id}/meeting-place", {"meeting_location": value})


def stored(db, contract_id: int) -> str | None:
    db.session.expire_all()
    return db.session.get(Contract, contract_id).meeting_location


def audit_entries(db, contract_id: int) -> list[AuditEntry]:
    return list(
        db.session.scalars(
            select(AuditEntry)
            .where(
                AuditEntry.action == "contract.meeting_place_set",
                AuditEntry.object_id == contract_id,
            )
            .order_by(AuditEntry.id)
        )
    )


def notifications_of(db, user) -> list[str]:
    """The user's notifications about the meeting place (accepting the proposal told one too)."""
    messages = db.session.scalars(
        select(Notification.message)
        .where(Notification.user_id == user.id)
        .order_by(Notification.id)
    )
    return [m for m in messages if "take place" in m or "meeting place" in m]


def where_card(html: str) -> str:
    match = re.search(
        r'<div class="card cp-card mt-3" id="meeting-place">.*?</div></div>', html, re.S
    )
    assert match, "no meeting place card on the page"
    return match.group(0)


def test_set_change_and_clear_the_place_each_audited_and_told(
    client, db, contract_id, coach, student
):
    login(client, student)
    response = set_place(client, contract_id, f"  {VIDEO_CALL}  ")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/contracts/{contract_id}#meeting-place")
    assert stored(db, contract_id) == VIDEO_CALL
    card = where_card(client.get(f"/contracts/{contract_id}").get_data(as_text=True))
    assert f'href="{VIDEO_CALL}"' in card and "Where:" in card
    assert "Change the meeting place" in card
    assert notifications_of(db, coach) == [
        f"Ana Student set where the sessions of “Interview coaching” take place: {VIDEO_CALL}"
    ]

    client.submit("/auth/logout")
    login(client, coach)
    set_place(client, contract_id, CAFE)
    assert stored(db, contract_id) == CAFE
    card = where_card(client.get(f"/contracts/{contract_id}").get_data(as_text=True))
    assert f'Where: <span class="text-break cp-place">{CAFE}</span>' in card
    assert "<a href" not in card  # a place is text, never a link
    assert notifications_of(db, student)[-1].endswith(f"take place: {CAFE}")

    set_place(client, contract_id, "   ")
    assert stored(db, contract_id) is None
    card = where_card(client.get(f"/contracts/{contract_id}").get_data(as_text=True))
    assert "not set yet" in card and "Set the meeting place" in card
    assert notifications_of(db, student)[-1] == (
        "Maya Coach cleared the meeting place of “Interview coaching”."
    )

    entries = audit_entries(db, contract_id)
    assert [(e.before, e.after, e.actor_id) for e in entries] == [
        ({"meeting_location": None}, {"meeting_location": VIDEO_CALL}, student.id),
        ({"meeting_location": VIDEO_CALL}, {"meeting_location": CAFE}, coach.id),
        ({"meeting_location": CAFE}, {"meeting_location": None}, coach.id),
    ]


def test_saving_the_same_place_again_changes_nothing(client, db, contract_id, coach, student):
    login(client, student)
    set_place(client, contract_id, CAFE)
    set_place(client, contract_id, "Café   Central,\nHerrengasse 14, Vienna")  # same once tidied
    assert stored(db, contract_id) == CAFE
    assert len(audit_entries(db, contract_id)) == 1
    assert len(notifications_of(db, coach)) == 1


@pytest.mark.parametrize(
    "value",
    [
        "javascript:alert(document.cookie)",
        "JavaScript: alert(1)",
        " data:text/html,<script>alert(1)</script>",
        "mailto:maya@example.com",
        "ftp://files.example.com/room",
    ],
)
def test_a_scheme_other_than_http_is_refused_and_nothing_is_written(
    client, db, contract_id, coach, student, value
):
    login(client, student)
    set_place(client, contract_id, CAFE)
    response = set_place(client, contract_id, value)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Only web addresses starting with http:// or https:// can be given" in page
    assert 'aria-invalid="true"' in page or "is-invalid" in page
    assert stored(db, contract_id) == CAFE
    assert len(audit_entries(db, contract_id)) == 1
    assert len(notifications_of(db, coach)) == 1


@pytest.mark.parametrize("value", ["Zoom: 812 3456 7890, passcode 42", "Room 4: second floor"])
def test_a_word_and_a_colon_is_a_place_shown_as_text(client, db, contract_id, student, value):
    login(client, student)
    set_place(client, contract_id, value)
    assert stored(db, contract_id) == value
    card = where_card(client.get(f"/contracts/{contract_id}").get_data(as_text=True))
    assert f'<span class="text-break cp-place">{value}</span>' in card and "<a href" not in card


def test_a_place_longer_than_500_characters_is_refused(client, db, contract_id, student):
    login(client, student)
    response = set_place(client, contract_id, "https://meet.example.com/" + "a" * 480)
    assert response.status_code == 200
    assert "500" in response.get_data(as_text=True)
    assert stored(db, contract_id) is None


def test_only_the_parties_reach_the_form(client, db, make_user, contract_id):
    stranger = make_user("student", name="Sam Stranger")
    login(client, stranger)
    assert client.get(f"/contracts/{contract_id}/meeting-place").status_code == 404
    assert set_place(client, contract_id, CAFE).status_code == 404
    assert stored(db, contract_id) is None
    assert audit_entries(db, contract_id) == []


def test_logged_out_visitors_are_sent_to_log_in(client, contract_id):
    response = client.get(f"/contracts/{contract_id}/meeting-place")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


def test_the_form_shows_the_current_place(client, db, contract_id, student):
    login(client, student)
    set_place(client, contract_id, VIDEO_CALL)
    page = client.get(f"/contracts/{contract_id}/meeting-place").get_data(as_text=True)
    assert f'value="{VIDEO_CALL}"' in page
    assert "<title>Meeting place · Interview coaching" in page


@pytest.mark.parametrize("status", ["pending", "active", "past_due"])
def test_the_place_can_change_while_the_contract_runs(client, db, make_contract, student, status):
    contract_id = make_contract(status)
    login(client, student)
    set_place(client, contract_id, CAFE)
    assert stored(db, contract_id) == CAFE


@pytest.mark.parametrize("status", ["completed", "cancelled", "refunded", "disputed"])
def test_once_the_contract_is_over_the_place_stays_as_it_was(
    client, db, make_contract, student, status
):
    contract_id = make_contract(status)
    db.session.get(Contract, contract_id).meeting_location = CAFE
    db.session.commit()
    login(client, student)
    response = set_place(client, contract_id, VIDEO_CALL)
    assert response.status_code == 302
    assert stored(db, contract_id) == CAFE
    assert audit_entries(db, contract_id) == []
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "its meeting place can no longer change" in page
    card = where_card(page)
    assert CAFE in card and "the meeting place" not in card  # no change link
    form_page = client.get(f"/contracts/{contract_id}/meeting-place").get_data(as_text=True)
    assert 'id="meeting-place-closed"' in form_page and 'id="meeting-place-form"' not in form_page


# --- in the browser --------------------------------------------------------------------


@pytest.mark.browser
def test_a_long_address_set_on_a_phone_becomes_a_link_that_does_not_widen_the_page(
    browser, app, contract_id, student
):
    from tests.support import PHONE, log_in_anywhere, new_page, page_overflow, serve_in_thread, shot

    long_call = "https://meet.example.com/" + "x" * 300 + "?pwd=" + "7" * 60
    with serve_in_thread(app) as url, new_page(browser, PHONE) as page:
        log_in_anywhere(page, url, student.email, "correct-horse-battery")
        page.goto(f"{url}/contracts/{contract_id}")
        page.get_by_role("link", name="Set the meeting place").click()
        page.get_by_label("Where the sessions take place").fill("javascript:alert(1)")
        page.get_by_role("button", name="Save the meeting place").click()
        field = page.get_by_label("Where the sessions take place")
        assert page.get_by_text("Only web addresses starting with http:// or https://").is_visible()
        field.fill(long_call)
        shot(page, "meeting-place-form-phone")
        page.get_by_role("button", name="Save the meeting place").click()
        page.wait_for_url(f"{url}/contracts/{contract_id}#meeting-place")
        link = page.locator("#meeting-place-value a")
        assert link.get_attribute("href") == long_call
        assert page_overflow(page) is None, page_overflow(page)
        shot(page, "meeting-place-contract-phone")

        page.get_by_role("link", name="Change the meeting place").click()
        page.get_by_label("Where the sessions take place").fill(CAFE)
        page.get_by_role("button", name="Save the meeting place").click()
        page.wait_for_url(f"{url}/contracts/{contract_id}#meeting-place")
        assert page.locator("#meeting-place-value").inner_text() == f"Where: {CAFE}"
        assert page.locator("#meeting-place-value a").count() == 0
