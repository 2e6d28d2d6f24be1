"""A person's time zone: how a UTC moment reads on their wall clocks.

Every time is stored in UTC; each person reads times in their own IANA zone
(`User.timezone`). Turning a wall-clock time typed for a booking back into UTC is
scheduling's (`scheduling.localtime`).
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache, lru_cache
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


# --- the zones a person picks from ------------------------------------------------
#
# The list comes from the IANA database as the `tzdata` package ships it (so it is the
# same on every machine): `zone.tab` names one zone per country and region, the names
# people know ("Europe/Amsterdam", "America/New_York"); the backward-compatible links
# of `tzdata.zi` ("US/Eastern", "Asia/Calcutta", "Europe/Kiev") are not offered but read
# as the zone they link to. UTC is offered too, in a group of its own.

REGIONS = (
    "Africa", "America", "Antarctica", "Arctic", "Asia", "Atlantic", "Australia", "Europe",
    "Indian", "Pacific",
)


def _tz_file(name: str) -> str:
    return importlib.resources.files("tzdata.zoneinfo").joinpath(name).read_text("utf-8")


@cache
def canonical_zones() -> frozenset[str]:
    """Every zone offered: the zones of `zone.tab`, and UTC."""
    names = {
        line.split("\t")[2]
        for line in _tz_file("zone.tab").splitlines()
        if line and not line.startswith("#")
    }
    return frozenset({*names, "UTC"})


@cache
def zone_aliases() -> dict[str, str]:
    """Each other name the database knows (links, "Etc/UTC"...) → the offered zone it reads as.

    A link is followed to its end ("US/Pacific-New" → ...); a name whose end is not offered
    (a bare "Etc/GMT+5") is left out: it has no offered equal.
    """
    links = {}
    for line in _tz_file("tzdata.zi").splitlines():
        if line.startswith("L "):
            _, target, alias = line.split()
            links[alias] = target
    offered = canonical_zones()
    utc_names = {"Etc/UTC", "Etc/GMT", "Etc/UCT", "Etc/Universal", "Etc/Zulu", "Etc/GMT0",
                 "Etc/GMT+0", "Etc/GMT-0", "Etc/Greenwich"}
    aliases: dict[str, str] = {}
    for alias in [*links, *utc_names]:
        if alias in offered:
            continue  # "Europe/Amsterdam" is offered under its own name
        target, seen = alias, set()
        while target in links and target not in offered and target not in seen:
            seen.add(target)
            target = links[target]
        if target in utc_names:
            target = "UTC"
        if target in offered:
            aliases[alias] = target
    return aliases


def canonical_zone(name: str | None) -> str | None:
    """`name` as the zone offered for it ("Asia/Calcutta" → "Asia/Kolkata"); others unchanged."""
    if not name:
        return name
    return name if name in canonical_zones() else zone_aliases().get(name, name)


def city_of(name: str) -> str:
    """A zone's place, readable: "America/Argentina/Buenos_Aires" → "Argentina / Buenos Aires"."""
    if "/" not in name:
        return name
    return name.split("/", 1)[1].replace("_", " ").replace("/", " / ")


def offset_label(offset: timedelta | None) -> str:
    """A UTC offset as "UTC+05:30" (a true minus sign), or "UTC" for none."""
    minutes = int((offset or timedelta()).total_seconds() // 60)
    if minutes == 0:
        return "UTC"
    sign = "+" if minutes > 0 else "\u2212"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{rest:02d}"


@dataclass(frozen=True)
class ZoneChoice:
    value: str  # "America/New_York"
    label: str  # "New York (UTC−05:00)"


@lru_cache(maxsize=2)
def zone_groups(on: date) -> tuple[tuple[str, tuple[ZoneChoice, ...]], ...]:
    """The offered zones by region, each labelled with its place and its offset on `on`.

    Keyed by the day because offsets change with daylight saving; noon UTC of that day
    is the moment read.
    """
    moment = datetime(on.year, on.month, on.day, 12, tzinfo=UTC)
    groups: dict[str, list[ZoneChoice]] = {region: [] for region in REGIONS}
    for name in sorted(canonical_zones() - {"UTC"}, key=city_of):
        offset = moment.astimezone(ZoneInfo(name)).utcoffset()
        groups[name.split("/", 1)[0]].append(
            ZoneChoice(name, f"{city_of(name)} ({offset_label(offset)})")
        )
    grouped = [(region, tuple(choices)) for region, choices in groups.items() if choices]
    return (*grouped, ("UTC", (ZoneChoice("UTC", "UTC (Coordinated Universal Time)"),)))


def zone_caption(name: str | None, moment: datetime) -> str:
    """How a person's zone is named beside times: "New York (EST)", "UTC"."""
    zone = zone_of(canonical_zone(name))
    if zone.key == "UTC":
        return "UTC"
    abbreviation = moment.astimezone(zone).strftime("%Z")
    if abbreviation[:1] in "+-":  # the database has no letters for it: "+03"
        abbreviation = offset_label(moment.astimezone(zone).utcoffset())
    return f"{city_of(zone.key)} ({abbreviation})"
