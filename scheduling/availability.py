"""A coach's bookable time: weekly working hours, days off, and the free slots they leave.

Working hours are wall-clock windows in the coach's own zone (`WorkingHours`), turned
into UTC instants date by date, so "9 to 5" stays 9 to 5 on both sides of a
daylight-saving change. A coach who never set any works the default hours,
Mon–Fri 09:00–17:00. The same rules give the booking page its slots (`free_slots`)
and let `scheduling.book_session` refuse a time that is not one (`refusal`), so
the page never offers what the write path would refuse, and the other way round.

Services flush; the view commits once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import Select, delete, func, or_, select

from accounts.models import User
from accounts.timezones import zone_of
from audit.services import record as audit
from clock import now
from contracts.models import CoachingSession, Contract, SessionStatus
from extensions import db
from scheduling.models import DayOff, HoldStatus, SlotHold, WorkingHours

# Sessions start every this many minutes from the start of a working window.
SLOT_STEP_MINUTES = 30
# Working hours are edited on this grid (the sessions' own quarter-hour grid).
HOURS_STEP_MINUTES = 15
DAY_MINUTES = 24 * 60
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

Window = tuple[int, int]  # (start minute, end minute) from local midnight


class AvailabilityError(Exception):
    """A change to working hours or days off refused by a rule; the message is for the user."""


# --- weekly hours ---------------------------------------------------------------


@dataclass(frozen=True)
class WeeklyHours:
    """A coach's windows per weekday (0 = Monday), on the coach's wall clock."""

    windows: dict[int, tuple[Window, ...]]
    # True when the coach never set hours and works the default ones.
    is_default: bool = False

    def on(self, weekday: int) -> tuple[Window, ...]:
        return self.windows.get(weekday, ())

    def describe(self) -> str:
        """The hours in a few words: "Mon–Fri 09:00–17:00", "Mon, Wed 09:00–12:00, 13:00–17:00"."""
        groups: list[tuple[list[int], tuple[Window, ...]]] = []
        for weekday in range(7):
            windows = self.on(weekday)
            if not windows:
                continue
            if groups and groups[-1][1] == windows and groups[-1][0][-1] == weekday - 1:
                groups[-1][0].append(weekday)
            else:
                groups.append(([weekday], windows))
        if not groups:
            return "no working hours"
        parts = []
        for days, windows in groups:
            named = WEEKDAYS[days[0]]
            if len(days) > 1:
                named += f"–{WEEKDAYS[days[-1]]}"
            spans = ", ".join(f"{clock_label(a)}–{clock_label(b)}" for a, b in windows)
            parts.append(f"{named} {spans}")
        return "; ".join(parts)


DEFAULT_HOURS = WeeklyHours({weekday: ((9 * 60, 17 * 60),) for weekday in range(5)}, True)


def clock_label(minute: int) -> str:
    """A minute of the day as "09:30"; the end of the day is "24:00"."""
    return f"{minute // 60:02d}:{minute % 60:02d}"


def weekly_hours(coach_id: int) -> WeeklyHours:
    """The coach's working hours: their own rows, else the default Mon–Fri 09:00–17:00."""
    rows = db.session.scalars(
        select(WorkingHours)
        .where(WorkingHours.coach_id == coach_id)
        .order_by(WorkingHours.weekday, WorkingHours.start_minute)
    ).all()
    if not rows:
        return DEFAULT_HOURS
    windows: dict[int, list[Window]] = {}
    for row in rows:
        windows.setdefault(row.weekday, []).append((row.start_minute, row.end_minute))
    return WeeklyHours({day: tuple(spans) for day, spans in windows.items()})


def check_windows(windows: Sequence[Window]) -> None:
    """Refuse windows that end before they start, leave the day, leave the grid or overlap."""
    for start, end in windows:
        if not 0 <= start < end <= DAY_MINUTES:
            raise AvailabilityError("A working window must end after it starts, within the day.")
        if start % HOURS_STEP_MINUTES or end % HOURS_STEP_MINUTES:
            raise AvailabilityError("Working hours are set in steps of 15 minutes.")
    ordered = sorted(windows)
    for (_, first_end), (second_start, _) in zip(ordered, ordered[1:], strict=False):
        if second_start < first_end:
            raise AvailabilityError("The two windows of a day must not overlap.")


