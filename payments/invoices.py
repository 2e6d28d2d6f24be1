"""Invoices: one numbered invoice per payment that counts for its contract.

Numbers run per calendar year (the UTC year of the payment's `paid_at`):
CP-2026-000001, CP-2026-000002, ... They are never reused and never skipped.
The number is taken from the year's `invoice_counters` row, locked for update
(`database.locking`; SQLite takes its write lock with BEGIN IMMEDIATE) in the
same transaction that records the payment: two payments at once get
consecutive numbers, and a payment rolled back rolls its number back too, so
no gap is left. The counter's lock is held until that transaction ends, which
serialises concurrent payments from there on: what the transaction wrote
before is flushed first, and the invoice is the last thing a payment's
settlement does, so the lock covers little more than the invoice's insert
and the commit.

A void payment (a duplicate, refused on review, arrived after cancellation)
gets no invoice: it goes back in full. Payments recorded before invoices
existed (migration 0008) have none.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import joinedload

import clock
from accounts.models import User
from database.locking import take_write_lock
from errors import NotFound
from extensions import db
from payments.models import Invoice, InvoiceCounter, Payment, PaymentRecordStatus
from payments.standing import payment_split

PREFIX = "CP"

_INSERTS: dict[str, Any] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


class NotInvoiceable(ValueError):
    """The payment does not count for its contract (not succeeded, or void)."""


def invoice_number(year: int, sequence: int) -> str:
    """CP-2026-000001: the platform's prefix, the year, the sequence on six digits."""
    return f"{PREFIX}-{year}-{sequence:06d}"


def _invoice_of_payment(payment_id: int) -> Invoice | None:
    return db.session.scalar(
        select(Invoice)
        .where(Invoice.payment_id == payment_id)
        .execution_options(populate_existing=True)
    )


def _take_number(year: int) -> int:
    """The next sequence of `year`, from its counter row locked until the transaction ends.

    One statement: INSERT ... ON CONFLICT DO UPDATE makes the year's row on its first
    use and otherwise adds one to it, locking the row; two payments at once get
    consecutive numbers, the second waiting for the first one's transaction.
    """
    session = db.session
    session.flush()  # the transaction's other writes go out before the lock is taken
    take_write_lock(session)
    dialect = session.get_bind().dialect.name
    insert = _INSERTS[dialect](InvoiceCounter).values(year=year, last_number=1)
    taken: int = session.scalar(
        insert.on_conflict_do_update(
            index_elements=["year"],
            set_={"last_number": InvoiceCounter.last_number + 1},
        ).returning(InvoiceCounter.last_number)
    )
    return taken


def issue_invoice(payment: Payment, *, paid_before: int) -> Invoice:
    """The invoice of a succeeded payment that counts for its contract; flushed, not committed.

    `paid_before` is what the contract's payments that count brought before this
    one: the invoice's fee is this payment's cumulative share of the contract's fee
    (`payments.standing.payment_split`). Idempotent: a payment that has its invoice
    gets that one back. Call it under the contract's lock, in the transaction that
    records the payment: the lock makes one read for an existing invoice enough, and
    the number is committed, or rolled back, with the payment.
    """
    if payment.id is None:
        db.session.flush()
    existing = _invoice_of_payment(payment.id)
    if existing is not None:
        return existing
    if payment.status is not PaymentRecordStatus.SUCCEEDED or payment.void_reason is not None:
        raise NotInvoiceable(f"payment {payment.id} does not count for its contract")
    paid_at = payment.paid_at or clock.now()
    year = paid_at.astimezone(UTC).year
    sequence = _take_number(year)
    contract = payment.contract
    fee, earning = payment_split(
        contract.platform_fee, contract.total_amount, paid_before, payment.amount
    )
    invoice = Invoice(
        number=invoice_number(year, sequence),
        year=year,
        sequence=sequence,
        payment_id=payment.id,
        contract_id=contract.id,
        student_id=contract.student_id,
        coach_id=contract.coach_id,
        amount=payment.amount,
        currency=payment.currency,
        platform_fee=fee,
        coach_earning=earning,
        student_name=contract.student.name,
        student_email=contract.student.email,
        coach_name=contract.coach.name,
        coach_email=contract.coach.email,
        contract_title=contract.title,
        session_count=contract.session_count,
        minutes_per_session=contract.minutes_per_session,
        issued_at=clock.now(),
    )
    db.session.add(invoice)
    db.session.flush()
    return invoice


def invoice_for(invoice_id: int, user: User) -> Invoice:
    """The invoice, for the student it was issued to or an admin; anyone else gets a 404.

    The coach is not shown it: it is the buyer's document, and the coach's
    figures are on the earnings page.
    """
    invoice = db.session.scalar(
        select(Invoice)
        .where(Invoice.id == invoice_id)
        .options(joinedload(Invoice.payment), joinedload(Invoice.contract))
    )
    if invoice is None or not (user.is_admin or invoice.student_id == user.id):
        raise NotFound()
    return invoice


def invoices_by_payment(payment_ids: Iterable[int]) -> dict[int, Invoice]:
    """The invoice of each given payment that has one, in one query."""
    ids = sorted(set(payment_ids))
    if not ids:
        return {}
    return {
        invoice.payment_id: invoice
        for invoice in db.session.scalars(select(Invoice).where(Invoice.payment_id.in_(ids)))
    }
