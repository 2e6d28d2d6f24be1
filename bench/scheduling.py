"""Benchmark the scheduling pages as a coach's and a student's sessions grow.

    .venv/bin/python bench/scheduling.py [--sizes 10,100,1000] [--feed-sizes 100,1000,5000]
                                         [--others 100000] [--repeat 20] [--warmup 2]
                                         [--databases sqlite,postgresql] [--pg-url URL]
                                         [--profile]

For each database (an SQLite file in a temporary folder; a scratch PostgreSQL
database made on `--pg-url` and dropped afterwards, skipped when the server
cannot be reached) the script builds the schema with the migrations and, in an
app context with the clock frozen, the data with the app's own services: users
(`create_user`), paid contracts (`send_proposal`, `accept_proposal`,
`lifecycle.mark_paid`), working hours (`availability.save_hours`) and calendar
feed tokens (`renew_calendar_token`). Sessions are written as rows
(`CoachingSession`), as the demo loader does: the booking rules rightly refuse
the past ones, and thousands of bookings through the locked write path would
only time the set-up.

- For each `--sizes` S: a coach (Europe/Berlin, working 08:00-20:00 every day)
  with S scheduled sessions spread over the 90-day horizon, on the slots of
  those hours, and a student (America/New_York) with S more, with another
  coach, on the slots between them; and one contract between the two, with one
  session to move in the week shown.
- For each `--feed-sizes` N: a coach (Europe/London) whose calendar feed holds
  N sessions (from 90 days back to 89 days ahead: completed, missed, cancelled,
  a few still to mark, scheduled), plus N/10 older ones it leaves out.

Then it times the pages in this process, through Flask's test client: the whole
WSGI stack runs (login session, CSRF, rate limiter, views, templates) but no
server, so the figures are the app's own work per request, without socket or
worker noise, against a baseline measured the same way in the same run (the
gunicorn benchmarks measure throughput; this one measures how a page's work
grows with the data). `--warmup` untimed rounds, then `--repeat` timed ones,
the pages taking turns: the baseline (a contract's page with no session, and
`/healthz`), then per size the booking page (as the student, the week starting
in 7 days), the reschedule page (as the coach), "My schedule" page 1 (coach and
student), and per feed size the feed and its owner's "My schedule". Then it
adds `--others` sessions of other coaches and students (bulk copies of a
contract made through the services) and times the smallest size's pages again:
a page must not get slower because the platform holds more of other people's
sessions.

Every SQL statement is counted (and timed) per request by a SQLAlchemy cursor
listener on the app's engine. Every answer is checked: 200, and the booking and
reschedule pages count exactly the slots `free_slots` gives for that week, and
list as many for the day shown as its count says; the schedule lists the right
sessions, in order, with the right counts; the feed holds exactly the expected
events.

Prints, per page, p50 / p99, its p50 over the baseline's (×base), statements
per request and SQL time; per kind of page, the statements against the size
(they must not grow) and how the p50 grows; the same with the others'
sessions; then one line per database (one line; split here):

    <db>: base <ms> ms | ×base booking@<S> <r> reschedule@<S> <r> schedule@<N> <r>
          feed@<N> <r> | +<others> others: worst ×<r> (<page>) | statements constant | OK

and exits non-zero (FAIL in place of OK) if a page did not answer 200 with what
it should show, or a page's statement count grows with the sessions (its
user's or the others'). `--profile` also prints where the largest size of each
kind of page spends its time (cProfile, after the timed rounds).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import itertools
import math
import pstats
import re
import secrets
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.kit import (  # noqa: E402
    BenchError,
    Database,
    StatementCounter,
    add_options,
    database_kinds,
    finish,
    login,
    make_app,
    make_database,
    migrate,
    percentile,
    verdict,
)

SESSION_MINUTES = 30  # every contract's session length here
PER_CONTRACT = 100  # sessions per contract (the most a contract may have)
BUSY_HOURS = (8 * 60, 20 * 60)  # the busy coaches' working window, every day
BUSY_DAYS = 89  # the busy coaches' sessions lie on days 1..89 ahead (the horizon is 90)
WEEK_AHEAD = 7  # the booking and reschedule pages show the week starting this many days out
FEED_SPAN_DAYS = 179  # the feed's sessions: from 90 days back to 89 days ahead
TO_MARK = 3  # the feed owner's last past sessions that still wait for a mark
PROFILE_FETCHES = 5
CROWD_PER_COACH = 500  # the other coaches' sessions each, over 180 days back and 89 ahead
CROWD_PER_CONTRACT = 10
CROWD_STUDENTS_PER_COACH = 5


# --- the data -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Made:
    """A session as written, to know what each page should show."""

    id: int
    starts_at: datetime
    scheduled: bool
    coach_id: int
    student_id: int


@dataclass
class ScheduleExpect:
    """What "My schedule" page 1 (upcoming) should show a user."""

    counts: dict[str, int]
    upcoming: list[int]  # the page's session ids, in order
    to_mark: list[int]


@dataclass
class Pair:
    """One size of the booking pages: a busy coach, a busy student, a contract between them."""

    size: int
    coach_email: str
    student_email: str
    contract_id: int
    moved_session_id: int
    booking_from: date  # the student's week
    reschedule_from: date  # the coach's week
    booking_slots: list[str] = field(default_factory=list)
    reschedule_slots: list[str] = field(default_factory=list)
    coach_in_week: int = 0
    student_in_week: int = 0
    coach_schedule: ScheduleExpect | None = None
    student_schedule: ScheduleExpect | None = None


@dataclass
class FeedOwner:
    size: int
    email: str
    token: str
    event_ids: set[int]
    left_out: int
    schedule: ScheduleExpect | None = None
    etag: str = ""  # the feed's validator, read once before the timed rounds


@dataclass
class World:
    moment: datetime
    password: str
    baseline_contract_id: int
    baseline_email: str
    pairs: list[Pair]
    feeds: list[FeedOwner]
    sessions: int  # every session in the database


class Builder:
    """Writes the data through the app's services (sessions as rows) and keeps what it wrote."""

    def __init__(self, moment: datetime, password: str, prefix: str = "") -> None:
        self.moment = moment
        self.password = password
        self.prefix = prefix
        self.made: list[Made] = []
        self._users = itertools.count(1)

    def user(self, role: str, name: str, zone: str) -> Any:
        from accounts.models import Role
        from accounts.services import create_user

        n = next(self._users)
        return create_user(email=f"{self.prefix}{role}{n}@bench.test", name=f"{name} {n}",
                           password=self.password, role=Role(role), timezone=zone)

    def contract(self, coach: Any, student: Any, sessions: int, title: str) -> Any:
        from contracts import lifecycle
        from contracts.services import accept_proposal, send_proposal

        proposal = send_proposal(
            coach, student_email=student.email, title=title,
            description=f"{sessions} sessions of {SESSION_MINUTES} minutes.",
            session_count=sessions, minutes_per_session=SESSION_MINUTES,
            price_per_session=5000, currency="usd",
        )
        contract = accept_proposal(proposal.id, student)
        lifecycle.mark_paid(contract, paid_at=self.moment, details={}, actor_label="bench")
        return contract

    def sessions(self, contract: Any, plan: list[tuple[datetime, Any]]) -> list[Any]:
        """Write `plan` ((start, status) pairs) as sessions of `contract`."""
        from contracts.models import CoachingSession, SessionStatus
        from extensions import db

        rows = []
        for starts_at, status in plan:
            ends_at = starts_at + timedelta(minutes=SESSION_MINUTES)
            row = CoachingSession(
                contract_id=contract.id, coach_id=contract.coach_id,
                booked_by_id=contract.student_id, starts_at=starts_at, ends_at=ends_at,
                status=status,
            )
            if status is SessionStatus.CANCELLED:
                row.cancelled_by_id = contract.student_id
                row.cancelled_at = min(starts_at - timedelta(days=2), self.moment)
            elif status is not SessionStatus.SCHEDULED:
                row.marked_at = ends_at
            rows.append(row)
        db.session.add_all(rows)
        db.session.flush()
        self.made.extend(
            Made(row.id, row.starts_at, status is SessionStatus.SCHEDULED, contract.coach_id,
                 contract.student_id)
            for row, (_, status) in zip(rows, plan, strict=True)
        )
        return rows

    def sessions_in_contracts(self, coach: Any, student: Any, plan: list[tuple[datetime, Any]],
                              title: str) -> list[Any]:
        """`plan` as sessions of as many contracts between the two as it takes."""
        rows = []
        for number, start in enumerate(range(0, len(plan), PER_CONTRACT), 1):
            chunk = plan[start:start + PER_CONTRACT]
            contract = self.contract(coach, student, len(chunk), f"{title} #{number}")
            rows += self.sessions(contract, chunk)
        return rows

    def schedule_of(self, user_id: int) -> ScheduleExpect:
        """What `scheduling.schedule_page(user, "upcoming", 1)` should list, from what was
        written (not from the app's own queries)."""
        from scheduling.sessions import SCHEDULE_PAGE_SIZE

        mine = [m for m in self.made if user_id in (m.coach_id, m.student_id)]
        upcoming = sorted((m for m in mine if m.scheduled and m.starts_at > self.moment),
                          key=lambda m: (m.starts_at, m.id))
        to_mark = sorted((m for m in mine if m.scheduled and m.starts_at <= self.moment),
                         key=lambda m: (m.starts_at, m.id))
        return ScheduleExpect(
            counts={"upcoming": len(upcoming), "to-mark": len(to_mark),
                    "past": sum(1 for m in mine if not m.scheduled)},
            upcoming=[m.id for m in upcoming[:SCHEDULE_PAGE_SIZE]],
            to_mark=[m.id for m in to_mark[:SCHEDULE_PAGE_SIZE]],
        )


