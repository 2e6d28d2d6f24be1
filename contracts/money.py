"""Money as integers in the currency's minor unit; never floats.

Zero-decimal currencies (JPY, KRW) have no minor unit: 5000 JPY is stored as 5000.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from babel.numbers import format_currency, get_currency_symbol

# Supported currencies and the number of decimals of each (ISO 4217, as Stripe uses them).
CURRENCY_DECIMALS: dict[str, int] = {
    "usd": 2,
    "eur": 2,
    "gbp": 2,
    "cad": 2,
    "aud": 2,
    "chf": 2,
    "jpy": 0,
    "krw": 0,
}
# Stripe refuses a charge whose amount has more than eight digits in minor units.
MAX_CHARGE_AMOUNT = 99_999_999
# Stripe's minimum charge per supported currency, in minor units (its "Minimum and maximum
# charge amounts" table, docs.stripe.com/currencies). Checkout refuses a smaller total, so a
# contract for less could never be paid. KRW is not in that table: Stripe asks for the
# equivalent of the settlement currency's minimum (USD 0.50, EUR 0.50, GBP 0.30, ...), and
# KRW 1,000 stays above those at any recent exchange rate.
MIN_CHARGE_AMOUNT: dict[str, int] = {
    "usd": 50,
    "eur": 50,
    "gbp": 30,
    "cad": 50,
    "aud": 50,
    "chf": 50,
    "jpy": 50,
    "krw": 1000,
}


class MoneyError(ValueError):
    """An amount that cannot be money in its currency; the message is for the user."""


def minor_factor(currency: str) -> int:
    """How many minor units make one major unit: 100 for usd, 1 for jpy."""
    try:
        return 10 ** CURRENCY_DECIMALS[currency]
    except KeyError:
        raise MoneyError(f"Unsupported currency {currency!r}.") from None


def parse_major(text: str, currency: str) -> int:
    """Parse an amount typed in major units ("45.50") into minor units (4550)."""
    factor = minor_factor(currency)
    try:
        value = Decimal(text.strip().replace(",", ""))
    except (InvalidOperation, AttributeError):
        raise MoneyError("Enter an amount such as 45.00.") from None
    if not value.is_finite():
        raise MoneyError("Enter an amount such as 45.00.")
    minor = value * factor
    if minor != minor.to_integral_value():
        decimals = CURRENCY_DECIMALS[currency]
        raise MoneyError(
            f"{currency.upper()} has no minor unit."
            if decimals == 0
            else f"{currency.upper()} takes at most {decimals} decimals."
        )
    if minor <= 0:
        raise MoneyError("The amount must be more than zero.")
    return int(minor)


def to_major(amount: int, currency: str) -> Decimal:
    return Decimal(amount) / minor_factor(currency)


def format_money(amount: int, currency: str, locale: str = "en_US") -> str:
    """Display an amount with the currency's symbol and decimals ("$1,234.50", "¥5,000").

    Babel's formatting reads the locale's data on every call (some 70 µs: seconds for a
    100,000-row export); for the app's own locale the text around the digits is read from
    Babel once per currency and the digits are written here, the same text in a
    fraction of the time (tests compare the two).
    """
    if locale != DISPLAY_LOCALE:
        return format_currency(to_major(amount, currency), currency.upper(), locale=locale)
    factor = minor_factor(currency)
    prefix, suffix = _around_digits(currency)
    whole, part = divmod(abs(amount), factor)
    digits = f"{whole:,}" + (f".{part:0{CURRENCY_DECIMALS[currency]}d}" if factor > 1 else "")
    return ("-" if amount < 0 else "") + prefix + digits + suffix


DISPLAY_LOCALE = "en_US"


@functools.cache
def _around_digits(currency: str) -> tuple[str, str]:
    """What the display locale writes before and after an amount's digits in `currency`
    ("$", "" for usd; "CHF", "" for chf), read off Babel's formatting of one unit."""
    one = format_currency(Decimal(1), currency.upper(), locale=DISPLAY_LOCALE)
    digits = f"{Decimal(1):.{CURRENCY_DECIMALS[currency]}f}"
    at = one.index(digits)
    return one[:at], one[at + len(digits):]


