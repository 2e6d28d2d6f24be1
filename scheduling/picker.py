"""The slot picker's content for a page: a week of free times, one day's times, the time
chosen; read from the page's own GET arguments (`from`, `day`, `slot`), so it works
without JavaScript. The booking, moving and pay pages show it
(templates/scheduling/_slot_picker.html).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import request, url_for
from flask_login import current_user

from contracts.models import Contract
from scheduling import availability


def _date_arg(name: str) -> date | None:
    """A YYYY-MM-DD query argument (the picker's `from` and `day`), if one was given."""
    try:
        return date.fromisoformat(request.args.get(name, ""))
    except ValueError:
        return None


def slot_picker(
    contract: Contract, chosen: str | None, exclude_session_id: int | None = None
) -> dict:
    """What the slot picker shows: the week's days, the times of one day, the time chosen.

    All three steps are plain GET arguments (`from` the week, `day`, `slot`), so the
    picker works without JavaScript; `chosen` is the slot posted or asked for.
    """
    day_asked = _date_arg("day")
    week = availability.slot_week(
        contract,
        current_user,
        _date_arg("from") or day_asked,
        exclude_session_id=exclude_session_id,
    )
    found = week.find(chosen)
    day = found[0] if found else week.day_to_show(day_asked)
    hours = availability.weekly_hours(contract.coach_id)
    here = request.endpoint or "sessions.book"
    args: dict[str, Any] = dict(request.view_args or {})
    return {
        "week": week,
        "week_urls": {
            name: url_for(here, **{**args, "from": day.isoformat()})
            for name, day in (("earlier", week.earlier), ("later", week.later))
            if day is not None
        },
        "link_to": (here, {**args, "from": week.from_day.isoformat()}),
        "day": day,
        "day_parts": availability.day_parts(week.choices_on(day)),
        "day_has_late": any(choice.late_cancel for choice in week.choices_on(day)),
        "picked": found[1] if found else None,
        "chosen_missing": bool(chosen) and found is None,
        "hours": hours,
        "hours_text": availability.describe_for(contract.coach, hours),
    }
