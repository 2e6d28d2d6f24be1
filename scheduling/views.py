"""Scheduling pages: book, move, cancel and mark sessions, "My schedule", .ics downloads,
and the coach's working hours.

Every scheduling route passes the one gate, `scheduling.check_scheduling_open`;
when it refuses, `scheduling_closed` below answers for all of them alike.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from accounts.timezones import SESSION_FORMAT, format_local
from contracts.forms import ConfirmForm
from contracts.models import CoachingSession, Contract, SessionStatus
from contracts.services import NotAllowed, contract_for_party
from database.states import TransitionError
from extensions import db
from scheduling import availability, sessions
from scheduling.forms import DayOffForm, RescheduleForm, SessionForm, WorkingHoursForm
from scheduling.ics import session_calendar
from scheduling.picker import slot_picker

bp = Blueprint("sessions", __name__)


bp.add_app_template_global(sessions.has_started, "session_started")
bp.add_app_template_global(sessions.is_late_cancellation, "late_cancellation")
bp.add_app_template_global(sessions.reschedule_refusal, "reschedule_refusal")


@bp.before_request
@login_required
def require_login() -> None:
    """Every scheduling page is for logged-in parties only."""


def _to_sessions(contract_id: int) -> Response:
    return redirect(url_for("contracts.detail", contract_id=contract_id, _anchor="sessions"))


@bp.errorhandler(sessions.SchedulingClosed)
def scheduling_closed(exc: sessions.SchedulingClosed) -> Response:
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
    sessions.check_scheduling_open(contract)
    form = SessionForm()
    submitted = form.validate_on_submit()
    late_warning = _unconfirmed_late_cancel(contract, form.slot.starts_at) if submitted else None
    if submitted and late_warning is None:
        try:
            booked = sessions.book_session(
                contract.id,
                current_user,
                starts_at=form.slot.starts_at,
                note=form.note.data,
                location=form.location.data,
            )
        except sessions.SchedulingError as exc:
            db.session.rollback()
            form.slot.errors = [str(exc)]
        else:
            db.session.commit()
            when = format_local(booked.starts_at, current_user.timezone, SESSION_FORMAT)
            flash(f"Session booked for {when}.", "success")
            return _to_sessions(contract_id)
    booked_sessions = sessions.sessions_of_contract(contract)
    picker = slot_picker(contract, form.slot.data or request.args.get("slot"))
    if not submitted and picker["picked"] is not None:
        # The confirm step says it before anything is posted.
        late_warning = availability.late_cancel_warning(
            contract, current_user, picker["picked"].slot.starts_at
        )
    return render_template(
        "scheduling/schedule.html",
        contract=contract,
        form=form,
        remaining=sessions.remaining_count(contract, booked_sessions),
        sessions=sessions.agenda(booked_sessions),
        late_warning=late_warning,
        picker=picker,
    )


def _unconfirmed_late_cancel(contract: Contract, starts_at: datetime | None) -> str | None:
    """The late-cancellation warning a booking at `starts_at` still needs confirmed, or None.

    A slot inside the late-cancellation window is booked only with `confirm_late=1`
    posted beside it (the warning page's button); without it the page comes back with
    the warning and nothing is booked. A time refused anyway (outside the rules, or taken
    meanwhile) gets its refusal instead, from the booking itself.
    """
    if starts_at is None or request.form.get("confirm_late") == "1":
        return None
    if availability.refusal(contract, starts_at) is not None:
        return None
    ends_at = starts_at + timedelta(minutes=contract.minutes_per_session)
    if db.session.execute(availability.party_sessions(contract, starts_at, ends_at)).first():
        return None
    return availability.late_cancel_warning(contract, current_user, starts_at)


@bp.route("/sessions/<int:session_id>/reschedule", methods=["GET", "POST"])
def reschedule(session_id: int) -> str | Response:
    booked = sessions.session_for_party(session_id, current_user)
    sessions.check_scheduling_open(booked.contract)
    form = RescheduleForm()
    if form.validate_on_submit():
        try:
            sessions.reschedule_session(session_id, current_user, starts_at=form.slot.starts_at)
        except sessions.SchedulingError as exc:
            db.session.rollback()
            form.slot.errors = [str(exc)]
        else:
            db.session.commit()
            when = format_local(booked.starts_at, current_user.timezone, SESSION_FORMAT)
            flash(f"Session moved to {when}.", "success")
            return _to_sessions(booked.contract_id)
    return render_template(
        "scheduling/reschedule.html",
        booked=booked,
        contract=booked.contract,
        form=form,
        refused=sessions.reschedule_refusal(booked, current_user),
        picker=slot_picker(
            booked.contract,
            form.slot.data or request.args.get("slot"),
            exclude_session_id=booked.id,
        ),
    )


def _change(session_id: int, action: Callable[[], CoachingSession], done: str) -> Response:
    """Run one change of a session; a refusal comes back as a message, never half-applied."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        booked = action()
    except NotAllowed:
        abort(403)
    except (sessions.SchedulingError, TransitionError) as exc:
        db.session.rollback()
        flash(str(exc), "warning")
        booked = sessions.session_for_party(session_id, current_user)
    else:
        db.session.commit()
        flash(done, "success")
    return _to_sessions(booked.contract_id)


@bp.get("/sessions/<int:session_id>/cancel")
def cancel_confirm(session_id: int) -> str:
    """Before cancelling: what it costs, the session's time and the other party."""
    booked = sessions.session_for_party(session_id, current_user)
    sessions.check_scheduling_open(booked.contract)
    return render_template(
        "scheduling/cancel_session.html",
        booked=booked,
        contract=booked.contract,
        late=sessions.is_late_cancellation(booked, current_user),
        form=ConfirmForm(),
    )


@bp.post("/sessions/<int:session_id>/cancel")
def cancel(session_id: int) -> Response:
    return _change(
        session_id,
        lambda: sessions.cancel_session(session_id, current_user),
        "Session cancelled.",
    )


@bp.post("/sessions/<int:session_id>/complete")
def complete(session_id: int) -> Response:
    return _change(
        session_id,
        lambda: sessions.mark_session(session_id, current_user, SessionStatus.COMPLETED),
        "Session marked completed.",
    )


@bp.post("/sessions/<int:session_id>/no-show")
def no_show(session_id: int) -> Response:
    return _change(
        session_id,
        lambda: sessions.mark_session(session_id, current_user, SessionStatus.NO_SHOW),
        "Session marked as a no-show.",
    )


@bp.get("/sessions/<int:session_id>.ics")
def ics(session_id: int) -> Response:
    booked = sessions.session_for_party(session_id, current_user)
    link = url_for("contracts.detail", contract_id=booked.contract_id, _external=True)
    response = Response(session_calendar(booked, link=link), mimetype="text/calendar")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="coachpact-session-{booked.id}.ics"'
    )
    return response


