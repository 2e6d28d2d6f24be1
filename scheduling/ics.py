"""Coaching sessions as iCalendar: one session's .ics file and a user's calendar feed.

Both are built from one VEVENT per session (`session_event`), so a session looks the
same in a downloaded file and in a subscribed feed, and a calendar holding both copies
sees one event (the same UID) that later versions (a higher SEQUENCE) replace.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from functools import lru_cache
from urllib.parse import urlsplit

from icalendar import Calendar, Event
from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import joinedload

from accounts.models import User
from clock import now
from contracts.models import CoachingSession, Contract, SessionStatus
from contracts.services import party_filter
from extensions import db

PRODID = "-//Coachpact//Coaching sessions//EN"
# Sessions that are over stay in the feed this long, so the recent past is still there
# to look back on while the feed stays small.
FEED_PAST_DAYS = 90


def web_address(place: str | None) -> str | None:
    """`place` when it is an http(s) address with a host (it may become a link), else None.

    Only these two schemes are ever turned into links or join URLs: anything else
    (a street address, `javascript:`, `data:`) stays plain text.
    """
    if not place:
        return None
    parts = urlsplit(place.strip())
    if parts.scheme.lower() in ("http", "https") and parts.netloc:
        return place.strip()
    return None


def session_uid(booked: CoachingSession) -> str:
    # Stable for the session's whole life, so a calendar that imports the file
    # again (after a cancellation, say) updates its event instead of adding one.
    return f"coaching-session-{booked.id}@coachpact"


def session_event(booked: CoachingSession, *, link: str) -> bytes:
    """The session as one VEVENT's text; `link` is the address of its contract's page.

    Times are UTC (the Z form). SEQUENCE is the session's own counter, which the
    scheduling code raises at every reschedule and cancellation.
    """
    contract = booked.contract
    return _event_text(
        uid=session_uid(booked),
        stamp=booked.updated_at,
        starts=booked.starts_at,
        ends=booked.ends_at,
        title=contract.title,
        minutes=contract.minutes_per_session,
        coach=contract.coach.name,
        student=contract.student.name,
        place=booked.where,
        note=booked.note,
        cancelled=booked.status is SessionStatus.CANCELLED,
        sequence=booked.sequence,
        link=link,
    )


# Rendering an event with icalendar costs about 0.3 ms; a feed of thousands of sessions
# fetched again after one of them changed renders only that one. The cache is keyed by
# everything the text is made of, so an entry is never stale: a change to the session,
# its contract or a party's name makes a new key, and the old entry ages out.
EVENT_CACHE_SIZE = 20_000


@lru_cache(maxsize=EVENT_CACHE_SIZE)
def _event_text(
    *,
    uid: str,
    stamp: datetime,
    starts: datetime,
    ends: datetime,
    title: str,
    minutes: int,
    coach: str,
    student: str,
    place: str | None,
    note: str | None,
    cancelled: bool,
    sequence: int,
    link: str,
) -> bytes:
    join = web_address(place)
    lines = [
        f"Coaching session {minutes} min: “{title}”.",
        f"Coach: {coach}. Student: {student}.",
    ]
    if join:
        lines.append(f"Join: {join}")
    elif place:
        lines.append(f"Where: {place}")
    if note:
        lines.append(f"Note: {note}")
    lines.append(f"Details: {link}")

    event = Event()
    event.add("uid", uid)
    event.add("dtstamp", stamp)
    event.add("dtstart", starts)
    event.add("dtend", ends)
    event.add("summary", f"{title} with {coach} and {student}")
    event.add("description", "\n".join(lines))
    if place:
        event.add("location", place)
    event.add("url", join or link)
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("sequence", sequence)
    return event.to_ical()


def _calendar(events: Iterable[bytes], **properties: str) -> bytes:
    """A VCALENDAR around the given VEVENT texts (as `Calendar.to_ical` would join them)."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    for name, value in properties.items():
        calendar.add(name, value)
    head, end, tail = calendar.to_ical().rpartition(b"END:VCALENDAR")
    return b"".join((head, *events, end, tail))


def session_calendar(booked: CoachingSession, *, link: str) -> bytes:
    """The session as a VCALENDAR with one VEVENT (the .ics download)."""
    return _calendar([session_event(booked, link=link)])


# --- the private feed ---------------------------------------------------------------


def feed_owner(token: str) -> User | None:
    """The user whose calendar feed address holds `token`; None for an unknown or reset one.

    The token is the feed's only credential. It is looked up through its unique index,
    so the time taken tells nothing about how much of a guess was right.
    """
    if not token or len(token) > 64:
        return None
    return db.session.scalar(select(User).where(User.calendar_token == token))


def feed_sessions(user: User) -> list[CoachingSession]:
    """The user's sessions for their feed, as coach or student: every scheduled one, and
    the completed, missed and cancelled ones that started in the last FEED_PAST_DAYS.

    One query loads the sessions with their contracts and both parties.
    """
    return list(
        db.session.scalars(
            select(CoachingSession)
            .join(Contract, CoachingSession.contract_id == Contract.id)
            .where(*_in_feed(user))
            .options(
                joinedload(CoachingSession.contract).joinedload(Contract.coach),
                joinedload(CoachingSession.contract).joinedload(Contract.student),
            )
            .order_by(CoachingSession.starts_at, CoachingSession.id)
        )
    )


def _in_feed(user: User) -> tuple[ColumnElement[bool], ...]:
    since = now() - timedelta(days=FEED_PAST_DAYS)
    return (
        party_filter(Contract, user),
        or_(CoachingSession.status == SessionStatus.SCHEDULED, CoachingSession.starts_at >= since),
    )


def feed_version(user: User) -> str:
    """A validator (ETag) of the user's feed, from one aggregate query.

    It changes whenever an event would: a session joins or leaves the feed (the count),
    or a session or its contract changes (booked, moved, cancelled, marked, a new
    meeting place: their `updated_at`). Calendar apps poll the feed often; an unchanged
    feed then costs this query and a 304 instead of rendering every event (about
    0.3 ms each, `bench/scheduling.py`). A party renaming themselves shows at the next
    change of a session.
    """
    count, sessions_changed, contracts_changed = db.session.execute(
        select(
            func.count(CoachingSession.id),
            func.max(CoachingSession.updated_at),
            func.max(Contract.updated_at),
        )
        .join(Contract, CoachingSession.contract_id == Contract.id)
        .where(*_in_feed(user))
    ).one()
    seed = f"{user.id}:{user.name}:{count}:{sessions_changed}:{contracts_changed}"
    return hashlib.sha256(seed.encode()).hexdigest()[:32]


def feed_calendar(
    user: User, sessions: Iterable[CoachingSession], *, link_for: Callable[[int], str]
) -> bytes:
    """The user's feed as one VCALENDAR; `link_for(contract_id)` gives each contract's page."""
    return _calendar(
        (session_event(booked, link=link_for(booked.contract_id)) for booked in sessions),
        **{"x-wr-calname": f"Coachpact — {user.name}"},
    )
