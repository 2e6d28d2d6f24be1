from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, String
from sqlalchemy.orm import Mapped, mapped_column

from clock import now
from database.types import UTCDateTime
from extensions import Model


class DailyPaymentStats(Model):
    """One closed day's payment figures in one currency for one source (an offer, or
    proposals), kept by the nightly rollup.

    A payment counts on the UTC day its attempt was created. Money is in the
    currency's minor units; currencies are never summed together. The dashboard
    reads closed days from here and computes only today live, with the very same
    query (`admin.analytics.figures_by_day`), so the two always agree.
    """

    __tablename__ = "daily_payment_stats"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    # Where the contracts came from: the offer they were bought from, 0 for proposals.
    offer_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False,
                                          default=0, server_default="0")
    # Payment records by status, e.g. {"succeeded": 12, "failed": 2}.
    status_counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    succeeded: Mapped[int] = mapped_column(default=0)  # paid once (refunds included)
    failed: Mapped[int] = mapped_column(default=0)
    gross: Mapped[int] = mapped_column(default=0)  # what succeeded payments brought in
    refunded: Mapped[int] = mapped_column(default=0)  # what went back of those
    fees: Mapped[int] = mapped_column(default=0)  # the platform's fees on the contracts paid
    stripe_fees: Mapped[int] = mapped_column(default=0)  # Stripe's fees on those payments
    earnings: Mapped[int] = mapped_column(default=0)  # the coaches' share of those
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
