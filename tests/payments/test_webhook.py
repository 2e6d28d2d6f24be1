"""The webhook: signatures, redeliveries, order, mismatches, crashes and races."""

from __future__ import annotations

import copy
import json
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.payments.conftest import (
    WEBHOOK_SECRET,
    contract_state,
    deliver,
    payments,
    sign,
    start_checkout,
)

HOLD = {"SANDBOX_HOLD_EVENTS": "1"}


def rows(db, model) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def paid_events(db, student_client, sandbox, pending_contract):
    """A paid Checkout whose events the sandbox held back: (contract id, events oldest first)."""
    contract_id = pending_contract[0]
    sandbox.pay(start_checkout(student_client, contract_id))
    assert contract_state(db, contract_id) == ("pending", "pending")
    return contract_id, sandbox.events()


def completed(events):
    return next(e for e in events if e["type"] == "checkout.session.completed")


def event_row(db, stripe_id: str):
    from payments.models import WebhookEvent

    db.session.expire_all()
    return db.session.scalar(select(WebhookEvent).filter_by(stripe_event_id=stripe_id))


@pytest.mark.parametrize("sandbox_knobs", [HOLD])
def test_the_same_event_ten_times_has_one_effect(db, client, paid_events, sandbox_knobs):
    from audit.models import AuditEntry
    from notifications.models import Notification, OutboxMail
    from payments.models import WebhookEvent

    contract_id, events = paid_events
    # Sending and accepting the proposal told each party once already.
    told_before, mailed_before = rows(db, Notification), rows(db, OutboxMail)
    answers = [deliver(client, completed(events)).get_json() for _ in range(10)]
    assert answers == [{"received": True}] + [{"received": True, "duplicate": True}] * 9
    assert contract_state(db, contract_id) == ("active", "paid")
    row = event_row(db, completed(events)["id"])
    assert (row.status.value, row.outcome, row.attempts) == ("processed", "fulfilled", 1)
    assert rows(db, WebhookEvent) == 1
    # Paid: the coach and the student are told, once each.
    assert rows(db, Notification) == told_before + 2
    assert rows(db, OutboxMail) == mailed_before + 2
    assert rows(db, AuditEntry) == 2  # checkout started, contract paid


@pytest.mark.parametrize("sandbox_knobs", [HOLD])
def test_the_inbox_keeps_the_body_as_stripe_signed_it(db, client, paid_events, sandbox_knobs):
    event = completed(paid_events[1])
    response = deliver(client, event)
    assert response.status_code == 200
    assert json.loads(event_row(db, event["id"]).payload) == event


@pytest.mark.parametrize("sandbox_knobs", [HOLD])
def test_events_in_reverse_order_reach_the_same_end(db, client, paid_events, sandbox_knobs):
    from payments.models import WebhookEvent

    contract_id, events = paid_events
    assert {deliver(client, event).status_code for event in reversed(events)} == {200}
    assert contract_state(db, contract_id) == ("active", "paid")
    [payment] = payments(db, contract_id)
    assert payment.status.value == "succeeded"
    statuses = db.session.scalars(select(WebhookEvent.status)).all()
    assert len(statuses) == len(events) and {s.value for s in statuses} == {"processed"}


@pytest.mark.parametrize("sandbox_knobs", [HOLD])
def test_the_coach_is_mailed_once_with_a_link_to_the_contract(
    db, app, client, paid_events, sandbox_knobs, sent_mail
):
    from contracts.models import Contract

    contract_id, events = paid_events
    for _ in range(3):
        assert deliver(client, completed(events)).status_code == 200
    contract = db.session.get(Contract, contract_id)
    # One mail each: the coach's that it is paid, the student's that the payment is confirmed.
    assert sorted(m.to[0] for m in sent_mail) == sorted(
        [contract.coach.email, contract.student.email]
    )
    (message,) = [m for m in sent_mail if m.to == [contract.coach.email]]
    assert "is paid" in message.subject
    assert f"{app.config['APP_BASE_URL']}/contracts/{contract_id}" in message.body


@pytest.mark.parametrize("sandbox_knobs", [HOLD])
@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [("amount_total", 100, "Stripe reported $1.00; the contract expects $"),
     ("currency", "eur", "Stripe reported the currency EUR; the contract is in USD."),
     ("metadata", {"contract_id": "999999"},
      "The Checkout session names contract #999999, not #")],
)
def test_a_mismatch_is_flagged_and_activates_nothing(
    db, client, paid_events, sandbox_knobs, field, value, reason
):
    contract_id, events = paid_events
    event = copy.deepcopy(completed(events))
    event["data"]["object"][field] = value
    assert deliver(client, event).status_code == 200
    assert event_row(db, event["id"]).outcome == "flagged"
    assert contract_state(db, contract_id) == ("pending", "pending")
    [payment] = payments(db, contract_id)
    assert reason in payment.review_reason and payment.status.value == "pending"
    assert "≠" not in payment.review_reason  # words, not the old "amount 100 ≠ 20000"


