from __future__ import annotations

from admin.views import bp


@bp.get("/contracts")
def contracts() -> str:
    return "contracts (to be built)"


@bp.get("/users")
def users() -> str:
    return "users (to be built)"
