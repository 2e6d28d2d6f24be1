from __future__ import annotations

from admin.views import bp


@bp.get("/audit")
def audit() -> str:
    return "audit (to be built)"
