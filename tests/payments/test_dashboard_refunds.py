"""A refund made in the Stripe Dashboard (here: through the sandbox's API with the SDK, not
by the app) is recorded once, with its amount and reason, whichever of its events comes
first and however often each is delivered.

Stripe's events are held at the sandbox so that each test delivers them itself, signed,
to the app's webhook, in the order it wants. The charge in `charge.refunded` carries no
list of its refunds (API version 2022-11-15 on): the app lists them through the API.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import stripe
from sqlalchemy import func, select

from tests.payments.conftest import (
    API_KEY,
    contract_state,
    deliver,
    pay_deposit_by_card,
    payments,
)

REFUND_TYPES = ("refund.created", "refund.updated", "refund.failed", "charge.refund.updated",
                "charge.refunded")


@pytest.fixture
def sandbox_knobs() -> dict[str, Any]:
    return {"SANDBOX_HOLD_EVENTS": "1"}


@pytest.fixture
def dashboard(sandbox) -> stripe.StripeClient:
    """Stripe reached as the Dashboard does: around the app."""
    return stripe.StripeClient(API_KEY, base_addresses={"api": sandbox.url},
                               max_network_retries=0)


@pytest.fixture
def intent(db, paid) -> str:
    """The payment intent of `paid`'s Checkout payment ($200.00)."""
    return payments(db, paid[0])[0].payment_intent_id


def events_of(sandbox, *types: str) -> dict[str, dict[str, Any]]:
    """The sandbox's refund events, by type (one of each here)."""
    found = {e["type"]: e for e in sandbox.events() if e["type"] in REFUND_TYPES}
    assert "refunds" not in found.get("charge.refunded", {"data": {"object": {}}})["data"]["object"]
    return {t: found[t] for t in types}


def outcome(db, event: dict[str, Any]) -> tuple[str, str | None]:
    from payments.models import WebhookEvent

    db.session.expire_all()
    row = db.session.scalar(select(WebhookEvent).filter_by(stripe_event_id=event["id"]))
    return row.status.value, row.outcome


def anew(event: dict[str, Any], n: int = 1) -> dict[str, Any]:
    """The same event sent again under a new id (as Stripe may, after an outage)."""
    return dict(event, id=f"{event['id']}_again{n}")


def audits(db, action: str, object_id: int) -> int:
    from audit.models import AuditEntry

    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(AuditEntry).filter_by(
        action=action, object_id=object_id))


def notices(db, user) -> list[str]:
    from notifications.models import Notification

    db.session.expire_all()
    return list(db.session.scalars(select(Notification.message).filter_by(user_id=user.id)))


def assert_recorded_once(db, contract_id: int, made: stripe.Refund, student) -> None:
    """One Refund row for Stripe's refund, counted once on its payment and the contract,
    audited and told once."""
    from payments.models import Refund

    db.session.expire_all()
    [row] = db.session.scalars(select(Refund).filter_by(contract_id=contract_id))
    assert (row.source.value, row.status.value, row.amount, row.currency, row.stripe_reason,
            row.stripe_refund_id, row.requested_by_id) == (
        "dashboard", "succeeded", made.amount, made.currency, made.reason, made.id, None)
    payment = next(p for p in payments(db, contract_id) if p.id == row.payment_id)
    assert payment.amount_refunded == made.amount
    assert audits(db, "refund.created", row.id) == 1
    assert audits(db, "refund.succeeded", row.id) == 1
    assert audits(db, "contract.refund_recorded", contract_id) == 1
    told = [m for m in notices(db, student) if "was refunded to you" in m]
    assert len(told) == 1


def test_refund_created_first(db, client, sandbox, paid, dashboard, intent):
    contract_id, student, _ = paid
    made = dashboard.v1.refunds.create({"payment_intent": intent,
                                        "reason": "requested_by_customer"})
    found = events_of(sandbox, "refund.created", "charge.refunded")
    assert deliver(client, found["refund.created"]).status_code == 200
    assert outcome(db, found["refund.created"]) == ("processed", "refunded")
    assert contract_state(db, contract_id) == ("refunded", "refunded")
    # The charge then says what we know already: nothing is listed, nothing changes.
    assert deliver(client, found["charge.refunded"]).status_code == 200
    assert outcome(db, found["charge.refunded"]) == ("processed", "known")
    assert_recorded_once(db, contract_id, made, student)


def test_charge_refunded_first(db, client, sandbox, paid, dashboard, intent):
    contract_id, student, _ = paid
    made = dashboard.v1.refunds.create({"payment_intent": intent, "reason": "duplicate"})
    found = events_of(sandbox, "refund.created", "charge.refunded")
    # More refunded than the app knows, and no list on the charge: the app asks Stripe.
    assert deliver(client, found["charge.refunded"]).status_code == 200
    assert outcome(db, found["charge.refunded"]) == ("processed", "listing refunds")
    assert contract_state(db, contract_id) == ("refunded", "refunded")
    assert_recorded_once(db, contract_id, made, student)
    # The refund's own event comes later and finds it recorded.
    assert deliver(client, found["refund.created"]).status_code == 200
    assert outcome(db, found["refund.created"]) == ("processed", "unchanged")
    assert_recorded_once(db, contract_id, made, student)


