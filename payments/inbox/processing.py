"""Applying the inbox's events: exactly once, retried with backoff, swept when lost.

The webhook only stores the event (`payments.inbox.store`). A job then applies
it: `process_event` locks the event's row, runs the handler for its type
(`payments.inbox.table`) in one transaction with the event marked processed,
and commits. An event that cannot be matched yet, or whose handler fails, is
retried with backoff for Stripe's own three days, then marked failed for an
admin. Exactly once: the event row's lock and status decide, whatever the
number of deliveries and consumers. An admin's replay makes a waiting or
failed event due at once; a processed one stays as it is.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Literal

import clock
import jobs
from accounts.models import User
from audit.services import record as audit
from database.locking import lock_by_id
from database.states import check_transition
from extensions import db
from payments.inbox.table import RetryLater, handler_for
from payments.models import EVENT_TRANSITIONS, EventStatus, WebhookEvent

log = logging.getLogger(__name__)

FIRST_RETRY = timedelta(seconds=10)
LONGEST_WAIT = timedelta(hours=1)
# Stripe retries a webhook for three days; an event still failing after that needs a person.
GIVE_UP_AFTER = timedelta(days=3)
# An event still waiting this long after it was due was lost by its job: the sweep enqueues it.
SWEEP_GRACE = timedelta(seconds=5)


def retry_delay(attempts: int) -> timedelta:
    """10 s after the first failure, doubling, at most an hour."""
    return jobs.backoff(attempts, FIRST_RETRY, LONGEST_WAIT)


def process_event(event_id: int) -> str | None:
    """Apply one inbox event if it is due; its outcome, or None if nothing was applied.

    Commits: the handler's changes and the event's `processed` mark in one
    transaction; on failure, the attempt (count, error, next time) in another.
    """
    event = lock_by_id(db.session, WebhookEvent, event_id)
    if event is None or event.status is not EventStatus.RECEIVED:
        db.session.rollback()
        return None  # processed by another job already, or given up
    if event.next_attempt_at > clock.now():
        db.session.rollback()
        return None  # a retry that is not due yet; its own job comes later
    try:
        handler = handler_for(event.type)
        body = json.loads(event.payload)
        outcome = "ignored" if handler is None else handler(body["data"]["object"])
    except Exception as exc:  # any failure: nothing of it is kept, the event is retried
        db.session.rollback()
        _record_failure(event_id, exc)
        return None
    _move(event, EventStatus.PROCESSED)
    event.outcome = outcome
    event.attempts += 1
    event.last_error = None
    event.processed_at = clock.now()
    db.session.commit()
    return outcome


def _move(event: WebhookEvent, status: EventStatus) -> None:
    """The one way an inbox event changes status (staying put is no move)."""
    if status is not event.status:
        event.status = check_transition(EVENT_TRANSITIONS, event.status, status, "event")


def _record_failure(event_id: int, exc: Exception) -> None:
    if isinstance(exc, RetryLater):
        log.info("event %s not matched yet: %s", event_id, exc)
    else:
        log.exception("event %s failed", event_id, exc_info=exc)
    event = lock_by_id(db.session, WebhookEvent, event_id)
    assert event is not None
    moment = clock.now()
    event.attempts += 1
    event.last_error = f"{type(exc).__name__}: {exc}"[:1000]
    wait = retry_delay(event.attempts)
    if moment + wait - event.received_at > GIVE_UP_AFTER:
        _move(event, EventStatus.FAILED)
    else:
        event.next_attempt_at = moment + wait
    retrying = event.status is EventStatus.RECEIVED
    db.session.commit()
    if retrying:
        jobs.enqueue(process_event_job, event_id, delay=wait)


def retry_now(event_id: int) -> bool:
    """Make a waiting or failed event due at once (an admin's replay); False if processed."""
    event = lock_by_id(db.session, WebhookEvent, event_id)
    if event is None or event.status is EventStatus.PROCESSED:
        return False
    _move(event, EventStatus.RECEIVED)
    event.next_attempt_at = clock.now()
    jobs.enqueue_after_commit(db.session(), process_event_job, event_id)
    return True


def replay_event(event_id: int, admin: User) -> Literal["unchanged", "queued"]:
    """An admin's replay of an inbox event, audited as `event.replayed` with the admin as actor.

    "unchanged": the event was processed already and stays exactly as it is. Its
    handler ran once, and running it twice is what the inbox exists to prevent.
    "queued": a waiting or failed event is due now; its job runs after the caller
    commits, and the event's row then tells the outcome. Flushes; the caller commits.
    """
    event = lock_by_id(db.session, WebhookEvent, event_id)
    if event is None:
        raise LookupError(f"no webhook event {event_id}")
    before = {"status": event.status.value, "attempts": event.attempts, "outcome": event.outcome}
    result: Literal["unchanged", "queued"] = "queued" if retry_now(event_id) else "unchanged"
    audit(
        "event.replayed",
        event,
        actor=admin,
        before=before,
        after={"result": result, "status": event.status.value},
    )
    db.session.flush()
    return result


# --- jobs ------------------------------------------------------------------------------


@jobs.task()
def process_event_job(event_id: int) -> None:
    process_event(event_id)


@jobs.periodic(jobs.every_minute())
def sweep_inbox() -> None:
    """Enqueue events that a lost job (or a down queue) left behind."""
    for event_id in jobs.overdue_ids(WebhookEvent, EventStatus.RECEIVED, SWEEP_GRACE):
        jobs.enqueue(process_event_job, event_id)
