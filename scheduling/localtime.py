"""Wall-clock times typed for a booking, back to the UTC the database keeps.

Reading a UTC moment in a person's zone is `accounts.timezones`; this is the other
way, where a time may not exist (spring forward) or exist twice (fall back).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from accounts.timezones import zone_of


class NonexistentLocalTime(ValueError):
    """A wall-clock time the zone skips (the spring-forward gap); the message is for the user."""


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