def currency_symbol(currency: str, locale: str = "en_US") -> str:
    """The symbol written beside an amount in `currency` ("$", "€", "¥", "CHF")."""
    return get_currency_symbol(currency.upper(), locale=locale)


def check_minimum_charge(total: int, currency: str) -> None:
    """Refuse a total below Stripe's minimum charge in its currency (MoneyError).

    Kept apart from `quote`, which also prices proposals sent before this check
    existed: their pages must still show.
    """
    minimum = MIN_CHARGE_AMOUNT.get(currency)
    if minimum is None:
        raise MoneyError(f"Unsupported currency {currency!r}.")
    if total < minimum:
        raise MoneyError(
            f"The total must be at least {format_money(minimum, currency)}, "
            f"Stripe's minimum charge in {currency.upper()}."
        )


@dataclass(frozen=True)
class Quote:
    """What a contract costs and how it splits, in minor units."""

    total: int
    platform_fee: int
    coach_earning: int


def quote(
    *,
    price_per_session: int,
    session_count: int,
    currency: str,
    fee_percent: Decimal,
    fee_minimum: Decimal,
) -> Quote:
    """Total, platform fee and coach earning for the given terms.

    The fee is `fee_percent` of the total rounded half up to the minor unit, at
    least `fee_minimum` major units, and never more than the total itself.
    """
    total = price_per_session * session_count
    if total > MAX_CHARGE_AMOUNT:
        raise MoneyError("The contract total is larger than a single payment can be.")
    percent_fee = int((Decimal(total) * fee_percent / 100).quantize(Decimal(1), ROUND_HALF_UP))
    fee = min(total, max(percent_fee, minimum_fee(fee_minimum, currency)))
    return Quote(total=total, platform_fee=fee, coach_earning=total - fee)


def check_coach_earning(split: Quote, currency: str, minimum_percent: Decimal) -> None:
    """Refuse terms that leave the coach less than `minimum_percent` of the total (MoneyError).

    On a small total the minimum platform fee takes most or all of it (4 sessions at $0.13:
    the $1 minimum takes the whole $0.52), and such a contract would earn its coach nothing.
    """
    if split.coach_earning * 100 < minimum_percent * split.total:
        raise MoneyError(
            f"The platform fee takes {format_money(split.platform_fee, currency)} of this "
            f"{format_money(split.total, currency)}, leaving you "
            f"{format_money(split.coach_earning, currency)}: a proposal must leave you at "
            f"least {format(minimum_percent, 'f')} % of its total. Raise the price or the "
            "number of sessions."
        )


def minimum_fee(fee_minimum: Decimal, currency: str) -> int:
    """The least platform fee in minor units: `fee_minimum` major units, rounded half up."""
    return int((fee_minimum * minor_factor(currency)).quantize(Decimal(1), ROUND_HALF_UP))


@dataclass(frozen=True)
class Received:
    """A contract's money as the money core counts it (`payments.standing`), in minor units.

    `arrived`: what the payments that count brought; `waived`: shortfalls an admin
    wrote off; `returned`: refunds made and disputes lost. The contract keeps a
    copy of these on its row (`contracts.lifecycle`), so scheduling needs no payments.
    """

    arrived: int
    waived: int = 0
    returned: int = 0


METHOD_WORDS = {
    "card": "Card",
    "link": "Card (Link)",
    "us_bank_account": "US bank account",
    "sepa_debit": "SEPA Direct Debit",
    "manual": "Offline",
}


def method_words(method: str | None) -> str:
    """A payment method type (`us_bank_account`) as people say it ("US bank account")."""
    if not method:
        return "—"
    return METHOD_WORDS.get(method, method.replace("_", " ").capitalize())
