"""One coaching session as an iCalendar (.ics) file, made with the icalendar library."""

from __future__ import annotations

from icalendar import Calendar, Event

from contracts.models import CoachingSession, SessionStatus

PRODID = "-//Coachpact//Coaching sessions//EN"


def session_uid(booked: CoachingSession) -> str:
    # Stable for the session's whole life, so a calendar that imports the file
    # again (after a cancellation, say) updates its event instead of adding one.
    return f"coaching-session-{booked.id}@coachpact"


def session_calendar(booked: CoachingSession, *, link: str) -> bytes:
    """The session as a VCALENDAR with one VEVENT; its times are UTC (the Z form)."""
    contract = booked.contract
    cancelled = booked.status is SessionStatus.CANCELLED
    lines = [
        f"Coaching session {contract.minutes_per_session} min: “{contract.title}”.",
        f"Coach: {contract.coach.name}. Student: {contract.student.name}.",
    ]
    if booked.note:
        lines.append(f"Note: {booked.note}")
    lines.append(f"Details: {link}")

    event = Event()
    event.add("uid", session_uid(booked))
    event.add("dtstamp", booked.updated_at)
    event.add("dtstart", booked.starts_at)
    event.add("dtend", booked.ends_at)
    event.add("summary", f"{contract.title} with {contract.coach.name} and {contract.student.name}")
    event.add("description", "\n".join(lines))
    event.add("url", link)
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    # A cancelled session is a newer version of the same event.
    event.add("sequence", 1 if cancelled else 0)

    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    calendar.add_component(event)
    return calendar.to_ical()
