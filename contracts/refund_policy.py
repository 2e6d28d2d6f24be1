"""The refund policy a contract was bought under, and what it gives back.

The policy: the full total back until the first session has been used or until
`refund_full_window_days` days after payment, whichever comes first; after that,
the price of each session not used. A contract keeps the number of days in force
when it was accepted (`Contract.refund_full_window_days`), so changing the setting
later never changes what an existing contract promised. Quotes read that copy and
never the current settings (only `window_days_in_force` does, for new contracts and
for proposals not yet accepted); amounts are integers in minor units.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from flask import current_app

from contracts.money import format_money

if TYPE_CHECKING:
    from contracts.models import Contract


class PricedTerms(Protocol):
    """What the words need from a proposal's or a contract's terms."""

    price_per_session: int
    currency: str


@dataclass(frozen=True)
class RefundQuote:
    """What a refund asked for at one moment would give back."""

    amount: int  # minor units, never more than was paid and not yet refunded
    full: bool  # the full total, inside the window
    sessions_released: int  # the sessions not used, which the student gives up
    explanation: str  # in plain words, for the student and the admin


def window_days_in_force() -> int:
    """The full-refund window a contract accepted now takes (REFUND_FULL_WINDOW_DAYS)."""
    return int(current_app.config["REFUND_FULL_WINDOW_DAYS"])


def full_window_closes_at(contract: Contract) -> datetime | None:
    """The instant the full-refund window closes (None before payment).

    The window is open strictly before `paid_at + N days`: at that very instant it
    has closed. With N = 0 there is no full-refund window at all.
    """
    if contract.paid_at is None:
        return None
    return contract.paid_at + timedelta(days=contract.refund_full_window_days)


def quote(
    contract: Contract,
    *,
    used_sessions: int,
    now: datetime,
    already_refunded: int = 0,
    paid: int | None = None,
) -> RefundQuote:
    """What the contract's own refund policy gives back at `now`.

    `used_sessions` is how many of the contract's sessions are used up (completed,
    no-show or cancelled late); `already_refunded` is what earlier refunds returned;
    `paid` is what arrived so far (the total by default; less on a payment plan):
    a refund never gives back more than was paid.
    """
    if used_sessions < 0 or already_refunded < 0:
        raise ValueError("used_sessions and already_refunded cannot be negative")
    closes_at = full_window_closes_at(contract)
    if closes_at is None:
        return RefundQuote(
            amount=0,
            full=False,
            sessions_released=0,
            explanation="Nothing has been paid for this contract yet, so there is nothing "
            "to refund.",
        )
    # Sessions a partial refund gave back were paid back already: never twice.
    unused = max(contract.session_count - (contract.sessions_released or 0) - used_sessions, 0)
    full = used_sessions == 0 and now < closes_at
    due = contract.total_amount if full else contract.price_per_session * unused
    paid = contract.total_amount if paid is None else paid
    amount = min(due, max(paid - already_refunded, 0))
    if amount < due and paid < contract.total_amount:
        # A plan paid in part: one sentence of what comes back, capped at what was paid.
        return RefundQuote(
            amount=amount,
            full=full,
            sessions_released=unused if amount else 0,
            explanation=_why_paid_in_part(
                contract, used_sessions, unused, full=full, paid=paid,
                already_refunded=already_refunded, amount=amount,
            ),
        )
    words = [_why(contract, used_sessions, unused, full=full)]
    if amount < due:
        words.append(
            f"{_money(already_refunded, contract)} was refunded already, so "
            f"{_money(amount, contract)} is what remains to refund."
        )
    return RefundQuote(
        amount=amount,
        full=full,
        sessions_released=unused if amount else 0,
        explanation=" ".join(words),
    )


def _why_paid_in_part(
    contract: Contract, used: int, unused: int, *, full: bool, paid: int,
    already_refunded: int, amount: int,
) -> str:
    """Why `amount` comes back when less than the total has been paid (a payment plan)."""
    of_total = f"{_money(paid, contract)} of the {_money(contract.total_amount, contract)} total"
    less = (f", less {_money(already_refunded, contract)} refunded already"
            if already_refunded else "")
    if full:
        return (
            f"No session has been used and it is less than "
            f"{_days(contract.refund_full_window_days)} since payment, so everything paid "
            f"comes back: {_money(amount, contract)} ({of_total} has been paid so far{less})."
        )
    sessions = _why(contract, used, unused, full=False).rstrip(".")
    return (
        f"{sessions}; but only {of_total} has been paid so far{less}, "
        f"so {_money(amount, contract)} comes back."
    )


def _why(contract: Contract, used: int, unused: int, *, full: bool) -> str:
    if full:
        return (
            f"No session has been used and it is less than "
            f"{_days(contract.refund_full_window_days)} since payment, so the full total "
            f"of {_money(contract.total_amount, contract)} comes back."
        )
    if used:
        used = min(used, contract.session_count)
        reason = (
            f"{used} of the {contract.session_count} sessions "
            f"{'has' if used == 1 else 'have'} been used, so the full refund no longer applies"
        )
    elif contract.refund_full_window_days:
        reason = f"The full refund ended {_days(contract.refund_full_window_days)} after payment"
    else:
        reason = "This contract has no full-refund period"
    if not unused:
        if contract.sessions_released:
            return (
                f"{reason}; the sessions not used were refunded already, so nothing is "
                "left to refund."
            )
        return f"{reason}; every session has been used, so nothing is left to refund."
    return (
        f"{reason}; the {_count(unused, 'session')} not used "
        f"{'comes' if unused == 1 else 'come'} back at "
        f"{_money(contract.price_per_session, contract)} each: "
        f"{_money(contract.price_per_session * unused, contract)}."
    )


def terms_in_words(terms: PricedTerms, window_days: int) -> str:
    """The policy with a `window_days` full-refund window, in plain words, for pages."""
    each = format_money(terms.price_per_session, terms.currency)
    if window_days == 0:
        return f"A refund gives back the price of each session you have not used ({each} each)."
    return (
        f"Full refund until your first session or {_days(window_days)} after payment, "
        "whichever comes first; after that, the price of each session you have not used "
        f"({each} each)."
    )


def _days(count: int) -> str:
    return _count(count, "day")


def _count(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _money(amount: int, terms: PricedTerms) -> str:
    return format_money(amount, terms.currency)
