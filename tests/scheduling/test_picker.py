"""The booking page as a calendar: a day of the week (days with free time marked), a time
of that day, then the time restated on both clocks before anything is booked; the same
for moving a session. Without JavaScript every step is a link; in Chromium the keyboard
alone books a session, at desktop and phone widths."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from contracts.models import CoachingSession
from scheduling.models import DayOff
from tests.conftest import login
from tests.support import log_in, serve_in_thread, shot

# START (conftest) is Monday 1 March 2027, 12:00 UTC. Maya works 09:00–17:00 in Berlin,
# 03:00–11:00 in Kenji's New York (EST). Thursday 10:00 UTC is 11:00 CET, 05:00 EST.
THURSDAY = datetime(2027, 3, 4, 10, 0, tzinfo=UTC)


def value(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%MZ")


def text_of(client, url: str) -> str:
    """The page, its entities read and each run of white space one space."""
    return re.sub(r"\s+", " ", html.unescape(client.get(url).get_data(as_text=True)))


def href(page: str, element_id: str) -> str:
    """The address the link with this id goes to (without its #fragment)."""
    match = re.search(rf'id="{element_id}"[^>]*?href="([^"#]+)', page, re.S)
    assert match, f"no link {element_id}"
    return match.group(1)


def starts(db, contract_id: int) -> list[datetime]:
    db.session.expire_all()
    rows = db.session.scalars(
        select(CoachingSession.starts_at).where(CoachingSession.contract_id == contract_id)
    )
    return [row.replace(tzinfo=UTC) if row.tzinfo is None else row for row in rows]


def test_the_days_strip_marks_days_with_free_time_and_days_without(
    client, db, coach, student, contract_id
):
    db.session.add(DayOff(coach_id=coach.id, day=datetime(2027, 3, 3).date()))
    db.session.commit()
    login(client, student)
    page = text_of(client, f"/contracts/{contract_id}/schedule")
    strip = page[page.index('id="days"'):page.index("</ul>", page.index('id="days"'))]
    # Seven days from today; Monday is too soon, Wednesday a day off, the weekend not worked.
    assert re.findall(r'data-day="([\d-]+)"', strip) == [
        f"2027-03-0{day}" for day in range(1, 8)]
    for empty in ("01", "03", "06", "07"):
        assert re.search(rf'<span class="cp-day is-empty" id="day-2027-03-{empty}"[^>]*'
                         r'aria-disabled="true">', strip)
    assert strip.count("No free time") == 4
    # The days with free time are links, with their count; the first one is shown.
    assert re.search(r'<a class="cp-day is-picked" id="day-2027-03-02"[^>]*aria-current="true"',
                     strip, re.S)
    assert "15 free<span class=\"visually-hidden\"> times</span>" in strip
    assert href(page, "day-2027-03-04") == (
        f"/contracts/{contract_id}/schedule?day=2027-03-04&from=2027-03-01")
    # Nothing to confirm until a time is picked.
    assert 'id="slot-confirm"' not in page and "Book session" not in page


def test_a_day_asked_for_lists_its_times_only_and_keeps_its_week(client, student, contract_id):
    login(client, student)
    page = text_of(client, f"/contracts/{contract_id}/schedule?from=2027-03-01&day=2027-03-04")
    assert "Pick a time on Thursday 04 March" in page
    assert f'data-slot="{value(THURSDAY)}"' in page
    assert 'data-slot="2027-03-02T08:00Z"' not in page
    assert 'id="slots-week">Mon 01 Mar – Sun 07 Mar 2027' in page
    # A day without free time, or one outside the week, shows the first free day instead.
    saturday = text_of(client, f"/contracts/{contract_id}/schedule?day=2027-03-06")
    assert "Pick a time on Monday 08 March" in saturday  # its week starts on the day asked


def test_many_times_in_a_day_are_grouped_by_morning_and_afternoon(client, coach, contract_id):
    login(client, coach)
    page = text_of(client, f"/contracts/{contract_id}/schedule?day=2027-03-02")
    # Maya reads her own 09:00–16:00 starts: 6 in the morning, 9 in the afternoon.
    morning = page[page.index('id="part-morning"'):page.index('id="part-afternoon"')]
    assert morning.count("data-slot=") == 6
    assert "Evening" not in page
    assert "<span class=\"cp-slot-other\">03:00 EST for Kenji</span>" in page


def test_day_then_time_then_confirm_books_the_time(client, db, student, contract_id):
    login(client, student)
    first = text_of(client, f"/contracts/{contract_id}/schedule")
    day_page = text_of(client, href(first, "day-2027-03-04"))
    slot_id = "slot-" + value(THURSDAY).replace(":", "").replace("-", "")
    confirm = text_of(client, href(day_page, slot_id))
    assert re.search(rf'id="{slot_id}"[^>]*aria-current="true"', confirm, re.S)
    step = confirm[confirm.index('id="slot-confirm"'):]
    # Restated on both clocks, the student's first, before anything is written.
    assert "<strong>Thu 04 Mar, 05:00 EST</strong>" in step
    assert "— Thu 04 Mar, 11:00 CET for Maya Coach" in step
    assert "60 minutes, until 06:00 EST." in step
    assert f'<input type="hidden" name="slot" value="{value(THURSDAY)}">' in step
    assert 'id="late-cancel-warning"' not in step and 'value="Book session"' in step
    assert starts(db, contract_id) == []
    answer = client.submit(href(day_page, slot_id),
                           {"slot": value(THURSDAY), "note": "Past tenses"})
    assert answer.status_code == 302
    assert starts(db, contract_id) == [THURSDAY]


def test_a_late_time_is_warned_on_the_confirm_step(client, db, student, contract_id):
    login(client, student)
    late = datetime(2027, 3, 2, 8, 0, tzinfo=UTC)  # 20 hours ahead
    page = text_of(client, f"/contracts/{contract_id}/schedule?day=2027-03-02&slot={value(late)}")
    step = page[page.index('id="slot-confirm"'):]
    assert 'id="late-cancel-warning"' in step and "if you cancel it, it will count as used" in step
    assert 'name="confirm_late" value="1"' in step and 'value="Book session"' not in step


def test_a_time_no_longer_free_is_said_so(client, db, student, contract_id):
    login(client, student)
    page = text_of(
        client, f"/contracts/{contract_id}/schedule?day=2027-03-06&slot=2027-03-06T10:00Z")
    assert "That time is not free any more. Pick another one." in page
    assert 'id="slot-confirm"' not in page and 'aria-describedby="slot-error"' in page


def test_moving_a_session_picks_day_then_time_then_confirms(
    app, client, db, student, contract_id
):
    from scheduling.sessions import book_session

    with app.test_request_context():
        booked = book_session(contract_id, db.session.merge(student),
                              starts_at=datetime(2027, 3, 3, 9, 0, tzinfo=UTC))
        db.session.commit()
        booked_id = booked.id
    login(client, student)
    first = text_of(client, f"/sessions/{booked_id}/reschedule")
    assert 'id="day-2027-03-04"' in first and "aria-current" in first
    day_page = text_of(client, href(first, "day-2027-03-04"))
    slot_id = "slot-" + value(THURSDAY).replace(":", "").replace("-", "")
    confirm = text_of(client, href(day_page, slot_id))
    step = confirm[confirm.index('id="slot-confirm"'):]
    assert "<strong>Thu 04 Mar, 05:00 EST</strong>" in step and "for Maya Coach" in step
    assert "Move the session" in step
    answer = client.submit(href(day_page, slot_id),
                           {"slot": value(THURSDAY)})
    assert answer.status_code == 302
    assert starts(db, contract_id) == [THURSDAY]


# --- in Chromium, with the keyboard --------------------------------------------------


def tab_to(page, predicate_js: str, limit: int = 40) -> None:
    """Press Tab until the focused element matches `predicate_js` (a function of it)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"({predicate_js})(document.activeElement)"):
            return
    raise AssertionError(f"Tab never reached {predicate_js}")


@pytest.mark.browser
@pytest.mark.parametrize(("width", "height", "name"), [(1280, 900, "desktop"), (390, 844, "phone")])
def test_the_keyboard_alone_books_a_session(
    app, browser, db, student, contract_id, width, height, name
):
    context = browser.new_context(viewport={"width": width, "height": height},
                                  timezone_id="America/New_York")
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        with serve_in_thread(app) as url:
            log_in(page, url, student.email, "correct-horse-battery")
            page.goto(f"{url}/contracts/{contract_id}/schedule")
            fits = "document.documentElement.scrollWidth <= window.innerWidth"
            wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
              .filter(el => el.getBoundingClientRect().right > window.innerWidth + 1)
              .slice(0, 8).map(el => el.tagName + '#' + el.id + '.' + el.className + ' ' +
                               Math.round(el.getBoundingClientRect().right))""")
            assert page.evaluate(fits), f"the page scrolls sideways: {wide}"
            shot(page, f"picker-{name}-days")
            # Tab to Thursday in the days strip; Enter opens its times.
            tab_to(page, "el => el.id === 'day-2027-03-04'")
            page.keyboard.press("Enter")
            page.wait_for_url("**day=2027-03-04**")
            assert page.locator("#day-2027-03-04").get_attribute("aria-current") == "true"
            assert "Thursday 04 March" in page.locator("#step-time").inner_text()
            # The first Tab from the times' heading lands on a time; tab on to 05:00 EST.
            tab_to(page, "el => el.dataset.slot === '2027-03-04T10:00Z'")
            outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
            assert outline == "solid", "a focused time shows it"
            box = page.locator("[data-slot='2027-03-04T10:00Z']").bounding_box()
            assert box["height"] >= 44 and box["width"] >= 88, box  # thumb-sized
            shot(page, f"picker-{name}-times")
            page.keyboard.press("Enter")
            page.wait_for_url("**slot=2027-03-04T10**")
            confirm = page.locator("#slot-confirm")
            assert "Thu 04 Mar, 05:00 EST" in confirm.inner_text()
            assert "Thu 04 Mar, 11:00 CET for Maya Coach" in confirm.inner_text()
            wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
              .filter(el => el.getBoundingClientRect().right > window.innerWidth + 1)
              .slice(0, 8).map(el => el.tagName + '#' + el.id + '.' + el.className)""")
            assert page.evaluate(fits), f"the page scrolls sideways: {wide}"
            shot(page, f"picker-{name}-confirm")
            tab_to(page, "el => el.type === 'submit'")
            page.keyboard.press("Enter")
            page.wait_for_url(f"{url}/contracts/{contract_id}#sessions")
            assert page.get_by_text("Session booked for Thu 04 Mar 2027, 05:00 EST.").is_visible()
    finally:
        context.close()
    assert starts(db, contract_id) == [THURSDAY]


def test_the_contract_page_names_the_viewers_zone_beside_its_sessions(
    client, student, coach, contract_id
):
    login(client, student)
    page = text_of(client, f"/contracts/{contract_id}")
    assert 'id="zone-note">Times in <strong class="text-nowrap">New York (EST)</strong>' in page
    client.submit("/auth/logout")
    login(client, coach)
    page = text_of(client, f"/contracts/{contract_id}")
    assert 'id="zone-note">Times in <strong class="text-nowrap">Berlin (CET)</strong>' in page