def busy_grid(zone: Any, first_day: date) -> list[datetime]:
    """The busy coach's bookable starts (UTC), day by day: the slots the booking page offers
    on their working hours, before any session takes one."""
    from scheduling.availability import SLOT_STEP_MINUTES, wall_instant

    return [
        wall_instant(first_day + timedelta(days=d), minute, zone)
        for d in range(BUSY_DAYS)
        for minute in range(BUSY_HOURS[0], BUSY_HOURS[1] - SESSION_MINUTES + 1,
                            SLOT_STEP_MINUTES)
    ]


def build_pair(b: Builder, size: int) -> Pair:
    from accounts.timezones import zone_of
    from contracts.models import SessionStatus
    from scheduling import availability

    scheduled = SessionStatus.SCHEDULED
    coach = b.user("coach", "Busy Coach", "Europe/Berlin")
    student = b.user("student", "Busy Student", "America/New_York")
    other_student = b.user("student", "Other Student", "UTC")
    other_coach = b.user("coach", "Other Coach", "UTC")
    availability.save_hours(coach, {weekday: [BUSY_HOURS] for weekday in range(7)})

    zone = zone_of(coach.timezone)
    coach_today = availability.today_of(coach)
    grid = busy_grid(zone, coach_today + timedelta(days=1))
    # The coach's sessions and the student's take alternate slots, evenly spread.
    coach_slots = [i * len(grid) // size for i in range(size)]
    student_slots = [(2 * i + 1) * len(grid) // (2 * size) for i in range(size)]
    taken = set(coach_slots) | set(student_slots)
    if len(taken) != 2 * size or len(grid) - len(taken) < 3:
        raise BenchError(f"{size} sessions each do not fit the busy coach's {len(grid)} slots")
    b.sessions_in_contracts(coach, other_student, [(grid[i], scheduled) for i in coach_slots],
                            f"Busy coach {size}")
    b.sessions_in_contracts(other_coach, student,
                            [(grid[i], scheduled) for i in student_slots],
                            f"Busy student {size}")

    # The contract the pages are about: one session in the week shown (the one to move),
    # two more near the end of the horizon.
    contract = b.contract(coach, student, 10, f"Bench booking {size}")
    moved_at = availability.wall_instant(coach_today + timedelta(days=WEEK_AHEAD + 2), 10 * 60,
                                         zone)
    free = [i for i in range(len(grid)) if i not in taken]
    moved = next(i for i in free if grid[i] >= moved_at)
    [moved_row, *_] = b.sessions(contract, [(grid[i], scheduled) for i in [moved, *free[-2:]]])

    pair = Pair(size=size, coach_email=coach.email, student_email=student.email,
                contract_id=contract.id, moved_session_id=moved_row.id,
                booking_from=availability.today_of(student) + timedelta(days=WEEK_AHEAD),
                reschedule_from=coach_today + timedelta(days=WEEK_AHEAD))
    week_begin = availability.wall_instant(pair.booking_from, 0, zone_of(student.timezone))
    week_end = week_begin + timedelta(days=availability.PICKER_DAYS)
    pair.coach_in_week = sum(week_begin <= grid[i] < week_end for i in coach_slots)
    pair.student_in_week = sum(week_begin <= grid[i] < week_end for i in student_slots)
    pair.coach_schedule = b.schedule_of(coach.id)
    pair.student_schedule = b.schedule_of(student.id)
    return pair


def build_feed_owner(b: Builder, size: int) -> FeedOwner:
    from accounts.services import renew_calendar_token
    from contracts.models import SessionStatus

    coach = b.user("coach", "Feed Coach", "Europe/London")
    student = b.user("student", "Feed Student", "UTC")
    renew_calendar_token(coach)
    quarter = timedelta(minutes=15)
    moment = b.moment
    first = moment.replace(minute=moment.minute - moment.minute % 15) - timedelta(days=90)
    first += 2 * quarter  # within the feed's 90 days, whatever the minute
    quarters = FEED_SPAN_DAYS * 96
    if size > quarters // 2:
        raise BenchError(f"{size} feed sessions do not fit {FEED_SPAN_DAYS} days")
    starts = [first + quarter * (k * quarters // size) for k in range(size)]
    past = [s for s in starts if s <= moment]
    plan = []
    for k, starts_at in enumerate(starts):
        if starts_at <= moment:
            if starts_at in past[-TO_MARK:]:
                status = SessionStatus.SCHEDULED  # took place, waiting for the coach's mark
            else:
                status = (SessionStatus.CANCELLED if k % 20 == 0 else
                          SessionStatus.NO_SHOW if k % 20 == 1 else SessionStatus.COMPLETED)
        else:
            status = SessionStatus.CANCELLED if k % 10 == 0 else SessionStatus.SCHEDULED
        plan.append((starts_at, status))
    in_feed = b.sessions_in_contracts(coach, student, plan, f"Feed {size}")
    # Older sessions, over before the feed's window: the feed leaves them out.
    older = size // 10
    old_first = moment - timedelta(days=200)
    old_plan = [(old_first + quarter * (k * 96 * 100 // max(older, 1)),
                 SessionStatus.COMPLETED) for k in range(older)]
    b.sessions_in_contracts(coach, student, old_plan, f"Feed {size} (older)")
    return FeedOwner(size=size, email=coach.email, token=coach.calendar_token,
                     event_ids={row.id for row in in_feed}, left_out=older,
                     schedule=b.schedule_of(coach.id))


def analyze() -> None:
    """PostgreSQL: refresh the planner's statistics, as autovacuum soon would after a load
    (the app never runs ANALYZE on SQLite, so neither does the benchmark)."""
    from sqlalchemy import text

    from extensions import db

    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("ANALYZE"))
        db.session.commit()


def build_world(app: Any, sizes: list[int], feed_sizes: list[int], moment: datetime) -> World:
    from sqlalchemy import func, select

    from accounts.services import find_user_by_email
    from contracts.models import CoachingSession, Contract
    from extensions import db
    from scheduling import availability

    b = Builder(moment, secrets.token_urlsafe(16))
    with app.app_context(), app.test_request_context(base_url=app.config["APP_BASE_URL"]):
        pairs = [build_pair(b, size) for size in sizes]
        feeds = [build_feed_owner(b, size) for size in feed_sizes]
        # The baseline: a contract of the smallest pair with no session, seen by its student.
        student = find_user_by_email(pairs[0].student_email)
        baseline = b.contract(find_user_by_email(pairs[0].coach_email), student, 4,
                              "Bench baseline")
        db.session.commit()
        analyze()

        # What the booking and reschedule pages should offer: the app's own free_slots for
        # the week each viewer sees (the clock is frozen: it cannot change meanwhile).
        for pair in pairs:
            contract = db.session.get(Contract, pair.contract_id)
            pair.booking_slots = [slot.value for slot in availability.free_slots(
                contract, from_day=pair.booking_from, days=availability.PICKER_DAYS,
                zone=contract.student.timezone)]
            pair.reschedule_slots = [slot.value for slot in availability.free_slots(
                contract, from_day=pair.reschedule_from, days=availability.PICKER_DAYS,
                exclude_session_id=pair.moved_session_id, zone=contract.coach.timezone)]
        world = World(moment=moment, password=b.password, baseline_contract_id=baseline.id,
                      baseline_email=student.email, pairs=pairs, feeds=feeds,
                      sessions=db.session.scalar(
                          select(func.count()).select_from(CoachingSession)) or 0)
        db.session.remove()
    return world


def crowd(app: Any, others: int, moment: datetime) -> int:
    """Add `others` sessions of other coaches and students, none of them the measured users',
    so the pages run on a platform's worth of rows; the sessions in the database after.

    One contract is made through the services; the rest are copies of its rows (and of its
    users' rows), written in bulk with ids and times of their own: ten thousand contracts
    through the services would time the set-up, not the pages. Past sessions are completed
    (one in ten cancelled), later ones scheduled (one in ten cancelled).
    """
    from sqlalchemy import func, insert, select

    from accounts.models import User
    from contracts.models import CoachingSession, Contract, Proposal, SessionStatus
    from extensions import db

    def row_of(table: Any, row_id: int) -> dict[str, Any]:
        found = dict(db.session.execute(select(table).where(table.c.id == row_id)).mappings()
                     .one())
        del found["id"]
        return found

    def inserted(table: Any, rows: list[dict[str, Any]]) -> list[int]:
        statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        return list(db.session.execute(statement, rows).scalars())

    b = Builder(moment, secrets.token_urlsafe(16), prefix="crowd-")
    with app.app_context(), app.test_request_context(base_url=app.config["APP_BASE_URL"]):
        users, proposals, contracts, sessions = (
            model.__table__ for model in (User, Proposal, Contract, CoachingSession))
        coach = b.user("coach", "Crowd Coach", "UTC")
        student = b.user("student", "Crowd Student", "UTC")
        template = b.contract(coach, student, CROWD_PER_CONTRACT, "Crowd")
        coach_row, student_row = row_of(users, coach.id), row_of(users, student.id)
        proposal_row, contract_row = (row_of(proposals, template.proposal_id),
                                      row_of(contracts, template.id))
        coaches = math.ceil(others / CROWD_PER_COACH)
        coach_ids = inserted(users, [
            {**coach_row, "email": f"crowd-c{j}@bench.test", "name": f"Crowd Coach {j}"}
            for j in range(coaches)])
        student_ids = inserted(users, [
            {**student_row, "email": f"crowd-s{j}@bench.test", "name": f"Crowd Student {j}"}
            for j in range(coaches * CROWD_STUDENTS_PER_COACH)])

        quarter = timedelta(minutes=15)
        first = moment.replace(minute=moment.minute - moment.minute % 15) - timedelta(days=180)
        quarters = (180 + BUSY_DAYS) * 96
        plan: list[tuple[int, int, datetime]] = []  # (coach id, student id, start)
        for j, coach_id in enumerate(coach_ids):
            count = min(CROWD_PER_COACH, others - j * CROWD_PER_COACH)
            offset = j * 7 % max(quarters // CROWD_PER_COACH, 1)  # not all at the same hours
            for k in range(count):
                contract_number = k // CROWD_PER_CONTRACT
                student_id = student_ids[(j * CROWD_STUDENTS_PER_COACH + contract_number)
                                         % len(student_ids)]
                plan.append((coach_id, student_id,
                             first + quarter * (offset + k * quarters // CROWD_PER_COACH)))
        pairs = [(coach_id, student_id) for coach_id, student_id, _ in
                 plan[::CROWD_PER_CONTRACT]]
        proposal_ids = inserted(proposals, [
            {**proposal_row, "coach_id": c, "student_id": st} for c, st in pairs])
        contract_ids = inserted(contracts, [
            {**contract_row, "coach_id": c, "student_id": st, "proposal_id": pid}
            for (c, st), pid in zip(pairs, proposal_ids, strict=True)])
        rows = []
        for k, (coach_id, student_id, starts_at) in enumerate(plan):
            cancelled = k % 10 == 0
            status = (SessionStatus.CANCELLED if cancelled else
                      SessionStatus.COMPLETED if starts_at <= moment else SessionStatus.SCHEDULED)
            ends_at = starts_at + timedelta(minutes=SESSION_MINUTES)
            rows.append({
                "contract_id": contract_ids[k // CROWD_PER_CONTRACT], "coach_id": coach_id,
                "booked_by_id": student_id, "starts_at": starts_at, "ends_at": ends_at,
                "status": status, "cancelled_by_id": student_id if cancelled else None,
                "cancelled_at": min(starts_at, moment) - timedelta(days=2) if cancelled else None,
                "marked_at": ends_at if status is SessionStatus.COMPLETED else None,
            })
        for start in range(0, len(rows), 5000):
            db.session.execute(insert(sessions), rows[start:start + 5000])
        db.session.commit()
        analyze()
        total = db.session.scalar(select(func.count()).select_from(CoachingSession)) or 0
        db.session.remove()
    return total


# --- the pages ----------------------------------------------------------------------------

# The booking picker: each day of the week with its count of free times, and the times
# of the day shown (the picked day, aria-current) as links carrying their slot.
DAY_COUNT = re.compile(r'<span class="cp-day-count">(\d+) free')
PICKED_DAY_COUNT = re.compile(
    r'aria-current="true">\s*<span class="cp-day-name">.*?<span class="cp-day-count">(\d+) free',
    re.S)
SLOT_LINK = re.compile(r'<a class="cp-slot[^"]*" id="[^"]+" data-slot="([^"]+)"')
SESSION_ROW = re.compile(r'<li class="list-group-item cp-session" id="session-(\d+)"')
UID = re.compile(r"^UID:coaching-session-(\d+)@coachpact\r?$", re.M)

Check = Callable[[int, str, str], str | None]  # (status, content type, body) -> problem


@dataclass
class Page:
    name: str
    kind: str  # pages of a kind are compared across sizes
    size: int | None  # the sessions that grow; None for the baseline
    client: Any
    path: str
    check: Check
    fresh_address: bool = False  # each fetch from its own client address (the feed)
    headers: dict[str, str] | None = None  # request headers (a calendar app's If-None-Match)
    latencies_ms: list[float] = field(default_factory=list)
    statements: list[int] = field(default_factory=list)
    sql_ms: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    size_bytes: int = 0
    shown: str = ""  # what the page showed, in a few words

    def percentile(self, p: float) -> float:
        return percentile(self.latencies_ms, p)


def ok_page(*needles: str) -> Check:
    def check(status: int, _: str, body: str) -> str | None:
        if status != 200:
            return f"answered {status}"
        missing = [n for n in needles if n not in body]
        return f"missing {missing}" if missing else None
    return check


def slots_check(form_id: str, expected: list[str]) -> Check:
    """The page's week counts exactly the slots `free_slots` gives for it, and the day
    shown lists as many of them as its count says, none other."""
    want = sorted(expected)

    def check(status: int, _: str, body: str) -> str | None:
        if status != 200:
            return f"answered {status}"
        if f'id="{form_id}"' not in body:
            return f"no #{form_id} (refused: {'reschedule-refused' in body})"
        counted = sum(int(n) for n in DAY_COUNT.findall(body))
        if counted != len(want):
            return f"the days count {counted} free times, free_slots gives {len(want)}"
        shown = SLOT_LINK.findall(body)
        picked = PICKED_DAY_COUNT.search(body)
        extra = sorted(set(shown) - set(want))
        if extra or (want and (not picked or int(picked.group(1)) != len(shown))):
            return (f"{len(shown)} times shown for the day, its count says "
                    f"{picked.group(1) if picked else 'nothing'} (extra {extra[:3]})")
        return None
    return check


def listed_ids(body: str, list_id: str) -> list[int]:
    found = re.search(rf'<ul class="list-group list-group-flush" id="{list_id}">(.*?)</ul>',
                      body, re.S)
    return [int(i) for i in SESSION_ROW.findall(found.group(1))] if found else []


def schedule_check(expected: ScheduleExpect) -> Check:
    def check(status: int, _: str, body: str) -> str | None:
        if status != 200:
            return f"answered {status}"
        wrong = []
        for tab, count in expected.counts.items():
            badge = re.search(rf'id="tab-{tab}".*?<span class="badge[^"]*">(\d+)<', body, re.S)
            if badge is None or int(badge.group(1)) != count:
                wrong.append(f"{tab} count {badge and badge.group(1)} (written: {count})")
        for list_id, ids in (("schedule-upcoming", expected.upcoming),
                             ("schedule-to-mark", expected.to_mark)):
            shown = listed_ids(body, list_id)
            if shown != ids:
                wrong.append(f"#{list_id} lists {len(shown)} sessions {shown[:3]}..., "
                             f"written {len(ids)} {ids[:3]}...")
        return "; ".join(wrong) or None
    return check


def unchanged_check(etag: str) -> Check:
    """A calendar app polling an unchanged feed: 304, its validator, no body."""
    def check(status: int, _: str, body: str) -> str | None:
        if status != 304:
            return f"answered {status}, not 304"
        return f"a body of {len(body)} characters" if body else None
    return check


def feed_check(expected: set[int]) -> Check:
    def check(status: int, content_type: str, body: str) -> str | None:
        if status != 200:
            return f"answered {status}"
        if not content_type.startswith("text/calendar"):
            return f"content type {content_type!r}"
        events = body.count("BEGIN:VEVENT")
        uids = {int(i) for i in UID.findall(body)}
        if events != len(expected) or uids != expected:
            return (f"{events} events, {len(uids)} uids; written {len(expected)} "
                    f"({len(uids - expected)} extra, {len(expected - uids)} missing)")
        return None
    return check


_addresses = itertools.count(1)


def next_address() -> str:
    n = next(_addresses)
    return f"10.{n // 62500 % 250}.{n // 250 % 250}.{n % 250 + 1}"


def logged_in(app: Any, email: str, password: str) -> Any:
    """A test client logged in as `email` through the login form (its own address, so the
    login limit of a single address is never reached)."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = next_address()
    login(client, email, password)
    return client


def build_pages(app: Any, world: World) -> list[Page]:
    clients: dict[str, Any] = {}

    def as_user(email: str) -> Any:
        if email not in clients:
            clients[email] = logged_in(app, email, world.password)
        return clients[email]

    base = as_user(world.baseline_email)
    pages = [
        Page("contract page (baseline)", "baseline", None, base,
             f"/contracts/{world.baseline_contract_id}", ok_page("Bench baseline")),
        Page("healthz", "healthz", None, base, "/healthz", ok_page('"status":"ok"')),
    ]
    for pair in world.pairs:
        student, coach = as_user(pair.student_email), as_user(pair.coach_email)
        assert pair.coach_schedule and pair.student_schedule
        pages += [
            Page(f"booking {pair.size}", "booking (student)", pair.size, student,
                 f"/contracts/{pair.contract_id}/schedule?from={pair.booking_from.isoformat()}",
                 slots_check("book-form", pair.booking_slots),
                 shown=f"{len(pair.booking_slots)} slots; in the week: coach "
                       f"{pair.coach_in_week}, student {pair.student_in_week} sessions"),
            Page(f"reschedule {pair.size}", "reschedule (coach)", pair.size, coach,
                 f"/sessions/{pair.moved_session_id}/reschedule"
                 f"?from={pair.reschedule_from.isoformat()}",
                 slots_check("reschedule-form", pair.reschedule_slots),
                 shown=f"{len(pair.reschedule_slots)} slots"),
            Page(f"my schedule coach {pair.size}", "my schedule (busy coach)", pair.size, coach,
                 "/schedule", schedule_check(pair.coach_schedule),
                 shown=f"{pair.coach_schedule.counts['upcoming']} upcoming"),
            Page(f"my schedule student {pair.size}", "my schedule (busy student)", pair.size,
                 student, "/schedule", schedule_check(pair.student_schedule),
                 shown=f"{pair.student_schedule.counts['upcoming']} upcoming"),
        ]
    feed_client = app.test_client()
    for owner in world.feeds:
        assert owner.schedule
        # What a calendar app keeps from its last fetch: the feed's validator.
        first = feed_client.get(f"/calendar/{owner.token}.ics",
                                environ_overrides={"REMOTE_ADDR": next_address()})
        owner.etag = first.headers.get("ETag", "")
        pages += [
            # The feed allows 60 fetches a minute per address; each fetch comes from an
            # address of its own, so the limiter still runs but never answers 429.
            Page(f"feed {owner.size}", "calendar feed", owner.size, feed_client,
                 f"/calendar/{owner.token}.ics", feed_check(owner.event_ids), fresh_address=True,
                 shown=f"{len(owner.event_ids)} events, {owner.left_out} older left out"),
            Page(f"feed {owner.size} unchanged", "calendar feed (unchanged)", owner.size,
                 feed_client, f"/calendar/{owner.token}.ics", unchanged_check(owner.etag),
                 fresh_address=True, headers={"If-None-Match": owner.etag},
                 shown="304 Not Modified"),
            Page(f"my schedule feed {owner.size}", "my schedule (feed owner)", owner.size,
                 as_user(owner.email), "/schedule", schedule_check(owner.schedule),
                 shown=f"{owner.schedule.counts['upcoming']} upcoming, "
                       f"{owner.schedule.counts['to-mark']} to mark, "
                       f"{owner.schedule.counts['past']} past"),
        ]
    return pages


def fetch(page: Page, counter: StatementCounter, *, timed: bool) -> None:
    extra = {"REMOTE_ADDR": next_address()} if page.fresh_address else None
    counter.reset()
    started = time.perf_counter()
    answer = page.client.get(page.path, environ_overrides=extra, headers=page.headers)
    body = answer.get_data()
    elapsed = time.perf_counter() - started
    statements, sql_seconds = counter.statements, counter.seconds
    problem = page.check(answer.status_code, answer.content_type or "",
                         body.decode("utf-8", errors="replace"))
    if problem and problem not in page.problems:
        page.problems.append(problem)
    if timed:
        page.latencies_ms.append(elapsed * 1000)
        page.statements.append(statements)
        page.sql_ms.append(sql_seconds * 1000)
        page.size_bytes = len(body)


@contextmanager
def frozen(moment: datetime) -> Iterator[None]:
    import clock

    clock.freeze(moment)
    try:
        yield
    finally:
        clock.reset()


def profile(pages: list[Page], counter: StatementCounter) -> None:
    """Where the largest size of each kind of page spends its time."""
    largest: dict[str, Page] = {}
    for page in pages:
        if page.size is not None and (page.kind not in largest
                                      or page.size > (largest[page.kind].size or 0)):
            largest[page.kind] = page
    # The app's own files: under the project, not in its virtualenv.
    project = re.escape(str(ROOT)) + r"/(?!\.venv)"
    for page in largest.values():
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(PROFILE_FETCHES):
            fetch(page, counter, timed=False)
        profiler.disable()
        for order, title, restrict in (("tottime", "own time, anywhere", ()),
                                       ("cumulative", "cumulative, the app's code", (project,))):
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            if not restrict:
                stats.strip_dirs()  # library paths are long; the file names say enough
            stats.sort_stats(order).print_stats(*restrict, 14)
            lines = out.getvalue().splitlines()
            start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
            print(f"\n  -- profile: {page.name}, {PROFILE_FETCHES} fetches, {title} --")
            for line in lines[start:]:
                if line.strip():
                    print("  " + line.replace(str(ROOT) + "/", "")[:150])


# --- the run ------------------------------------------------------------------------------


@dataclass
class Result:
    kind: str
    pages: list[Page] = field(default_factory=list)
    # The smallest size's pages again once the platform holds other users' sessions.
    crowded: list[tuple[Page, Page]] = field(default_factory=list)  # (alone, crowded)
    others: int = 0  # the other users' sessions added
    crowded_sessions: int = 0  # every session in the database then
    growing: list[str] = field(default_factory=list)  # kinds whose statements grow
    failures: list[str] = field(default_factory=list)
    skipped: str | None = None

    @property
    def base_ms(self) -> float:
        return base_of(self.pages)

    @property
    def crowded_base_ms(self) -> float:
        return base_of([crowded for _, crowded in self.crowded])


def base_of(pages: list[Page]) -> float:
    base = next((p for p in pages if p.kind == "baseline"), None)
    return base.percentile(50) if base else math.nan


def alone_ratio(result: Result, page: Page) -> float:
    return page.percentile(50) / result.base_ms


def crowded_ratio(result: Result, page: Page) -> float:
    return page.percentile(50) / result.crowded_base_ms


def crowd_factor(result: Result, alone: Page, crowded: Page) -> float:
    """How much heavier the page got, relative to the baseline, with the others' sessions."""
    return crowded_ratio(result, crowded) / alone_ratio(result, alone)


def statements_shown(page: Page) -> str:
    return ",".join(str(s) for s in sorted(set(page.statements))) or "-"


def time_pages(pages: list[Page], counter: StatementCounter, args: argparse.Namespace) -> None:
    started = time.perf_counter()
    print(f"  timing {len(pages)} pages: {args.warmup} untimed rounds, then {args.repeat} timed "
          "ones (the pages take turns)", flush=True)
    for round_number in range(args.warmup + args.repeat):
        for page in pages:
            fetch(page, counter, timed=round_number >= args.warmup)
    print(f"  timed in {time.perf_counter() - started:.1f} s", flush=True)


def fresh(page: Page) -> Page:
    return replace(page, latencies_ms=[], statements=[], sql_ms=[], problems=[])


def bench_database(db: Database, args: argparse.Namespace, workdir: Path) -> Result:
    from extensions import db as database

    result = Result(db.kind)
    # Jobs queued to a file nobody reads (no page enqueues any), mail suppressed, the rate
    # limiter in memory.
    app = make_app(db.uri, REDIS_URL=None, JOBS_IMMEDIATE=False,
                   JOBS_SQLITE_PATH=str(workdir / f"jobs-{db.kind}.sqlite3"),
                   RATELIMIT_STORAGE_URI="memory://", MAIL_BACKEND="locmem")
    started = time.perf_counter()
    migrate(app)
    moment = datetime.now(UTC).replace(second=0, microsecond=0)
    with frozen(moment):
        world = build_world(app, args.sizes, args.feed_sizes, moment)
        print(f"  migrated and built in {time.perf_counter() - started:.1f} s: "
              f"{world.sessions} sessions in all; clock frozen at {moment:%Y-%m-%d %H:%M} UTC",
              flush=True)
        pages = result.pages = build_pages(app, world)
        with app.app_context():
            counter = StatementCounter(database.engine)
        try:
            time_pages(pages, counter, args)
            report(result)
            if args.profile:
                profile(pages, counter)
            if args.others:
                started = time.perf_counter()
                result.others = args.others
                result.crowded_sessions = crowd(app, args.others, moment)
                print(f"\n  added {args.others} sessions of other coaches and students in "
                      f"{time.perf_counter() - started:.1f} s: {result.crowded_sessions} "
                      "sessions in all; the smallest size's pages again:", flush=True)
                smallest = {}
                for page in pages:
                    if page.size is None or page.size < smallest.get(page.kind, (math.inf,))[0]:
                        smallest[page.kind] = (page.size or 0, page)
                result.crowded = [(page, fresh(page)) for _, page in smallest.values()]
                time_pages([crowded for _, crowded in result.crowded], counter, args)
                report_crowded(result)
        finally:
            counter.close()
    with app.app_context():
        database.session.remove()
        database.engine.dispose()
    return result


def page_row(page: Page, base_ms: float) -> str:
    sql = statistics.median(page.sql_ms) if page.sql_ms else math.nan
    shows = "; ".join(page.problems) if page.problems else f"ok: {page.shown}".rstrip(": ")
    return (f"{page.percentile(50):7.1f} {page.percentile(99):7.1f} "
            f"{page.percentile(50) / base_ms:7.2f} {statements_shown(page):>6} {sql:7.1f} "
            f"{page.size_bytes / 1024:6.0f}  {shows}")


def check_answers(result: Result, pages: list[Page], when: str = "") -> None:
    for page in pages:
        if page.problems or not page.latencies_ms:
            result.failures.append(f"{page.name}{when}: "
                                   + ("; ".join(page.problems) or "not timed"))


def report(result: Result) -> None:
    pages = result.pages
    print(f"\n  {'page':<26} {'p50 ms':>7} {'p99 ms':>7} {'×base':>7} {'stmts':>6} "
          f"{'sql ms':>7} {'KB':>6}  shows / problems")
    for page in pages:
        print(f"  {page.name:<26} {page_row(page, result.base_ms)}")
    check_answers(result, pages)

    print("\n  statements per request against the sessions (they must not grow), and the p50:")
    kinds: dict[str, list[Page]] = {}
    for page in pages:
        if page.size is not None:
            kinds.setdefault(page.kind, []).append(page)
    for kind, group in kinds.items():
        group.sort(key=lambda p: p.size or 0)
        first, last = group[0], group[-1]
        fewest = min(first.statements, default=0)
        grows = any(max(p.statements, default=0) > fewest for p in group)
        if grows:
            result.growing.append(kind)
        counts = "  ".join(f"{p.size}: {statements_shown(p)}" for p in group)
        growth = last.percentile(50) / first.percentile(50)
        print(f"  {kind:<27} {counts:<30} {'GROW' if grows else 'constant':<8}  p50 "
              f"×{growth:.2f} from {first.size} to {last.size} sessions")
    if result.growing:
        result.failures.append("statements grow with the sessions: " + ", ".join(result.growing))
    print("  statements per page do not grow with the number of sessions: "
          + ("NO (" + ", ".join(result.growing) + ")" if result.growing else "yes"))


def report_crowded(result: Result) -> None:
    print(f"\n  {'page':<26} {'p50 ms':>7} {'p99 ms':>7} {'×base':>7} {'stmts':>6} "
          f"{'sql ms':>7} {'KB':>6}  shows / problems")
    grew = []
    for alone, crowded in result.crowded:
        print(f"  {crowded.name:<26} {page_row(crowded, result.crowded_base_ms)}")
        if max(crowded.statements, default=0) > min(alone.statements, default=0):
            grew.append(crowded.kind)
    check_answers(result, [crowded for _, crowded in result.crowded], " (crowded)")
    print("\n  with the other sessions against without (same pages, same users; each p50 over "
          "its own phase's baseline, so a busier machine in one phase does not count):")
    for alone, crowded in result.crowded:
        print(f"  {crowded.name:<26} {alone.percentile(50):7.1f} ms "
              f"×{alone_ratio(result, alone):.2f} -> {crowded.percentile(50):7.1f} ms "
              f"×{crowded_ratio(result, crowded):.2f}: ×{crowd_factor(result, alone, crowded):.2f}")
    if grew:
        result.growing += [f"{kind} (crowded)" for kind in grew]
        result.failures.append("statements grow with other users' sessions: " + ", ".join(grew))
    print("  statements per page do not grow with other users' sessions: "
          + ("NO (" + ", ".join(grew) + ")" if grew else "yes"))


def summary(result: Result) -> str:
    if result.skipped:
        return f"{result.kind}: skipped ({result.skipped})"
    sized = [p for p in result.pages if p.size is not None]

    def worst(prefix: str, label: str) -> str:
        group = [p for p in sized if p.kind.startswith(prefix)]
        if not group:
            return f"{label}@- nan"
        size = max(p.size or 0 for p in group)
        ratio = max(p.percentile(50) for p in group if p.size == size) / result.base_ms
        return f"{label}@{size} {ratio:.2f}"

    crowded = "crowd not run"
    pairs = [(a, c) for a, c in result.crowded if a.size is not None]
    if pairs:
        alone, most = max(pairs, key=lambda pair: crowd_factor(result, *pair))
        crowded = (f"+{result.others} others: worst ×{crowd_factor(result, alone, most):.2f} "
                   f"({most.name})")
    statements = "statements grow" if result.growing else "statements constant"
    return (f"{result.kind}: base {result.base_ms:.1f} ms | ×base {worst('booking', 'booking')} "
            f"{worst('reschedule', 'reschedule')} {worst('my schedule', 'schedule')} "
            f"{worst('calendar feed', 'feed')} | {crowded} | {statements} | "
            f"{verdict(not result.failures)}")


def sizes(text: str) -> list[int]:
    values = sorted({int(part) for part in text.split(",") if part.strip()})
    if not values or values[0] < 1:
        raise argparse.ArgumentTypeError("comma-separated positive whole numbers")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=sizes, default=[10, 100, 1000],
                        help="the busy coach's and student's sessions, each (at most 1000)")
    parser.add_argument("--feed-sizes", type=sizes, default=[100, 1000, 5000],
                        help="the sessions in a feed owner's calendar feed (at most 8000)")
    parser.add_argument("--others", type=int, default=100_000,
                        help="then other users' sessions to add, to time the smallest size's "
                             "pages again (0: not)")
    add_options(parser, smoke="10 sessions, a feed of 50, 200 others, 2 rounds",
                databases=True, rounds=True)
    parser.add_argument("--profile", action="store_true",
                        help="also print where the largest size of each page spends its time")
    args = parser.parse_args(argv)
    if args.smoke:
        args.sizes, args.feed_sizes, args.others = [10], [50], 200
        args.repeat, args.warmup = 2, 1
    kinds = database_kinds(parser, args)
    if args.repeat < 1 or args.warmup < 0 or args.others < 0:
        parser.error("--repeat ≥ 1, --warmup ≥ 0, --others ≥ 0")
    if args.sizes[-1] > 1000 or args.feed_sizes[-1] > 8000:
        parser.error("--sizes at most 1000, --feed-sizes at most 8000")

    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="coachpact-bench-scheduling-") as tmp:
        workdir = Path(tmp)
        for kind in kinds:
            print(f"\n== scheduling pages, {kind} ==", flush=True)
            try:
                db = make_database(kind, workdir, args.pg_url, "coachpact_bench_scheduling")
            except BenchError as exc:
                print(f"  skipped: {exc}", flush=True)
                results.append(Result(kind, skipped=str(exc)))
                continue
            try:
                results.append(bench_database(db, args, workdir))
            except Exception as exc:  # noqa: BLE001 (any failure ends the pass with FAIL)
                if isinstance(exc, BenchError):
                    print(f"  !!! failed: {exc}", flush=True)
                else:
                    traceback.print_exc()
                results.append(Result(kind, failures=[f"{type(exc).__name__}: {exc}"]))
            finally:
                db.drop()
    return finish([summary(r) for r in results], [f for r in results for f in r.failures])


if __name__ == "__main__":
    sys.exit(main())
