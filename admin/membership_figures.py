"""Membership figures for the admin dashboard: recurring revenue, members in and out, churn.

The rules (the dashboard states them too):

- MRR, per currency: what the memberships that are billed now (`active` and `past_due`)
  bring in a month. A monthly price counts as it is, a weekly one × 52 ÷ 12; the weekly
  prices of a currency are added first and normalised once, in whole minor units rounded
  half up. Money is never added across currencies.
- Months are UTC calendar months, the last twelve up to the current one.
- A member is a membership that was paid for (it has a credit grant) or that Stripe
  mirrored past its first invoice (any status but `joining`, `incomplete` and
  `incomplete_expired`). A member joined in the month of its first credit grant's period,
  else of its `created_at`, and left in the month of its `ended_at`.
- Churn of a month: members who left in it ÷ members at its start (joined before it and
  not left before it); none when nobody was a member at its start.

Each figure is one grouped statement, whatever the number of memberships.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import String, and_, func, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

import clock
from extensions import db
from offers.models import CreditGrant, Membership, MembershipPeriod, MembershipStatus

BILLED = (MembershipStatus.ACTIVE, MembershipStatus.PAST_DUE)
NEVER_PAID = (MembershipStatus.JOINING, MembershipStatus.INCOMPLETE,
              MembershipStatus.INCOMPLETE_EXPIRED)
MONTHS_SHOWN = 12
WEEKS_A_YEAR, MONTHS_A_YEAR = 52, 12


# --- the arithmetic ---------------------------------------------------------------------


def monthly_amount(amount: int, period: MembershipPeriod) -> int:
    """`amount` a `period` as an amount a month, in whole minor units rounded half up."""
    if amount < 0:
        raise ValueError("a price is never negative")
    if period is MembershipPeriod.MONTH:
        return amount
    whole, rest = divmod(amount * WEEKS_A_YEAR, MONTHS_A_YEAR)
    return whole + (2 * rest >= MONTHS_A_YEAR)


def churn_rate(left: int, members_at_start: int) -> float | None:
    """Left ÷ members at the month's start, from 0 (none left) up; None without members."""
    return left / members_at_start if members_at_start else None


# --- a UTC month of a timestamp, on SQLite and PostgreSQL ----------------------------------


class utc_month(FunctionElement[str]):  # noqa: N801 (used like a SQL function)
    """"2024-05": the calendar month of a `UTCDateTime` column (naive UTC)."""

    type = String()
    name = "utc_month"
    inherit_cache = True


@compiles(utc_month)
def _utc_month(element: utc_month, compiler: Any, **kw: Any) -> str:
    return f"to_char({compiler.process(element.clauses, **kw)}, 'YYYY-MM')"


@compiles(utc_month, "sqlite")
def _utc_month_sqlite(element: utc_month, compiler: Any, **kw: Any) -> str:
    return f"strftime('%Y-%m', {compiler.process(element.clauses, **kw)})"


def months_back(today: date, count: int = MONTHS_SHOWN) -> list[date]:
    """The first days of the `count` months up to `today`'s, oldest first."""
    index = today.year * 12 + today.month - 1
    return [date(i // 12, i % 12 + 1, 1) for i in range(index - count + 1, index + 1)]


# --- the figures -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Month:
    start: date
    joined: int
    left: int
    members_at_start: int

    @property
    def churn(self) -> float | None:
        return churn_rate(self.left, self.members_at_start)


@dataclass(frozen=True)
class Recurring:
    currency: str
    monthly: int  # minor units a month
    billed: int  # the memberships it comes from


@dataclass(frozen=True)
class MembershipFigures:
    mrr: list[Recurring]  # by currency code
    months: list[Month]  # oldest first


def mrr() -> list[Recurring]:
    """Each currency's monthly recurring revenue, from the memberships billed now."""
    rows = db.session.execute(
        select(Membership.currency, Membership.period,
               func.sum(Membership.price_per_period), func.count())
        .where(Membership.status.in_(BILLED))
        .group_by(Membership.currency, Membership.period)
    ).all()
    totals: dict[str, Recurring] = {}
    for currency, period, amount, count in rows:
        was = totals.get(currency, Recurring(currency, 0, 0))
        totals[currency] = Recurring(
            currency, was.monthly + monthly_amount(int(amount), period), was.billed + count)
    return [totals[currency] for currency in sorted(totals)]


def _members() -> Any:
    """Every member with the moment they joined and the moment they left (or None)."""
    first_grant = (
        select(CreditGrant.membership_id, func.min(CreditGrant.period_start).label("first"))
        .group_by(CreditGrant.membership_id)
        .subquery()
    )
    return (
        select(
            func.coalesce(first_grant.c.first, Membership.created_at).label("joined_at"),
            Membership.ended_at.label("left_at"),
        )
        .outerjoin(first_grant, first_grant.c.membership_id == Membership.id)
        .where(or_(first_grant.c.first.is_not(None), Membership.status.not_in(NEVER_PAID)))
        .subquery()
    )


def movements(today: date) -> list[Month]:
    """Members joining and leaving in each of the last twelve months, and at each start."""
    months = months_back(today)
    since = datetime.combine(months[0], datetime.min.time(), tzinfo=UTC)
    members = _members()
    at_start = db.session.scalar(
        select(func.count()).where(
            members.c.joined_at < since,
            or_(members.c.left_at.is_(None), members.c.left_at >= since),
        )
    ) or 0
    joined = _per_month(members.c.joined_at, since)
    left = _per_month(members.c.left_at, since)
    shown = []
    for first in months:
        key = first.strftime("%Y-%m")
        shown.append(Month(first, joined.get(key, 0), left.get(key, 0), at_start))
        at_start += joined.get(key, 0) - left.get(key, 0)
    return shown


def _per_month(column: Any, since: datetime) -> dict[str, int]:
    month = utc_month(column)
    rows = db.session.execute(
        select(month, func.count()).where(and_(column.is_not(None), column >= since))
        .group_by(month)
    )
    return {key: count for key, count in rows}


def membership_figures(today: date | None = None) -> MembershipFigures:
    """What the dashboard's Memberships section shows."""
    return MembershipFigures(mrr(), movements(today or clock.now().date()))
