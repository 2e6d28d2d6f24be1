from __future__ import annotations

from admin.views import bp


@bp.get("/reviews")
def reviews() -> str:
    return "reviews (to be built)"
