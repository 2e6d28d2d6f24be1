"""Stripe events: what each type does, and how an event in the inbox is applied.

The webhook only stores the event (`payments.inbox`). A job then applies it:
`process_event` locks the event's row, runs the handler for its type in one
transaction with the event marked processed, and commits. An event that cannot
be matched yet, or whose handler fails, is retried with backoff for Stripe's
own three days, then marked failed for an admin. Exactly once: the event row's
lock and status decide, whatever the number of deliveries and consumers.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select

import clock
import jobs
from accounts.models import User
from audit.services import record as audit
from contracts import lifecycle
from contracts.services import lock_contract
from database.locking import lock_by_id
from database.states import check_transition
from extensions import db
from payments import plans, refunds, stripe_api
from payments.disputes import mirror_dispute
from payments.fulfilment import fulfil_checkout, locked_attempt, metadata_contract_id
from payments.inbox import record_event
from payments.models import (
    EVENT_TRANSITIONS,
    EventStatus,
    Payment,
    PaymentRecordStatus,
    WebhookEvent,
)
from payments.records import move_if_allowed, payment_by

log = logging.getLogger(__name__)

FIRST_RETRY = timedelta(seconds=10)
LONGEST_WAIT = timedelta(hours=1)
# Stripe retries a webhook for three days; an event still failing after that needs a person.
GIVE_UP_AFTER = timedelta(days=3)
# An event still waiting this long after it was due was lost by its job: the sweep enqueues it.
SWEEP_GRACE = timedelta(seconds=5)


class RetryLater(Exception):
    """An event we handle but cannot match yet (its payment is not known yet, say)."""


# --- the table: event type → handler -------------------------------------------------

Handler = Callable[[dict[str, Any]], str]

# Filled only through `register`, by the packages' init functions (`payments.init_app`
# for the types below, `payouts.init_app` for account.updated, as payments never
# imports payouts). A type nobody registered is recorded as ignored.
_handlers: dict[str, Handler] = {}


def register(event_type: str, handler: Handler) -> None:
    """Make `handler` apply the inbox's events of `event_type`.

    Registering the same function again changes nothing (create_app runs many times
    in one process in the tests). A different handler for a type already handled is
    refused: only one can apply an event, and the other would be dropped unnoticed.
    """
    current = _handlers.get(event_type)
    if current is not None and current is not handler:
        raise ValueError(
            f"{event_type!r} is already handled by {_name(current)}; "
            f"refusing a second handler, {_name(handler)}"
        )
    _handlers[event_type] = handler


def handled_types() -> frozenset[str]:
    """The event types with a handler."""
    return frozenset(_handlers)


def handler_for(event_type: str) -> Handler | None:
    """The handler of `event_type`, or None for a type we do not handle."""
    if not _handlers:
        # An empty table would record every event as ignored, for good.
        raise RuntimeError("no event handlers registered: create_app calls payments.init_app")
    return _handlers.get(event_type)


def _name(handler: Handler) -> str:
    return f"{getattr(handler, '__module__', '?')}.{getattr(handler, '__qualname__', handler)!s}"


# --- what each event type does ---------------------------------------------------


def _fail_session(session: dict[str, Any]) -> str:
    found = locked_attempt(session)
    if found is None:
        return "unrelated"
    payment, contract = found
    if not move_if_allowed(payment, PaymentRecordStatus.FAILED):
        return "stale"
    payment.failure_reason = "The bank debit did not go through."
    lifecycle.mark_payment_failed(contract, actor_label="stripe", reason=payment.failure_reason)
    audit("payment.failed", payment, actor_label="stripe", after={"reason": payment.failure_reason})
    return "failed"


def _expire_session(session: dict[str, Any]) -> str:
    found = locked_attempt(session)
    if found is None:
        return "unrelated"
    payment, _ = found
    return "expired" if move_if_allowed(payment, PaymentRecordStatus.EXPIRED) else "stale"


def _intent_failed(intent: dict[str, Any]) -> str:
    if plans.is_instalment_charge(intent):
        return plans.intent_failed(intent)
    contract_id = metadata_contract_id(intent)
    contract = lock_contract(contract_id) if contract_id else None
    if contract is None:
        return "unrelated"
    payment = payment_by(payment_intent_id=intent["id"]) or db.session.scalar(
        select(Payment)
        .where(
            Payment.contract_id == contract.id,
            Payment.status.in_([PaymentRecordStatus.PENDING, PaymentRecordStatus.FAILED]),
        )
        .order_by(Payment.created_at.desc(), Payment.id.desc())
    )
    if payment is None:
        raise RetryLater("payment_intent.payment_failed before its Checkout attempt is known")
    payment.payment_intent_id = payment.payment_intent_id or intent["id"]
    if not move_if_allowed(payment, PaymentRecordStatus.FAILED) and (
        payment.status is not PaymentRecordStatus.FAILED
    ):
        return "stale"  # a later attempt of the same Checkout succeeded: its failure is gone
    error = intent.get("last_payment_error") or {}
    payment.failure_reason = (error.get("message") or "The payment failed.")[:500]
    lifecycle.mark_payment_failed(contract, actor_label="stripe", reason=payment.failure_reason)
    audit(
        "payment.failed",
        payment,
        actor_label="stripe",
        after={"reason": payment.failure_reason, "code": error.get("code")},
    )
    return "failed"


def _matched(handler: Handler) -> Handler:
    """A handler whose payment may not be known yet: retried until it is."""

    @functools.wraps(handler)
    def run(obj: dict[str, Any]) -> str:
        try:
            return handler(obj)
        except LookupError as exc:
            # The checkout.session.completed that names this intent may not be here yet.
            raise RetryLater(str(exc)) from None

    return run


# Each handler is made once, at import: `register` tells a repeated registration (the
# same function, from a second create_app) from a conflicting one by identity.


def _fulfil_session(session: dict[str, Any]) -> str:
    return fulfil_checkout(session, source="webhook")


@_matched
def _instalment_paid(intent: dict[str, Any]) -> str:
    return plans.record_intent_paid(intent)


@_matched
def _charge_refunded(charge: dict[str, Any]) -> str:
    return refunds.mirror_charge(charge)


@_matched
def _mirror_refund(refund: dict[str, Any]) -> str:
    return refunds.mirror(refund, actor_label="stripe")


@_matched
def _mirror_dispute(dispute: dict[str, Any]) -> str:
    return mirror_dispute(dispute)


def register_payment_handlers() -> None:
    """Put the types payments applies in the table (`payments.init_app`; repeating is harmless)."""
    register("checkout.session.completed", _fulfil_session)
    register("checkout.session.async_payment_succeeded", _fulfil_session)
    register("checkout.session.async_payment_failed", _fail_session)
    register("checkout.session.expired", _expire_session)
    register("payment_intent.payment_failed", _intent_failed)
    register("payment_intent.succeeded", _instalment_paid)
    register("charge.refunded", _charge_refunded)
    register("refund.created", _mirror_refund)
    register("refund.updated", _mirror_refund)
    register("refund.failed", _mirror_refund)
    register("charge.dispute.created", _mirror_dispute)
    register("charge.dispute.updated", _mirror_dispute)
    register("charge.dispute.closed", _mirror_dispute)


# --- applying an event from the inbox ------------------------------------------------


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


def reconcile(since: datetime) -> dict[str, int]:
    """Add to the inbox every event of a handled type since `since` that it lacks.

    The pipeline then applies them like any webhook. Safe to run at any time:
    known events are left as they are. Commits.
    """
    counts = {"added": 0, "known": 0}
    added: list[int] = []
    for event in stripe_api.list_events({"created": {"gte": int(since.timestamp())}, "limit": 100}):
        if handler_for(event["type"]) is None:
            continue
        row_id = record_event(event, json.dumps(event))
        if row_id is None:
            counts["known"] += 1
        else:
            counts["added"] += 1
            added.append(row_id)
    db.session.commit()
    for row_id in added:
        jobs.enqueue(process_event_job, row_id)
    return counts


# --- jobs ------------------------------------------------------------------------------


@jobs.task()
def process_event_job(event_id: int) -> None:
    process_event(event_id)


@jobs.periodic(jobs.every_minute())
def sweep_inbox() -> None:
    """Enqueue events and refunds that a lost job (or a down queue) left behind."""
    for event_id in jobs.overdue_ids(WebhookEvent, EventStatus.RECEIVED, SWEEP_GRACE):
        jobs.enqueue(process_event_job, event_id)
    for refund_id in refunds.unsent_refund_ids():
        jobs.enqueue(refunds.send_refund_job, refund_id)


@jobs.periodic(jobs.hourly_at(17))
def reconcile_hourly() -> None:
    """Ask Stripe for the last few hours' events, in case a webhook never arrived."""
    counts = reconcile(clock.now() - timedelta(hours=3))
    if counts["added"]:
        log.warning("reconcile added %s events the webhook never delivered", counts["added"])
