"""Every main page, for each role and logged out, passes axe-core's WCAG 2.1 AA checks.

axe-core comes from the npm registry (package.json); a violation rated serious or
critical fails the test with its rule, help text and the offending elements. Each page
must also load without a failed request (a missing favicon shows in the console).
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.browser.main_pages import ADMIN_PAGES, COACH_PAGES, STUDENT_PAGES
from tests.support import (
    axe_violations,
    describe_violations,
    log_in_anywhere,
    new_page,
    serve_in_thread,
    shot,
    watch_failed_loads,
)

pytestmark = pytest.mark.browser



@pytest.fixture
def live_url(app, runner):
    assert runner.invoke(args=["demo-data"]).exit_code == 0
    with serve_in_thread(app) as url:
        yield url


def contract_path(db, title: str) -> str:
    from contracts.models import Contract

    return f"/contracts/{db.session.scalar(select(Contract.id).filter_by(title=title))}"


def check_pages(page, url: str, paths: list[str]) -> list[str]:
    """Visit each path; return one report per page with violations or failed loads."""
    failed = watch_failed_loads(page)
    problems = []
    for path in paths:
        failed.clear()
        response = page.goto(f"{url}{path}")
        if response is None or not response.ok:
            problems.append(f"{path}: answered {response and response.status}")
            continue
        if violations := axe_violations(page):
            problems.append(describe_violations(path, violations))
        if failed:
            problems.append(f"{path}: failed loads: {', '.join(failed)}")
    return problems


def log_in_demo(page, url: str, who: str) -> None:
    from demo import DEMO_PASSWORD

    log_in_anywhere(page, url, f"{who}@coachpact.test", DEMO_PASSWORD)


def test_logged_out_pages_and_a_form_with_errors(browser, live_url):
    with new_page(browser) as page:
        problems = check_pages(page, live_url, ["/", "/auth/login", "/auth/register"])
        # The first Tab shows the skip link; following it puts the focus on the main content.
        page.keyboard.press("Tab")
        skip = page.get_by_role("link", name="Skip to main content")
        assert skip.evaluate("el => el === document.activeElement") and skip.is_visible()
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main"
        # Browsers ask for /favicon.ico whatever the page links.
        icon = page.request.get(f"{live_url}/favicon.ico")
        assert icon.ok and icon.headers["content-type"].startswith("image/svg+xml")
        # A rejected form: each error is tied to its field (aria-invalid, aria-describedby).
        page.get_by_role("button", name="Create account").click()
        page.wait_for_load_state("load")
        name = page.get_by_label("Full name")
        assert name.get_attribute("aria-invalid") == "true"
        error_id = name.get_attribute("aria-describedby").split()[0]
        assert page.locator(f"#{error_id}").inner_text() == "This field is required."
        shot(page, "a11y-register-errors")
        if violations := axe_violations(page):
            problems.append(describe_violations("/auth/register (with errors)", violations))
        # An error page is a page of the app too.
        page.goto(f"{live_url}/no-such-page")
        if violations := axe_violations(page):
            problems.append(describe_violations("/no-such-page (404)", violations))
    assert not problems, "\n" + "\n".join(problems)


def test_student_pages(browser, live_url, db):
    from contracts.models import CoachingSession, Proposal

    with new_page(browser) as page:
        log_in_demo(page, live_url, "ana")
        contract = contract_path(db, "Presentation skills programme")
        proposal = db.session.scalar(
            select(Proposal.id).filter_by(title="Public speaking, from nervous to natural")
        )
        problems = check_pages(
            page, live_url, [*STUDENT_PAGES, contract, f"/contracts/proposals/{proposal}"]
        )
        page.context.clear_cookies()
        # Kenji has sessions left to book: the slot picker, moving and cancelling a session.
        log_in_demo(page, live_url, "kenji")
        portuguese = contract_path(db, "Conversational Portuguese")
        upcoming = db.session.scalar(
            select(CoachingSession.id)
            .where(CoachingSession.contract_id == int(portuguese.rsplit("/", 1)[1]))
            .order_by(CoachingSession.starts_at.desc())
            .limit(1)
        )
        problems += check_pages(page, live_url, [
            portuguese,
            f"{portuguese}/schedule",
            f"/sessions/{upcoming}/reschedule",
            f"/sessions/{upcoming}/cancel",
        ])
    assert not problems, "\n" + "\n".join(problems)


def test_coach_pages(browser, live_url):
    with new_page(browser) as page:
        log_in_demo(page, live_url, "maya")
        problems = check_pages(page, live_url, COACH_PAGES)
    assert not problems, "\n" + "\n".join(problems)


def test_admin_pages(browser, live_url):
    with new_page(browser) as page:
        log_in_demo(page, live_url, "admin")
        problems = check_pages(page, live_url, ADMIN_PAGES)
        # The confirmation a money action answers with, one request and several (nothing
        # moves: the Confirm button is not pressed).
        page.goto(f"{live_url}/admin/refunds")
        page.locator("[data-request-id]").first.get_by_role(
            "button", name="Approve and refund").click()
        page.wait_for_load_state("load")
        assert page.locator("#confirm-form").is_visible()
        if violations := axe_violations(page):
            problems.append(describe_violations("approve and refund (confirm)", violations))
        page.goto(f"{live_url}/admin/refunds")
        page.locator("[data-request-id] input[name=request_ids]").first.check()
        page.locator("#bulk-approve").click()
        page.wait_for_load_state("load")
        assert page.locator("#confirm-items").is_visible()
        if violations := axe_violations(page):
            problems.append(describe_violations("bulk approval (confirm)", violations))
    assert not problems, "\n" + "\n".join(problems)
