"""Read models for the admin's payments list, its CSV export and a payment's timeline.

Every page is one query of a fixed shape, whatever the filters: the page's rows
with their contract and parties joined in, found by an index on
(created_at, id) or (status, currency, created_at, id) and paged by keyset
(`WHERE (created_at, id) < (:last_created_at, :last_id)`), so page 500 costs
what page 1 does.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, or_, select, tuple_
from sqlalchemy.orm import aliased

from accounts.models import User
from admin import search_terms
from admin.analytics import midnight
from admin.timeline_words import action_words, actor_words, changes_words, event_words
from audit.models import AuditEntry
from contracts.models import Contract
from contracts.money import format_money
from extensions import db
from payments.models import Payment, PaymentRecordStatus, WebhookEvent

PAGE_SIZE = 50
Student = aliased(User, name="student")
Coach = aliased(User, name="coach")

SORTS = {
    "newest": (Payment.created_at, True),
    "oldest": (Payment.created_at, False),
    "amount_desc": (Payment.amount, True),
    "amount_asc": (Payment.amount, False),
}
METHODS = ("card", "us_bank_account", "sepa_debit", "manual")


@dataclass
class PaymentFilters:
    """What the list shows; built from the query string by `parse_filters`."""

    status: PaymentRecordStatus | None = None
    currency: str | None = None
    method: str | None = None
    start: date | None = None
    end: date | None = None  # inclusive
    held: bool = False
    q: str = ""
    sort: str = "newest"
    errors: list[str] = field(default_factory=list)

    def as_args(self) -> dict[str, str]:
        """The filters as query-string arguments (for links and the export)."""
        args = {
            "status": self.status.value if self.status else "",
            "currency": self.currency or "",
            "method": self.method or "",
            "start": self.start.isoformat() if self.start else "",
            "end": self.end.isoformat() if self.end else "",
            "held": "1" if self.held else "",
            "q": self.q,
            "sort": self.sort if self.sort != "newest" else "",
        }
        return {key: value for key, value in args.items() if value}


def _date(args: Any, name: str, errors: list[str]) -> date | None:
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors.append(f"“{raw}” is not a date (use YYYY-MM-DD); the {name} date was ignored.")
        return None


def parse_filters(args: Any) -> PaymentFilters:
    """Filters from a query string; what cannot be read is ignored with a message."""
    errors: list[str] = []
    status = None
    if args.get("status"):
        try:
            status = PaymentRecordStatus(args["status"])
        except ValueError:
            errors.append("Unknown status; the status filter was ignored.")
    currency = (args.get("currency") or "").strip().lower() or None
    if currency and (len(currency) != 3 or not currency.isalpha()):
        errors.append("A currency is three letters, like usd; the currency filter was ignored.")
        currency = None
    method = args.get("method") or None
    if method and method not in METHODS:
        errors.append("Unknown payment method; the method filter was ignored.")
        method = None
    start, end = _date(args, "start", errors), _date(args, "end", errors)
    if start and end and end < start:
        errors.append("The range ends before it starts; the dates were ignored.")
        start = end = None
    q = (args.get("q") or "").strip()[: search_terms.MAX_LENGTH]
    if q and (problem := search_terms.read(q).problem):
        errors.append(problem)
    sort = args.get("sort") or "newest"
    if sort not in SORTS:
        sort = "newest"
    return PaymentFilters(
        status=status,
        currency=currency,
        method=method,
        start=start,
        end=end,
        held=args.get("held") == "1",
        q=q,
        sort=sort,
        errors=errors,
    )


def _search(query: Select[Any], q: str) -> Select[Any]:
    """The payments `q` finds, read as the header's search box reads it."""
    return query.where(search_terms.read(q).payment_condition())


def filtered(filters: PaymentFilters) -> Select[Any]:
    """Payments with their contract's title and parties, as the filters say (no order)."""
    query = (
        select(
            Payment,
            Contract.title,
            Student.name.label("student_name"),
            Student.email.label("student_email"),
            Coach.name.label("coach_name"),
            Coach.email.label("coach_email"),
        )
        .join(Contract, Contract.id == Payment.contract_id)
        .join(Student, Student.id == Contract.student_id)
        .join(Coach, Coach.id == Contract.coach_id)
    )
    if filters.status:
        query = query.where(Payment.status == filters.status)
    if filters.currency:
        query = query.where(Payment.currency == filters.currency)
    if filters.method:
        query = query.where(Payment.method == filters.method)
    if filters.start:
        query = query.where(Payment.created_at >= midnight(filters.start))
    if filters.end:
        query = query.where(Payment.created_at < midnight(filters.end + timedelta(days=1)))
    if filters.held:
        query = query.where(Payment.held_for_review)
    if filters.q:
        query = _search(query, filters.q)
    return query


def _cursor(row: Any, sort_column: Any) -> str:
    value = getattr(row.Payment, sort_column.key)
    shown = value.isoformat() if isinstance(value, datetime) else str(value)
    return f"{shown}|{row.Payment.id}"


def _after(raw: str, sort_column: Any) -> tuple[Any, int] | None:
    value, _, row_id = raw.rpartition("|")
    try:
        parsed: Any = (
            datetime.fromisoformat(value) if sort_column.key == "created_at" else int(value)
        )
        return parsed, int(row_id)
    except ValueError:
        return None


