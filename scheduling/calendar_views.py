"""The meeting place page, and each user's private calendar feed.

The feed (`/calendar/<token>.ics`) is read by calendar apps, which cannot log in: the
secret token in its address is its only credential (`User.calendar_token`, turned on
and reset from the account settings).
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from contracts.services import contract_for_party
from database.states import TransitionError
from extensions import csrf, db, limiter
from scheduling.forms import MeetingPlaceForm
from scheduling.ics import feed_calendar, feed_owner, feed_sessions, feed_version
from scheduling.meeting_place import MEETING_PLACE_OPEN, set_meeting_place

bp = Blueprint("calendar", __name__)

@bp.route("/contracts/<int:contract_id>/meeting-place", methods=["GET", "POST"])
@login_required
def meeting_place(contract_id: int) -> str | Response:
    contract = contract_for_party(contract_id, current_user)
    form = MeetingPlaceForm(obj=contract)
    if form.validate_on_submit():
        try:
            set_meeting_place(contract.id, current_user, form.meeting_location.data)
        except TransitionError as exc:
            db.session.rollback()
            flash(str(exc), "warning")
        else:
            db.session.commit()
            saved = form.meeting_location.data
            flash("Meeting place saved." if saved else "Meeting place cleared.", "success")
        return redirect(
            url_for("contracts.detail", contract_id=contract.id, _anchor="meeting-place")
        )
    return render_template(
        "scheduling/meeting_place.html",
        contract=contract,
        form=form,
        open=contract.status in MEETING_PLACE_OPEN,
    )


@bp.get("/calendar/<token>.ics")
@csrf.exempt
@limiter.limit("60 per minute")
def feed(token: str) -> Response:
    """The user's sessions as a calendar to subscribe to; an unknown or reset token is a 404."""
    user = feed_owner(token)
    if user is None:
        abort(404)
    version = feed_version(user)
    if version in request.if_none_match:
        # Unchanged since the calendar app's last fetch: nothing to render or send.
        unchanged = Response(status=304)
        unchanged.set_etag(version)
        return _feed_headers(unchanged)
    body = feed_calendar(
        user,
        feed_sessions(user),
        link_for=lambda contract_id: url_for(
            "contracts.detail", contract_id=contract_id, _external=True
        ),
    )
    response = Response(body, content_type="text/calendar; charset=utf-8")
    response.set_etag(version)
    return _feed_headers(response)


def _feed_headers(response: Response) -> Response:
    response.headers["Cache-Control"] = "private, max-age=300"
    # The address is the secret: a link followed from a calendar app must not carry it on.
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
