"""Money arithmetic: integers in minor units, the platform fee and its minimum."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.money import (
    CURRENCY_DECIMALS,
    MIN_CHARGE_AMOUNT,
    MoneyError,
    check_minimum_charge,
    format_money,
    parse_major,
    quote,
)

FIVE = Decimal("5")
ONE = Decimal("1")


def test_usd_snapshot():
    split = quote(
        price_per_session=5000, session_count=4, currency="usd", fee_percent=FIVE, fee_minimum=ONE
    )
    assert (split.total, split.platform_fee, split.coach_earning) == (20000, 1000, 19000)


def test_jpy_has_no_minor_unit():
    split = quote(
        price_per_session=5000, session_count=3, currency="jpy", fee_percent=FIVE, fee_minimum=ONE
    )
    assert (split.total, split.platform_fee, split.coach_earning) == (15000, 750, 14250)
    assert format_money(15000, "jpy") == "¥15,000"


def test_fee_minimum_is_one_major_unit():
    # 5 % of 10.00 USD is 0.50; the minimum lifts it to 1.00.
    split = quote(
        price_per_session=500, session_count=2, currency="usd", fee_percent=FIVE, fee_minimum=ONE
    )
    assert (split.platform_fee, split.coach_earning) == (100, 900)
    # In yen the minimum is 1 yen, so 5 % of 10 yen rounds to 1 (0.5 half up).
    split = quote(
        price_per_session=10, session_count=1, currency="jpy", fee_percent=FIVE, fee_minimum=ONE
    )
    assert split.platform_fee == 1


def test_fee_never_exceeds_the_total():
    split = quote(
        price_per_session=50, session_count=1, currency="usd", fee_percent=FIVE, fee_minimum=ONE
    )
    assert (split.platform_fee, split.coach_earning) == (50, 0)


@pytest.mark.parametrize(
    ("price", "count", "fee"),
    [
        (3333, 3, 500),  # 9999 * 5 % = 499.95 -> 500
        (2999, 7, 1050),  # 20993 * 5 % = 1049.65 -> 1050
        (4210, 1, 211),  # 210.5 -> 211 (half up, not to even)
        (4230, 1, 212),  # 211.5 -> 212
    ],
)
def test_rounding_on_odd_amounts_is_half_up(price, count, fee):
    split = quote(
        price_per_session=price,
        session_count=count,
        currency="usd",
        fee_percent=FIVE,
        fee_minimum=ONE,
    )
    assert split.platform_fee == fee
    assert split.platform_fee + split.coach_earning == split.total


def test_fee_settings_are_honoured():
    split = quote(
        price_per_session=10000,
        session_count=1,
        currency="eur",
        fee_percent=Decimal("12.5"),
        fee_minimum=Decimal("20"),
    )
    assert split.platform_fee == 2000  # 12.50 % is 1250, the 20 EUR minimum wins


def test_total_beyond_a_single_charge_is_refused():
    with pytest.raises(MoneyError):
        quote(
            price_per_session=10_000_000,
            session_count=10,
            currency="usd",
            fee_percent=FIVE,
            fee_minimum=ONE,
        )


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("45", "usd", 4500),
        ("45.5", "usd", 4550),
        ("1,200.05", "eur", 120005),
        ("5000", "jpy", 5000),
    ],
)
def test_parse_major(text, currency, minor):
    assert parse_major(text, currency) == minor


@pytest.mark.parametrize(
    ("text", "currency"),
    [
        ("-5", "usd"),
        ("0", "usd"),
        ("abc", "usd"),
        ("", "usd"),
        ("NaN", "usd"),
        ("Infinity", "usd"),
        ("1.005", "usd"),
        ("10.5", "jpy"),
        ("1e3", "xxx"),
    ],
)
def test_parse_major_refuses(text, currency):
    with pytest.raises(MoneyError):
        parse_major(text, currency)


def test_format_money():
    assert format_money(123450, "usd") == "$1,234.50"
    assert format_money(999, "gbp") == "£9.99"
    assert format_money(5000, "krw") == "₩5,000"
    assert format_money(-5, "chf") == "-CHF0.05"
    assert format_money(123450, "usd", locale="fr_FR") == "1\u202f234,50\xa0$US"


@given(amount=st.integers(-(10**12), 10**12), currency=st.sampled_from(sorted(CURRENCY_DECIMALS)))
def test_format_money_writes_what_babel_writes(amount, currency):
    """The display locale's digits are written without Babel on each call: the same text."""
    from babel.numbers import format_currency

    from contracts.money import to_major

    assert format_money(amount, currency) == format_currency(
        to_major(amount, currency), currency.upper(), locale="en_US")


def test_format_money_refuses_an_unsupported_currency():
    with pytest.raises(MoneyError):
        format_money(100, "xyz")


# Stripe's published minimum charge (docs.stripe.com/currencies, minimum and maximum charge
# amounts), written out here so a change to the table in money.py has to be deliberate.
# KRW has no entry there; 1000 is the app's own floor above the settlement minimums.
STRIPE_MINIMUMS = {
    "usd": (50, "$0.50"),
    "eur": (50, "€0.50"),
    "gbp": (30, "£0.30"),
    "cad": (50, "CA$0.50"),
    "aud": (50, "A$0.50"),
    "chf": (50, "CHF0.50"),  # Babel's en_US format, as everywhere in the app
    "jpy": (50, "¥50"),
    "krw": (1000, "₩1,000"),
}


def test_every_supported_currency_has_a_minimum_charge():
    assert set(MIN_CHARGE_AMOUNT) == set(CURRENCY_DECIMALS) == set(STRIPE_MINIMUMS)


@pytest.mark.parametrize("currency", sorted(CURRENCY_DECIMALS))
def test_the_minimum_charge_is_accepted_and_one_minor_unit_less_is_refused(currency):
    minimum, shown = STRIPE_MINIMUMS[currency]
    assert MIN_CHARGE_AMOUNT[currency] == minimum
    check_minimum_charge(minimum, currency)
    check_minimum_charge(minimum * 100, currency)
    with pytest.raises(MoneyError) as refused:
        check_minimum_charge(minimum - 1, currency)
    assert str(refused.value) == (
        f"The total must be at least {shown}, Stripe's minimum charge in {currency.upper()}."
    )


def test_minimum_charge_of_an_unsupported_currency_is_refused():
    with pytest.raises(MoneyError, match="Unsupported currency"):
        check_minimum_charge(10_000, "xxx")
