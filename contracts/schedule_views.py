"""Scheduling pages: book, cancel and mark sessions, "My schedule", and .ics downloads.

Every scheduling route passes the one gate, `scheduling.check_scheduling_open`;
when it refuses, `scheduling_closed` below answers for all of them alike.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from contracts import scheduling
from contracts.forms import ConfirmForm, SessionForm
from contracts.ics import session_calendar
from contracts.localtime import SESSION_FORMAT, format_local
from contracts.models import CoachingSession, SessionStatus
from contracts.services import NotAllowed, contract_for_party
from contracts.states import TransitionError
from extensions import db

bp = Blueprint("sessions", __name__)


bp.add_app_template_global(scheduling.has_started, "session_started")
bp.add_app_template_global(scheduling.is_late_cancellation, "late_cancellation")


@bp.before_request
@login_required
def require_login() -> None:
    """Every scheduling page is for logged-in parties only."""


def _to_sessions(contract_id: int) -> Response:
    return redirect(url_for("contracts.detail", contract_id=contract_id, _anchor="sessions"))


@bp.errorhandler(scheduling.SchedulingClosed)
def scheduling_closed(exc: scheduling.SchedulingClosed) -> Response:
    """The gate refused: nothing is written; say why and show the way forward."""
    db.session.rollback()
    contract = exc.contract
    if exc.pay_first and contract.student_id == current_user.id:
        flash(str(exc), "info")
        return redirect(url_for("payments.pay", contract_id=contract.id))
    flash(str(exc), "info" if exc.pay_first else "warning")
    return _to_sessions(contract.id)


@bp.route("/contracts/<int:contract_id>/schedule", methods=["GET", "POST"])
def book(contract_id: int) -> str | Response:
    contract = contract_for_party(contract_id, current_user)
    scheduling.check_scheduling_open(contract)
    form = SessionForm()
    if form.validate_on_submit():
        zone = current_user.timezone
        try:
            starts_at = scheduling.start_from_local(form.day.data, form.at.data, zone)
            booked = scheduling.book_session(
                contract.id, current_user, starts_at=starts_at, note=form.note.data
            )
        except scheduling.SchedulingError as exc:
            db.session.rollback()
            form.at.errors = [str(exc)]
        else:
            db.session.commit()
            when = format_local(booked.starts_at, zone, SESSION_FORMAT)
            flash(f"Session booked for {when}.", "success")
            return _to_sessions(contract_id)
    booked_sessions = scheduling.sessions_of_contract(contract)
    return render_template(
        "contracts/schedule.html",
        contract=contract,
        form=form,
        remaining=scheduling.remaining_count(contract, booked_sessions),
        sessions=scheduling.agenda(booked_sessions),
        busy=scheduling.coach_busy_times(contract),
    )


def _change(session_id: int, action: Callable[[], CoachingSession], done: str) -> Response:
    """Run one change of a session; a refusal comes back as a message, never half-applied."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        booked = action()
    except NotAllowed:
        abort(403)
    except (scheduling.SchedulingError, TransitionError) as exc:
        db.session.rollback()
        flash(str(exc), "warning")
        booked = scheduling.session_for_party(session_id, current_user)
    else:
        db.session.commit()
        flash(done, "success")
    return _to_sessions(booked.contract_id)


@bp.post("/sessions/<int:session_id>/cancel")
def cancel(session_id: int) -> Response:
    return _change(
        session_id,
        lambda: scheduling.cancel_session(session_id, current_user),
        "Session cancelled.",
    )


@bp.post("/sessions/<int:session_id>/complete")
def complete(session_id: int) -> Response:
    return _change(
        session_id,
        lambda: scheduling.mark_session(session_id, current_user, SessionStatus.COMPLETED),
        "Session marked completed.",
    )


@bp.post("/sessions/<int:session_id>/no-show")
def no_show(session_id: int) -> Response:
    return _change(
        session_id,
        lambda: scheduling.mark_session(session_id, current_user, SessionStatus.NO_SHOW),
        "Session marked as a no-show.",
    )


@bp.get("/sessions/<int:session_id>.ics")
def ics(session_id: int) -> Response:
    booked = scheduling.session_for_party(session_id, current_user)
    link = url_for("contracts.detail", contract_id=booked.contract_id, _external=True)
    response = Response(session_calendar(booked, link=link), mimetype="text/calendar")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="coachpact-session-{booked.id}.ics"'
    )
    return response


@bp.get("/schedule")
def my_schedule() -> str:
    return render_template(
        "contracts/my_schedule.html",
        sessions=scheduling.schedule_of(current_user),
        form=ConfirmForm(),
    )
