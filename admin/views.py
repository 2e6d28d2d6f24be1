"""The admin console's blueprint: every address under /admin/ is for admins only.

To anyone else (anonymous, students, coaches) each one is a 404, so the console
does not even tell that it exists. The routes live in one module per area,
imported at the bottom so that they attach to `bp`.
"""

from __future__ import annotations

from flask import Blueprint, abort, redirect, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
def admins_only() -> None:
    if not (current_user.is_authenticated and current_user.is_admin):
        abort(404)


@bp.get("/")
def index() -> Response:
    return redirect(url_for("admin.dashboard"))


# The areas' routes attach to `bp` when imported (after it exists).
from admin import (  # noqa: E402, F401
    audit_views,
    books_views,
    dashboard_views,
    event_views,
    payment_views,
    payout_views,
    people_views,
    plan_views,
    refund_views,
    review_views,
)
