from __future__ import annotations

from admin.views import bp


@bp.get("/payments/list")
def payment_list() -> str:
    return "payment_list (to be built)"
