from __future__ import annotations

from admin.views import bp


@bp.get("/events")
def events() -> str:
    return "events (to be built)"
