"""Events delivered as signed webhooks: payloads, signatures, retries and the test knobs."""

from __future__ import annotations

import time

import pytest
import requests
from stripe._api_version import _ApiVersion

from sandbox.events import sign
from tests.sandbox.conftest import WEBHOOK_SECRET
from tests.sandbox.shape_check import assert_shape
from tests.support import wait_for

CARD_EVENTS = ["charge.succeeded", "payment_intent.succeeded", "checkout.session.completed"]


def paid_session(make_session, sandbox):
    session = make_session()
    response = sandbox.pay(session.id, card_number="4242424242424242")
    assert response.status_code == 200, response.text
    return session


def test_signature_matches_stripes_scheme():
    # Independent of the SDK: t=<unix>,v1=HMAC-SHA256("{t}.{body}") keyed with the whole secret.
    import hashlib
    import hmac

    header = sign('{"id": "evt_1"}', "whsec_abc", 1700000000)
    expected = hmac.new(b"whsec_abc", b'1700000000.{"id": "evt_1"}', hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"


def test_card_payment_delivers_signed_events(make_session, sandbox, receiver, client):
    session = paid_session(make_session, sandbox)
    wait_for(lambda: len(receiver.events) >= 3, what="three events")
    assert receiver.types() == CARD_EVENTS
    assert receiver.rejected == []
    for event in receiver.events:
        assert_shape(event, "event")
        assert event["api_version"] == _ApiVersion.CURRENT
        assert event["request"] == {"id": None, "idempotency_key": None}
    completed = receiver.of_type("checkout.session.completed")[0]["data"]["object"]
    assert (completed["id"], completed["payment_status"]) == (session.id, "paid")
    assert completed["metadata"] == {"contract_id": "42"}
    succeeded = receiver.of_type("payment_intent.succeeded")[0]["data"]["object"]
    assert succeeded["metadata"] == {"contract_id": "42"}
    # The delivered events are the ones the API lists.
    listed = [e.id for e in client.v1.events.list().data]
    assert sorted(listed) == sorted(e["id"] for e in receiver.events)
    wait_for(lambda: client.v1.events.retrieve(listed[0]).pending_webhooks == 0,
             what="pending_webhooks to drop to 0")


def test_wrong_secret_is_rejected_by_the_sdk(make_session, sandbox, receiver):
    receiver.secret = "whsec_something_else"
    paid_session(make_session, sandbox)
    wait_for(lambda: len(receiver.rejected) >= 3, what="three rejected deliveries")
    assert receiver.events == []
    assert "signature" in receiver.rejected[0].lower()


def test_decline_emits_payment_failed(make_session, sandbox, receiver, client):
    session = make_session()
    response = sandbox.pay(session.id, card_number="4000000000000002")
    assert response.status_code == 402
    assert response.json()["error"]["decline_code"] == "generic_decline"
    receiver.wait_for_type("payment_intent.payment_failed")
    failed = receiver.of_type("payment_intent.payment_failed")[0]["data"]["object"]
    assert_shape(failed, "payment_intent")
    assert failed["last_payment_error"]["code"] == "card_declined"
    assert failed["last_payment_error"]["decline_code"] == "generic_decline"
    assert failed["metadata"] == {"contract_id": "42"}
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
    charge = receiver.wait_for_type("charge.failed")[0]["data"]["object"]
    assert_shape(charge, "charge")
    assert charge["failure_code"] == "card_declined"


def test_insufficient_funds(make_session, sandbox):
    session = make_session()
    response = sandbox.pay(session.id, card_number="4000000000009995")
    assert response.status_code == 402
    pi = response.json()["payment_intent"]
    assert pi["last_payment_error"]["decline_code"] == "insufficient_funds"
    assert pi["status"] == "requires_payment_method"


@pytest.mark.parametrize("outcome", ["succeeded", "failed"])
def test_three_d_secure(make_session, sandbox, receiver, client, outcome):
    session = make_session()
    started = sandbox.pay(session.id, card_number="4000002500003155")
    assert started.status_code == 200
    body = started.json()
    assert body["outcome"] == "requires_action"
    assert body["payment_intent"]["status"] == "requires_action"
    assert body["payment_intent"]["next_action"]["type"] == "redirect_to_url"
    answered = sandbox.post(f"/_sandbox/checkout/sessions/{session.id}/authenticate",
                            outcome=outcome)
    fetched = client.v1.checkout.sessions.retrieve(session.id)
    if outcome == "succeeded":
        assert answered.status_code == 200
        assert (fetched.status, fetched.payment_status) == ("complete", "paid")
        receiver.wait_for_type("checkout.session.completed")
    else:
        assert answered.status_code == 402
        assert fetched.status == "open"
        failed = receiver.wait_for_type("payment_intent.payment_failed")[0]["data"]["object"]
        assert failed["last_payment_error"]["code"] == "payment_intent_authentication_failure"


@pytest.mark.parametrize(("account", "outcome"), [("000123456789", "succeeded"),
                                                   ("000111111113", "failed")])
def test_bank_debit_settles_on_demand(make_session, sandbox, receiver, client, account, outcome):
    session = make_session()
    response = sandbox.pay(session.id, bank_account=account, name="Ada")
    assert response.status_code == 200 and response.json()["outcome"] == "processing"
    pending = client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["payment_intent.latest_charge"]})
    assert (pending.status, pending.payment_status) == ("complete", "unpaid")
    assert pending.payment_intent.status == "processing"
    charge = pending.payment_intent.latest_charge
    assert charge.id.startswith("py_") and charge.status == "pending"
    receiver.wait_for_type("payment_intent.processing")
    completed = receiver.wait_for_type("checkout.session.completed")[0]["data"]["object"]
    assert completed["payment_status"] == "unpaid"

    settled = sandbox.post(f"/_sandbox/checkout/sessions/{session.id}/settle")
    assert settled.status_code == 200
    after = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent"]})
    if outcome == "succeeded":
        assert after.payment_status == "paid" and after.payment_intent.status == "succeeded"
        event = receiver.wait_for_type("checkout.session.async_payment_succeeded")[0]
    else:
        assert after.payment_status == "unpaid"
        assert after.payment_intent.last_payment_error.code == "account_closed"
        event = receiver.wait_for_type("checkout.session.async_payment_failed")[0]
    assert_shape(event, "event")
    assert event["data"]["object"]["id"] == session.id
    again = sandbox.post(f"/_sandbox/checkout/sessions/{session.id}/settle")
    assert again.status_code == 400  # nothing pending any more


