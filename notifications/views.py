from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_login import current_user, login_required

from extensions import db
from notifications.services import mark_read, notifications_page

bp = Blueprint("notifications", __name__, url_prefix="/notifications")


@bp.get("/")
@login_required
def index() -> str:
    unread_only = request.args.get("show") == "unread"
    # What a page shows is read once shown, so the unread list's next batch is always its
    # first page: it takes no page number.
    page = 1 if unread_only else request.args.get("page", 1, int)
    found = notifications_page(current_user, unread_only=unread_only, page=page)
    # Highlighted as they were on arrival, before this visit marks them read.
    unread = {item.id for item in found.items if item.read_at is None}
    # Opening the list is reading it: what this page shows stops counting as new.
    mark_read(current_user, found.items)
    db.session.commit()
    return render_template(
        "notifications/index.html", page=found, unread=unread, unread_only=unread_only
    )
