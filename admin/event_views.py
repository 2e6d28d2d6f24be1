"""The webhook event log: every Stripe event received, what processing made of it, and replays."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

import clock
from accounts.timezones import format_local
from admin import queries_events
from admin.listing import int_arg
from admin.queries_audit import entries_about
from admin.views import bp
from extensions import db
from payments.inbox.processing import replay_event
from payments.models import EventStatus, WebhookEvent


@bp.get("/events")
def events() -> str:
    filters = queries_events.EventFilters.from_args(request.args)
    after = int_arg(request.args, "after")
    return render_template(
        "admin/events.html",
        filters=filters,
        page=queries_events.event_page(filters, after),
        after=after,
        types=queries_events.event_types(),
        counts=queries_events.status_counts(),
        statuses=list(EventStatus),
    )


@bp.get("/events/<int:event_id>")
def event_detail(event_id: int) -> str:
    event = db.get_or_404(WebhookEvent, event_id)
    return render_template(
        "admin/event_detail.html",
        event=event,
        payload=queries_events.pretty_payload(event.payload),
        payments=queries_events.payments_about(event),
        history=entries_about({WebhookEvent.__tablename__: [event.id]}),
    )


@bp.post("/events/<int:event_id>/replay")
def event_replay(event_id: int) -> Response:
    db.get_or_404(WebhookEvent, event_id)
    result = replay_event(event_id, current_user)
    db.session.commit()  # this starts the event's job (at once when jobs run in-process)
    flash(*_replay_message(result, db.session.get(WebhookEvent, event_id)))
    return redirect(url_for("admin.event_detail", event_id=event_id))


def _replay_message(result: str, event: WebhookEvent | None) -> tuple[str, str]:
    """The flash (text, category) for a replay, from the event as it stands after it."""
    assert event is not None  # events are never deleted
    name = event.stripe_event_id
    if result == "unchanged":
        return f"{name} was already processed; replaying changed nothing.", "info"
    if event.status is EventStatus.PROCESSED:
        return f"{name} was processed: {event.outcome}.", "success"
    if event.status is EventStatus.FAILED:
        return f"{name} failed again and stays failed: {event.last_error}", "warning"
    if event.next_attempt_at > clock.now():
        when = format_local(event.next_attempt_at, current_user.timezone)
        return f"{name} did not go through yet ({event.last_error}); next try at {when}.", "warning"
    return f"{name} is due now; a worker will process it in a moment.", "info"
