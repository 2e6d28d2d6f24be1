"""Wall-clock times in a user's own zone, and back to the UTC the database keeps.

Every time is stored in UTC. A person types and reads times in their own IANA
zone (`User.timezone`); these helpers are the only place the two meet.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DISPLAY_FORMAT = "%d %b %Y, %H:%M %Z"
# Sessions are read as appointments: the weekday helps.
SESSION_FORMAT = "%a %d %b %Y, %H:%M %Z"


class NonexistentLocalTime(ValueError):
    """A wall-clock time the zone skips (the spring-forward gap); the message is for the user."""


def zone_of(name: str | None) -> ZoneInfo:
    """The zone called `name`, or UTC for an empty or unknown name."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_to_utc(day: date, at: time, zone_name: str) -> datetime:
    """The UTC instant of `day` `at` o'clock on the wall clocks of `zone_name`.

    A time skipped by a daylight-saving change does not exist and is refused.
    A time that happens twice (the autumn fall-back hour) is read as its first
    occurrence, still on summer time (PEP 495's fold=0); pages show the zone's
    abbreviation beside every time, so the reading is visible.
    """
    zone = zone_of(zone_name)
    wall = datetime.combine(day, at.replace(tzinfo=None, fold=0))
    instant = wall.replace(tzinfo=zone).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) != wall:
        raise NonexistentLocalTime(
            f"{wall:%d %b %Y, %H:%M} does not exist in {zone.key}: the clocks skip that "
            "hour for daylight saving. Pick a time outside the change."
        )
    return instant


def to_local(moment: datetime, zone_name: str | None) -> datetime:
    return moment.astimezone(zone_of(zone_name))


def format_local(moment: datetime | None, zone_name: str | None, fmt: str = DISPLAY_FORMAT) -> str:
    """`moment` (aware) as read on the wall clocks of `zone_name`, with the zone's abbreviation."""
    if moment is None:
        return ""
    return to_local(moment, zone_name).strftime(fmt)
