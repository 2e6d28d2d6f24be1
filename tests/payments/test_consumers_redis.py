"""Two consumer processes on a Redis queue, and a storm of redelivered, shuffled events."""

from __future__ import annotations

import random
import uuid

import pytest

from tests.payments.conftest import count, deliver
from tests.support import redis_available, require_service, wait_for


@pytest.fixture
def app_overrides(queued_overrides):
    return queued_overrides


@pytest.fixture
def queue() -> dict[str, str]:
    """Redis, with a queue name of this test's own."""
    require_service(redis_available(), "Redis is not running at 127.0.0.1:6379")
    return {"REDIS_URL": "redis://127.0.0.1:6379/0",
            "JOBS_QUEUE_NAME": f"coachpact-test-{uuid.uuid4().hex[:8]}"}


@pytest.fixture
def bulk_paid_sessions(db, make_user, make_proposal):
    """200 pending contracts, each with a Checkout attempt; their paid events, 3 of each."""
    from contracts.services import accept_proposal
    from payments.models import Payment

    coach, student = make_user("coach"), make_user("student")
    events = []
    proposal_ids = [make_proposal(coach, student) for _ in range(200)]
    for n, proposal_id in enumerate(proposal_ids):
        contract = accept_proposal(proposal_id, db.session.merge(student))
        db.session.flush()
        session_id = f"cs_test_bulk_{n:03d}"
        db.session.add(Payment(contract_id=contract.id, checkout_session_id=session_id,
                               amount=contract.total_amount, currency=contract.currency))
        events.append({
            "id": f"evt_bulk_{n:03d}", "object": "event", "type": "checkout.session.completed",
            "api_version": "2025-03-31.basil", "created": 1_790_000_000 + n, "livemode": False,
            "data": {"object": {
                "id": session_id, "object": "checkout.session", "mode": "payment",
                "amount_total": contract.total_amount, "currency": contract.currency,
                "client_reference_id": str(contract.id),
                "metadata": {"contract_id": str(contract.id), "attempt": "1"},
                "payment_intent": f"pi_bulk_{n:03d}", "payment_status": "paid",
                "status": "complete",
            }},
        })
    db.session.commit()
    deliveries = events * 3
    random.Random(10).shuffle(deliveries)
    return deliveries


def test_two_consumers_on_redis_apply_200_events_delivered_3_times_once_each(
    app, db, client, start_consumer, bulk_paid_sessions
):
    from audit.models import AuditEntry
    from contracts.models import Contract, ContractStatus
    from notifications.models import Notification, OutboxMail
    from payments.models import EventStatus, WebhookEvent

    # Sending and accepting the 200 proposals told each party once per proposal already.
    told_before, mailed_before = count(db, Notification), count(db, OutboxMail)
    start_consumer(workers=2)
    start_consumer(workers=2)
    answers = [deliver(client, event).get_json() for event in bulk_paid_sessions]
    assert sum(1 for a in answers if not a.get("duplicate")) == 200
    wait_for(lambda: count(db, WebhookEvent, status=EventStatus.PROCESSED) == 200, 120,
             "200 events processed")
    assert count(db, WebhookEvent) == 200
    assert count(db, Contract, status=ContractStatus.ACTIVE) == 200
    assert count(db, AuditEntry, action="contract.paid") == 200
    # Each activation tells both parties once: 400 notices, 400 mails.
    assert count(db, Notification) == told_before + 400
    assert count(db, OutboxMail) == mailed_before + 400
    assert count(db, WebhookEvent, outcome="fulfilled") == 200
