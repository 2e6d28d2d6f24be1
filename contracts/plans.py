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
from typing import Protocol

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


def plan_minimum(currency: str, rules: PlanRules, coach_minimum: int | None = None) -> int:
    """The smallest total (minor units) a plan is offered for: the platform's minimum, or
    the coach's own when it is higher."""
    platform = int(rules.minimum_total * minor_factor(currency))
    return max(platform, coach_minimum or 0)


def plan_refusal(
    total: int,
    currency: str,
    deposit_percent: int | None,
    count: int,
    rules: PlanRules,
    coach_minimum: int | None = None,
) -> str | None:
    """Why these terms cannot be paid by `count` instalments, or None when they can.

    `coach_minimum` is the coach's own smallest total for a plan (minor units), if any.
    """
    if deposit_percent is None:
        return "The coach offers this contract for payment in full only."
    minimum = plan_minimum(currency, rules, coach_minimum)
    if total < minimum:
        return f"Plans are offered for totals of {format_money(minimum, currency)} or more."
    if not INSTALMENTS_RANGE[0] <= count <= min(rules.max_instalments, INSTALMENTS_RANGE[1]):
        return f"A plan has between 2 and {rules.max_instalments} instalments."
    smallest = min(c.amount for c in schedule(total, deposit_percent, count, date(2000, 1, 31)))
    if smallest < MIN_CHARGE_AMOUNT.get(currency, 0):
        return "With this many instalments each charge would be too small."
    return None


@dataclass(frozen=True)
class PlanOption:
    """One plan a student may pick: the deposit and N instalments, dated from `first_day`."""

    instalments: int
    charges: list[Charge]

    @property
    def deposit(self) -> int:
        return self.charges[0].amount

    @property
    def instalment(self) -> int:
        """The usual instalment (the last one may carry a remainder of a minor unit)."""
        return self.charges[1].amount


class PlannedTerms(Protocol):
    """What plan detection reads: an offer's, a proposal's or a contract's terms."""

    currency: str
    plan_deposit_percent: int | None
    plan_max_instalments: int | None
    plan_minimum_total: int | None


def allowed_plans(
    terms: PlannedTerms, total: int, rules: PlanRules, first_day: date
) -> list[PlanOption]:
    """The plans these terms allow for `total` under the platform's `rules`: every count
    of instalments from 2 to the coach's most that `plan_refusal` accepts; none when the
    coach offers no plan or the total is under the minimum. Pure: offers (on their public
    page) and contracts (on the pay page, `payments.plan_terms.options`) both ask it."""
    if terms.plan_deposit_percent is None or not terms.plan_max_instalments:
        return []
    return [
        PlanOption(count, schedule(total, terms.plan_deposit_percent, count, first_day))
        for count in range(INSTALMENTS_RANGE[0], terms.plan_max_instalments + 1)
        if plan_refusal(total, terms.currency, terms.plan_deposit_percent, count, rules,
                        terms.plan_minimum_total) is None
    ]


def plans_in_words(total: int, currency: str, options: list[PlanOption]) -> str:
    """"$400.00 in full, or $100.00 now and 3 × $100.00 monthly" (the longest plan, as
    the least to pay up front each month); the total alone without plans."""
    in_full = f"{format_money(total, currency)} in full"
    if not options:
        return in_full
    longest = options[-1]
    each = format_money(longest.instalment, currency)
    return (
        f"{in_full}, or {format_money(longest.deposit, currency)} now and "
        f"{longest.instalments} × {each} monthly"
    )


def unlocked_sessions(session_count: int, total: int, paid: int) -> int:
    """Sessions the money paid so far opens: the paid share of them, rounded down.

    A 25 % deposit on 8 sessions opens 2; paying in full opens them all.
    """
    if paid >= total:
        return session_count
    return session_count * max(paid, 0) // total