def test_bank_debit_settles_after_the_configured_delay(make_session, sandbox, receiver):
    sandbox.configure(async_settle_seconds=0.3)
    session = make_session()
    paid_at = time.time()
    sandbox.pay(session.id, bank_account="000123456789")
    event = receiver.wait_for_type("checkout.session.async_payment_succeeded", timeout=10)[0]
    assert event["created"] >= int(paid_at)
    assert time.time() - paid_at >= 0.3


def test_settle_outcome_can_be_forced(make_session, sandbox, receiver):
    session = make_session()
    sandbox.pay(session.id, bank_account="000123456789")
    sandbox.post(f"/_sandbox/checkout/sessions/{session.id}/settle", outcome="failed")
    receiver.wait_for_type("checkout.session.async_payment_failed")


def test_refund_and_dispute_events(make_session, sandbox, receiver, client):
    session = paid_session(make_session, sandbox)
    pi = client.v1.payment_intents.retrieve(client.v1.checkout.sessions.retrieve(
        session.id).payment_intent)
    client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 4000})
    refunded = receiver.wait_for_type("charge.refunded")[0]
    assert_shape(refunded, "event")
    assert refunded["data"]["object"]["amount_refunded"] == 4000
    assert refunded["data"]["previous_attributes"]["amount_refunded"] == 0
    assert refunded["request"]["id"].startswith("req_")
    created = receiver.wait_for_type("refund.created")[0]["data"]["object"]
    assert_shape(created, "refund")
    assert created["amount"] == 4000

    opened = sandbox.post(f"/_sandbox/charges/{pi.latest_charge}/dispute", reason="fraudulent")
    assert opened.status_code == 200
    dispute = receiver.wait_for_type("charge.dispute.created")[0]["data"]["object"]
    assert_shape(dispute, "dispute")
    assert dispute["id"].startswith("dp_")
    assert (dispute["charge"], dispute["payment_intent"], dispute["amount"]) == (
        pi.latest_charge, pi.id, 24000)
    assert client.v1.charges.retrieve(pi.latest_charge).disputed is True
    assert client.v1.disputes.retrieve(dispute["id"]).status == "needs_response"
    twice = sandbox.post(f"/_sandbox/charges/{pi.latest_charge}/dispute")
    assert twice.status_code == 400