@pytest.mark.parametrize("sandbox_knobs", [HOLD])
def test_a_handler_that_fails_twice_then_succeeds_applies_once(
    db, app, client, paid_events, sandbox_knobs, monkeypatch, clock
):
    """A crash midway keeps nothing of the handler; the retries apply it once."""
    import contracts.lifecycle as lifecycle
    from audit.models import AuditEntry
    from notifications.models import Notification
    from payments.inbox.processing import sweep_inbox

    contract_id, events = paid_events
    real_notify = lifecycle.notify
    failures = iter([RuntimeError("notification store down"), RuntimeError("again")])

    def flaky_notify(*args, **kwargs):
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return real_notify(*args, **kwargs)

    # notify() runs after the contract row was changed and before the commit.
    monkeypatch.setattr(lifecycle, "notify", flaky_notify)
    told_before = rows(db, Notification)  # sending and accepting the proposal
    assert deliver(client, completed(events)).status_code == 200
    row = event_row(db, completed(events)["id"])
    assert (row.status.value, row.attempts) == ("received", 1)
    assert "notification store down" in row.last_error
    assert row.next_attempt_at > row.received_at
    assert contract_state(db, contract_id) == ("pending", "pending")
    assert payments(db, contract_id)[0].status.value == "pending"
    assert rows(db, AuditEntry) == 1  # only the checkout started

    for _ in range(2):  # each retry is due after the backoff; the sweep finds it
        clock.advance(timedelta(minutes=1))
        sweep_inbox()
    row = event_row(db, completed(events)["id"])
    assert (row.status.value, row.outcome, row.attempts) == ("processed", "fulfilled", 3)
    assert row.last_error is None
    assert contract_state(db, contract_id) == ("active", "paid")
    assert rows(db, AuditEntry) == 2
    assert rows(db, Notification) == told_before + 2  # the coach and the student, once


@pytest.mark.parametrize("sandbox_knobs", [HOLD])
def test_an_event_whose_enqueue_fails_is_processed_by_the_sweep(
    db, client, paid_events, sandbox_knobs, monkeypatch, clock
):
    import jobs
    from payments.inbox.processing import sweep_inbox

    contract_id, events = paid_events

    def queue_down(task):
        raise ConnectionError("the queue's storage is down")

    monkeypatch.setattr(jobs.huey, "enqueue", queue_down)
    assert deliver(client, completed(events)).status_code == 200
    assert event_row(db, completed(events)["id"]).status.value == "received"
    assert contract_state(db, contract_id) == ("pending", "pending")

    monkeypatch.undo()
    sweep_inbox()  # not yet: the event's own job may still be on its way
    assert event_row(db, completed(events)["id"]).status.value == "received"
    clock.advance(timedelta(seconds=6))
    sweep_inbox()
    assert event_row(db, completed(events)["id"]).outcome == "fulfilled"
    assert contract_state(db, contract_id) == ("active", "paid")


