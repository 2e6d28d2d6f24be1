"""Refunds and disputes made at Stripe reach the contract through their webhooks."""

from __future__ import annotations

import pytest
import stripe

from tests.payments.conftest import (
    API_KEY,
    contract_state,
    payments,
    start_checkout,
    wait_until_state,
)
from tests.support import wait_for


@pytest.fixture
def paid(db, student_client, sandbox, pending_contract):
    """A paid contract: (contract id, Stripe client, payment intent id)."""
    contract_id = pending_contract[0]
    sandbox.pay(start_checkout(student_client, contract_id))
    wait_until_state(db, contract_id, ("active", "paid"))
    client = stripe.StripeClient(API_KEY, base_addresses={"api": sandbox.url},
                                 max_network_retries=0)
    return contract_id, client, payments(db, contract_id)[0].payment_intent_id


def test_partial_then_full_refund(db, paid):
    contract_id, client, intent = paid
    client.v1.refunds.create({"payment_intent": intent, "amount": 5000})
    wait_until_state(db, contract_id, ("active", "partially_refunded"))
    assert payments(db, contract_id)[0].amount_refunded == 5000

    client.v1.refunds.create({"payment_intent": intent})
    wait_until_state(db, contract_id, ("refunded", "refunded"))
    [payment] = payments(db, contract_id)
    assert (payment.status.value, payment.amount_refunded) == ("refunded", 20000)


def test_dispute_marks_the_contract_disputed(db, paid, sandbox):
    contract_id, client, intent = paid
    charge = client.v1.payment_intents.retrieve(intent).latest_charge
    assert sandbox.tool(f"charges/{charge}/dispute").status_code == 200
    wait_until_state(db, contract_id, ("disputed", "disputed"))


def test_refund_event_before_the_payment_is_known_is_retried(db, client, paid, clock):
    """A charge.refunded for an unknown payment intent is kept and retried, never dropped."""
    from datetime import timedelta

    from payments.inbox.processing import sweep_inbox
    from payments.models import WebhookEvent
    from tests.payments.conftest import deliver

    contract_id = paid[0]
    event = {
        "id": "evt_refund_unknown",
        "type": "charge.refunded",
        "object": "event",
        "data": {"object": {"id": "ch_unknown", "object": "charge",
                            "payment_intent": "pi_not_ours_yet", "amount_refunded": 100}},
    }

    def row():
        db.session.expire_all()
        return db.session.scalar(db.select(WebhookEvent).filter_by(stripe_event_id=event["id"]))

    assert deliver(client, event).status_code == 200
    first = row()
    assert (first.status.value, first.attempts) == ("received", 1)
    assert "RetryLater" in first.last_error
    assert first.next_attempt_at - first.received_at >= timedelta(seconds=10)
    assert contract_state(db, contract_id) == ("active", "paid")
    # Stripe's redelivery adds nothing; the inbox already retries it.
    assert deliver(client, event).get_json() == {"received": True, "duplicate": True}

    # Retried with a doubling wait for three days, then left to an admin.
    waits = []
    for _ in range(200):
        if row().status.value != "received":
            break
        current = row()
        waits.append(current.next_attempt_at - clock.now())
        clock.advance(current.next_attempt_at - clock.now() + timedelta(seconds=6))
        sweep_inbox()
    assert row().status.value == "failed"
    assert waits[1] > waits[0] and max(waits) <= timedelta(hours=1, seconds=1)
    assert row().received_at + timedelta(days=2) < clock.now() <= row().received_at + timedelta(
        days=3, hours=1
    )
    assert contract_state(db, contract_id) == ("active", "paid")


def test_a_full_refund_cancels_the_scheduled_sessions(app, db, paid, pending_contract):
    from datetime import timedelta

    from clock import now as utcnow
    from contracts.models import CoachingSession, Contract, SessionStatus
    from scheduling.availability import free_slots
    from scheduling.sessions import book_session

    contract_id, client, intent = paid
    student = db.session.merge(pending_contract[1])
    with app.test_request_context():
        # Two free slots of the coach's hours, on two different days.
        free = free_slots(db.session.get(Contract, contract_id), from_day=utcnow().date(), days=14)
        start = free[0].starts_at
        then = next(s.starts_at for s in free if s.starts_at >= start + timedelta(days=1))
        book_session(contract_id, student, starts_at=start)
        book_session(contract_id, student, starts_at=then)
    db.session.commit()

    client.v1.refunds.create({"payment_intent": intent})
    wait_until_state(db, contract_id, ("refunded", "refunded"))
    query = db.select(CoachingSession).filter_by(contract_id=contract_id)
    sessions = list(db.session.scalars(query))
    assert [s.status for s in sessions] == [SessionStatus.CANCELLED] * 2
    assert not any(s.late_cancellation for s in sessions)


def test_everything_refunded_under_a_dispute_cancels_the_sessions(app, db, paid, pending_contract,
                                                                   sandbox):
    """A dispute on part of the charge that leaves it refundable (an inquiry), then all of
    it refunded: the contract stays disputed (the bank decides), but no session is left
    booked for money that went back."""
    from clock import now as utcnow
    from contracts.models import CoachingSession, Contract, SessionStatus
    from scheduling.availability import free_slots
    from scheduling.sessions import book_session

    contract_id, client, intent = paid
    student = db.session.merge(pending_contract[1])
    with app.test_request_context():
        slot = free_slots(db.session.get(Contract, contract_id), from_day=utcnow().date(),
                          days=14)[0]
        book_session(contract_id, student, starts_at=slot.starts_at)
    db.session.commit()
    charge = client.v1.payment_intents.retrieve(intent).latest_charge
    assert sandbox.tool(f"charges/{charge}/dispute", amount=5000,
                        refundable="true").status_code == 200
    wait_until_state(db, contract_id, ("disputed", "disputed"))

    client.v1.refunds.create({"payment_intent": intent})
    wait_for(lambda: payments(db, contract_id)[0].amount_refunded == 20000, what="refunded")
    assert contract_state(db, contract_id)[0] == "disputed"
    [session] = db.session.scalars(db.select(CoachingSession).filter_by(contract_id=contract_id))
    db.session.refresh(session)
    assert session.status is SessionStatus.CANCELLED