def test_expiry_by_time_emits_expired(make_session, sandbox, receiver, client):
    session = make_session()
    store = sandbox.app.extensions["sandbox"].store
    # Travel in time: move the deadline into the past, as if 24 hours had gone by.
    with store.transaction():
        obj = store.get(session.id)
        obj["expires_at"] = int(time.time()) - 1
        store.save(obj)
    expired = receiver.wait_for_type("checkout.session.expired")[0]["data"]["object"]
    assert (expired["id"], expired["status"]) == (session.id, "expired")
    assert client.v1.checkout.sessions.retrieve(session.id).status == "expired"
    paying = sandbox.pay(session.id, card_number="4242424242424242")
    assert paying.status_code == 400
    assert paying.json()["error"]["code"] == "checkout_session_expired"


# -- retries ---------------------------------------------------------------------------


def test_failed_delivery_is_retried(make_session, sandbox, receiver, client):
    receiver.fail_first = 2
    customer = client.v1.customers.create(params={"email": "retry@example.com"})
    event = receiver.wait_for_type("customer.created")[0]
    assert event["data"]["object"]["id"] == customer.id
    # The receiver can see the last attempt before the sandbox has logged its answer.
    log = wait_for(lambda: (d := sandbox.deliveries(event["id"])) and
                   d[0]["status"] == "succeeded" and d, what="the delivery logged")
    assert len(log) == 1
    codes = [a["status_code"] for a in log[0]["attempt_log"]]
    assert codes == [500, 500, 200]
    gaps = [b["at"] - a["at"] for a, b in zip(log[0]["attempt_log"], log[0]["attempt_log"][1:],
                                                strict=False)]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4  # the configured backoff: 0.2, 0.4, 0.8


@pytest.mark.parametrize("sandbox_config", [{"SANDBOX_WEBHOOK_TIMEOUT": "0.3"}])
def test_timeout_is_retried(sandbox, receiver, client):
    receiver.slow_first, receiver.slow_seconds = 1, 1.0
    client.v1.customers.create(params={"email": "slow@example.com"})
    event = receiver.wait_for_type("customer.created")[0]
    attempts = wait_for(lambda: (d := sandbox.deliveries(event["id"])) and
                        d[0]["status"] == "succeeded" and d[0]["attempt_log"])
    assert attempts[0]["status_code"] is None and "Timeout" in attempts[0]["error"]
    assert attempts[1]["status_code"] == 200


def test_retries_give_up_after_the_schedule(sandbox, receiver, client):
    receiver.fail_first = 100
    client.v1.customers.create(params={"email": "down@example.com"})
    log = wait_for(lambda: (d := sandbox.deliveries()) and d[0]["status"] == "failed" and d,
                   what="delivery to be abandoned")
    assert [a["status_code"] for a in log[0]["attempt_log"]] == [500] * 4  # 1 + 3 retries
    assert receiver.events == []
    events = client.v1.events.list()
    assert events.data[0].pending_webhooks == 1


# -- knobs -------------------------------------------------------------------------------


def test_knob_duplicate_delivery(make_session, sandbox, receiver):
    sandbox.configure(duplicate_delivery=True)
    paid_session(make_session, sandbox)
    wait_for(lambda: len(receiver.events) >= 6, what="six deliveries")
    ids = [e["id"] for e in receiver.events]
    assert len(set(ids)) == 3 and all(ids.count(i) == 2 for i in ids)


def test_knob_shuffle_window(make_session, sandbox, receiver, client):
    sandbox.configure(shuffle_window=0.5)
    paid_session(make_session, sandbox)
    wait_for(lambda: len(receiver.events) >= 3, what="three events")
    created_order = [e.id for e in reversed(client.v1.events.list().data)]
    received = [e["id"] for e in receiver.events]
    assert sorted(received) == sorted(created_order)
    assert received != created_order


def test_knob_delivery_delay(sandbox, receiver, client):
    sandbox.configure(delivery_delay=0.6)
    client.v1.customers.create(params={"email": "later@example.com"})
    event = receiver.wait_for_type("customer.created")[0]
    log = wait_for(lambda: (d := sandbox.deliveries(event["id"])[0])["attempt_log"] and d,
                   what="the attempt logged")
    assert log["attempt_log"][0]["at"] - log["created"] >= 0.6


def test_knob_drop_first_attempt(sandbox, receiver, client):
    sandbox.configure(drop_first_attempt=True)
    client.v1.customers.create(params={"email": "lost@example.com"})
    event = receiver.wait_for_type("customer.created")[0]
    # The receiver can see the retry before the sandbox has logged its answer.
    def logged():
        attempts = sandbox.deliveries(event["id"])[0]["attempt_log"]
        return attempts if len(attempts) >= 2 else None

    first, second = wait_for(logged, what="both attempts logged")
    assert first["status_code"] is None and "dropped" in first["error"]
    assert second["status_code"] == 200
    assert len(receiver.attempts) == 1  # the dropped attempt never reached the endpoint


