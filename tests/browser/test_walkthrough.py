"""The first walk-through, as a person does it in Chromium: register, propose, accept, pay page."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.support import log_in, register, serve_in_thread, shot

pytestmark = pytest.mark.browser


@pytest.fixture
def live_url(app):
    with serve_in_thread(app) as url:
        yield url


def test_register_propose_accept_and_land_on_the_pay_page(page, live_url, db):
    from contracts.models import Contract, ContractStatus

    register(page, live_url, "Ana Ruiz", "ana@example.com", "student", "America/New_York")
    page.get_by_role("button", name="Log out").click()

    register(page, live_url, "Maya Lindqvist", "maya@example.com", "coach", "Europe/London")
    page.get_by_role("link", name="New proposal").first.click()
    page.get_by_label("Student's email").fill("ana@example.com")
    page.get_by_label("Title").fill("Public speaking")
    page.get_by_label("What the coaching covers").fill("Six sessions on voice and nerves.")
    page.get_by_label("Number of sessions").fill("6")
    page.get_by_label("Minutes per session").fill("45")
    page.get_by_label("Currency").select_option("eur")
    page.get_by_label("Price per session").fill("75")
    shot(page, "proposal-form")
    page.get_by_role("button", name="Send proposal").click()
    assert page.get_by_text("Proposal sent to Ana Ruiz.").is_visible()
    assert page.locator("#total").inner_text() == "€450.00"
    page.get_by_role("button", name="Log out").click()

    log_in(page, live_url, "ANA@example.com", "a-long-password")
    page.get_by_role("link", name="Public speaking").click()
    page.get_by_role("button", name="Accept and continue to payment").click()

    page.wait_for_url(f"{live_url}/contracts/*/pay")
    assert page.locator("#amount").inner_text() == "€450.00"
    shot(page, "pay-page")
    contract = db.session.scalar(select(Contract))
    assert contract.status is ContractStatus.PENDING
    assert page.url == f"{live_url}/contracts/{contract.id}/pay"
    page.goto(f"{live_url}/contracts/")
    assert page.locator("#contracts").get_by_role("link", name="Pay").is_visible()
    shot(page, "contracts")
