"""A coach's bookable hours (weekly working hours in the coach's own zone, days off) and
the slots held for a contract while its student pays.

The rules live in `scheduling.availability` and `scheduling.holds`; these are only the rows.
"""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clock import now
from database.types import UTCDateTime, str_enum
from extensions import Model


class WorkingHours(Model):
    """One weekly window in which a coach takes sessions, on the coach's wall clock.

    Minutes count from local midnight, so 09:00–12:30 is 540–750; a day may hold several
    windows (a lunch break splits it). Kept as wall-clock times, not UTC, so "9 to 5"
    stays 9 to 5 on both sides of a daylight-saving change.
    """

    __tablename__ = "working_hours"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),
        CheckConstraint(
            "start_minute >= 0 AND end_minute <= 1440 AND start_minute < end_minute",
            name="minutes_in_day",
        ),
        Index("ix_working_hours_coach_id_weekday", "coach_id", "weekday"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    coach_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    weekday: Mapped[int]  # 0 = Monday … 6 = Sunday (`date.weekday()`)
    start_minute: Mapped[int]
    end_minute: Mapped[int]


class DayOff(Model):
    """A date (on the coach's wall clock) on which the coach takes no sessions."""

    __tablename__ = "days_off"
    __table_args__ = (UniqueConstraint("coach_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    coach_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    day: Mapped[date]
    note: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)


class HoldStatus(enum.Enum):
    HELD = "held"  # kept for the contract while its Checkout Session can be paid
    BOOKED = "booked"  # paid: the first session was booked from it
    RELEASED = "released"  # given up: the session expired, was cancelled or replaced
    LAPSED = "lapsed"  # paid after it ended, when the time had been taken meanwhile


HOLD_TRANSITIONS: dict[HoldStatus, frozenset[HoldStatus]] = {
    HoldStatus.HELD: frozenset({HoldStatus.BOOKED, HoldStatus.RELEASED, HoldStatus.LAPSED}),
    # A session Stripe would not expire (paid at that very moment) can still be paid.
    HoldStatus.RELEASED: frozenset({HoldStatus.BOOKED, HoldStatus.LAPSED}),
}


class SlotHold(Model):
    """A time on a coach's calendar kept for an unpaid contract's first session.

    Tied to one payment attempt (the Checkout claim): it lives exactly as long as that
    attempt's Checkout Session can be paid (`expires_at`, the session's own). A hold is
    live while it is `held` and not past `expires_at`; a live hold of another contract
    makes the time taken for everyone else (`scheduling.availability`).
    """

    __tablename__ = "slot_holds"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        Index("ix_slot_holds_coach_id_starts_at", "coach_id", "starts_at"),
        Index("ix_slot_holds_contract_id", "contract_id"),
        Index("ix_slot_holds_payment_id", "payment_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The contract's coach, copied so the calendar's reads need no join.
    coach_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"))
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[HoldStatus] = mapped_column(str_enum(HoldStatus), default=HoldStatus.HELD)
    # Why it is no longer held, in a word: expired, cancelled, replaced, paid, taken, ...
    ended_because: Mapped[str | None] = mapped_column(String(40))
    # The session booked from it, once paid.
    session_id: Mapped[int | None] = mapped_column(ForeignKey("coaching_sessions.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now, onupdate=now)

    def is_live(self, moment: datetime) -> bool:
        return self.status is HoldStatus.HELD and self.expires_at > moment

    def __repr__(self) -> str:
        return f"<SlotHold {self.id} {self.starts_at:%Y-%m-%d %H:%M}Z {self.status.value}>"
