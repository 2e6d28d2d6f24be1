"""Payment plans: a deposit now and N monthly instalments, in integers, by the calendar.

A coach allows plans on a proposal (a deposit percentage and the most
instalments a student may pick); the contract keeps that copy. The platform's
rules are settings: a plan needs a total of at least `PLAN_MINIMUM_TOTAL` major
units and at most `PLAN_MAX_INSTALMENTS` instalments, and every charge of the
schedule must reach Stripe's minimum charge. The arithmetic here is pure.

The schedule: the deposit is `total × percent ÷ 100`, rounded down to the minor
unit; the rest is split in N equal instalments rounded down, the remainder on
the last, so the amounts always add up to the total exactly (yen included).
Instalment k is due k months after the deposit was paid, on the same day of
the month or the month's last day when it is shorter (31 January → 28 or 29
February → 31 March: each date counts from the first, never from the last).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from contracts.money import MIN_CHARGE_AMOUNT, format_money, minor_factor

# What a coach may choose; the settings may narrow the instalments further.
DEPOSIT_PERCENT_RANGE = (10, 50)
INSTALMENTS_RANGE = (2, 12)


@dataclass(frozen=True)
class Charge:
    """One line of a schedule: number 0 is the deposit."""

    number: int
    due_on: date
    amount: int  # minor units


def add_months(start: date, months: int) -> date:
    """The same day `months` later, or that month's last day when it is shorter."""
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def schedule(total: int, deposit_percent: int, count: int, first_day: date) -> list[Charge]:
    """The deposit (number 0, due `first_day`) and `count` monthly instalments."""
    if total <= 0 or count < 1 or not 0 < deposit_percent < 100:
        raise ValueError("a plan needs a positive total, instalments and a deposit under 100 %")
    deposit = total * deposit_percent // 100
    rest = total - deposit
    each = rest // count
    charges = [Charge(0, first_day, deposit)]
    for number in range(1, count + 1):
        amount = each if number < count else rest - each * (count - 1)
        charges.append(Charge(number, add_months(first_day, number), amount))
    return charges


@dataclass(frozen=True)
class PlanRules:
    """The platform's limits on plans (from the settings)."""

    minimum_total: Decimal  # major units of the contract's currency
    max_instalments: int


def plan_refusal(
    total: int, currency: str, deposit_percent: int | None, count: int, rules: PlanRules
) -> str | None:
    """Why these terms cannot be paid by `count` instalments, or None when they can."""
    if deposit_percent is None:
        return "The coach offers this contract for payment in full only."
    if total < rules.minimum_total * minor_factor(currency):
        minimum = int(rules.minimum_total * minor_factor(currency))
        return f"Plans are offered for totals of {format_money(minimum, currency)} or more."
    if not INSTALMENTS_RANGE[0] <= count <= min(rules.max_instalments, INSTALMENTS_RANGE[1]):
        return f"A plan has between 2 and {rules.max_instalments} instalments."
    smallest = min(c.amount for c in schedule(total, deposit_percent, count, date(2000, 1, 31)))
    if smallest < MIN_CHARGE_AMOUNT.get(currency, 0):
        return "With this many instalments each charge would be too small."
    return None


def unlocked_sessions(session_count: int, total: int, paid: int) -> int:
    """Sessions the money paid so far opens: the paid share of them, rounded down.

    A 25 % deposit on 8 sessions opens 2; paying in full opens them all.
    """
    if paid >= total:
        return session_count
    return session_count * max(paid, 0) // total
