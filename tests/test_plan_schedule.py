"""The arithmetic of payment plans: amounts that add up, dates by the calendar, rules."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from contracts.plans import (
    PlanRules,
    add_months,
    plan_refusal,
    schedule,
    unlocked_sessions,
)

RULES = PlanRules(minimum_total=Decimal(100), max_instalments=12)


@pytest.mark.parametrize("total, percent, count", [
    (40000, 25, 3),  # usd 400.00
    (10001, 25, 3),  # an odd cent
    (99_999_999, 10, 12),
    (50000, 25, 7),  # jpy ¥50,000: whole yen
    (12345, 33, 11),
])
def test_the_amounts_add_up_to_the_total_with_the_remainder_on_the_last(total, percent, count):
    charges = schedule(total, percent, count, date(2026, 1, 15))
    assert sum(c.amount for c in charges) == total
    assert [c.number for c in charges] == list(range(count + 1))
    assert charges[0].amount == total * percent // 100
    instalments = [c.amount for c in charges[1:]]
    assert len(set(instalments[:-1])) <= 1  # equal, but for the last
    assert 0 <= instalments[-1] - instalments[0] < count


def test_a_25_percent_deposit_on_400_dollars_and_three_instalments():
    charges = schedule(40000, 25, 3, date(2026, 3, 10))
    assert [(c.due_on, c.amount) for c in charges] == [
        (date(2026, 3, 10), 10000),
        (date(2026, 4, 10), 10000),
        (date(2026, 5, 10), 10000),
        (date(2026, 6, 10), 10000),
    ]


def test_yen_remainders_stay_whole_yen():
    charges = schedule(10000, 25, 3, date(2026, 3, 10))  # ¥10,000: deposit ¥2,500, rest ¥7,500
    assert [c.amount for c in charges] == [2500, 2500, 2500, 2500]
    charges = schedule(10001, 25, 3, date(2026, 3, 10))
    assert [c.amount for c in charges] == [2500, 2500, 2500, 2501]


def test_month_ends_count_from_the_first_date_never_from_the_last():
    # 31 January: 28 February (29 in a leap year), then 31 March again, not 28 March.
    dates = [c.due_on for c in schedule(40000, 25, 3, date(2026, 1, 31))]
    assert dates == [date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31), date(2026, 4, 30)]
    assert add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)
    assert add_months(date(2026, 11, 30), 3) == date(2027, 2, 28)
    assert add_months(date(2026, 12, 15), 1) == date(2027, 1, 15)


def test_due_dates_are_calendar_days_whatever_the_clocks_do():
    """Across the March and October changes, a due date is a day: the charge instant is
    09:00 UTC that day, the same instant for everyone (`payments.plans.CHARGE_AT`)."""
    from payments.plans import CHARGE_AT

    spring = schedule(40000, 25, 3, date(2026, 2, 29 - 1))  # 28 Feb → 28 Mar (after the change)
    assert spring[1].due_on == date(2026, 3, 28)
    instant = datetime.combine(spring[1].due_on, CHARGE_AT, tzinfo=UTC)
    assert instant.isoformat() == "2026-03-28T09:00:00+00:00"
    autumn = schedule(40000, 25, 3, date(2026, 9, 25))
    assert [c.due_on for c in autumn[1:3]] == [date(2026, 10, 25), date(2026, 11, 25)]


def test_rules_refuse_what_cannot_be_charged():
    assert plan_refusal(40000, "usd", None, 3, RULES) == (
        "The coach offers this contract for payment in full only.")
    assert "100.00 or more" in plan_refusal(9999, "usd", 25, 3, RULES)
    assert "between 2 and 12" in plan_refusal(40000, "usd", 25, 13, RULES)
    assert "between 2 and 12" in plan_refusal(40000, "usd", 25, 1, RULES)
    assert plan_refusal(40000, "usd", 25, 12, RULES) is None
    # ¥100 minimum total for jpy (major units), and each charge at least Stripe's ¥50.
    assert plan_refusal(500, "jpy", 10, 12, PlanRules(Decimal(100), 12)) == (
        "With this many instalments each charge would be too small.")
    assert plan_refusal(60000, "jpy", 10, 12, RULES) is None


def test_sessions_unlock_with_the_paid_share():
    assert unlocked_sessions(8, 40000, 10000) == 2  # a 25 % deposit on 8 sessions
    assert unlocked_sessions(8, 40000, 19999) == 3
    assert unlocked_sessions(8, 40000, 40000) == 8
    assert unlocked_sessions(4, 40000, 0) == 0


def test_nonsense_plans_are_refused():
    with pytest.raises(ValueError):
        schedule(0, 25, 3, date(2026, 1, 1))
    with pytest.raises(ValueError):
        schedule(100, 100, 3, date(2026, 1, 1))