def save_hours(coach: User, windows: dict[int, Sequence[Window]]) -> WeeklyHours:
    """Replace the coach's weekly hours with `windows` (weekday → windows), all or nothing."""
    for spans in windows.values():
        check_windows(spans)
    # The coach's row first: a booking checks the hours under the same lock, so it sees
    # either the old week or the new one, never a half-written one.
    db.session.execute(select(User.id).where(User.id == coach.id).with_for_update())
    if not any(windows.values()):
        # No rows means "never set" (the default hours), so an empty week cannot be saved.
        raise AvailabilityError(
            "Keep at least one working window. To stop taking sessions for a while, "
            "add days off instead."
        )
    before = weekly_hours(coach.id)
    db.session.execute(delete(WorkingHours).where(WorkingHours.coach_id == coach.id))
    for weekday, spans in sorted(windows.items()):
        for start, end in sorted(spans):
            db.session.add(
                WorkingHours(coach_id=coach.id, weekday=weekday, start_minute=start, end_minute=end)
            )
    db.session.flush()
    after = weekly_hours(coach.id)
    audit(
        "availability.hours_changed",
        coach,
        actor=coach,
        before={"hours": before.describe(), "default": before.is_default},
        after={"hours": after.describe()},
    )
    return after


# --- days off -------------------------------------------------------------------


def today_of(user: User) -> date:
    """Today's date on the user's wall clock."""
    return now().astimezone(zone_of(user.timezone)).date()


def upcoming_days_off(coach: User) -> list[DayOff]:
    return list(
        db.session.scalars(
            select(DayOff)
            .where(DayOff.coach_id == coach.id, DayOff.day >= today_of(coach))
            .order_by(DayOff.day)
        )
    )


def add_day_off(coach: User, day: date, note: str | None = None) -> DayOff:
    """Add a day off (the coach's own date); past dates and a day already off are refused.

    Sessions already booked on that day stay booked: the coach decides whether to
    cancel or move them (`booked_on` lists them).
    """
    if day < today_of(coach):
        raise AvailabilityError(f"{day:%a %d %b %Y} has passed. Pick today or a later date.")
    taken = db.session.scalar(
        select(DayOff.id).where(DayOff.coach_id == coach.id, DayOff.day == day)
    )
    if taken is not None:
        raise AvailabilityError(f"{day:%a %d %b %Y} is already a day off.")
    off = DayOff(coach_id=coach.id, day=day, note=(note or "").strip() or None)
    db.session.add(off)
    db.session.flush()
    audit("availability.day_off_added", off, actor=coach, after={"day": day.isoformat()})
    return off


def remove_day_off(coach: User, day_off_id: int) -> DayOff | None:
    """Remove one of the coach's days off; None when it is not theirs (or gone already)."""
    off = db.session.scalar(
        select(DayOff).where(DayOff.id == day_off_id, DayOff.coach_id == coach.id)
    )
    if off is None:
        return None
    audit("availability.day_off_removed", off, actor=coach, before={"day": off.day.isoformat()})
    db.session.delete(off)
    db.session.flush()
    return off


def booked_on(coach: User, day: date) -> int:
    """How many scheduled sessions the coach has on `day` of their own calendar."""
    zone = zone_of(coach.timezone)
    begin, end = wall_instant(day, 0, zone), wall_instant(day + timedelta(days=1), 0, zone)
    return (
        db.session.scalar(
            select(func.count())
            .select_from(CoachingSession)
            .where(
                CoachingSession.coach_id == coach.id,
                CoachingSession.status == SessionStatus.SCHEDULED,
                CoachingSession.starts_at >= begin,
                CoachingSession.starts_at < end,
            )
        )
        or 0
    )


# --- wall clock to instants -----------------------------------------------------


def wall_instant(day: date, minute: int, zone: ZoneInfo) -> datetime:
    """The UTC instant at `minute` past midnight of `day` on `zone`'s wall clock.

    A wall time the clocks repeat (autumn) is its first occurrence, as
    `localtime.local_to_utc` reads it. A wall time the clocks skip (spring) moves to
    the first instant that exists after it: the moment of the jump.
    """
    wall = datetime.combine(day, time()) + timedelta(minutes=minute)
    after = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if after.astimezone(zone).replace(tzinfo=None) == wall:
        return after
    # In the gap, fold=1 reads the wall time with the offset after the jump, which
    # lands before the jump; fold=0 lands after it. Narrow down to the minute.
    before = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    while after - before > timedelta(minutes=1):
        middle = before + (after - before) // 2
        middle = middle.replace(second=0, microsecond=0)
        if middle <= before:
            break
        if middle.astimezone(zone).replace(tzinfo=None) >= wall:
            after = middle
        else:
            before = middle
    return after


