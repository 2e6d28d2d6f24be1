"""Refunds we start, end to end: a row first, Stripe asked outside any lock, events mirrored.

Every test pays a real contract at the sandbox through Checkout; refunds go to
the sandbox through the SDK and come back through the signed webhook and inbox.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from payments.models import RefundCategory, RefundRequest
from tests.payments.conftest import (
    contract_state,
    payments,
    wait_until_state,
)
from tests.support import at_once, wait_for


@pytest.fixture(autouse=True)
def request_context(app):
    """Services link to pages in what they tell people, as they do inside a request."""
    with app.test_request_context():
        yield


def charge_of(db, sandbox, contract_id) -> str:
    import stripe

    from tests.payments.conftest import API_KEY

    client = stripe.StripeClient(API_KEY, base_addresses={"api": sandbox.url},
                                 max_network_retries=0)
    return client.v1.payment_intents.retrieve(
        payments(db, contract_id)[0].payment_intent_id).latest_charge


def refunds_of(db, contract_id):
    from payments.models import Refund

    db.session.expire_all()
    return list(db.session.scalars(select(Refund).filter_by(contract_id=contract_id)
                                    .order_by(Refund.id)))


def contract(db, contract_id):
    from contracts.models import Contract

    db.session.expire_all()
    return db.session.get(Contract, contract_id)


def notices(db, user) -> list[str]:
    from notifications.models import Notification

    db.session.expire_all()
    return list(db.session.scalars(select(Notification.message).filter_by(user_id=user.id)
                                   .order_by(Notification.id)))


def admin_refund(db, contract_id, admin, amount, note="goodwill"):
    """What the admin console does: write the refund, commit, then ask Stripe."""
    from payments import refunds

    refund = refunds.refund_contract(contract_id, db.session.merge(admin), amount=amount,
                                     note=note)
    db.session.commit()
    return refunds.send_refund(refund.id)


def test_partial_then_full_refund_releases_sessions_then_closes(db, paid, admin):
    from payments import refunds

    contract_id, student, coach = paid
    first = admin_refund(db, contract_id, admin, 5000)
    assert (first.status.value, first.source.value) == ("succeeded", "admin")
    assert first.stripe_refund_id.startswith("re_")
    assert contract_state(db, contract_id) == ("active", "partially_refunded")
    # One session's price came back: the student can use 3 of the 4 sessions.
    assert (contract(db, contract_id).sessions_released,
            contract(db, contract_id).session_allowance) == (1, 3)
    assert payments(db, contract_id)[0].amount_refunded == 5000
    assert any("50.00" in m and "refunded to you" in m for m in notices(db, student))
    assert any("refunded to" in m for m in notices(db, coach))

    # The student asks for the rest; inside the window the policy gives all that is left.
    request = refunds.request_refund(contract_id, db.session.merge(student),
                                     category=RefundCategory.SCHEDULE,
                                     reason="My new job leaves no time.")
    db.session.commit()
    assert request.quoted_amount == 15000
    second = refunds.approve_request(request.id, db.session.merge(admin))
    db.session.commit()
    second = refunds.send_refund(second.id)
    assert (second.status.value, second.amount, second.source.value) == (
        "succeeded", 15000, "student_request")
    assert contract_state(db, contract_id) == ("refunded", "refunded")
    [payment] = payments(db, contract_id)
    assert (payment.status.value, payment.amount_refunded) == ("refunded", 20000)
    # Stripe's own events for both refunds arrive through the webhook and add nothing.
    wait_for(lambda: _processed(db, "refund.created") == 2, 10, "the refund events")
    assert [r.amount for r in refunds_of(db, contract_id)] == [5000, 15000]


def _processed(db, event_type: str) -> int:
    from payments.models import EventStatus, WebhookEvent

    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(WebhookEvent).where(
        WebhookEvent.type == event_type, WebhookEvent.status == EventStatus.PROCESSED))


def test_a_partial_refund_cancels_the_latest_sessions_beyond_the_allowance(
    db, paid, admin, clock
):

    from contracts.models import Contract, SessionStatus
    from scheduling.availability import free_slots
    from scheduling.sessions import book_session

    contract_id, student, _ = paid
    # The first free slot of each of four days of the coach's hours.
    first_of_day: dict = {}
    for slot in free_slots(db.session.get(Contract, contract_id),
                           from_day=clock.now().date(), days=14):
        first_of_day.setdefault(slot.starts_at.date(), slot.starts_at)
    booked = []
    for start in sorted(first_of_day.values())[:4]:
        booked.append(book_session(contract_id, db.session.merge(student), starts_at=start).id)
        db.session.commit()
    admin_refund(db, contract_id, admin, 10000)  # two sessions' price
    from contracts.models import CoachingSession

    db.session.expire_all()
    states = [db.session.get(CoachingSession, i).status for i in booked]
    assert states == [SessionStatus.SCHEDULED] * 2 + [SessionStatus.CANCELLED] * 2
    assert contract(db, contract_id).session_allowance == 2


def test_the_dashboard_refund_is_recorded_with_its_source(db, paid, sandbox):
    import stripe

    from tests.payments.conftest import API_KEY

    contract_id = paid[0]
    client = stripe.StripeClient(API_KEY, base_addresses={"api": sandbox.url},
                                 max_network_retries=0)
    client.v1.refunds.create({"payment_intent": payments(db, contract_id)[0].payment_intent_id,
                              "amount": 2500})
    wait_until_state(db, contract_id, ("active", "partially_refunded"))
    [refund] = refunds_of(db, contract_id)
    assert (refund.source.value, refund.status.value, refund.amount) == (
        "dashboard", "succeeded", 2500)
    assert refund.requested_by_id is None


def test_more_than_is_left_is_refused_and_nothing_written(db, paid, admin):
    from payments import refunds

    contract_id = paid[0]
    admin_refund(db, contract_id, admin, 15000)
    with pytest.raises(refunds.RefundRefused, match="Only \\$50.00 is still refundable"):
        refunds.refund_contract(contract_id, db.session.merge(admin), amount=5001, note="x")
    db.session.rollback()
    assert [r.amount for r in refunds_of(db, contract_id)] == [15000]


@pytest.mark.parametrize("sandbox_knobs", [{"SANDBOX_HOLD_EVENTS": "1"}])
def test_a_refund_stripe_refuses_leaves_the_contract_and_tells_the_student(
    db, paid, admin, sandbox, sandbox_knobs
):
    """Stripe refused (the charge was refunded at the Dashboard, its events not here yet)."""
    import stripe

    from tests.payments.conftest import API_KEY, deliver

    contract_id, student, _ = paid
    intent = payments(db, contract_id)[0].payment_intent_id
    stripe.StripeClient(API_KEY, base_addresses={"api": sandbox.url},
                        max_network_retries=0).v1.refunds.create({"payment_intent": intent})
    refused = admin_refund(db, contract_id, admin, 5000)
    assert refused.status.value == "failed"
    assert "already been refunded" in refused.failure_reason
    assert contract_state(db, contract_id) == ("active", "paid")
    assert any("did not go through" in m for m in notices(db, student))
    # The Dashboard refund's events then arrive and are recorded as what they are.
    from flask import current_app

    with current_app.test_client() as webhook:
        for event in sandbox.events():
            if event["type"].startswith(("refund.", "charge.refunded")):
                assert deliver(webhook, event).status_code == 200
    wait_until_state(db, contract_id, ("refunded", "refunded"))
    assert [(r.source.value, r.status.value) for r in refunds_of(db, contract_id)] == [
        ("admin", "failed"), ("dashboard", "succeeded")]


def test_an_open_dispute_refuses_refunds_and_requests(db, paid, admin, sandbox):
    from payments import refunds

    contract_id, student, _ = paid
    charge = charge_of(db, sandbox, contract_id)
    assert sandbox.tool(f"charges/{charge}/dispute").status_code == 200
    wait_until_state(db, contract_id, ("disputed", "disputed"))
    with pytest.raises(refunds.RefundRefused, match="dispute"):
        refunds.refund_contract(contract_id, db.session.merge(admin), amount=100, note="x")
    db.session.rollback()
    with pytest.raises(refunds.RefundRefused, match="dispute"):
        refunds.request_refund(contract_id, db.session.merge(student),
                               category=RefundCategory.OTHER, reason="Changed my mind")
    db.session.rollback()
    assert refunds_of(db, contract_id) == []


def test_an_admin_cancels_an_active_contract_with_the_quoted_refund(db, paid, admin):
    from payments import refunds

    contract_id, student, coach = paid
    refund = refunds.cancel_active_contract(contract_id, db.session.merge(admin),
                                            reason="The coach left the platform")
    db.session.commit()
    assert refund.amount == 20000  # inside the window, nothing used: the full total
    refunds.send_refund(refund.id)
    assert contract_state(db, contract_id) == ("cancelled", "refunded")
    assert any("cancelled" in m for m in notices(db, student))
    assert any("cancelled" in m for m in notices(db, coach))


@pytest.mark.postgres
def test_two_approvals_at_once_never_refund_more_than_was_paid(app, db, paid, admin):
    """Two admins refund 120.00 each of a 200.00 contract at the same moment: one wins."""
    from extensions import db as database
    from payments import refunds

    contract_id = paid[0]

    def approve(_) -> str:
        try:
            refund = refunds.refund_contract(
                contract_id, database.session.merge(admin), amount=12000, note="race")
            database.session.commit()
            return refunds.send_refund(refund.id).status.value
        except refunds.RefundRefused as exc:
            database.session.rollback()
            return f"refused: {exc}"

    results = at_once(app, approve, [1, 2])
    assert sorted(results) == ["refused: Only $80.00 is still refundable on this contract.",
                               "succeeded"]
    assert sum(r.amount for r in refunds_of(db, contract_id)
               if r.status.value in ("pending", "succeeded")) == 12000


@pytest.mark.parametrize("sandbox_knobs", [{"SANDBOX_REFUND_OUTCOME": "pending"}])
def test_a_pending_refund_reaches_the_contract_when_stripe_settles_it(
    db, paid, admin, sandbox, sandbox_knobs
):
    contract_id = paid[0]
    refund = admin_refund(db, contract_id, admin, 5000)
    assert refund.status.value == "pending" and refund.stripe_refund_id
    assert contract_state(db, contract_id) == ("active", "paid")
    response = sandbox.tool(f"refunds/{refund.stripe_refund_id}/settle", outcome="succeeded")
    assert response.status_code == 200, response.text
    wait_until_state(db, contract_id, ("active", "partially_refunded"))
    [row] = refunds_of(db, contract_id)
    assert (row.status.value, row.settled_at is not None) == ("succeeded", True)


@pytest.mark.parametrize("sandbox_knobs", [{"SANDBOX_REFUND_OUTCOME": "pending"}])
def test_a_refund_the_bank_fails_reopens_the_request_and_tells_the_student(
    db, paid, admin, sandbox, sandbox_knobs
):
    from payments import refunds

    contract_id, student, _ = paid
    request = refunds.request_refund(contract_id, db.session.merge(student),
                                     category=RefundCategory.PERSONAL,
                                     reason="Family matters need my time.")
    db.session.commit()
    refund = refunds.approve_request(request.id, db.session.merge(admin))
    db.session.commit()
    refund = refunds.send_refund(refund.id)
    assert refund.status.value == "pending"
    sandbox.tool(f"refunds/{refund.stripe_refund_id}/settle", outcome="failed",
                 failure_reason="expired_or_canceled_card")
    wait_for(lambda: refunds_of(db, contract_id)[0].status.value == "failed", 10,
             "the refund to fail")
    assert refunds_of(db, contract_id)[0].failure_reason == "expired_or_canceled_card"
    assert contract_state(db, contract_id) == ("active", "paid")
    db.session.expire_all()
    assert db.session.get(RefundRequest, request.id).status.value == "open"
    assert any("did not go through" in m for m in notices(db, student))
    assert payments(db, contract_id)[0].amount_refunded == 0


@pytest.mark.parametrize("outcome, expected", [
    ("won", ("active", "paid")),
    ("lost", ("refunded", "refunded")),
])
def test_a_dispute_won_restores_the_contract_and_lost_refunds_it(
    db, paid, sandbox, outcome, expected
):
    from payments.models import Dispute

    contract_id = paid[0]
    dispute = sandbox.tool(f"charges/{charge_of(db, sandbox, contract_id)}/dispute",
                           reason="product_not_received").json()
    wait_until_state(db, contract_id, ("disputed", "disputed"))
    db.session.expire_all()
    row = db.session.scalar(select(Dispute).filter_by(stripe_dispute_id=dispute["id"]))
    assert (row.status, row.reason, row.amount) == ("needs_response", "product_not_received",
                                                    20000)
    assert int(row.evidence_due_by.timestamp()) == dispute["evidence_details"]["due_by"]
    assert sandbox.tool(f"disputes/{dispute['id']}/close", outcome=outcome).status_code == 200
    wait_until_state(db, contract_id, expected)
    db.session.expire_all()
    row = db.session.get(Dispute, row.id)
    assert (row.status, row.closed_at is not None) == (outcome, True)


def test_a_refundable_dispute_still_allows_a_refund(db, paid, admin, sandbox):
    contract_id = paid[0]
    sandbox.tool(f"charges/{charge_of(db, sandbox, contract_id)}/dispute", refundable="true",
                 reason="general")
    wait_until_state(db, contract_id, ("disputed", "disputed"))
    refund = admin_refund(db, contract_id, admin, 20000)
    assert refund.status.value == "succeeded"
    # The contract stays disputed (the bank decides); the refund is on record.
    assert contract_state(db, contract_id) == ("disputed", "disputed")
    assert payments(db, contract_id)[0].amount_refunded == 20000
    # Won after all: the contract comes back as what it is now, refunded.
    [dispute] = sandbox.events("charge.dispute.created")
    sandbox.tool(f"disputes/{dispute['data']['object']['id']}/close", outcome="won")
    wait_until_state(db, contract_id, ("refunded", "refunded"))
