"""The proposal form's preview of the total, fee and earning, and its currency symbol."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest
from markupsafe import escape
from sqlalchemy import func, select

from contracts.models import Proposal
from tests.conftest import login

FORM = {
    "title": "",  # left out: the form comes back with the preview of what was typed
    "description": "Mock interviews.",
    "minutes_per_session": "60",
}


@pytest.fixture
def coach(make_user):
    return make_user("coach", email="coach@example.com", name="Maya Coach")


@pytest.fixture
def student(make_user):
    return make_user("student", email="student@example.com", name="Ana Student")


def text_of(page: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)</', page, re.S)
    assert match, f"no #{element_id} on the page"
    return match.group(1).strip()


def is_hidden(page: str, element_id: str) -> bool:
    match = re.search(rf'<[^>]*id="{element_id}"[^>]*>', page)
    assert match, f"no #{element_id} on the page"
    return " hidden" in match.group(0)


def returned_form(client, student, **typed: str) -> str:
    response = client.submit(
        "/contracts/proposals/new", FORM | {"student_email": student.email} | typed
    )
    assert response.status_code == 200
    return response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("typed", "total", "fee", "earning"),
    [
        # 3 × $33.33 = $99.99; 5 % is 499.95 cents, rounded half up to $5.00.
        ({"currency": "usd", "price_per_session": "33.33", "session_count": "3"},
         "$99.99", "$5.00", "$94.99"),
        # JPY has no minor unit: 5 % of ¥3,702 is 185.1, so ¥185.
        ({"currency": "jpy", "price_per_session": "1,234", "session_count": "3"},
         "¥3,702", "¥185", "¥3,517"),
        # 5 % of ¥50 is 2.5: half up makes ¥3, above the ¥1 minimum.
        ({"currency": "jpy", "price_per_session": "50", "session_count": "1"},
         "¥50", "¥3", "¥47"),
        # 5 % of $15.00 is $0.75: the $1.00 minimum applies.
        ({"currency": "usd", "price_per_session": "5", "session_count": "3"},
         "$15.00", "$1.00", "$14.00"),
        # 5 % of $20.10 is 100.5 cents: $1.01.
        ({"currency": "usd", "price_per_session": "20.10", "session_count": "1"},
         "$20.10", "$1.01", "$19.09"),
    ],
)
def test_a_returned_form_shows_the_split_the_server_makes(
    client, coach, student, typed, total, fee, earning
):
    login(client, coach)
    page = returned_form(client, student, **typed)
    assert "This field is required." in page  # the title: nothing was sent
    assert (text_of(page, "preview-total"), text_of(page, "preview-fee"),
            text_of(page, "preview-earning")) == (total, fee, earning)
    assert not is_hidden(page, "preview-figures") and is_hidden(page, "preview-hint")
    assert is_hidden(page, "preview-problem")


def test_the_preview_figures_are_those_of_the_proposal_sent(client, db, coach, student):
    login(client, coach)
    typed = {"currency": "usd", "price_per_session": "33.33", "session_count": "3"}
    shown = returned_form(client, student, **typed)
    sent = client.submit(
        "/contracts/proposals/new",
        FORM | {"student_email": student.email, "title": "Interviews"} | typed,
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "Platform fee $5.00 · you earn $94.99" in " ".join(sent.split())
    assert text_of(shown, "preview-fee") == "$5.00"


def test_an_empty_form_asks_for_the_terms(client, coach):
    login(client, coach)
    page = client.get("/contracts/proposals/new").get_data(as_text=True)
    assert not is_hidden(page, "preview-hint") and is_hidden(page, "preview-figures")
    assert "Enter the number of sessions and a price per session" in page
    assert text_of(page, "preview-least-fee") == "$1.00"


@pytest.mark.parametrize(
    "typed",
    [
        {"price_per_session": "ten", "session_count": "3"},
        {"price_per_session": "10.001", "session_count": "3"},
        {"price_per_session": "-5", "session_count": "3"},
        {"price_per_session": "10", "session_count": "0"},
        {"price_per_session": "10", "session_count": "four"},
    ],
)
def test_terms_that_make_no_total_show_no_figures(client, coach, student, typed):
    login(client, coach)
    page = returned_form(client, student, currency="usd", **typed)
    assert not is_hidden(page, "preview-hint") and is_hidden(page, "preview-figures")


def test_the_preview_says_why_a_total_cannot_be_sent(client, db, coach, student):
    login(client, coach)
    small = returned_form(client, student, currency="usd", price_per_session="0.10",
                          session_count="2")
    message = "The total must be at least $0.50, Stripe&#39;s minimum charge in USD."
    assert text_of(small, "preview-problem") == message
    assert text_of(small, "preview-total") == "$0.20"  # the figures still show
    huge = returned_form(client, student, currency="usd", price_per_session="999999.99",
                         session_count="100")
    assert text_of(huge, "preview-problem") == (
        "The contract total is larger than a single payment can be."
    )
    assert is_hidden(huge, "preview-figures")
    assert db.session.scalar(select(func.count()).select_from(Proposal)) == 0


@pytest.mark.parametrize(
    ("currency", "symbol"),
    [("usd", "$"), ("eur", "€"), ("gbp", "£"), ("jpy", "¥"), ("chf", "CHF"), ("cad", "CA$")],
)
def test_the_price_input_shows_the_currency_symbol(client, coach, student, currency, symbol):
    login(client, coach)
    page = returned_form(client, student, currency=currency, price_per_session="10")
    assert text_of(page, "price-symbol") == str(escape(symbol))
    # The symbol sits in the price input's group, the input still named by its label.
    assert re.search(
        r'<label class="form-label" for="price_per_session">Price per session</label>\s*'
        r'<div class="input-group">\s*<span class="input-group-text" id="price-symbol">',
        page,
    )


def test_a_price_error_is_tied_to_the_input(client, coach, student):
    login(client, coach)
    page = returned_form(client, student, currency="usd", price_per_session="ten")
    field = re.search(r'<input[^>]*id="price_per_session"[^>]*>', page).group(0)
    assert 'aria-invalid="true"' in field and 'aria-describedby="price_per_session-error"' in field
    assert text_of(page, "price_per_session-error") == "Enter an amount such as 45.00."


def test_the_page_carries_the_fee_rule_for_its_script_and_no_inline_script(client, coach):
    login(client, coach)
    page = client.get("/contracts/proposals/new").get_data(as_text=True)
    form = re.search(r'<form[^>]*id="proposal-form"[^>]*>', page, re.S).group(0)
    assert 'data-fee-percent="5"' in form and 'data-fee-minimum="1"' in form
    assert 'data-min-earning-percent="50"' in form
    assert 'data-max-total="99999999"' in form
    currencies = json.loads(re.search(r"data-currencies='([^']*)'", form).group(1))
    assert currencies["jpy"] == {"decimals": 0, "symbol": "¥", "min_charge": 50}
    assert currencies["usd"] == {"decimals": 2, "symbol": "$", "min_charge": 50}
    scripts = re.findall(r"<script[^>]*>", page)
    assert '<script src="/static/js/proposal-preview.js" defer>' in scripts
    assert all("src=" in tag for tag in scripts)
    assert not re.search(r"\son[a-z]+=", page)  # no inline handlers


class TestAnotherFeeRule:
    """A fractional percent and minimum travel as exact decimals and price the same way."""

    @pytest.fixture
    def app_overrides(self):
        return {"PLATFORM_FEE_PERCENT": Decimal("2.9"), "PLATFORM_FEE_MINIMUM": Decimal("0.5")}

    def test_the_rule_and_the_figures(self, client, coach, student):
        login(client, coach)
        page = returned_form(client, student, currency="jpy", price_per_session="100",
                             session_count="1")
        assert 'data-fee-percent="2.9"' in page and 'data-fee-minimum="0.5"' in page
        # 2.9 % of ¥100 is 2.9, so ¥3; the minimum, ¥0.5, rounds half up to ¥1.
        assert text_of(page, "preview-fee") == "¥3"
        assert text_of(page, "preview-least-fee") == "¥1"
        page = returned_form(client, student, currency="usd", price_per_session="10",
                             session_count="1")
        assert text_of(page, "preview-fee") == "$0.50"  # 29 cents < the 50-cent minimum


# --- the coach's least earning (MINIMUM_COACH_EARNING_PERCENT, 50 by default) ---------------


def too_little(fee: str, total: str, earning: str) -> str:
    return str(escape(
        f"The platform fee takes {fee} of this {total}, leaving you {earning}: a proposal "
        "must leave you at least 50 % of its total. Raise the price or the number of sessions."
    ))


def test_a_proposal_the_minimum_fee_takes_whole_is_refused_with_the_reason(
    client, db, coach, student
):
    # 4 × $0.13 = $0.52: Stripe could charge it, but the $1.00 minimum fee takes it all.
    login(client, coach)
    page = returned_form(client, student, title="Tiny", currency="usd",
                         price_per_session="0.13", session_count="4")
    message = too_little("$0.52", "$0.52", "$0.00")
    assert text_of(page, "price_per_session-error") == message
    assert text_of(page, "preview-problem") == message
    assert text_of(page, "preview-earning") == "$0.00"  # the figures still show
    assert re.search(r"a proposal\s+must leave you at least 50 % of its total\.", page)
    assert db.session.scalar(select(func.count()).select_from(Proposal)) == 0


def test_a_coach_may_earn_exactly_the_least_share(client, db, coach, student):
    login(client, coach)
    # $1.99: the $1.00 fee leaves $0.99, under half.
    refused = returned_form(client, student, title="Short", currency="usd",
                            price_per_session="1.99", session_count="1")
    assert text_of(refused, "price_per_session-error") == too_little("$1.00", "$1.99", "$0.99")
    # $2.00: the $1.00 fee leaves $1.00, half exactly.
    sent = client.submit("/contracts/proposals/new", FORM | {
        "student_email": student.email, "title": "Short", "currency": "usd",
        "price_per_session": "2.00", "session_count": "1"})
    assert sent.status_code == 302
    proposal = db.session.scalar(select(Proposal))
    assert (proposal.price_per_session, proposal.session_count) == (200, 1)


def test_send_proposal_itself_refuses_too_little_earning(app, coach, student, make_proposal):
    from contracts.money import MoneyError

    with pytest.raises(MoneyError, match="leaving you \\$0.00"):
        make_proposal(coach, student, currency="usd", price_per_session=13, session_count=4)
    # In yen the ¥1 minimum fee leaves most of a small total.
    assert make_proposal(coach, student, currency="jpy", price_per_session=50, session_count=1)


class TestNoLeastEarning:
    @pytest.fixture
    def app_overrides(self):
        return {"MINIMUM_COACH_EARNING_PERCENT": Decimal(0)}

    def test_zero_lets_the_fee_take_a_whole_total(self, client, db, coach, student):
        login(client, coach)
        page = returned_form(client, student, currency="usd", price_per_session="0.13",
                             session_count="4")
        assert is_hidden(page, "preview-problem")
        assert 'data-min-earning-percent="0"' in page
