"""The sandbox's /v1 API driven through the official stripe SDK."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import pytest
import requests
import stripe
from stripe._api_version import _ApiVersion

from tests.sandbox.conftest import API_KEY
from tests.sandbox.shape_check import CLASSES, FIXTURES, assert_shape, raw, shape_errors

# Stripe's full fixture file (openapi/fixtures3.json in Stripe's openapi repository), to
# check the vendored copies against when a developer points STRIPE_FIXTURES3 at it; the
# tests themselves need only the copies in the repository.
FULL_FIXTURES = os.environ.get("STRIPE_FIXTURES3")


def _resources(path: Path) -> dict:
    return json.loads(path.read_text())["resources"]


def test_sandbox_fixtures_agree_with_the_vendored_reference():
    # The sandbox builds its objects from its own copy; the shape checks read the one in
    # tests/sandbox. An edit to either alone fails here, with no network or shared folder.
    from sandbox import shapes

    reference = _resources(FIXTURES)
    sandbox = _resources(shapes.FIXTURES)
    assert set(reference) >= set(CLASSES) and set(sandbox) >= set(CLASSES)
    overlap = set(reference) & set(sandbox)
    assert {name: sandbox[name] for name in overlap} == {name: reference[name] for name in overlap}


def test_vendored_fixtures_are_stripes_own():
    from sandbox import shapes

    if not FULL_FIXTURES:
        pytest.skip("STRIPE_FIXTURES3 is not set (the path of Stripe's fixtures3.json), so "
                    "there is no full file to compare with; the vendored copies are still "
                    "checked against each other")
    full = _resources(Path(FULL_FIXTURES))
    for path in (FIXTURES, shapes.FIXTURES):
        vendored = _resources(path)
        assert vendored == {name: full[name] for name in vendored}, path


def test_api_version_is_the_sdks():
    from sandbox import shapes

    assert shapes.API_VERSION == _ApiVersion.CURRENT


def test_shape_checker_catches_wrong_types_and_fields(client, make_session):
    # The checker itself must be able to fail, or the shape tests prove nothing.
    session = raw(make_session())
    assert shape_errors(session) == []
    assert shape_errors({**session, "amount_total": "6000"})
    assert shape_errors({**session, "created": None})
    assert shape_errors({k: v for k, v in session.items() if k != "ui_mode"})
    assert shape_errors({**session, "surprise": 1})
    assert shape_errors({**session, "total_details": {"amount_discount": 0}})


def test_create_checkout_session(client, make_session, receiver, sandbox):
    before = int(time.time())
    session = make_session(allow_promotion_codes=True)
    body = raw(session)
    assert_shape(body, "checkout.session")
    assert session.id.startswith("cs_test_")
    assert session.object == "checkout.session"
    assert (session.status, session.payment_status, session.mode) == ("open", "unpaid", "payment")
    assert session.amount_subtotal == session.amount_total == 24000
    assert session.currency == "usd"
    assert session.payment_intent is None  # created at the first payment attempt, as on Stripe
    assert session.customer is None and session.customer_email == "student@example.com"
    assert session.client_reference_id == "contract-42"
    assert session.metadata.to_dict() == {"contract_id": "42"}
    assert session.allow_promotion_codes is True
    assert session.url == f"{sandbox.url}/checkout/{session.id}"
    assert before + 24 * 3600 <= session.expires_at <= int(time.time()) + 24 * 3600
    assert session.success_url.endswith("session_id={CHECKOUT_SESSION_ID}")
    assert session.cancel_url == f"{receiver.url}/cancel"


def test_retrieve_list_and_line_items(client, make_session):
    session = make_session()
    again = client.v1.checkout.sessions.retrieve(session.id)
    assert raw(again) == raw(session)
    listed = client.v1.checkout.sessions.list(params={"limit": 5})
    envelope = raw(listed)
    assert envelope["object"] == "list" and envelope["url"] == "/v1/checkout/sessions"
    assert envelope["has_more"] is False
    assert [s["id"] for s in envelope["data"]] == [session.id]
    items = client.v1.checkout.sessions.line_items.list(session.id)
    body = raw(items)
    assert body["url"] == f"/v1/checkout/sessions/{session.id}/line_items"
    assert len(body["data"]) == 1
    item = body["data"][0]
    assert_shape(item, "item")
    assert item["id"].startswith("li_")
    assert (item["quantity"], item["amount_total"], item["description"]) == (
        4, 24000, "Coaching: 4 × 60 min")
    assert item["price"]["unit_amount"] == 6000 and item["price"]["id"].startswith("price_")
    expanded = client.v1.checkout.sessions.retrieve(session.id,
                                                   params={"expand": ["line_items"]})
    assert expanded.line_items.data[0].id == item["id"]


def test_list_filters(client, make_session, sandbox):
    first, second = make_session(), make_session()
    client.v1.checkout.sessions.expire(first.id)
    expired = client.v1.checkout.sessions.list(params={"status": "expired"})
    assert [s.id for s in expired.data] == [first.id]
    sandbox.pay(second.id, card_number="4242424242424242")
    paid = client.v1.checkout.sessions.retrieve(second.id)
    by_pi = client.v1.checkout.sessions.list(params={"payment_intent": paid.payment_intent})
    assert [s.id for s in by_pi.data] == [second.id]
    recent = client.v1.checkout.sessions.list(params={"created": {"gte": first.created}})
    assert {s.id for s in recent.data} == {first.id, second.id}
    assert client.v1.checkout.sessions.list(
        params={"created": {"gt": int(time.time()) + 60}}).data == []


def test_customers(client, make_session):
    customer = client.v1.customers.create(params={
        "email": "ada@example.com", "name": "Ada Lovelace", "metadata": {"user_id": "7"}})
    assert_shape(raw(customer), "customer")
    assert customer.id.startswith("cus_")
    assert (customer.email, customer.name, customer.metadata.to_dict()) == (
        "ada@example.com", "Ada Lovelace", {"user_id": "7"})
    fetched = client.v1.customers.retrieve(customer.id)
    assert raw(fetched) == raw(customer)
    session = make_session(customer=customer.id, customer_email=None)
    assert session.customer == customer.id
    expanded = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["customer"]})
    assert expanded.customer.email == "ada@example.com"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.customers.retrieve("cus_doesnotexist")
    assert missing.value.http_status == 404 and missing.value.code == "resource_missing"


def test_paid_session_objects_and_expansion(client, make_session, sandbox):
    session = make_session()
    response = sandbox.pay(session.id, card_number="4242 4242 4242 4242", name="Ada")
    assert response.status_code == 200 and response.json()["outcome"] == "succeeded"
    assert response.json()["redirect_url"] == session.success_url.replace(
        "{CHECKOUT_SESSION_ID}", session.id)
    paid = client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["payment_intent", "payment_intent.latest_charge"]})
    body = raw(paid)
    assert (body["status"], body["payment_status"]) == ("complete", "paid")
    assert body["customer_details"]["email"] == "student@example.com"
    pi = body["payment_intent"]
    charge = pi["latest_charge"]
    assert_shape(pi, "payment_intent")
    assert_shape(charge, "charge")
    assert_shape({**body, "payment_intent": pi["id"]}, "checkout.session")
    assert pi["id"].startswith("pi_") and charge["id"].startswith("ch_")
    assert (pi["status"], pi["amount"], pi["amount_received"]) == ("succeeded", 24000, 24000)
    assert pi["metadata"] == {"contract_id": "42"}
    assert pi["payment_method"].startswith("pm_")
    assert (charge["status"], charge["paid"], charge["captured"]) == ("succeeded", True, True)
    assert charge["payment_method_details"]["card"]["last4"] == "4242"
    assert charge["payment_intent"] == pi["id"] and charge["metadata"] == {"contract_id": "42"}
    assert charge["receipt_url"] == f"{sandbox.url}/receipts/{charge['id']}"
    receipt = requests.get(charge["receipt_url"], timeout=10)
    assert receipt.status_code == 200 and "$240.00" in receipt.text

    # The other expansions the app may use.
    pi_obj = client.v1.payment_intents.retrieve(pi["id"], params={"expand": ["latest_charge"]})
    assert pi_obj.latest_charge.id == charge["id"]
    ch = client.v1.charges.retrieve(charge["id"], params={"expand": ["payment_intent"]})
    assert ch.payment_intent.id == pi["id"]
    with pytest.raises(stripe.InvalidRequestError) as bad:
        client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["amount_total"]})
    assert bad.value.http_status == 400 and bad.value.param == "expand"


def test_expire(client, make_session):
    session = make_session()
    expired = client.v1.checkout.sessions.expire(session.id)
    assert_shape(raw(expired), "checkout.session")
    assert expired.status == "expired" and expired.url is None
    with pytest.raises(stripe.InvalidRequestError) as again:
        client.v1.checkout.sessions.expire(session.id)
    assert again.value.http_status == 400
    events = client.v1.events.list(params={"type": "checkout.session.expired"})
    assert [e.data.object.id for e in events.data] == [session.id]
    event = raw(events)["data"][0]
    assert event["request"]["id"].startswith("req_")
    assert event["request"]["idempotency_key"]  # the SDK sends one on every POST


@pytest.mark.parametrize("field", ["expires_at_soon", "expires_at_late"])
def test_expires_at_window(make_session, field):
    now = int(time.time())
    value = now + 10 * 60 if field == "expires_at_soon" else now + 25 * 3600
    with pytest.raises(stripe.InvalidRequestError) as exc:
        make_session(expires_at=value)
    assert exc.value.http_status == 400 and exc.value.param == "expires_at"


def test_custom_expiry_accepted(make_session):
    expires_at = int(time.time()) + 3600
    assert make_session(expires_at=expires_at).expires_at == expires_at


def test_refunds_add_up_and_cannot_exceed(client, make_session, sandbox):
    session = make_session()
    sandbox.pay(session.id, card_number="4242424242424242")
    pi_id = client.v1.checkout.sessions.retrieve(session.id).payment_intent
    first = client.v1.refunds.create(params={
        "payment_intent": pi_id, "amount": 10000, "reason": "requested_by_customer",
        "metadata": {"refund_request": "1"}})
    assert_shape(raw(first), "refund")
    assert first.id.startswith("re_")
    assert (first.amount, first.status, first.reason, first.metadata.to_dict()) == (
        10000, "succeeded", "requested_by_customer", {"refund_request": "1"})
    charge = client.v1.charges.retrieve(first.charge)
    assert (charge.amount_refunded, charge.refunded) == (10000, False)

    with pytest.raises(stripe.InvalidRequestError) as over:
        client.v1.refunds.create(params={"charge": charge.id, "amount": 14001})
    assert over.value.http_status == 400 and over.value.param == "amount"
    assert over.value.json_body["error"]["type"] == "invalid_request_error"

    second = client.v1.refunds.create(params={"charge": charge.id, "amount": 14000})
    charge = client.v1.charges.retrieve(charge.id)
    assert (charge.amount_refunded, charge.refunded) == (24000, True)
    assert raw(client.v1.refunds.retrieve(second.id)) == raw(second)
    # A charge lists its refunds only when asked (API version 2022-11-15 on).
    assert "refunds" not in raw(charge)
    listed = raw(client.v1.charges.retrieve(charge.id, params={"expand": ["refunds"]}))
    assert_shape(listed, "charge")
    assert listed["refunds"] == {"object": "list", "data": [raw(second), raw(first)],
                                 "has_more": False, "url": f"/v1/charges/{charge.id}/refunds"}
    # Its `url` leads to the charge's refunds, as GET /v1/refunds?charge= lists them.
    page = client.raw_request("get", f"/v1/charges/{charge.id}/refunds", limit=1).data
    assert [r["id"] for r in page["data"]] == [second.id] and page["has_more"] is True
    assert page["url"] == listed["refunds"]["url"]
    assert raw(client.v1.refunds.list(params={"charge": charge.id}))["data"] == [
        raw(second), raw(first)]

    with pytest.raises(stripe.InvalidRequestError) as done:
        client.v1.refunds.create(params={"payment_intent": pi_id})
    assert done.value.code == "charge_already_refunded"


def test_refund_needs_a_paid_charge(client, make_session):
    session = make_session()
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.refunds.create(params={"payment_intent": "pi_missing"})
    assert exc.value.code == "resource_missing" and exc.value.param == "payment_intent"
    with pytest.raises(stripe.InvalidRequestError) as neither:
        client.v1.refunds.create(params={"amount": 100})
    assert neither.value.code == "parameter_missing"
    assert session.status == "open"


def test_idempotent_replay(client, sandbox):
    key = str(uuid.uuid4())
    params = {"email": "same@example.com"}
    first = client.v1.customers.create(params=params, options={"idempotency_key": key})
    second = client.v1.customers.create(params=params, options={"idempotency_key": key})
    assert first.id == second.id
    assert second.last_response.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.last_response.headers
    # One customer exists, not two: the replay did not run the request again.
    events = client.v1.events.list(params={"type": "customer.created"})
    assert [e.data.object.id for e in events.data] == [first.id]


def test_idempotency_key_with_other_parameters(client):
    key = str(uuid.uuid4())
    client.v1.customers.create(params={"email": "one@example.com"},
                               options={"idempotency_key": key})
    with pytest.raises(stripe.IdempotencyError) as exc:
        client.v1.customers.create(params={"email": "two@example.com"},
                                   options={"idempotency_key": key})
    assert exc.value.http_status == 400
    assert exc.value.json_body["error"]["type"] == "idempotency_error"


def test_idempotency_replays_errors_but_not_validation_failures(client, make_session, sandbox):
    key = str(uuid.uuid4())
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.create(params={"emial": "typo@example.com"},
                                   options={"idempotency_key": key})
    # A request that failed validation never ran, so its key is still free.
    created = client.v1.customers.create(params={"email": "ok@example.com"},
                                         options={"idempotency_key": key})
    assert created.email == "ok@example.com"

    session = make_session()
    sandbox.pay(session.id, card_number="4242424242424242")
    pi_id = client.v1.checkout.sessions.retrieve(session.id).payment_intent
    key = str(uuid.uuid4())
    params = {"payment_intent": pi_id, "amount": 999999}
    for _ in range(2):
        with pytest.raises(stripe.InvalidRequestError) as exc:
            client.v1.refunds.create(params=params, options={"idempotency_key": key})
    assert exc.value.headers["Idempotent-Replayed"] == "true"


def test_pagination(client, make_session):
    ids = [make_session().id for _ in range(5)]
    newest_first = list(reversed(ids))
    page = client.v1.checkout.sessions.list(params={"limit": 2})
    assert [s.id for s in page.data] == newest_first[:2] and page.has_more is True
    page2 = client.v1.checkout.sessions.list(params={"limit": 2,
                                                     "starting_after": page.data[-1].id})
    assert [s.id for s in page2.data] == newest_first[2:4] and page2.has_more is True
    page3 = client.v1.checkout.sessions.list(params={"limit": 2,
                                                     "starting_after": page2.data[-1].id})
    assert [s.id for s in page3.data] == newest_first[4:] and page3.has_more is False
    back = client.v1.checkout.sessions.list(params={"limit": 2,
                                                    "ending_before": page3.data[0].id})
    assert [s.id for s in back.data] == newest_first[2:4]
    assert [s.id for s in page.auto_paging_iter()] == newest_first
    with pytest.raises(stripe.InvalidRequestError) as bad_cursor:
        client.v1.checkout.sessions.list(params={"starting_after": "cs_test_nope"})
    assert bad_cursor.value.param == "starting_after"
    with pytest.raises(stripe.InvalidRequestError) as bad_limit:
        client.v1.checkout.sessions.list(params={"limit": 101})
    assert bad_limit.value.param == "limit"


def test_events_list_filters_and_shapes(client, make_session, sandbox):
    start = int(time.time())
    session = make_session()
    sandbox.pay(session.id, card_number="4242424242424242")
    events = client.v1.events.list(params={"created": {"gte": start}, "limit": 100})
    types = [e.type for e in events.data]
    assert types == ["checkout.session.completed", "payment_intent.succeeded",
                     "charge.succeeded"]
    for event in raw(events)["data"]:
        assert_shape(event, "event")
        assert event["api_version"] == _ApiVersion.CURRENT
        assert event["livemode"] is False and event["id"].startswith("evt_")
    only = client.v1.events.list(params={"type": "checkout.session.completed"})
    assert [e.data.object.id for e in only.data] == [session.id]
    wildcard = client.v1.events.list(params={"type": "payment_intent.*"})
    assert [e.type for e in wildcard.data] == ["payment_intent.succeeded"]
    page = client.v1.events.list(params={"limit": 1})
    assert page.has_more is True
    nxt = client.v1.events.list(params={"limit": 1, "starting_after": page.data[0].id})
    assert nxt.data[0].type == "payment_intent.succeeded"
    one = client.v1.events.retrieve(page.data[0].id)
    assert one.type == "checkout.session.completed"
    assert client.v1.events.list(params={"created": {"gt": int(time.time()) + 60}}).data == []


def test_zero_decimal_currency(make_session):
    session = make_session(line_items=[{
        "price_data": {"currency": "jpy", "unit_amount": 5000,
                       "product_data": {"name": "Coaching"}}, "quantity": 1}],
        payment_method_types=["card"])
    assert (session.amount_total, session.currency) == (5000, "jpy")
    assert session.payment_method_types == ["card"]


# -- authentication and parameter errors --------------------------------------------


def test_no_api_key_is_401(sandbox):
    response = requests.get(f"{sandbox.url}/v1/checkout/sessions", timeout=10)
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and "API key" in error["message"]
    assert set(error) >= {"type", "code", "message", "param"}


@pytest.mark.parametrize("key", ["sk_live_abcdefghijkl", "pk_test_abcdefghijkl", "sk_test_"])
def test_wrong_api_key_is_401(sandbox, key):
    client = stripe.StripeClient(key, base_addresses={"api": sandbox.url},
                                 max_network_retries=0)
    with pytest.raises(stripe.AuthenticationError) as exc:
        client.v1.customers.create(params={"email": "x@example.com"})
    assert exc.value.http_status == 401
    assert exc.value.json_body["error"]["message"].startswith("Invalid API Key provided")


def test_bearer_and_basic_auth_accepted(sandbox):
    basic = requests.get(f"{sandbox.url}/v1/events", auth=(API_KEY, ""), timeout=10)
    assert basic.status_code == 200
    bearer = requests.get(f"{sandbox.url}/v1/events",
                          headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10)
    assert bearer.status_code == 200 and bearer.headers["Request-Id"].startswith("req_")


def test_unknown_parameters(make_session, client):
    with pytest.raises(stripe.InvalidRequestError) as top:
        make_session(colour="blue")
    assert (top.value.http_status, top.value.code, top.value.param) == (
        400, "parameter_unknown", "colour")
    with pytest.raises(stripe.InvalidRequestError) as nested:
        make_session(line_items=[{"price_data": {"currency": "usd", "unit_amount": 100,
                                                 "product_data": {"name": "x"}, "size": "L"},
                                  "quantity": 1}])
    assert nested.value.code == "parameter_unknown"
    assert nested.value.param == "line_items[0][price_data][size]"
    with pytest.raises(stripe.InvalidRequestError) as on_get:
        client.v1.checkout.sessions.list(params={"colour": "blue"})
    assert on_get.value.code == "parameter_unknown"


def test_wrong_types(make_session):
    with pytest.raises(stripe.InvalidRequestError) as integer:
        make_session(line_items=[{"price_data": {"currency": "usd", "unit_amount": "lots",
                                                 "product_data": {"name": "x"}},
                                  "quantity": 1}])
    assert (integer.value.http_status, integer.value.code, integer.value.param) == (
        400, "parameter_invalid_integer", "line_items[0][price_data][unit_amount]")
    with pytest.raises(stripe.InvalidRequestError) as boolean:
        make_session(allow_promotion_codes="maybe")
    assert boolean.value.param == "allow_promotion_codes"
    with pytest.raises(stripe.InvalidRequestError) as enum:
        make_session(mode="subscriptions")
    assert enum.value.param == "mode"
    with pytest.raises(stripe.InvalidRequestError) as empty:
        make_session(client_reference_id="")
    assert empty.value.code == "parameter_invalid_empty"


def test_missing_and_invalid_values(make_session):
    with pytest.raises(stripe.InvalidRequestError) as quantity:
        make_session(line_items=[{"price_data": {"currency": "usd", "unit_amount": 100,
                                                 "product_data": {"name": "x"}}}])
    assert quantity.value.param == "line_items[0][quantity]"
    with pytest.raises(stripe.InvalidRequestError) as mode:
        make_session(mode=None)
    assert (mode.value.code, mode.value.param) == ("parameter_missing", "mode")
    with pytest.raises(stripe.InvalidRequestError) as url:
        make_session(success_url="not a url")
    assert (url.value.code, url.value.param) == ("url_invalid", "success_url")
    with pytest.raises(stripe.InvalidRequestError) as small:
        make_session(line_items=[{"price_data": {"currency": "usd", "unit_amount": 10,
                                                 "product_data": {"name": "x"}},
                                  "quantity": 1}])
    assert small.value.http_status == 400
    with pytest.raises(stripe.InvalidRequestError) as both:
        make_session(customer="cus_123")
    assert both.value.code == "parameters_exclusive"


def test_unknown_objects_and_urls(client, sandbox):
    for call in (lambda: client.v1.checkout.sessions.retrieve("cs_test_nope"),
                 lambda: client.v1.payment_intents.retrieve("pi_nope"),
                 lambda: client.v1.charges.retrieve("ch_nope"),
                 lambda: client.v1.refunds.retrieve("re_nope"),
                 lambda: client.v1.events.retrieve("evt_nope")):
        with pytest.raises(stripe.InvalidRequestError) as exc:
            call()
        assert exc.value.http_status == 404 and exc.value.code == "resource_missing"
    response = requests.get(f"{sandbox.url}/v1/quotes", auth=(API_KEY, ""), timeout=10)
    assert response.status_code == 404
    assert "Unrecognized request URL" in response.json()["error"]["message"]