def page(filters: PaymentFilters, after: str | None = None) -> tuple[list[Any], str | None]:
    """One page of the list and the cursor of the next (None on the last page)."""
    column, descending = SORTS[filters.sort]
    query = filtered(filters)
    position = _after(after, column) if after else None
    if position is not None:
        key = tuple_(column, Payment.id)
        query = query.where(key < position if descending else key > position)
    order = (column.desc(), Payment.id.desc()) if descending else (column.asc(), Payment.id.asc())
    rows = list(db.session.execute(query.order_by(*order).limit(PAGE_SIZE + 1)))
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return rows, _cursor(rows[-1], column) if more and rows else None


# --- CSV export -------------------------------------------------------------------

# The amounts twice: in minor units for a program, and written out with the currency for a
# person ("$200.00", "¥5,000").
CSV_HEADER = (
    "payment_id", "created_at_utc", "status", "amount_minor", "amount_refunded_minor",
    "currency", "amount_formatted", "amount_refunded_formatted", "method", "contract_id",
    "contract_title", "student_name", "student_email",
    "coach_name", "coach_email", "checkout_session_id", "payment_intent_id", "charge_id",
    "manual_reference", "review_reason",
)
# A spreadsheet runs a cell that starts with one of these as a formula: at the cell's start,
# or after a `,` or `;`, because a spreadsheet that splits fields on `;` (as much of
# continental Europe's do) or ignores the quotes makes a new cell there. Spaces and quotes
# before the character do not stop it.
_FORMULA = re.compile(r'(^|[,;])([ "]*)(?=[=+\-@\t\r])')
_FORMULA_CHARACTERS = frozenset("=+-@\t\r")


def neutralise(value: Any) -> Any:
    """A cell a spreadsheet will show as text, never run (OWASP's CSV injection advice):
    `'` before each formula character that could begin a cell."""
    if isinstance(value, str) and not _FORMULA_CHARACTERS.isdisjoint(value):
        return _FORMULA.sub(r"\1\2'", value)
    return value


# The export reads plain columns, not Payment objects: no identity map to fill, and
# about three times faster at a hundred thousand rows.
_EXPORT_COLUMNS = (
    Payment.id, Payment.created_at, Payment.status, Payment.amount, Payment.amount_refunded,
    Payment.currency, Payment.method, Payment.contract_id, Contract.title,
    Student.name, Student.email, Coach.name, Coach.email, Payment.checkout_session_id,
    Payment.payment_intent_id, Payment.charge_id, Payment.manual_reference,
    Payment.review_reason,
)


def _csv_row(row: Any) -> tuple[Any, ...]:
    cells = list(row)
    cells[1] = cells[1].isoformat()
    cells[2] = cells[2].value
    amount, refunded, currency = cells[3:6]
    cells[6:6] = [
        "" if figure is None else format_money(figure, currency) for figure in (amount, refunded)
    ]
    return tuple(neutralise("" if cell is None else cell) for cell in cells)


def export_csv(filters: PaymentFilters, chunk_rows: int = 1000) -> Iterator[str]:
    """The filtered set as CSV text, in chunks: rows are streamed from the database
    (a server-side cursor on PostgreSQL), so memory stays flat whatever the size."""
    buffer = io.StringIO()
    # Every cell quoted: a field with a separator or a line break stays one cell in any
    # reader, numbers included.
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL)
    writer.writerow(CSV_HEADER)
    query = (
        filtered(filters)
        .with_only_columns(*_EXPORT_COLUMNS)
        .order_by(Payment.created_at.desc(), Payment.id.desc())
    )
    result = db.session.execute(query.execution_options(yield_per=chunk_rows))
    for count, row in enumerate(result, start=1):
        writer.writerow(_csv_row(row))
        if count % chunk_rows == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


# --- one payment -------------------------------------------------------------------


@dataclass
class TimelineItem:
    at: datetime
    kind: str  # "audit" or "event"
    title: str
    detail: str
    link: tuple[str, dict[str, Any]] | None = None
    code: str = ""  # the audit action or event type, shown small beside the words


def timeline(payment: Payment) -> list[TimelineItem]:
    """The payment's audit entries (and its contract's) and Stripe events, oldest first."""
    entries = db.session.scalars(
        select(AuditEntry).where(
            or_(
                and_(AuditEntry.object_type == "payments", AuditEntry.object_id == payment.id),
                and_(
                    AuditEntry.object_type == "contracts",
                    AuditEntry.object_id == payment.contract_id,
                ),
            )
        )
    )
    ids = [i for i in (payment.checkout_session_id, payment.payment_intent_id, payment.charge_id)
           if i]
    conditions = [WebhookEvent.object_id.in_(ids)] if ids else []
    if payment.payment_intent_id:
        conditions.append(WebhookEvent.payment_intent_id == payment.payment_intent_id)
    events = db.session.scalars(select(WebhookEvent).where(or_(*conditions))) if conditions else []
    items = [
        TimelineItem(
            at=entry.created_at,
            kind="audit",
            title=action_words(entry.action),
            detail=" · ".join(
                part for part in (
                    f"by {actor_words(entry.actor_label)}",
                    changes_words(entry.before, entry.after, payment.currency),
                ) if part
            ),
            code=entry.action,
        )
        for entry in entries
    ]
    items += [
        TimelineItem(
            at=event.received_at,
            kind="event",
            title=event_words(event.type),
            detail=f"{event.stripe_event_id} · {event.status.value.replace('_', ' ')}"
            + (f" · {event.outcome.replace('_', ' ')}" if event.outcome else ""),
            code=event.type,
            link=("admin.event_detail", {"event_id": event.id}),
        )
        for event in events
    ]
    return sorted(items, key=lambda item: item.at)