def day_starts(hours: WeeklyHours, day: date, zone: ZoneInfo, minutes: int) -> list[datetime]:
    """The starts (UTC) on the coach's date `day` where a session of `minutes` fits a window.

    Starts are every SLOT_STEP_MINUTES of real time from the window's first instant;
    a wall time the autumn change repeats is offered once (its first occurrence).
    """
    length, step = timedelta(minutes=minutes), timedelta(minutes=SLOT_STEP_MINUTES)
    starts: list[datetime] = []
    seen: set[datetime] = set()
    for start_minute, end_minute in hours.on(day.weekday()):
        at = wall_instant(day, start_minute, zone)
        end = wall_instant(day, end_minute, zone)
        while at + length <= end:
            wall = at.astimezone(zone).replace(tzinfo=None)
            if wall not in seen:
                seen.add(wall)
                starts.append(at)
            at += step
    return starts


# --- free slots -----------------------------------------------------------------


@dataclass(frozen=True)
class Slot:
    """A time a session of the contract can be booked at (UTC instants)."""

    starts_at: datetime
    ends_at: datetime

    @property
    def value(self) -> str:
        return slot_value(self.starts_at)


def slot_value(starts_at: datetime) -> str:
    """A slot's start as a form value: its UTC start, "2027-03-30T07:00Z"."""
    return starts_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def parse_slot(value: str | None) -> datetime | None:
    """The UTC start a slot's form value names, or None when it names none."""
    try:
        return datetime.strptime(value or "", "%Y-%m-%dT%H:%MZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def notice() -> timedelta:
    return timedelta(hours=int(current_app.config["BOOKING_MIN_NOTICE_HOURS"]))


def horizon() -> timedelta:
    return timedelta(days=int(current_app.config["BOOKING_HORIZON_DAYS"]))


def cancel_notice_hours() -> float:
    return float(current_app.config["SESSION_CANCEL_NOTICE_HOURS"])


def late_cancel_warning(
    contract: Contract, booker: User, starts_at: datetime, moment: datetime | None = None
) -> str | None:
    """What booking `starts_at` costs its student at once, or None when it costs nothing.

    A slot between the booking notice (BOOKING_MIN_NOTICE_HOURS) and the free-cancellation
    limit (SESSION_CANCEL_NOTICE_HOURS) is bookable, but a student cancelling it from then
    on loses the session (`scheduling.is_late_cancellation`). A coach's cancellation never
    counts, so only the student booking such a slot is warned.
    """
    if booker.id != contract.student_id:
        return None
    ahead = starts_at - (moment or now())
    limit = cancel_notice_hours()
    if ahead >= timedelta(hours=limit):
        return None
    hours = max(1, int(ahead.total_seconds() // 3600))
    return (
        f"This session starts in {hours} hour{'s' if hours != 1 else ''}, less than the "
        f"{limit:g} hours' notice a free cancellation needs: if you cancel it, it will count "
        "as used."
    )


@dataclass
class _Scan:
    offered: list[Slot] = field(default_factory=list)  # inside the hours, not on a day off
    free: list[Slot] = field(default_factory=list)  # ...and bookable now, overlapping nothing


def _scan(
    contract: Contract, begin: datetime, end: datetime, exclude_session_id: int | None
) -> _Scan:
    coach = contract.coach
    zone = zone_of(coach.timezone)
    hours = weekly_hours(coach.id)
    first_day = begin.astimezone(zone).date() - timedelta(days=1)
    last_day = end.astimezone(zone).date()
    off = set(
        db.session.scalars(
            select(DayOff.day).where(
                DayOff.coach_id == coach.id, DayOff.day >= first_day, DayOff.day <= last_day
            )
        )
    )
    length = timedelta(minutes=contract.minutes_per_session)
    # Every session of the coach or the student in the range, in one query, and the times
    # the coach holds for other contracts' payments.
    busy_query = party_sessions(contract, begin, end + length, exclude_session_id)
    moment = now()
    busy = [
        *db.session.execute(busy_query).all(),
        *db.session.execute(held_for_others(contract, begin, end + length, moment)).all(),
    ]
    earliest, latest = moment + notice(), moment + horizon()
    if contract.period_start is not None and contract.bookable_until is not None:
        # A membership period: its credits are used by sessions starting inside it.
        earliest = max(earliest, contract.period_start)
        latest = min(latest, contract.bookable_until - timedelta(seconds=1))
    scan = _Scan()
    day = first_day
    while day <= last_day:
        if day not in off:
            for starts_at in day_starts(hours, day, zone, contract.minutes_per_session):
                if not begin <= starts_at < end:
                    continue
                slot = Slot(starts_at, starts_at + length)
                scan.offered.append(slot)
                if earliest <= starts_at <= latest and not any(
                    row.starts_at < slot.ends_at and row.ends_at > starts_at for row in busy
                ):
                    scan.free.append(slot)
        day += timedelta(days=1)
    return scan


def party_sessions(
    contract: Contract, begin: datetime, end: datetime, exclude_session_id: int | None = None
) -> Select[int, datetime, datetime]:
    """The scheduled sessions of the contract's coach or student overlapping [begin, end):
    (coach_id, starts_at, ends_at), but the one `exclude_session_id` (a session being moved).

    The student's side goes through their contracts' ids rather than a join, so each side
    is an index lookup (coach and start; contract and start) and neither scans the
    platform's sessions.
    """
    of_student = select(Contract.id).where(Contract.student_id == contract.student_id)
    query = select(
        CoachingSession.coach_id, CoachingSession.starts_at, CoachingSession.ends_at
    ).where(
        or_(
            CoachingSession.coach_id == contract.coach_id,
            CoachingSession.contract_id.in_(of_student),
        ),
        CoachingSession.status == SessionStatus.SCHEDULED,
        CoachingSession.starts_at < end,
        CoachingSession.ends_at > begin,
    )
    if exclude_session_id is not None:
        query = query.where(CoachingSession.id != exclude_session_id)
    return query


def held_for_others(
    contract: Contract, begin: datetime, end: datetime, moment: datetime | None = None
) -> Select[datetime, datetime]:
    """The live holds of the contract's coach for other contracts overlapping [begin, end):
    (starts_at, ends_at). A hold is live while held and not past its expiry (the Checkout
    Session it lives for can still be paid); the contract's own holds never block it."""
    return select(SlotHold.starts_at, SlotHold.ends_at).where(
        SlotHold.coach_id == contract.coach_id,
        SlotHold.contract_id != contract.id,
        SlotHold.status == HoldStatus.HELD,
        SlotHold.expires_at > (moment or now()),
        SlotHold.starts_at < end,
        SlotHold.ends_at > begin,
    )


HELD_FOR_ANOTHER = (
    "That time is held for another booking while it is being paid for. Pick another time."
)


def free_slots(
    contract: Contract,
    *,
    from_day: date,
    days: int,
    exclude_session_id: int | None = None,
    zone: str | None = None,
) -> list[Slot]:
    """The times a session of `contract` can be booked, from `from_day` for `days` days.

    The days are read on the clock of `zone` (the coach's own by default). A slot lies
    entirely inside one of the coach's working windows, not on a day off, at least
    BOOKING_MIN_NOTICE_HOURS from now and at most BOOKING_HORIZON_DAYS ahead, and
    overlaps no scheduled session of the coach or the student (but the one being
    moved, `exclude_session_id`) nor a time the coach holds for another contract's payment.
    """
    begin, end = _day_range(from_day, days, zone or contract.coach.timezone)
    return _scan(contract, begin, end, exclude_session_id).free


def _day_range(from_day: date, days: int, zone_name: str) -> tuple[datetime, datetime]:
    zone = zone_of(zone_name)
    return wall_instant(from_day, 0, zone), wall_instant(from_day + timedelta(days=days), 0, zone)


def refusal(contract: Contract, starts_at: datetime) -> str | None:
    """Why a session of `contract` cannot start at `starts_at` on the coach's calendar, or None.

    The notice, the horizon, a day off, the working hours and the times held for other
    contracts' payments; overlaps with other sessions are the scheduling service's to
    check, under its locks.
    """
    moment = now()
    outside = period_refusal(contract, starts_at)
    if outside:
        return outside
    if starts_at < moment + notice():
        ahead = int(current_app.config["BOOKING_MIN_NOTICE_HOURS"])
        return f"Sessions are booked at least {ahead} hours ahead. Pick a later time."
    if starts_at > moment + horizon():
        days = int(current_app.config["BOOKING_HORIZON_DAYS"])
        return f"Sessions can be booked at most {days} days ahead. Pick an earlier time."
    coach = contract.coach
    zone = zone_of(coach.timezone)
    local = starts_at.astimezone(zone)
    off = db.session.scalar(
        select(DayOff.id).where(DayOff.coach_id == coach.id, DayOff.day == local.date())
    )
    if off is not None:
        return f"{coach.name} is not working on {local:%a %d %b %Y} (a day off). Pick another day."
    hours = weekly_hours(coach.id)
    if starts_at in day_starts(hours, local.date(), zone, contract.minutes_per_session):
        return held_refusal(contract, starts_at, moment)
    outside = f"{coach.name} works {describe_for(coach, hours)}; that time is outside those hours."
    minute = local.hour * 60 + local.minute
    inside = [(a, b) for a, b in hours.on(local.weekday()) if a <= minute < b]
    if not inside:
        return outside
    start, _ = inside[0]
    if (minute - start) % SLOT_STEP_MINUTES:
        return (
            f"Sessions with {coach.name} start every {SLOT_STEP_MINUTES} minutes from the "
            f"start of a working window (such as {clock_label(start)}). Pick one of the "
            "times offered."
        )
    return (
        f"{coach.name} works {describe_for(coach, hours)}; a {contract.minutes_per_session}"
        "-minute session at that time would end outside those hours."
    )


def period_refusal(contract: Contract, starts_at: datetime) -> str | None:
    """Why a membership period's session cannot start at `starts_at`: a credit is used in
    its own period (or its rollover); None for a time inside it, or another contract."""
    until = contract.bookable_until
    if until is None or contract.period_start is None:
        return None
    zone = zone_of(contract.coach.timezone)
    if starts_at < contract.period_start:
        return (f"This period's sessions start from "
                f"{contract.period_start.astimezone(zone):%a %d %b %Y, %H:%M %Z}.")
    if starts_at >= until:
        return (f"This period's credits are used by sessions starting before "
                f"{until.astimezone(zone):%a %d %b %Y, %H:%M %Z}; unused ones expire then.")
    return None


def held_refusal(
    contract: Contract, starts_at: datetime, moment: datetime | None = None
) -> str | None:
    """Why `starts_at` is taken by another contract's live hold, or None when it is not."""
    ends_at = starts_at + timedelta(minutes=contract.minutes_per_session)
    held = db.session.execute(held_for_others(contract, starts_at, ends_at, moment)).first()
    return HELD_FOR_ANOTHER if held is not None else None


# --- the booking page's week ----------------------------------------------------

PICKER_DAYS = 7


@dataclass(frozen=True)
class SlotChoice:
    """One slot as the viewer reads it, with the other party's wall clock beside it."""

    slot: Slot
    label: str  # on the viewer's clock: "09:00 CEST"
    other_label: str | None  # on the other party's clock when their zone differs
    # Booked by the viewer, a cancellation would count it as used (`late_cancel_warning`).
    late_cancel: bool = False
    # Minutes past the viewer's midnight: where the time falls in their day.
    minute_of_day: int = 0
    # On the other party's clock, with its day, always: "Tue 02 Mar, 09:00 CET".
    other_time: str = ""


@dataclass(frozen=True)
class SlotWeek:
    """The free slots of the days shown, grouped by the viewer's date, with the way around."""

    from_day: date
    days: list[tuple[date, list[SlotChoice]]]  # only days with a free slot
    earlier: date | None  # the `from` of the previous page, if any
    later: date | None
    empty_reason: str | None  # why no slot is free in these days

    @property
    def count(self) -> int:
        return sum(len(choices) for _, choices in self.days)

    @property
    def has_late_cancel(self) -> bool:
        return any(choice.late_cancel for _, choices in self.days for choice in choices)

    @property
    def last_day(self) -> date:
        return self.from_day + timedelta(days=PICKER_DAYS - 1)

    @property
    def strip(self) -> list[tuple[date, int]]:
        """Every day shown, with how many free times it has (0 for none)."""
        counts = {day: len(choices) for day, choices in self.days}
        return [
            (day, counts.get(day, 0))
            for day in (self.from_day + timedelta(days=n) for n in range(PICKER_DAYS))
        ]

    def choices_on(self, day: date | None) -> list[SlotChoice]:
        return dict(self.days).get(day, []) if day else []

    def find(self, value: str | None) -> tuple[date, SlotChoice] | None:
        """The free time a slot value names, with its day, or None when none shown is."""
        for day, choices in self.days:
            for choice in choices:
                if choice.slot.value == value:
                    return day, choice
        return None

    def day_to_show(self, wanted: date | None) -> date | None:
        """The day whose times are listed: `wanted` when shown and free, else the first free."""
        free = [day for day, _ in self.days]
        if wanted in free:
            return wanted
        return free[0] if free else None


# Where a time falls in the viewer's day, for the list of a busy day's times.
DAY_PARTS = (("Morning", 0), ("Afternoon", 12 * 60), ("Evening", 17 * 60))
# Up to this many times in a day are listed as one group.
ONE_GROUP_UP_TO = 8


def day_parts(choices: list[SlotChoice]) -> list[tuple[str, list[SlotChoice]]]:
    """A day's times as one group, or by morning, afternoon and evening when there are many."""
    if len(choices) <= ONE_GROUP_UP_TO:
        return [("", choices)]
    parts: list[tuple[str, list[SlotChoice]]] = []
    for index, (name, start) in enumerate(DAY_PARTS):
        end = DAY_PARTS[index + 1][1] if index + 1 < len(DAY_PARTS) else DAY_MINUTES
        inside = [choice for choice in choices if start <= choice.minute_of_day < end]
        if inside:
            parts.append((name, inside))
    return parts


def week_start(viewer: User, wanted: date | None) -> date:
    """The first day to show: `wanted` within today and the horizon, else today."""
    today = today_of(viewer)
    last = (now() + horizon()).astimezone(zone_of(viewer.timezone)).date()
    if wanted is None or wanted < today:
        return today
    return min(wanted, max(today, last - timedelta(days=PICKER_DAYS - 1)))


def slot_week(
    contract: Contract,
    viewer: User,
    wanted: date | None,
    *,
    exclude_session_id: int | None = None,
) -> SlotWeek:
    """The booking page's week of free slots, on the viewer's calendar."""
    today = today_of(viewer)
    start = week_start(viewer, wanted)
    begin, end = _day_range(start, PICKER_DAYS, viewer.timezone)
    scan = _scan(contract, begin, end, exclude_session_id)
    other = contract.student if viewer.id == contract.coach_id else contract.coach
    viewer_zone, other_zone = zone_of(viewer.timezone), zone_of(other.timezone)
    grouped: dict[date, list[SlotChoice]] = {}
    moment = now()
    for slot in scan.free:
        mine = slot.starts_at.astimezone(viewer_zone)
        grouped.setdefault(mine.date(), []).append(
            SlotChoice(
                slot,
                mine.strftime("%H:%M %Z"),
                _other_label(slot, mine, other, other_zone),
                late_cancel_warning(contract, viewer, slot.starts_at, moment) is not None,
                mine.hour * 60 + mine.minute,
                slot.starts_at.astimezone(other_zone).strftime("%a %d %b, %H:%M %Z"),
            )
        )
    horizon_end = (now() + horizon()).astimezone(viewer_zone).date()
    later = start + timedelta(days=PICKER_DAYS)
    return SlotWeek(
        from_day=start,
        days=sorted(grouped.items()),
        earlier=max(today, start - timedelta(days=PICKER_DAYS)) if start > today else None,
        later=later if later <= horizon_end else None,
        empty_reason=None if scan.free else _why_empty(contract, scan),
    )


def _other_label(
    slot: Slot, mine: datetime, other: User, other_zone: ZoneInfo
) -> str | None:
    theirs = slot.starts_at.astimezone(other_zone)
    if theirs.strftime("%d %H:%M %Z") == mine.strftime("%d %H:%M %Z"):
        return None  # the same wall clock: nothing to add
    first_name = other.name.split()[0] if other.name.split() else other.name
    if theirs.date() != mine.date():
        return f"{theirs:%a %d %b, %H:%M %Z} for {first_name}"
    return f"{theirs:%H:%M %Z} for {first_name}"


def _why_empty(contract: Contract, scan: _Scan) -> str:
    coach = contract.coach.name
    until = contract.bookable_until
    if until is not None and until <= now() + notice():
        return ("This period's credits can no longer be used: its sessions had to start "
                f"before {until.astimezone(zone_of(contract.coach.timezone)):%a %d %b %Y}.")
    if not scan.offered:
        return f"{coach} has no working hours on these days (days off or no hours set)."
    return f"Every time in {coach}'s working hours on these days is booked or too soon."


def describe_for(coach: User, hours: WeeklyHours | None = None) -> str:
    """The coach's hours as students read them: "Mon–Fri 09:00–17:00 (Europe/Berlin)"."""
    hours = hours or weekly_hours(coach.id)
    return f"{hours.describe()} ({zone_of(coach.timezone).key})"
