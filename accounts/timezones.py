"""A person's time zone: how a UTC moment reads on their wall clocks.

Every time is stored in UTC; each person reads times in their own IANA zone
(`User.timezone`). Turning a wall-clock time typed for a booking back into UTC is
scheduling's (`scheduling.localtime`).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DISPLAY_FORMAT = "%d %b %Y, %H:%M %Z"
# Sessions are read as appointments: the weekday helps.
SESSION_FORMAT = "%a %d %b %Y, %H:%M %Z"



def zone_of(name: str | None) -> ZoneInfo:
    """The zone called `name`, or UTC for an empty or unknown name."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def to_local(moment: datetime, zone_name: str | None) -> datetime:
    return moment.astimezone(zone_of(zone_name))


def format_local(moment: datetime | None, zone_name: str | None, fmt: str = DISPLAY_FORMAT) -> str:
    """`moment` (aware) as read on the wall clocks of `zone_name`, with the zone's abbreviation."""
    if moment is None:
        return ""
    return to_local(moment, zone_name).strftime(fmt)
