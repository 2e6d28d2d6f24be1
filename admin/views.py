"""The admin console's blueprint: every address under /admin/ is for admins only.

To anyone else (anonymous, students, coaches) each one is a 404, so the console
does not even tell that it exists. The routes live in one module per area,
imported at the bottom so that they attach to `bp`.
"""

from __future__ import annotations

from typing import NoReturn

from flask import Blueprint, abort, current_app, redirect, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from extensions import csrf

bp = Blueprint("admin", __name__, url_prefix="/admin")
# The app-wide CSRF check runs before any blueprint's own checks, and its 400 would tell a
# visitor that a form lives at the address: the console checks CSRF itself, after the
# admin check.
csrf.exempt(bp)


@bp.before_request
def admins_only() -> None:
    if not (current_user.is_authenticated and current_user.is_admin):
        abort(404)
    if current_app.config["WTF_CSRF_ENABLED"]:
        csrf.protect()  # only on the methods that change things (WTF_CSRF_METHODS)


# Without `strict_slashes`, /admin would answer anyone with a redirect to /admin/.
@bp.get("/", strict_slashes=False)
def index() -> Response:
    return redirect(url_for("admin.dashboard"))


# Werkzeug answers a wrong method with 405 before `admins_only` runs, which would tell
# anyone which admin addresses exist. This rule takes every path and method no other admin
# rule takes, so `admins_only` sees them all: 404 to anyone else, and to an admin too.
CHANGING_METHODS = ["POST", "PUT", "PATCH", "DELETE"]
ANY_METHOD = ["GET", *CHANGING_METHODS]


@bp.route("/", methods=CHANGING_METHODS, strict_slashes=False, endpoint="unknown_root")
@bp.route("/<path:unknown>", methods=ANY_METHOD)
def unknown(unknown: str = "") -> NoReturn:
    abort(404)


# The areas' routes attach to `bp` when imported (after it exists).
from admin import (  # noqa: E402, F401
    audit_views,
    books_views,
    dashboard_views,
    event_views,
    membership_views,
    payment_views,
    payout_views,
    people_views,
    plan_views,
    refund_views,
    review_views,
    search_views,
)
