"""The first walk-through, as a person does it in Chromium: register, propose, accept, pay page."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from tests.support import serve_in_thread

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def live_url(app):
    with serve_in_thread(app) as url:
        yield url


def register(page, url: str, name: str, email: str, role: str, timezone: str) -> None:
    page.goto(f"{url}/auth/register")
    page.get_by_label("Full name").fill(name)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill("a-long-password")
    page.get_by_label("Repeat password").fill("a-long-password")
    page.get_by_label(role.title()).check()
    page.get_by_label("Time zone").select_option(timezone)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(f"{url}/contracts/")


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


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

    page.goto(f"{live_url}/auth/login")
    page.get_by_label("Email").fill("ANA@example.com")
    page.get_by_label("Password").fill("a-long-password")
    page.get_by_role("button", name="Log in").click()
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