@pytest.mark.parametrize("sandbox_config", [{"SANDBOX_HOLD_EVENTS": "true"}])
def test_knob_hold_records_but_delivers_nothing(make_session, sandbox, receiver, client):
    session = paid_session(make_session, sandbox)
    events = client.v1.events.list(params={"type": "checkout.session.completed"})
    assert [e.data.object.id for e in events.data] == [session.id]
    assert sandbox.deliveries() == []  # nothing queued, so nothing can arrive later
    assert events.data[0].pending_webhooks == 0
    # A held event can still be sent by hand, as from the dashboard.
    resent = requests.post(f"{sandbox.url}/_sandbox/events/{events.data[0].id}/resend",
                           headers={"Accept": "application/json"}, timeout=10)
    assert resent.json() == {"queued": 1}
    assert receiver.wait_for_type("checkout.session.completed")[0]["id"] == events.data[0].id


def test_knobs_from_config_endpoint(sandbox, receiver, connect_receiver):
    knobs = requests.get(f"{sandbox.url}/_sandbox/config", timeout=10).json()
    assert knobs["hold_events"] is False and knobs["duplicate_delivery"] is False
    assert knobs["retry_schedule"] == [0.2, 0.4, 0.8]
    assert knobs["webhook_urls"] == [receiver.endpoint]
    assert knobs["connect_webhook_urls"] == [connect_receiver.endpoint]
    moved = requests.post(f"{sandbox.url}/_sandbox/config",
                          json={"connect_webhook_urls": "http://a/c, http://b/c"}, timeout=10)
    assert moved.json()["connect_webhook_urls"] == ["http://a/c", "http://b/c"]
    changed = requests.post(f"{sandbox.url}/_sandbox/config",
                            data={"hold_events": "true", "retry_schedule": "1,2"}, timeout=10)
    assert changed.json()["hold_events"] is True and changed.json()["retry_schedule"] == [1, 2]
    bad = requests.post(f"{sandbox.url}/_sandbox/config", json={"hold_event": True}, timeout=10)
    assert bad.status_code == 400 and "unknown setting" in bad.json()["error"]["message"]


@pytest.mark.parametrize("sandbox_config", [{"SANDBOX_DUPLICATE_DELIVERY": "1",
                                             "SANDBOX_SHUFFLE_WINDOW": "0.5",
                                             "SANDBOX_DELIVERY_DELAY": "0.1",
                                             "SANDBOX_DROP_FIRST_ATTEMPT": "yes"}])
def test_knobs_from_settings(sandbox):
    knobs = requests.get(f"{sandbox.url}/_sandbox/config", timeout=10).json()
    assert (knobs["duplicate_delivery"], knobs["shuffle_window"], knobs["delivery_delay"],
            knobs["drop_first_attempt"], knobs["hold_events"]) == (True, 0.5, 0.1, True, False)


def test_events_page_lists_deliveries_and_resends(make_session, sandbox, receiver):
    paid_session(make_session, sandbox)
    wait_for(lambda: len(receiver.events) >= 3, what="three events")
    page = requests.get(f"{sandbox.url}/_sandbox/events", timeout=10)
    assert page.status_code == 200
    for event in receiver.events:
        assert event["id"] in page.text
    assert page.text.count(">Resend</button>") == 3
    first = receiver.events[0]["id"]
    resent = requests.post(f"{sandbox.url}/_sandbox/events/{first}/resend", timeout=10,
                           allow_redirects=False)
    assert resent.status_code == 303
    wait_for(lambda: [e["id"] for e in receiver.events].count(first) == 2, what="the resend")


def test_default_secret_is_the_apps_development_default(tmp_path):
    from sandbox import create_app

    app = create_app({"SANDBOX_DB": str(tmp_path / "s.sqlite3"), "SANDBOX_WORKER": False})
    try:
        settings = app.extensions["sandbox"].settings
        assert settings.webhook_secret == "whsec_coachpact_sandbox_development"
        assert settings.connect_webhook_secret == "whsec_coachpact_sandbox_connect_development"
    finally:
        app.extensions["sandbox"].close()
    assert WEBHOOK_SECRET != "whsec_coachpact_sandbox_development"
