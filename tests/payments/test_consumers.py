"""The event pipeline with real consumer processes: crashes, a down queue, many workers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.payments.conftest import contract_state, count, deliver, start_checkout
from tests.support import wait_for

HOLD = {"SANDBOX_HOLD_EVENTS": "1"}


@pytest.fixture
def app_overrides(queued_overrides):
    return queued_overrides


def event_status(db, stripe_id: str) -> str:
    from payments.models import WebhookEvent

    db.session.expire_all()
    row = db.session.scalar(select(WebhookEvent).filter_by(stripe_event_id=stripe_id))
    return row.status.value


@pytest.mark.parametrize("sandbox_knobs", [HOLD])
def test_a_consumer_killed_mid_task_leaves_the_event_to_the_sweep(
    app, db, student_client, sandbox, pending_contract, start_consumer, clock, sandbox_knobs
):
    from sqlalchemy.orm import Session

    from audit.models import AuditEntry
    from contracts.models import Contract
    from database.locking import lock_one
    from notifications.models import Notification
    from payments.inbox.processing import sweep_inbox

    contract_id = pending_contract[0]
    told_before = count(db, Notification)  # sending and accepting the proposal
    sandbox.pay(start_checkout(student_client, contract_id))
    [completed] = [e for e in sandbox.events() if e["type"] == "checkout.session.completed"]
    assert deliver(student_client, completed).status_code == 200  # queued; no consumer yet

    # Hold the contract's row, so the consumer's job stops midway inside its transaction.
    blocker = Session(db.engine)
    try:
        lock_one(blocker, select(Contract).where(Contract.id == contract_id))
        first = start_consumer()
        wait_for(lambda: "Executing payments.inbox.processing.process_event_job" in first.log(), 15,
                 "the consumer to start the job")
        first.kill()
    finally:
        blocker.rollback()
        blocker.close()
    assert event_status(db, completed["id"]) == "received"
    assert contract_state(db, contract_id) == ("pending", "pending")

    # The job died with its consumer; the sweep finds the event and another consumer applies it.
    start_consumer()
    clock.advance(timedelta(seconds=6))
    sweep_inbox.call_local()
    wait_for(lambda: event_status(db, completed["id"]) == "processed", 30, "the event processed")
    assert contract_state(db, contract_id) == ("active", "paid")
    assert count(db, AuditEntry, action="contract.paid") == 1
    assert count(db, Notification) == told_before + 2  # the coach and the student, once
