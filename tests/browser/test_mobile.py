"""Every main page fits a 390 px wide phone: nothing widens the page, even 100-character names.

Tables marked cp-stack turn into one card per row, the navigation collapses behind
its toggler and a long name is cut with an ellipsis (the full name in its title).
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.browser.main_pages import ADMIN_PAGES, COACH_PAGES, STUDENT_PAGES
from tests.conftest import PASSWORD
from tests.support import (
    PHONE,
    axe_violations,
    describe_violations,
    log_in_anywhere,
    new_page,
    page_overflow,
    serve_in_thread,
    shot_top,
)

pytestmark = pytest.mark.browser

LONG_STUDENT = (
    "Maria Fernanda Guadalupe de los Ángeles Castellanos-Villavicencio"
    " y Montenegro de la Torre Ibáñez-Li"
)
LONG_COACH = (
    "Sir Bartholomew Alexander Christopherson-Wetherington III,"
    " of Kensington upon Thames and Westminster"
)
LONG_TITLE = (
    "Executive presence and storytelling for first-time engineering managers in fast-growing teams"
)



@pytest.fixture
def long_names(app, runner, db, make_user, make_proposal) -> dict[str, int]:
    """The demo data, plus a student and a coach with 100-character names and contracts
    between them and the demo's people: {"student": id, "coach": id, "contract": id}."""
    from accounts.models import User
    from contracts.services import accept_proposal

    assert len(LONG_STUDENT) == 100 and len(LONG_COACH) == 100
    assert runner.invoke(args=["demo-data"]).exit_code == 0
    student = make_user("student", email="maria@example.com", name=LONG_STUDENT)
    coach = make_user("coach", email="bartholomew@example.com", name=LONG_COACH)
    maya = db.session.scalar(select(User).filter_by(email="maya@coachpact.test"))
    ana = db.session.scalar(select(User).filter_by(email="ana@coachpact.test"))
    proposals = [make_proposal(coach, student, title=LONG_TITLE), make_proposal(maya, student)]
    make_proposal(coach, ana, title=LONG_TITLE)  # waits in Ana's list, with the long name
    contract = accept_proposal(proposals[0], db.session.merge(student))
    accept_proposal(proposals[1], db.session.merge(student))
    db.session.commit()
    return {"contract": contract.id}


@pytest.fixture
def live_url(app, long_names):
    with serve_in_thread(app) as url:
        yield url


def overflowing(page, url: str, paths: list[str], shots: dict[str, str] | None = None) -> list[str]:
    """Visit each path on the phone; return the pages wider than the screen, with the culprits."""
    problems = []
    for path in paths:
        response = page.goto(f"{url}{path}")
        if response is None or not response.ok:
            problems.append(f"{path}: answered {response and response.status}")
            continue
        if wide := page_overflow(page):
            problems.append(f"{path}: {wide}")
        # A narrow screen has its own accessibility traps (a region that scrolls sideways).
        if violations := axe_violations(page):
            problems.append(describe_violations(f"{path} at 390 px", violations))
        if shots and path in shots:
            shot_top(page, shots[path])
    return problems


def test_logged_out_pages_fit_a_phone(browser, live_url):
    with new_page(browser, PHONE) as page:
        problems = overflowing(page, live_url, ["/", "/auth/login", "/auth/register"],
                               {"/": "mobile-home"})
        page.get_by_role("button", name="Show or hide the menu").click()
        assert page.get_by_role("link", name="Sign up").is_visible()
    assert not problems, "\n" + "\n".join(problems)


def test_student_pages_fit_a_phone_with_a_long_name(browser, live_url, long_names):
    from demo import DEMO_PASSWORD

    contract = f"/contracts/{long_names['contract']}"
    with new_page(browser, PHONE) as page:
        log_in_anywhere(page, live_url, "maria@example.com", PASSWORD)
        problems = overflowing(page, live_url, [*STUDENT_PAGES, contract],
                               {contract: "mobile-student-contract"})

        # The collapsed menu opens; the name is cut with an ellipsis, whole in its title.
        page.goto(f"{live_url}/contracts/")
        page.get_by_role("button", name="Show or hide the menu").click()
        page.locator("#nav.show:not(.collapsing)").wait_for()  # opened, animation over
        name = page.locator(".cp-user-name")
        assert name.is_visible()
        assert name.get_attribute("title") == LONG_STUDENT
        assert name.evaluate("el => el.scrollWidth > el.clientWidth"), "the name is not cut"
        assert page.get_by_role("link", name="Payments").is_visible()
        if wide := page_overflow(page):
            problems.append(f"/contracts/ with the menu open: {wide}")
        shot_top(page, "mobile-student-menu-open", 900)
        page.get_by_role("button", name="Log out").click()
        page.wait_for_url(lambda address: "/contracts/" not in address)

        log_in_anywhere(page, live_url, "ana@coachpact.test", DEMO_PASSWORD)
        problems += overflowing(page, live_url, STUDENT_PAGES,
                                {"/payments": "mobile-student-payments"})
    assert not problems, "\n" + "\n".join(problems)


def test_coach_pages_fit_a_phone_with_a_long_name(browser, live_url):
    from demo import DEMO_PASSWORD

    with new_page(browser, PHONE) as page:
        log_in_anywhere(page, live_url, "bartholomew@example.com", PASSWORD)
        problems = overflowing(page, live_url, COACH_PAGES,
                               {"/contracts/": "mobile-coach-contracts"})
        page.context.clear_cookies()

        log_in_anywhere(page, live_url, "maya@coachpact.test", DEMO_PASSWORD)
        problems += overflowing(page, live_url, COACH_PAGES, {"/earnings": "mobile-coach-earnings"})
    assert not problems, "\n" + "\n".join(problems)


def test_admin_pages_fit_a_phone(browser, live_url):
    from demo import DEMO_PASSWORD

    with new_page(browser, PHONE) as page:
        log_in_anywhere(page, live_url, "admin@coachpact.test", DEMO_PASSWORD)
        problems = overflowing(page, live_url, ADMIN_PAGES, {
            "/admin/users": "mobile-admin-users",
            "/admin/refunds": "mobile-admin-refunds",
            "/admin/payments/list": "mobile-admin-payments",
            "/admin/search?q=tomas": "mobile-admin-search",
        })
        # The console's tabs scroll inside their own strip.
        page.goto(f"{live_url}/admin/users")
        tabs = page.locator("#admin-nav")
        assert tabs.evaluate("el => el.scrollWidth > el.clientWidth")
        assert tabs.evaluate("el => getComputedStyle(el).overflowX") == "auto"
    assert not problems, "\n" + "\n".join(problems)
