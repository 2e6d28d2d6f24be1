"""Reconciliation with Stripe's books: one run per day checked, and what it found."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from accounts.models import User
from clock import now
from database.types import UTCDateTime, str_enum
from extensions import Model


class Difference(enum.Enum):
    """How one balance transaction and our records disagree."""

    MISSING_OURS = "missing_ours"  # at Stripe, not in our records
    MISSING_STRIPE = "missing_stripe"  # in our records, not at Stripe
    AMOUNT = "amount"  # both, with different amounts (or fees, or currencies)


class ReconciliationRun(Model):
    """One check of a UTC day's balance transactions against our records.

    A day may be checked again (the daily job, an admin, the command line); the
    page shows each day's latest run. Runs are kept: they are the history of what
    the books said.
    """

    __tablename__ = "reconciliation_runs"
    __table_args__ = (Index("ix_reconciliation_runs_day_id", "day", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    ran_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    ran_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # How many balance transactions of the day Stripe listed, and how many matched.
    transactions: Mapped[int] = mapped_column(default=0)
    matched: Mapped[int] = mapped_column(default=0)
    # Per reporting category and currency: {"charge": {"usd": {"count": 2, "amount": 9000,
    # "fee": 291}}, ...}: the day at Stripe, for the page.
    totals: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Set when Stripe could not be asked: the run says nothing about the day.
    error: Mapped[str | None] = mapped_column(String(500))

    ran_by: Mapped[User | None] = relationship()
    items: Mapped[list[ReconciliationItem]] = relationship(
        back_populates="run", order_by="ReconciliationItem.id")

    @property
    def clean(self) -> bool:
        return self.error is None and not self.items


class ReconciliationItem(Model):
    """One difference a run found."""

    __tablename__ = "reconciliation_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("reconciliation_runs.id"), index=True)
    kind: Mapped[Difference] = mapped_column(str_enum(Difference))
    # Stripe's reporting category: charge, refund, refund_failure, dispute,
    # dispute_reversal, transfer, transfer_reversal.
    category: Mapped[str] = mapped_column(String(40))
    balance_transaction_id: Mapped[str | None] = mapped_column(String(255))
    source_id: Mapped[str | None] = mapped_column(String(255))  # ch_, re_, du_, tr_, trr_
    currency: Mapped[str] = mapped_column(String(3))
    stripe_amount: Mapped[int | None]  # signed, as on Stripe's balance
    our_amount: Mapped[int | None]  # signed the same way
    # What it is on our side, for the admin: "payment 12", "refund 4", "share 9".
    ours: Mapped[str | None] = mapped_column(String(100))
    link: Mapped[str | None] = mapped_column(String(300))  # our page for it, when there is one
    note: Mapped[str] = mapped_column(String(500))

    run: Mapped[ReconciliationRun] = relationship(back_populates="items")
