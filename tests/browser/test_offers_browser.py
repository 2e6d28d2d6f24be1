"""A visitor buys from a coach's public page in Chromium: logged out, registering on the
way, landing on the new contract's pay page; on a laptop and on a 390 × 844 phone, with
the public page and the confirmation free of axe-core violations and sideways scroll."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from tests.browser.main_pages import LAPTOP, PHONE
from tests.support import (
    axe_violations,
    describe_violations,
    new_page,
    page_overflow,
    register_on_the_way,
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


def checked(page, where: str) -> list[str]:
    """axe-core's serious and critical violations and any sideways scroll, as reports."""
    problems = []
    if violations := axe_violations(page):
        problems.append(describe_violations(where, violations))
    if overflow := page_overflow(page):
        problems.append(f"{where}: {overflow}")
    return problems


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_a_visitor_registers_on_the_way_and_lands_on_the_pay_page(browser, live_url, db,
                                                                  viewport):
    from accounts.models import User
    from contracts.models import Contract

    width = viewport["width"]
    with new_page(browser, viewport) as page:
        failed = watch_failed_loads(page)
        page.goto(f"{live_url}/c/maya-lindqvist")
        assert page.get_by_role("heading", name="Maya Lindqvist").is_visible()
        sprint = page.locator("li", has=page.get_by_role("heading", name="Leadership sprint"))
        assert "$600.00 in full, or $150.00 now and 3 × $150.00 monthly" in sprint.inner_text()
        assert page.get_by_text("Executive coaching quarter").count() == 0  # paused
        shot(page, f"offers-public-{width}")
        problems = checked(page, f"/c/maya-lindqvist ({width} px)")

        sprint.get_by_role("link", name="Book & pay").click()
        email = f"lea-{width}@example.com"
        register_on_the_way(page, "Léa Martin", email)

        # Back where the visitor was going: the offer, to confirm.
        page.wait_for_url(re.compile(r".*/c/maya-lindqvist/offers/\d+/buy$"))
        assert page.get_by_role("heading", name="Leadership sprint").is_visible()
        shot(page, f"offers-buy-{width}")
        problems += checked(page, f"the offer's Book & pay page ({width} px)")
        page.get_by_role("button", name="Book & pay").click()

        page.wait_for_url(re.compile(r".*/contracts/\d+/pay$"))
        contract_id = int(page.url.rsplit("/", 2)[1])
        shot(page, f"offers-pay-{width}")
        assert page.get_by_text("Leadership sprint").first.is_visible()
        db.session.expire_all()
        student = db.session.scalar(select(User).filter_by(email=email))
        contract = db.session.get(Contract, contract_id)
        assert contract.student_id == student.id and contract.offer_id is not None
        assert (contract.total_amount, contract.plan_deposit_percent,
                contract.plan_max_instalments, contract.plan_minimum_total) == (
            60000, 25, 3, 30000)

        # A second Book & pay from the public page: the same contract, not another.
        page.goto(f"{live_url}/c/maya-lindqvist")
        sprint = page.locator("li", has=page.get_by_role("heading", name="Leadership sprint"))
        sprint.get_by_role("button", name="Book & pay").click()
        page.wait_for_url(f"{live_url}/contracts/{contract_id}/pay")
        assert page.get_by_text("already have an unpaid contract").is_visible()
        assert failed == []
    assert not problems, "\n" + "\n".join(problems)