@bp.get("/schedule")
def my_schedule() -> str:
    return render_template(
        "scheduling/my_schedule.html",
        schedule=sessions.schedule_page(
            current_user, request.args.get("tab", "upcoming"), request.args.get("page", 1, int)
        ),
        tabs=sessions.SCHEDULE_TABS,
        form=ConfirmForm(),
    )


# --- the coach's working hours and days off -------------------------------------


def _coach_only() -> None:
    if not current_user.is_coach:
        abort(404)


def _availability_page(
    hours_form: WorkingHoursForm | None = None, day_off_form: DayOffForm | None = None
) -> str:
    hours = availability.weekly_hours(current_user.id)
    return render_template(
        "scheduling/availability.html",
        hours=hours,
        hours_form=hours_form or WorkingHoursForm.for_hours(hours),
        day_off_form=day_off_form or DayOffForm(formdata=None),
        days_off=availability.upcoming_days_off(current_user),
    )


# Named `availability` (the navigation links to `sessions.availability`); the function
# is not, so that it leaves the module of that name alone.
@bp.route("/availability", methods=["GET", "POST"], endpoint="availability")
def availability_page() -> str | Response:
    _coach_only()
    form = WorkingHoursForm.for_hours(availability.weekly_hours(current_user.id))
    if not form.validate_on_submit():
        return _availability_page(hours_form=form)
    try:
        saved = availability.save_hours(current_user, form.windows)
    except availability.AvailabilityError as exc:
        db.session.rollback()
        form.form_errors.append(str(exc))
        return _availability_page(hours_form=form)
    db.session.commit()
    flash(f"Working hours saved: {saved.describe()}.", "success")
    return redirect(url_for("sessions.availability"))


@bp.post("/availability/days-off")
def add_day_off() -> str | Response:
    _coach_only()
    form = DayOffForm()
    if not form.validate_on_submit():
        return _availability_page(day_off_form=form)
    try:
        off = availability.add_day_off(current_user, form.day.data, form.note.data)
    except availability.AvailabilityError as exc:
        db.session.rollback()
        form.day.errors = [str(exc)]
        return _availability_page(day_off_form=form)
    db.session.commit()
    flash(f"{off.day:%a %d %b %Y} added as a day off.", "success")
    booked = availability.booked_on(current_user, off.day)
    if booked:
        flash(
            f"You have {booked} session{'s' if booked > 1 else ''} booked that day; "
            "they stay booked until you move or cancel them.",
            "warning",
        )
    return redirect(url_for("sessions.availability", _anchor="days-off"))


@bp.post("/availability/days-off/<int:day_off_id>/remove")
def remove_day_off(day_off_id: int) -> Response:
    _coach_only()
    if not ConfirmForm().validate_on_submit():
        abort(400)
    removed = availability.remove_day_off(current_user, day_off_id)
    if removed is None:
        abort(404)
    day = removed.day
    db.session.commit()
    flash(f"{day:%a %d %b %Y} is a working day again.", "success")
    return redirect(url_for("sessions.availability", _anchor="days-off"))
