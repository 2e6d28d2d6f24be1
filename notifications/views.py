from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user, login_required

from extensions import db
from notifications.services import mark_all_read, notifications_of

bp = Blueprint("notifications", __name__, url_prefix="/notifications")


@bp.get("/")
@login_required
def index() -> str:
    items = notifications_of(current_user)
    unread = {item.id for item in items if item.read_at is None}
    # Opening the list is reading it: the badge clears on the next page.
    mark_all_read(current_user)
    db.session.commit()
    return render_template("notifications/index.html", items=items, unread=unread)