@pytest.mark.parametrize("charge_first", [False, True])
def test_every_event_twice_and_replayed(db, client, sandbox, paid, dashboard, intent, admin,
                                        charge_first):
    from payments.inbox.processing import replay_event
    from payments.models import WebhookEvent

    contract_id, student, _ = paid
    made = dashboard.v1.refunds.create({"payment_intent": intent, "amount": 10000,
                                        "reason": "requested_by_customer"})
    found = events_of(sandbox, "refund.created", "charge.refunded")
    order = [found["charge.refunded"], found["refund.created"]]
    if not charge_first:
        order.reverse()
    for event in order + order:  # Stripe's redelivery of the same events
        assert deliver(client, event).status_code == 200
    for n, event in enumerate(order + order):  # and the same events under new ids
        assert deliver(client, anew(event, n)).status_code == 200
        assert outcome(db, anew(event, n)) == ("processed", {
            "refund.created": "unchanged", "charge.refunded": "known"}[event["type"]])
    # An admin's replay of what was processed changes nothing either.
    for event in order:
        row = db.session.scalar(select(WebhookEvent).filter_by(stripe_event_id=event["id"]))
        assert replay_event(row.id, db.session.merge(admin)) == "unchanged"
        db.session.commit()
    assert contract_state(db, contract_id) == ("active", "partially_refunded")
    assert_recorded_once(db, contract_id, made, student)


def test_a_partial_dashboard_refund_releases_what_it_paid_for(db, client, sandbox, paid,
                                                              dashboard, intent):
    from contracts.models import Contract

    contract_id, student, _ = paid
    made = dashboard.v1.refunds.create({"payment_intent": intent, "amount": 5000,
                                        "reason": "requested_by_customer"})
    found = events_of(sandbox, "refund.created", "charge.refunded")
    assert deliver(client, found["charge.refunded"]).status_code == 200
    assert deliver(client, found["refund.created"]).status_code == 200
    assert contract_state(db, contract_id) == ("active", "partially_refunded")
    assert_recorded_once(db, contract_id, made, student)
    contract = db.session.get(Contract, contract_id)
    assert (contract.sessions_released, contract.session_allowance) == (1, 3)  # one $50.00
    [payment] = payments(db, contract_id)
    assert (payment.status.value, payment.amount_refunded) == ("partially_refunded", 5000)


def test_a_pending_dashboard_refund_settles_once(db, client, sandbox, paid, dashboard, intent):
    """Pending refunds count in the charge's amount_refunded as in ours: the charge's event
    lists nothing; the refund's two update events (refund.updated, charge.refund.updated)
    settle it once."""
    contract_id, student, _ = paid
    made = dashboard.v1.refunds.create({"payment_intent": intent, "amount": 5000,
                                        "reason": "requested_by_customer",
                                        "metadata": {"sandbox_refund": "pending"}})
    found = events_of(sandbox, "refund.created", "charge.refunded")
    assert deliver(client, found["refund.created"]).status_code == 200
    assert outcome(db, found["refund.created"]) == ("processed", "unchanged")  # new, pending
    assert deliver(client, found["charge.refunded"]).status_code == 200
    assert outcome(db, found["charge.refunded"]) == ("processed", "known")
    assert contract_state(db, contract_id) == ("active", "paid")

    assert sandbox.tool(f"refunds/{made.id}/settle", outcome="succeeded").status_code == 200
    updated = events_of(sandbox, "charge.refund.updated", "refund.updated")
    for event in updated.values():  # charge.refund.updated first: either one settles it
        assert deliver(client, event).status_code == 200
    assert [outcome(db, e) for e in updated.values()] == [
        ("processed", "refunded"), ("processed", "unchanged")]
    assert contract_state(db, contract_id) == ("active", "partially_refunded")
    assert_recorded_once(db, contract_id, dashboard.v1.refunds.retrieve(made.id), student)


def test_a_failed_dashboard_refund_is_given_back_once(db, client, sandbox, paid, dashboard,
                                                      intent):
    contract_id, _, _ = paid
    made = dashboard.v1.refunds.create({"payment_intent": intent, "amount": 5000,
                                        "metadata": {"sandbox_refund": "pending"}})
    assert sandbox.tool(f"refunds/{made.id}/settle", outcome="failed").status_code == 200
    # Only the charge's event reaches the app first: the list shows the refund failed.
    found = events_of(sandbox, "charge.refunded", "refund.created", "refund.failed",
                      "refund.updated", "charge.refund.updated")
    for event in found.values():
        assert deliver(client, event).status_code == 200
    assert outcome(db, found["charge.refunded"]) == ("processed", "listing refunds")
    from payments.models import Refund

    db.session.expire_all()
    [row] = db.session.scalars(select(Refund).filter_by(contract_id=contract_id))
    assert (row.source.value, row.status.value, row.failure_reason) == (
        "dashboard", "failed", "declined")
    assert contract_state(db, contract_id) == ("active", "paid")
    assert payments(db, contract_id)[0].amount_refunded == 0


