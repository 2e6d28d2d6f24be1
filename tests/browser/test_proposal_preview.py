"""The proposal form's live preview in Chromium prices terms exactly as the server does."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.conftest import PASSWORD
from tests.support import log_in, serve_in_thread, shot

pytestmark = pytest.mark.browser

CASES = [
    # (currency, sessions, price as typed, minor units per session)
    ("usd", "3", "33.33", 3333),  # 5 % of 9999 cents rounds half up to 500
    ("usd", "3", "5", 500),  # the $1.00 minimum fee
    ("usd", "1", "20.10", 2010),  # 100.5 cents: half up
    ("jpy", "3", "1,234", 1234),  # no minor unit
    ("jpy", "1", "50", 50),  # ¥2.5 → ¥3
    ("eur", "2", "0.10", 10),  # below Stripe's minimum: figures and why it cannot be sent
    ("krw", "99", "1000000", 1_000_000),  # ₩99,000,000: grouped by thousands
    ("chf", "12", "1234.56", 123456),  # "CHF14,814.72", as Babel writes it
    ("krw", "100", "1e6", 1_000_000),  # above the largest single payment: no figures
    ("usd", "4", "0.13", 13),  # the $1.00 minimum fee takes the whole $0.52: refused
    ("usd", "1", "1.99", 199),  # the coach would keep $0.99, under half: refused
    ("usd", "1", "2", 200),  # half exactly: sendable
]


@pytest.fixture
def live_url(app):
    with serve_in_thread(app) as url:
        yield url


@pytest.fixture
def coach_page(page, live_url, make_user):
    make_user("coach", email="maya@example.com", name="Maya Lindqvist")
    log_in(page, live_url, "maya@example.com", PASSWORD)
    page.goto(f"{live_url}/contracts/proposals/new")
    return page


def type_terms(page, currency: str, sessions: str, price: str) -> None:
    page.get_by_label("Currency").select_option(currency)
    page.get_by_label("Number of sessions").fill(sessions)
    page.get_by_label("Price per session").fill(price)


def panel(page) -> dict:
    def text(selector: str) -> str | None:
        element = page.locator(selector)
        return None if element.is_hidden() else element.inner_text()

    return {
        "total": text("#preview-total"),
        "fee": text("#preview-fee"),
        "earning": text("#preview-earning"),
        "problem": text("#preview-problem"),
    }


def server_panel(currency: str, sessions: int, price_minor: int) -> dict:
    """What the server shows for these terms (`contracts.services.preview_terms`)."""
    from contracts.money import format_money
    from contracts.services import preview_terms

    preview = preview_terms(
        price_per_session=price_minor, session_count=sessions, currency=currency
    )
    split = preview.split
    return {
        "total": format_money(split.total, currency) if split else None,
        "fee": format_money(split.platform_fee, currency) if split else None,
        "earning": format_money(split.coach_earning, currency) if split else None,
        "problem": preview.problem,
    }


def test_the_live_preview_equals_the_servers_figures(coach_page, db):
    page = coach_page
    assert page.locator("#preview-hint").is_visible()
    for currency, sessions, price, price_minor in CASES:
        type_terms(page, currency, sessions, price)
        expected = server_panel(currency, int(sessions), price_minor)
        assert panel(page) == expected, (currency, sessions, price)
        assert page.locator("#preview-hint").is_hidden()
    type_terms(page, "usd", "3", "33.33")
    assert panel(page) == {
        "total": "$99.99", "fee": "$5.00", "earning": "$94.99", "problem": None
    }
    shot(page, "proposal-preview")

    # Terms that make no total bring the hint back.
    page.get_by_label("Price per session").fill("ten")
    assert page.locator("#preview-hint").is_visible()
    assert page.locator("#preview-figures").is_hidden()


def test_the_symbol_and_the_minimum_fee_follow_the_currency(coach_page):
    from contracts.money import format_money

    page = coach_page
    symbol = page.locator("#price-symbol")
    assert symbol.inner_text() == "$"
    for currency, shown, least_fee in [
        ("eur", "€", 100), ("jpy", "¥", 1), ("chf", "CHF", 100), ("cad", "CA$", 100),
        ("krw", "₩", 1), ("usd", "$", 100),
    ]:
        page.get_by_label("Currency").select_option(currency)
        assert symbol.inner_text() == shown
        assert page.locator("#preview-least-fee").inner_text() == format_money(least_fee, currency)
    page.get_by_label("Currency").select_option("jpy")
    shot(page, "proposal-preview-jpy-symbol")


def test_the_live_preview_keeps_the_servers_figures_after_a_refused_submit(coach_page):
    page = coach_page
    type_terms(page, "jpy", "3", "1234")
    live = panel(page)
    page.get_by_role("button", name="Send proposal").click()  # no title: refused
    page.wait_for_load_state()
    assert page.get_by_text("This field is required.").first.is_visible()
    assert page.locator("#price-symbol").inner_text() == "¥"
    assert panel(page) == live == {
        "total": "¥3,702", "fee": "¥185", "earning": "¥3,517", "problem": None
    }


def test_the_plan_numbers_take_input_only_while_a_plan_is_offered(coach_page):
    page = coach_page
    deposit = page.get_by_label("Deposit (% of the total, paid up front)")
    instalments = page.get_by_label("Up to this many monthly instalments")
    assert deposit.is_disabled() and instalments.is_disabled()
    page.get_by_label("Offer a payment plan").check()
    assert deposit.is_enabled() and instalments.is_enabled()
    assert deposit.input_value() == "25"
    page.get_by_label("Offer a payment plan").uncheck()
    assert deposit.is_disabled() and instalments.is_disabled()


class TestAFractionalFeeRule:
    @pytest.fixture
    def app_overrides(self):
        return {"PLATFORM_FEE_PERCENT": Decimal("2.9"), "PLATFORM_FEE_MINIMUM": Decimal("0.5"),
                "MINIMUM_COACH_EARNING_PERCENT": Decimal("33.5")}

    def test_the_live_preview_equals_the_servers_figures(self, coach_page, db):
        page = coach_page
        for currency, sessions, price, price_minor in [
            ("usd", "1", "10", 1000),  # 29 cents: the 50-cent minimum
            ("usd", "7", "12.35", 1235),  # 2.9 % of 8645 cents = 250.705: 251
            ("usd", "1", "0.75", 75),  # the coach keeps 25 of 75 cents, under 33.5 %: refused
            ("usd", "1", "0.76", 76),  # 26 of 76 cents, over 33.5 %: sendable
            ("jpy", "1", "100", 100),  # 2.9 → ¥3; the minimum ¥0.5 → ¥1
            ("jpy", "10", "5", 5),  # 1.45 → ¥1
        ]:
            type_terms(page, currency, sessions, price)
            assert panel(page) == server_panel(currency, int(sessions), price_minor), (
                currency, sessions, price,
            )
        assert page.locator("#preview-least-fee").inner_text() == "¥1"
        type_terms(page, "usd", "1", "0.75")
        assert "at least 33.5 % of its total" in panel(page)["problem"]
