"""Payment figures for the admin dashboard, and the nightly rollup that keeps them.

The rules every figure follows (the dashboard states them too):

- Days are UTC days, and a payment counts on the day its attempt was created
  (`Payment.created_at`), whatever happened to it later. A payment started at
  23:58 and paid at 00:03 counts on the first day; a refund made a week later
  lowers the figures of the day the payment was created. One rule for every
  figure keeps a day's numbers about the same attempts: its success rate, its
  gross and its fees describe one set of payments.
- "Paid once" means the money arrived: succeeded, partially refunded or refunded.
  Gross is what those payments brought in, refunded what went back of it,
  Stripe's fees what Stripe kept of it (read from each charge's balance
  transaction), net what is left. A void payment (a duplicate, or one refused after review) is
  in gross and, once sent back, in refunded, because the money did move; it is
  never in fees or earnings, which are the platform's and the coach's shares of
  each payment: its invoice's `platform_fee` and `coach_earning`, the cumulative
  split `payments.standing.payment_split` defines (a plan's deposit carries the
  fee on the deposit, not the contract's), so fees + earnings make the gross of
  the payments that count.
- Money is never added across currencies; counts may be.
- Success rate: paid once ÷ (paid once + failed). Attempts still open, expired
  or canceled say nothing about whether paying works, so they are left out.

Closed days are read from `DailyPaymentStats`, which `rollup` writes; today,
and any day the rollup has not reached, is computed live by the very same
query (`figures_by_day`), so both paths give the same numbers.

Day ranges: `start`..`end` include both ends (as the page shows them);
`since`..`until` leave `until` out, so that "until today" means closed days only.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Date, Integer, case, cast, delete, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import joinedload
from sqlalchemy.sql.functions import FunctionElement

import clock
import jobs
from admin.models import DailyPaymentStats
from contracts.models import Contract, ContractStatus
from extensions import db
from offers.models import Offer
from payments.models import EventStatus, Invoice, Payment, PaymentRecordStatus, WebhookEvent

log = logging.getLogger(__name__)

PAID_ONCE = frozenset(
    {
        PaymentRecordStatus.SUCCEEDED,
        PaymentRecordStatus.PARTIALLY_REFUNDED,
        PaymentRecordStatus.REFUNDED,
    }
)
ONE_DAY = timedelta(days=1)
# The nightly run rewrites yesterday and the day before (events may arrive late),
# and any older day whose payments changed within this window (a late refund).
NIGHTLY_WINDOW = timedelta(days=2)
TOP_FAILURE_REASONS = 5
DISPUTES_SHOWN = 5
# The source of the contracts made from proposals in the figures (an offer's is its id),
# and of memberships' periods (each paid invoice's contract).
PROPOSALS = 0
MEMBERSHIPS = -1


# --- the UTC day of a timestamp, on SQLite and PostgreSQL ------------------------------


class utc_day(FunctionElement[date]):  # noqa: N801 (used like a SQL function)
    """The calendar day of a `UTCDateTime` column, which holds naive UTC: so the UTC day."""

    type = Date()
    name = "utc_day"
    inherit_cache = True


@compiles(utc_day)
def _utc_day(element: utc_day, compiler: Any, **kw: Any) -> str:
    # PostgreSQL (and standard SQL): a timestamp without time zone cast to its date.
    return f"CAST({compiler.process(element.clauses, **kw)} AS DATE)"


@compiles(utc_day, "sqlite")
def _utc_day_sqlite(element: utc_day, compiler: Any, **kw: Any) -> str:
    # SQLite keeps timestamps as text ("2024-05-01 23:59:59.000000"); CAST would
    # give the number 2024, while date() reads the text and returns "2024-05-01".
    return f"date({compiler.process(element.clauses, **kw)})"


def midnight(day: date) -> datetime:
    """The instant `day` begins, in UTC."""
    return datetime.combine(day, time.min, tzinfo=UTC)


def _created_from_to(start: date, end: date) -> tuple[Any, Any]:
    # A plain range on created_at (no function on the column), so the indexes
    # that start with created_at or currency, created_at serve it.
    return Payment.created_at >= midnight(start), Payment.created_at < midnight(end + ONE_DAY)


# --- a payment's fee and earning, in SQL ---------------------------------------------


def payment_fee() -> ColumnElement[int]:
    """The platform's fee on one payment: its invoice's.

    Needs `Payment` joined to its `Contract` and LEFT JOINed to its `Invoice`.
    The product is taken in 64 bits: two 32-bit amounts multiplied overflow
    PostgreSQL's integer.
    """
    # Only history from before invoices (migration 0008) takes this path: a counted
    # payment has its invoice. It gets the rule its invoice would have had, as the
    # contract's only payment (`payment_split` with nothing paid before):
    # platform_fee × amount ÷ total, rounded down, never beyond the contract's fee.
    proportional = (
        cast(Contract.platform_fee, BigInteger) * Payment.amount // Contract.total_amount
    )
    unbilled = case(
        (Contract.total_amount <= 0, 0),
        (Payment.amount >= Contract.total_amount, Contract.platform_fee),
        else_=cast(proportional, Integer),
    )
    return func.coalesce(Invoice.platform_fee, unbilled)


def payment_earning() -> ColumnElement[int]:
    """The coach's part of one payment: its invoice's, else the amount less `payment_fee`."""
    return func.coalesce(Invoice.coach_earning, Payment.amount - payment_fee())


# --- one day's figures in one currency ----------------------------------------------


@dataclass
class DayFigures:
    """What the payments created on one UTC day, in one currency, came to (minor units)."""

    day: date
    currency: str
    offer_id: int = PROPOSALS  # where the contracts came from: an offer, or proposals
    status_counts: dict[str, int] = field(default_factory=dict)
    succeeded: int = 0  # paid once, refunds included
    failed: int = 0
    gross: int = 0
    refunded: int = 0
    fees: int = 0
    earnings: int = 0
    stripe_fees: int = 0  # Stripe's, as far as read from the payments' balance transactions

    def plus(self, other: DayFigures) -> DayFigures:
        """This day's figures with another source's added (the sources' total)."""
        counts = Counter(self.status_counts)
        counts.update(other.status_counts)
        return DayFigures(
            day=self.day, currency=self.currency, offer_id=PROPOSALS,
            status_counts=dict(counts),
            succeeded=self.succeeded + other.succeeded, failed=self.failed + other.failed,
            gross=self.gross + other.gross, refunded=self.refunded + other.refunded,
            fees=self.fees + other.fees, earnings=self.earnings + other.earnings,
            stripe_fees=self.stripe_fees + other.stripe_fees,
        )

    @classmethod
    def from_stored(cls, row: DailyPaymentStats) -> DayFigures:
        return cls(
            day=row.day,
            currency=row.currency,
            offer_id=row.offer_id,
            status_counts=dict(row.status_counts),
            succeeded=row.succeeded,
            failed=row.failed,
            gross=row.gross,
            refunded=row.refunded,
            fees=row.fees,
            earnings=row.earnings,
            stripe_fees=row.stripe_fees,
        )


def figures_by_day(start: date, end: date) -> list[DayFigures]:
    """The figures of each (UTC day, currency, source) with payments created `start`..`end`.

    One query grouped by day, currency, source and status; the statuses are then
    folded into one `DayFigures` per day, currency and source (the offer the
    contracts were bought from, or proposals). Days without payments are absent.
    """
    day = utc_day(Payment.created_at)
    source = case((Contract.membership_id.is_not(None), MEMBERSHIPS),
                  else_=func.coalesce(Contract.offer_id, PROPOSALS))
    counted = Payment.void_reason.is_(None)
    rows = db.session.execute(
        select(
            day.label("day"),
            Payment.currency,
            source.label("offer_id"),
            Payment.status,
            func.count().label("payments"),
            func.sum(Payment.amount).label("amount"),
            func.sum(Payment.amount_refunded).label("refunded"),
            func.sum(case((counted, payment_fee()), else_=0)).label("fees"),
            func.sum(case((counted, payment_earning()), else_=0)).label("earnings"),
            func.sum(func.coalesce(Payment.stripe_fee, 0)).label("stripe_fees"),
        )
        .join(Payment.contract)
        .outerjoin(Invoice, Invoice.payment_id == Payment.id)
        .where(*_created_from_to(start, end))
        .group_by(day, Payment.currency, source, Payment.status)
        .order_by(day, Payment.currency)
    )
    figures: dict[tuple[date, str, int], DayFigures] = {}
    for row in rows:
        item = figures.setdefault((row.day, row.currency, row.offer_id),
                                  DayFigures(row.day, row.currency, row.offer_id))
        item.status_counts[row.status.value] = row.payments
        if row.status in PAID_ONCE:
            item.succeeded += row.payments
            item.gross += row.amount
            item.refunded += row.refunded
            item.fees += row.fees
            item.earnings += row.earnings
            item.stripe_fees += row.stripe_fees
        elif row.status is PaymentRecordStatus.FAILED:
            item.failed += row.payments
    return list(figures.values())


# --- revenue by where the contract came from -------------------------------------------


@dataclass
class SourceFigures:
    """A range's paid-once money in one currency from one source: the contracts bought
    from one offer, or those made by proposals (`offer_id` None). Minor units."""

    currency: str
    offer_id: int | None
    offer_title: str | None = None
    coach_name: str | None = None
    succeeded: int = 0
    gross: int = 0
    refunded: int = 0
    fees: int = 0
    earnings: int = 0

    @property
    def label(self) -> str:
        if self.offer_id is None:
            return "Proposals"
        return "Memberships" if self.offer_id == MEMBERSHIPS else f"Offer: {self.offer_title}"


def revenue_by_source(days: list[DayFigures]) -> list[SourceFigures]:
    """The range's paid-once money by currency and source (each offer, and proposals),
    summed from its day figures: the rollup's rows for closed days and today's live
    ones, as every other figure of the dashboard."""
    by_source: dict[tuple[str, int], SourceFigures] = {}
    for day in days:
        if not day.succeeded:
            continue
        offer_id = None if day.offer_id == PROPOSALS else day.offer_id
        item = by_source.setdefault((day.currency, day.offer_id),
                                    SourceFigures(day.currency, offer_id))
        item.succeeded += day.succeeded
        item.gross += day.gross
        item.refunded += day.refunded
        item.fees += day.fees
        item.earnings += day.earnings
    found = list(by_source.values())
    offer_ids = {item.offer_id for item in found if item.offer_id not in (None, MEMBERSHIPS)}
    if offer_ids:
        offers = {
            offer.id: offer
            for offer in db.session.scalars(
                select(Offer).where(Offer.id.in_(offer_ids)).options(joinedload(Offer.coach))
            )
        }
        for item in found:
            if item.offer_id in offers:
                item.offer_title = offers[item.offer_id].title
                item.coach_name = offers[item.offer_id].coach.name
    # Per currency: proposals, memberships, then offers by gross.
    return sorted(found, key=lambda i: (i.currency, i.offer_id is not None,
                                        i.offer_id != MEMBERSHIPS, -i.gross))


# --- the rollup -------------------------------------------------------------------------


def today() -> date:
    return clock.now().date()


def rollup(since: date, until: date) -> int:
    """(Re)write the stored figures of the closed days `since`..`until` (exclusive).

    Days from today on are left out: a day is closed once it is over. The day
    range is deleted and written again, so a rerun gives the same rows (and a
    currency a day no longer has disappears). Flushes; the caller commits.
    Returns how many day × currency × source rows were written.
    """
    until = min(until, today())
    if since >= until:
        return 0
    db.session.execute(
        delete(DailyPaymentStats).where(
            DailyPaymentStats.day >= since, DailyPaymentStats.day < until
        )
    )
    figures = figures_by_day(since, until - ONE_DAY)
    computed_at = clock.now()
    db.session.add_all(
        DailyPaymentStats(
            day=item.day,
            currency=item.currency,
            offer_id=item.offer_id,
            status_counts=item.status_counts,
            succeeded=item.succeeded,
            failed=item.failed,
            gross=item.gross,
            refunded=item.refunded,
            fees=item.fees,
            earnings=item.earnings,
            stripe_fees=item.stripe_fees,
            computed_at=computed_at,
        )
        for item in figures
    )
    db.session.flush()
    return len(figures)


def days_changed_since(moment: datetime, before: date) -> list[date]:
    """The days before `before` holding a payment changed since `moment`.

    A refund, a dispute's outcome or a review decision changes a payment long
    after the day it counts on has been rolled up; this finds those days. It
    reads every payment's `updated_at` (no index has it): fine once a night.
    """
    day = utc_day(Payment.created_at)
    return list(
        db.session.scalars(
            select(day)
            .where(Payment.updated_at >= moment, Payment.created_at < midnight(before))
            .distinct()
            .order_by(day)
        )
    )


def rollup_recent() -> int:
    """What the nightly job does: the last closed days, and older days that changed."""
    until = today()
    since = until - NIGHTLY_WINDOW
    written = rollup(since, until)
    for day in days_changed_since(clock.now() - NIGHTLY_WINDOW, before=since):
        written += rollup(day, day + ONE_DAY)
    return written


@jobs.periodic(jobs.daily_at(0, 10))
def nightly_rollup() -> None:
    """Shortly after midnight UTC, when yesterday has closed."""
    written = rollup_recent()
    db.session.commit()
    log.info("payment rollup wrote %s day × currency × source rows", written)


# --- the dashboard ----------------------------------------------------------------------


@dataclass
class CurrencyFigures:
    """A range's figures in one currency (minor units)."""

    currency: str
    status_counts: Counter[str] = field(default_factory=Counter)
    succeeded: int = 0
    failed: int = 0
    gross: int = 0
    refunded: int = 0
    fees: int = 0
    earnings: int = 0
    stripe_fees: int = 0

    def add(self, day: DayFigures) -> None:
        self.status_counts.update(day.status_counts)
        self.succeeded += day.succeeded
        self.failed += day.failed
        self.gross += day.gross
        self.refunded += day.refunded
        self.fees += day.fees
        self.earnings += day.earnings
        self.stripe_fees += day.stripe_fees

    @property
    def net(self) -> int:
        """What stays on the platform's Stripe balance: gross less refunds and Stripe's fees."""
        return self.gross - self.refunded - self.stripe_fees

    @property
    def payments(self) -> int:
        return sum(self.status_counts.values())

    @property
    def success_rate(self) -> float | None:
        return success_rate(self.succeeded, self.failed)


@dataclass(frozen=True)
class DayPoint:
    """One day of the chart, in one currency."""

    day: date
    gross: int
    succeeded: int
    failed: int

    @property
    def success_rate(self) -> float | None:
        return success_rate(self.succeeded, self.failed)


@dataclass(frozen=True)
class InboxHealth:
    waiting: int  # received, not processed yet
    failed: int  # gave up on; an admin looks
    oldest_waiting_at: datetime | None
    age: timedelta | None  # how long the oldest waiting event has waited


@dataclass
class Dashboard:
    start: date
    end: date
    today: date
    currencies: list[CurrencyFigures]  # the most payments first
    series: dict[str, list[DayPoint]]  # per currency, one point per day start..end
    failure_reasons: list[tuple[str, int]]
    open_disputes: int
    disputes: list[Contract]  # the latest few
    held_for_review: int
    inbox: InboxHealth
    stored_days: tuple[date, date] | None  # the part of the range read from the rollup
    sources: list[SourceFigures]  # the money by offer and by proposals

    @property
    def status_counts(self) -> Counter[str]:
        """Payments by status, all currencies together (counts, not money)."""
        total: Counter[str] = Counter()
        for figures in self.currencies:
            total.update(figures.status_counts)
        return total

    @property
    def success_rate(self) -> float | None:
        return success_rate(
            sum(c.succeeded for c in self.currencies), sum(c.failed for c in self.currencies)
        )

    def currency(self, code: str) -> CurrencyFigures | None:
        return next((c for c in self.currencies if c.currency == code), None)


def success_rate(succeeded: int, failed: int) -> float | None:
    """Paid ÷ (paid + failed), from 0 to 1; None when there was no such attempt."""
    attempts = succeeded + failed
    return succeeded / attempts if attempts else None


def dashboard(start: date, end: date) -> Dashboard:
    """Everything the payments dashboard shows for the days `start`..`end`."""
    days, stored_days = _days(start, end)
    by_currency: dict[str, CurrencyFigures] = {}
    points: dict[str, dict[date, DayFigures]] = {}
    for item in days:
        by_currency.setdefault(item.currency, CurrencyFigures(item.currency)).add(item)
        on_day = points.setdefault(item.currency, {})
        on_day[item.day] = on_day[item.day].plus(item) if item.day in on_day else item
    span = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    series = {
        code: [_point(day, points[code].get(day)) for day in span] for code in by_currency
    }
    disputed = Contract.status == ContractStatus.DISPUTED
    return Dashboard(
        start=start,
        end=end,
        today=today(),
        # Amounts in different currencies cannot be compared without rates: rank by count.
        currencies=sorted(by_currency.values(), key=lambda c: (-c.payments, c.currency)),
        series=series,
        failure_reasons=failure_reasons(start, end),
        open_disputes=_count(select(func.count()).select_from(Contract).where(disputed)),
        disputes=list(
            db.session.scalars(
                select(Contract)
                .where(disputed)
                .order_by(Contract.updated_at.desc())
                .limit(DISPUTES_SHOWN)
            )
        ),
        held_for_review=_count(
            select(func.count())
            .select_from(Payment)
            .where(Payment.held_for_review)
        ),
        inbox=inbox_health(),
        stored_days=stored_days,
        sources=revenue_by_source(days),
    )


def _days(start: date, end: date) -> tuple[list[DayFigures], tuple[date, date] | None]:
    """The range's day figures: stored ones for the rolled-up closed days, live for the rest.

    The rolled-up span runs from the first to the last day the rollup has
    written. Days outside it (today; yesterday before the nightly run; days
    from before the rollup existed) are computed live, so a missed run or a
    fresh install shows correct figures, only more slowly.
    """
    first, last = db.session.execute(
        select(func.min(DailyPaymentStats.day), func.max(DailyPaymentStats.day))
    ).one()
    if first is None:
        return figures_by_day(start, end), None
    stored_from, stored_to = max(start, first), min(end, last, today() - ONE_DAY)
    if stored_from > stored_to:
        return figures_by_day(start, end), None
    stored = db.session.scalars(
        select(DailyPaymentStats).where(
            DailyPaymentStats.day >= stored_from, DailyPaymentStats.day <= stored_to
        )
    )
    days = [DayFigures.from_stored(row) for row in stored]
    if start < stored_from:
        days += figures_by_day(start, stored_from - ONE_DAY)
    if stored_to < end:
        days += figures_by_day(stored_to + ONE_DAY, end)
    return days, (stored_from, stored_to)


def _point(day: date, figures: DayFigures | None) -> DayPoint:
    if figures is None:
        return DayPoint(day, 0, 0, 0)
    return DayPoint(day, figures.gross, figures.succeeded, figures.failed)


def _count(statement: Any) -> int:
    return db.session.scalar(statement) or 0


def failure_reasons(
    start: date, end: date, limit: int = TOP_FAILURE_REASONS
) -> list[tuple[str, int]]:
    """The most frequent failure reasons of failed attempts created `start`..`end`.

    Failed payments only: a payment that went through did not fail (settling clears
    a decline it met on the way), and an attempt still open may yet go through.
    """
    payments = func.count().label("payments")
    rows = db.session.execute(
        select(Payment.failure_reason, payments)
        .where(
            *_created_from_to(start, end),
            # The partial index ix_payments_failed_created_at holds the rows with a
            # reason; the status narrows them to the failed ones.
            Payment.failure_reason.is_not(None),
            Payment.status == PaymentRecordStatus.FAILED,
        )
        .group_by(Payment.failure_reason)
        .order_by(payments.desc(), Payment.failure_reason)
        .limit(limit)
    )
    return [(reason, count) for reason, count in rows]


def inbox_health() -> InboxHealth:
    """How the webhook inbox is keeping up, now."""
    waiting, oldest = db.session.execute(
        select(func.count(), func.min(WebhookEvent.received_at)).where(
            WebhookEvent.status == EventStatus.RECEIVED
        )
    ).one()
    failed = _count(
        select(func.count())
        .select_from(WebhookEvent)
        .where(WebhookEvent.status == EventStatus.FAILED)
    )
    return InboxHealth(
        waiting=waiting,
        failed=failed,
        oldest_waiting_at=oldest,
        age=clock.now() - oldest if oldest is not None else None,
    )