@pytest.fixture
def on_plan(app, db, sandbox, make_plan_contract, clock):
    """A $400.00 contract whose $100.00 deposit was paid by card on a plan of 3 instalments."""
    contract_id, student = make_plan_contract(10000)[:2]
    clock.freeze(datetime(2027, 3, 10, 12, 0, tzinfo=UTC))
    offset = int((clock.now() - datetime.now(UTC)).total_seconds())
    assert sandbox.tool("clock", offset_seconds=offset).status_code == 200
    with app.test_request_context():
        pay_deposit_by_card(db, sandbox, contract_id, student)
    return contract_id, student


def test_a_dashboard_refund_of_a_plans_deposit(app, db, client, sandbox, on_plan, dashboard):
    contract_id, student = on_plan
    [deposit] = payments(db, contract_id)
    made = dashboard.v1.refunds.create({"payment_intent": deposit.payment_intent_id,
                                        "amount": 2500, "reason": "requested_by_customer"})
    found = events_of(sandbox, "refund.created", "charge.refunded")
    with app.test_request_context():
        for event in (found["charge.refunded"], found["refund.created"]):
            assert deliver(client, event).status_code == 200
            assert deliver(client, anew(event)).status_code == 200
    assert outcome(db, found["charge.refunded"]) == ("processed", "listing refunds")
    assert contract_state(db, contract_id) == ("active", "partially_refunded")
    assert_recorded_once(db, contract_id, made, student)


def test_stripe_away_when_the_charge_comes_first(db, client, sandbox, sandbox_server, paid,
                                                 dashboard, intent):
    """The charge's refunds cannot be listed: nothing is recorded from a guess, and the
    refund's own event records it when it comes."""
    contract_id, student, _ = paid
    made = dashboard.v1.refunds.create({"payment_intent": intent, "amount": 5000,
                                        "reason": "requested_by_customer"})
    found = events_of(sandbox, "refund.created", "charge.refunded")
    switch = sandbox_server[0]
    up, switch.target = switch.target, unavailable
    try:
        assert deliver(client, found["charge.refunded"]).status_code == 200
    finally:
        switch.target = up
    assert outcome(db, found["charge.refunded"]) == ("processed", "listing refunds")
    assert contract_state(db, contract_id) == ("active", "paid")
    assert deliver(client, found["refund.created"]).status_code == 200
    assert contract_state(db, contract_id) == ("active", "partially_refunded")
    assert_recorded_once(db, contract_id, made, student)


def unavailable(environ, start_response):
    """Stripe, down."""
    start_response("503 Service Unavailable", [("Content-Type", "application/json")])
    return [b'{"error": {"type": "api_error", "message": "Service unavailable"}}']


def test_a_held_payment_refunded_in_the_dashboard_cannot_be_accepted(
    app, db, student_client, sandbox, pending_contract, dashboard, admin
):
    """Counting it would count money the student has back; refusing it sends back only
    what the Dashboard did not."""
    import copy

    from payments.checkout import review
    from payments.models import Refund
    from tests.payments.conftest import start_checkout

    contract_id = pending_contract[0]
    sandbox.pay(start_checkout(student_client, contract_id))
    completed = next(e for e in sandbox.events() if e["type"] == "checkout.session.completed")
    tampered = copy.deepcopy(completed)  # another amount than the contract's: held
    tampered["data"]["object"]["amount_total"] = 100
    assert deliver(student_client, tampered).status_code == 200
    [held] = payments(db, contract_id)
    assert held.held_for_review
    made = dashboard.v1.refunds.create({"payment_intent": held.payment_intent_id,
                                        "amount": 5000, "reason": "requested_by_customer"})
    assert deliver(student_client, events_of(sandbox, "charge.refunded")["charge.refunded"]
                   ).status_code == 200
    assert contract_state(db, contract_id) == ("pending", "pending")

    with app.test_request_context():
        for waive in (False, True):
            with pytest.raises(review.ReviewRefused, match="refunded outside Coachpact"):
                review.accept_held_payment(held.id, db.session.merge(admin), "checked",
                                           waive_shortfall=waive)
            db.session.rollback()
        review.refund_held_payment(held.id, db.session.merge(admin), "does not match")
        db.session.commit()
    db.session.expire_all()
    rows = db.session.scalars(select(Refund).filter_by(payment_id=held.id).order_by(Refund.id))
    assert [(r.source.value, r.amount, r.status.value) for r in rows] == [
        ("dashboard", 5000, "succeeded"), ("duplicate", 15000, "succeeded")]
    [payment] = payments(db, contract_id)
    assert (payment.status.value, payment.amount_refunded) == ("refunded", 20000)
    assert made.amount + 15000 == payment.amount
    assert contract_state(db, contract_id) == ("pending", "pending")
