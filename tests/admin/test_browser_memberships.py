"""The admin's memberships in Chromium, on the demo data: the list, a membership's page and
the dashboard's Memberships section, on a laptop and on a phone."""

from __future__ import annotations

import pytest

from tests.browser.main_pages import LAPTOP, PHONE
from tests.support import (
    ARTIFACTS,
    axe_violations,
    describe_violations,
    log_in_anywhere,
    new_page,
    page_overflow,
    serve_in_thread,
    shot,
)

pytestmark = pytest.mark.browser


@pytest.fixture
def live_url(app, runner):
    assert runner.invoke(args=["demo-data"]).exit_code == 0
    with serve_in_thread(app) as url:
        yield url


def fits(page, where: str) -> list[str]:
    """What is wrong with the page shown: sideways scroll, serious axe violations."""
    problems = []
    if wide := page_overflow(page):
        problems.append(f"{where}: {wide}")
    if violations := axe_violations(page):
        problems.append(describe_violations(where, violations))
    return problems


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_the_demo_admin_reads_memberships(browser, live_url, viewport):
    from demo import DEMO_PASSWORD

    width = viewport["width"]
    problems: list[str] = []
    with new_page(browser, viewport) as page:
        log_in_anywhere(page, live_url, "admin@coachpact.test", DEMO_PASSWORD)

        page.goto(f"{live_url}/admin/payments")
        section = page.locator("#memberships")
        section.scroll_into_view_if_needed()
        assert "$320.00" in section.locator("#mrr-usd").inner_text()  # Ana's and Priya's months
        # Kenji's ¥3,000 and Ana's ¥3,000 a week: ¥26,000 a month.
        assert "¥26,000" in section.locator("#mrr-jpy").inner_text()
        assert section.locator("#member-months tbody tr").count() == 12
        problems += fits(page, f"dashboard at {width} px")
        ARTIFACTS.mkdir(exist_ok=True)
        section.screenshot(path=str(ARTIFACTS / f"admin-memberships-dashboard-{width}.png"))

        nav = page.locator("#admin-nav")
        nav.locator("summary").click()  # Memberships waits under "More"
        nav.get_by_role("link", name="Memberships").click()
        page.wait_for_url(f"{live_url}/admin/memberships")
        rows = page.locator("#memberships tbody tr")
        assert rows.count() == 5
        text = page.locator("#memberships").inner_text()
        assert "Priya Nair" in text and "Past due" in text and "Ends with this period" in text
        problems += fits(page, f"list at {width} px")
        shot(page, f"admin-memberships-list-{width}")

        page.get_by_label("Status").select_option("canceled")
        page.get_by_role("button", name="Filter").click()
        assert page.locator("#memberships tbody tr").count() == 1
        page.get_by_role("link", name="Monthly coaching").click()
        main = page.locator("main").inner_text()
        assert "Kenji Sato" in main and "sub_demo_" in main and "in_demo_" in main
        assert "membership.canceled" in main and "Actions" in main
        assert page.locator("#grant-rows tbody tr").count() == 3
        problems += fits(page, f"membership at {width} px")
        shot(page, f"admin-membership-detail-{width}")
    assert problems == [], "\n".join(problems)



@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_the_demo_admin_s_actions_on_a_running_membership(browser, live_url, viewport):
    """Ana's running monthly membership: end now with its refund, pause, and a refund link
    per paid period; pressing "Pause collection…" asks first, nothing done."""
    from demo import DEMO_PASSWORD

    width = viewport["width"]
    problems: list[str] = []
    with new_page(browser, viewport) as page:
        log_in_anywhere(page, live_url, "admin@coachpact.test", DEMO_PASSWORD)
        page.goto(f"{live_url}/admin/memberships?q=ana")
        page.locator("#memberships tbody tr", has_text="Monthly coaching").get_by_role(
            "link", name="Monthly coaching").click()
        actions = page.locator("#membership-actions")
        actions.scroll_into_view_if_needed()
        assert actions.locator("#end-now-refund").inner_text().startswith("$")
        assert actions.get_by_label("Pause collection for").is_visible()
        assert actions.get_by_label("Why it ends now (both parties see it)").is_visible()
        assert actions.locator("#resume-form").count() == 0
        links = page.locator("#grant-rows").get_by_role("link", name="Refund…")
        assert links.count() == 3 and links.first.is_visible()
        problems += fits(page, f"membership actions at {width} px")
        ARTIFACTS.mkdir(exist_ok=True)
        actions.screenshot(path=str(ARTIFACTS / f"admin-membership-actions-{width}.png"))
        shot(page, f"admin-membership-running-{width}")

        actions.get_by_label("Pause collection for").select_option("2")
        actions.get_by_role("button", name="Pause collection…").click()
        question = page.locator("#confirm-question")
        assert question.inner_text() == "Pause “Monthly coaching” for 2 periods?"
        problems += fits(page, f"pause confirmation at {width} px")
        shot(page, f"admin-membership-pause-confirm-{width}")
        page.locator("#confirm-back").click()
        assert page.locator("#membership-actions #pause-form").is_visible()

        links.first.click()
        assert page.locator("#refund-form").is_visible()
        assert page.locator("#contract-membership").is_visible()
    assert problems == [], "\n".join(problems)
