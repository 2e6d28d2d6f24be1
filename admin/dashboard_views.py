from __future__ import annotations

from admin.views import bp


@bp.get("/payments")
def dashboard() -> str:
    return "Payments dashboard"
