"""A coach's bookable hours: weekly working hours in the coach's own zone, and days off.

The rules live in `scheduling.availability`; these are only the rows.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clock import now
from database.types import UTCDateTime
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