@pytest.mark.parametrize("sandbox_knobs", [HOLD])
def test_webhook_and_success_page_racing(
    db, client, student_client, paid_events, sandbox_knobs, app
):
    from audit.models import AuditEntry

    contract_id, events = paid_events
    session_id = completed(events)["data"]["object"]["id"]
    barrier = threading.Barrier(2)
    results = {}

    def webhook():
        other = app.test_client()
        barrier.wait()
        results["webhook"] = deliver(other, completed(events)).status_code

    def success_page():
        barrier.wait()
        results["page"] = student_client.get(
            f"/contracts/{contract_id}/payment-success?session_id={session_id}"
        ).status_code

    threads = [threading.Thread(target=webhook), threading.Thread(target=success_page)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == {"webhook": 200, "page": 200}
    assert contract_state(db, contract_id) == ("active", "paid")
    assert db.session.scalar(
        select(func.count()).select_from(AuditEntry).filter_by(action="contract.paid")
    ) == 1


def test_unknown_event_types_are_acknowledged(db, client):
    from payments.models import WebhookEvent

    event = {"id": "evt_other", "type": "customer.updated", "object": "event",
             "data": {"object": {"id": "cus_1", "object": "customer"}}}
    assert deliver(client, event).status_code == 200
    assert rows(db, WebhookEvent) == 1
    row = event_row(db, "evt_other")
    assert (row.status.value, row.outcome) == ("processed", "ignored")


@pytest.mark.parametrize(
    "tamper",
    ["bad_signature", "wrong_secret", "stale", "tampered_body", "missing_header", "not_json",
     "not_an_event", "oversized"],
)
def test_untrustworthy_webhooks_get_400_and_write_nothing(db, client, tamper):
    from payments.models import WebhookEvent

    event = {"id": "evt_x", "type": "checkout.session.completed", "object": "event",
             "data": {"object": {"id": "cs_test_x", "metadata": {"contract_id": "1"}}}}
    payload = json.dumps(event).encode()
    header = sign(payload)
    if tamper == "bad_signature":
        header = header[:-4] + "beef"
    elif tamper == "wrong_secret":
        header = sign(payload, secret="whsec_someone_else")
    elif tamper == "stale":
        header = sign(payload, timestamp=int(time.time()) - 301)
    elif tamper == "tampered_body":
        payload = payload.replace(b"cs_test_x", b"cs_test_y")
    elif tamper == "not_json":
        payload = b"this is not json"
        header = sign(payload)
    elif tamper == "not_an_event":
        payload = b'["a list"]'
        header = sign(payload)
    elif tamper == "oversized":
        payload = b'{"pad": "' + b"x" * 300_000 + b'"}'
        header = sign(payload)
    headers = {} if tamper == "missing_header" else {"Stripe-Signature": header}
    response = client.post("/webhooks/stripe", data=payload, headers=headers,
                           content_type="application/json")
    assert response.status_code == 400
    assert rows(db, WebhookEvent) == 0
    assert WEBHOOK_SECRET not in response.get_data(as_text=True)


# Two secrets on each endpoint, as while one is rolled: Stripe signs with both for a day.
ROLLING = {
    "STRIPE_SECRET_KEY": "sk_test_rotation",
    "STRIPE_API_BASE": "http://127.0.0.1:9",  # nothing here reaches Stripe
    "STRIPE_WEBHOOK_SECRET": ("whsec_platform_new", "whsec_platform_old"),
    "STRIPE_CONNECT_WEBHOOK_SECRET": ("whsec_connect_new", "whsec_connect_old"),
}


@pytest.mark.parametrize("app_overrides", [ROLLING])
@pytest.mark.parametrize("connect", [False, True], ids=["platform", "connect"])
def test_a_rolled_secret_and_its_successor_are_both_accepted(db, client, app_overrides,
                                                              connect):
    from payments.models import WebhookEvent

    new, old = app_overrides[
        "STRIPE_CONNECT_WEBHOOK_SECRET" if connect else "STRIPE_WEBHOOK_SECRET"]
    other = app_overrides[
        "STRIPE_WEBHOOK_SECRET" if connect else "STRIPE_CONNECT_WEBHOOK_SECRET"][0]

    def event(n: int) -> dict:
        if connect:  # an account we do not know: recorded, and left alone
            return {"id": f"evt_rolled_{n}", "object": "event", "type": "account.updated",
                    "account": "acct_elsewhere",
                    "data": {"object": {"id": "acct_elsewhere", "object": "account"}}}
        return {"id": f"evt_rolled_{n}", "object": "event", "type": "customer.updated",
                "data": {"object": {"id": "cus_1", "object": "customer"}}}

    assert deliver(client, event(1), connect=connect, secret=old).status_code == 200
    assert deliver(client, event(2), connect=connect, secret=new).status_code == 200
    # A third secret, the other endpoint's included, is refused; so is a stale signature by
    # a valid one.
    for n, kwargs in ((3, {"secret": "whsec_someone_else"}), (4, {"secret": other}),
                      (5, {"secret": old, "timestamp": int(time.time()) - 301})):
        answer = deliver(client, event(n), connect=connect, **kwargs)
        assert answer.status_code == 400
        assert ("tolerance" in answer.get_json()["error"]) == (n == 5)
        for secret in (new, old, other):
            assert secret not in answer.get_data(as_text=True)
    assert rows(db, WebhookEvent) == 2
    assert {row.stripe_event_id for row in db.session.scalars(select(WebhookEvent))} == {
        "evt_rolled_1", "evt_rolled_2"}


@pytest.mark.postgres
@pytest.mark.parametrize("sandbox_knobs", [HOLD])
def test_eight_concurrent_deliveries_fulfil_once(
    db, app, database_uri, paid_events, sandbox_knobs
):
    from audit.models import AuditEntry
    from notifications.models import Notification
    from payments.models import Payment, PaymentRecordStatus

    contract_id, events = paid_events
    told_before = rows(db, Notification)  # sending and accepting the proposal
    barrier = threading.Barrier(8)
    statuses: list[int] = []

    def post():
        client = app.test_client()
        barrier.wait()
        statuses.append(deliver(client, completed(events)).status_code)

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert statuses == [200] * 8
    assert contract_state(db, contract_id) == ("active", "paid")
    assert db.session.scalar(
        select(func.count()).select_from(AuditEntry).filter_by(action="contract.paid")) == 1
    assert rows(db, Notification) == told_before + 2  # the coach and the student, once
    assert db.session.scalar(select(func.count()).select_from(Payment).filter_by(
        status=PaymentRecordStatus.SUCCEEDED)) == 1
