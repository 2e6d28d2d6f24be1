"""Payment plans: a card saved through Checkout (setup_future_usage, or setup mode), then
charged off-session through the official SDK; the next-outcome tool and the clock."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
import requests
import stripe

from sandbox.engine import ATTACH_REFUSED, REUSE_REFUSED
from tests.sandbox.shape_check import assert_shape, raw, shape_errors

AUTH_MESSAGE = "Your card was declined. This transaction requires authentication."


# -- helpers ---------------------------------------------------------------------------


def tool(sandbox, path: str, method: str = "post", **data: Any) -> requests.Response:
    """A sandbox tool called as a script would: JSON in, JSON out."""
    return requests.request(method, f"{sandbox.url}/_sandbox/{path}", json=data or None,
                            timeout=10)


def events(client: stripe.StripeClient, *prefixes: str) -> list[dict[str, Any]]:
    """Recorded events of the given type prefixes, oldest first, shape-checked."""
    page = raw(client.v1.events.list(params={"limit": 100}))
    found = [e for e in reversed(page["data"]) if e["type"].startswith(prefixes)]
    for event in found:
        assert_shape(event, "event")
    return found


def new_customer(client: stripe.StripeClient, email: str = "ada@example.com") -> str:
    return client.v1.customers.create(params={"email": email, "name": "Ada Lovelace"}).id


def save_card(client, make_session, sandbox, customer: str | None,
              number: str = "4242424242424242", usage: str = "off_session",
              **form: str) -> dict[str, Any]:
    """Pay a deposit through Checkout with the card saved (passing 3-D Secure if the card
    asks); return the succeeded PaymentIntent as the sandbox sent it."""
    params: dict[str, Any] = {"payment_intent_data": {
        "setup_future_usage": usage, "metadata": {"contract_id": "42"},
        "transfer_group": "contract-42"}}
    if customer:
        params.update(customer=customer, customer_email=None)
    session = make_session(**params)
    response = sandbox.pay(session.id, card_number=number, **form)
    if response.json()["outcome"] == "requires_action":
        response = sandbox.post(f"/_sandbox/checkout/sessions/{session.id}/authenticate",
                                outcome="succeeded")
    assert response.status_code == 200 and response.json()["outcome"] == "succeeded", (
        response.text)
    return response.json()["payment_intent"]


def setup_card(make_session, sandbox, customer: str | None, number: str = "4242424242424242",
               **overrides: Any) -> dict[str, Any]:
    """Save a card in a setup mode session (3-D Secure passed if asked); return the tool's
    answer (session, setup_intent)."""
    params: dict[str, Any] = {"mode": "setup", "line_items": None, "payment_intent_data": None,
                              "setup_intent_data": {"metadata": {"contract_id": "42"}}}
    if customer:
        params.update(customer=customer, customer_email=None)
    session = make_session(**{**params, **overrides})
    response = sandbox.pay(session.id, card_number=number)
    if response.json()["outcome"] == "requires_action":
        response = sandbox.post(f"/_sandbox/checkout/sessions/{session.id}/authenticate",
                                outcome="succeeded")
    assert response.status_code == 200 and response.json()["outcome"] == "succeeded", (
        response.text)
    return response.json()


def instalment(client: stripe.StripeClient, customer_id: str | None, pm_id: str,
               key: str | None = None, **params: Any) -> stripe.PaymentIntent:
    """Charge an instalment off-session, as the app's scheduler does; keyword arguments
    override the parameters (None leaves one out)."""
    body: dict[str, Any] = {
        "amount": 6000, "currency": "usd", "customer": customer_id, "payment_method": pm_id,
        "off_session": True, "confirm": True, "description": "Instalment 2 of 4",
        "metadata": {"contract_id": "42", "instalment": "2"}, "transfer_group": "contract-42",
        **params}
    options = {"idempotency_key": key} if key else {}
    return client.v1.payment_intents.create(params=body, options=options)  # type: ignore[arg-type]


# -- saving a card through Checkout ----------------------------------------------------------


def test_checkout_with_setup_future_usage_saves_the_card(client, make_session, sandbox,
                                                         receiver):
    customer = new_customer(client)
    pi = save_card(client, make_session, sandbox, customer, card_expiry="08/30")
    assert_shape(pi, "payment_intent")
    assert (pi["setup_future_usage"], pi["transfer_group"], pi["customer"]) == (
        "off_session", "contract-42", customer)
    pm_id = pi["payment_method"]
    assert pm_id.startswith("pm_")
    charge = raw(client.v1.charges.retrieve(pi["latest_charge"]))
    assert charge["payment_method"] == pm_id and charge["transfer_group"] == "contract-42"

    pm = raw(client.v1.payment_methods.retrieve(pm_id))
    assert_shape(pm, "payment_method")
    assert (pm["type"], pm["customer"], pm["allow_redisplay"]) == ("card", customer, "limited")
    card = pm["card"]
    assert (card["brand"], card["last4"], card["exp_month"], card["exp_year"]) == (
        "visa", "4242", 8, 2030)
    assert card["fingerprint"] == charge["payment_method_details"]["card"]["fingerprint"]
    assert pm["billing_details"]["email"] == "student@example.com"  # typed on the page

    listed = client.v1.customers.payment_methods.list(customer, params={"type": "card"})
    body = raw(listed)
    assert (body["object"], body["url"], body["has_more"]) == (
        "list", f"/v1/customers/{customer}/payment_methods", False)
    assert [(m.id, m.card.brand, m.card.last4, m.card.exp_month, m.card.exp_year)
            for m in listed.data] == [(pm_id, "visa", "4242", 8, 2030)]
    assert raw(client.v1.customers.payment_methods.retrieve(customer, pm_id)) == pm
    assert client.v1.payment_methods.list(params={"customer": customer}).data[0].id == pm_id

    found = events(client, "payment_method.", "charge.", "payment_intent.", "checkout.")
    assert [e["type"] for e in found] == ["payment_method.attached", "charge.succeeded",
                                          "payment_intent.succeeded",
                                          "checkout.session.completed"]
    assert found[0]["data"]["object"]["id"] == pm_id
    assert found[2]["data"]["object"]["setup_future_usage"] == "off_session"
    delivered = receiver.wait_for_type("payment_method.attached")[0]
    assert delivered["data"]["object"]["customer"] == customer


def test_without_setup_future_usage_the_card_is_used_up(client, make_session, sandbox):
    customer = new_customer(client)
    session = make_session(customer=customer, customer_email=None)
    response = sandbox.pay(session.id, card_number="4242424242424242")
    pi = response.json()["payment_intent"]
    assert pi["setup_future_usage"] is None
    pm = client.v1.payment_methods.retrieve(pi["payment_method"])
    assert pm.customer is None and pm.allow_redisplay == "unspecified"
    assert client.v1.customers.payment_methods.list(customer).data == []
    assert [e["type"] for e in events(client, "payment_method.")] == []
    with pytest.raises(stripe.InvalidRequestError) as attach:
        client.v1.payment_methods.attach(pm.id, params={"customer": customer})
    assert attach.value.user_message == ATTACH_REFUSED
    with pytest.raises(stripe.InvalidRequestError) as charge:
        instalment(client, customer, pm.id)
    assert (charge.value.http_status, charge.value.param) == (400, "payment_method")
    assert charge.value.user_message == REUSE_REFUSED


def test_a_card_saved_without_a_customer_can_be_attached_later(client, make_session, sandbox):
    pi = save_card(client, make_session, sandbox, None)
    pm_id = pi["payment_method"]
    assert client.v1.payment_methods.retrieve(pm_id).customer is None
    customer = new_customer(client)
    attached = client.v1.payment_methods.attach(pm_id, params={"customer": customer})
    assert_shape(raw(attached), "payment_method")
    assert attached.customer == customer
    again = client.v1.payment_methods.attach(pm_id, params={"customer": customer})
    assert again.customer == customer  # attaching to the same customer changes nothing
    assert [e["type"] for e in events(client, "payment_method.")] == ["payment_method.attached"]
    other = new_customer(client, "bob@example.com")
    with pytest.raises(stripe.InvalidRequestError) as taken:
        client.v1.payment_methods.attach(pm_id, params={"customer": other})
    assert "already been attached" in taken.value.user_message
    with pytest.raises(stripe.InvalidRequestError) as nobody:
        client.v1.payment_methods.attach(pm_id, params={"customer": "cus_missing"})
    assert (nobody.value.http_status, nobody.value.code) == (400, "resource_missing")
    assert instalment(client, customer, pm_id).status == "succeeded"


def test_payment_method_lists_page_and_filter(client, make_session, sandbox):
    customer = new_customer(client)
    ids = [save_card(client, make_session, sandbox, customer, number)["payment_method"]
           for number in ("4242424242424242", "5555555555554444", "378282246310005")]
    newest_first = list(reversed(ids))
    page = client.v1.customers.payment_methods.list(customer, params={"limit": 2})
    assert [m.id for m in page.data] == newest_first[:2] and page.has_more is True
    rest = client.v1.customers.payment_methods.list(
        customer, params={"limit": 2, "starting_after": page.data[-1].id})
    assert [m.id for m in rest.data] == newest_first[2:] and rest.has_more is False
    assert [m.id for m in page.auto_paging_iter()] == newest_first
    brands = [m.card.brand for m in client.v1.customers.payment_methods.list(customer).data]
    assert brands == ["amex", "mastercard", "visa"]
    amex = client.v1.payment_methods.retrieve(ids[2])
    assert amex.card.display_brand == "american_express" and amex.card.last4 == "0005"
    assert client.v1.customers.payment_methods.list(
        customer, params={"type": "us_bank_account"}).data == []
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.customers.payment_methods.list("cus_missing")
    assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.payment_methods.retrieve("pm_missing")
    assert unknown.value.http_status == 404
    assert unknown.value.user_message == "No such PaymentMethod: 'pm_missing'"
    other = new_customer(client, "bob@example.com")
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.payment_methods.retrieve(other, ids[0])


def test_shape_checker_catches_wrong_payment_method_fields(client, make_session, sandbox):
    pm = raw(client.v1.payment_methods.retrieve(
        save_card(client, make_session, sandbox, new_customer(client))["payment_method"]))
    assert shape_errors(pm) == []
    assert shape_errors({**pm, "card": {**pm["card"], "exp_month": "8"}})
    assert shape_errors({**pm, "card": {k: v for k, v in pm["card"].items() if k != "last4"}})
    assert shape_errors({**pm, "allow_redisplay": 3})
    assert shape_errors({**pm, "surprise": 1})


# -- setup mode ------------------------------------------------------------------------------


def test_setup_mode_saves_a_card_without_charging(client, make_session, sandbox, receiver):
    customer = new_customer(client)
    session = make_session(mode="setup", line_items=None, payment_intent_data=None,
                           customer=customer, customer_email=None,
                           setup_intent_data={"metadata": {"contract_id": "42"}})
    created = raw(session)
    assert_shape(created, "checkout.session")
    assert (created["mode"], created["payment_status"], created["status"]) == (
        "setup", "no_payment_required", "open")
    assert (created["amount_total"], created["currency"], created["setup_intent"]) == (
        None, None, None)
    assert client.v1.checkout.sessions.line_items.list(session.id).data == []

    response = sandbox.pay(session.id, card_number="4242424242424242")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["outcome"] == "succeeded" and body["payment_intent"] is None
    assert body["redirect_url"] == session.success_url.replace("{CHECKOUT_SESSION_ID}",
                                                               session.id)
    done = raw(client.v1.checkout.sessions.retrieve(session.id))
    assert_shape(done, "checkout.session")
    assert (done["status"], done["payment_status"], done["payment_intent"]) == (
        "complete", "no_payment_required", None)
    assert done["setup_intent"] == body["setup_intent"]["id"]

    si = client.v1.setup_intents.retrieve(done["setup_intent"])
    si_body = raw(si)
    assert_shape(si_body, "setup_intent")
    assert si.id.startswith("seti_") and si.client_secret.startswith(f"{si.id}_secret_")
    assert (si.status, si.usage, si.customer) == ("succeeded", "off_session", customer)
    assert si.metadata.to_dict() == {"contract_id": "42"}
    pm = client.v1.payment_methods.retrieve(si.payment_method)
    assert (pm.customer, pm.card.last4) == (customer, "4242")
    expanded = client.v1.setup_intents.retrieve(si.id, params={"expand": ["payment_method"]})
    assert expanded.payment_method.id == pm.id
    assert [s.id for s in client.v1.setup_intents.list(
        params={"customer": customer}).data] == [si.id]

    found = events(client, "setup_intent.", "payment_method.", "checkout.", "charge.",
                   "payment_intent.")
    assert [e["type"] for e in found] == ["setup_intent.created", "payment_method.attached",
                                          "setup_intent.succeeded",
                                          "checkout.session.completed"]
    assert found[0]["data"]["object"]["status"] == "requires_payment_method"
    completed = receiver.wait_for_type("checkout.session.completed")[0]["data"]["object"]
    assert (completed["mode"], completed["setup_intent"]) == ("setup", si.id)

    # The saved card pays the first instalment later.
    assert instalment(client, customer, pm.id).status == "succeeded"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.setup_intents.retrieve("seti_missing")
    assert missing.value.http_status == 404 and missing.value.code == "resource_missing"


def test_setup_mode_parameters(client, make_session):
    setup = {"mode": "setup", "payment_intent_data": None}
    with pytest.raises(stripe.InvalidRequestError) as items:
        make_session(**setup)
    assert items.value.param == "line_items"
    with pytest.raises(stripe.InvalidRequestError) as pi_data:
        make_session(mode="setup", line_items=None)
    assert pi_data.value.param == "payment_intent_data"
    with pytest.raises(stripe.InvalidRequestError) as si_data:
        make_session(setup_intent_data={"metadata": {"a": "b"}})
    assert si_data.value.param == "setup_intent_data"
    with pytest.raises(stripe.InvalidRequestError) as bank:
        make_session(**setup, line_items=None, payment_method_types=["us_bank_account"])
    assert bank.value.param == "payment_method_types"
    session = make_session(**setup, line_items=None, currency="EUR")
    assert (session.currency, session.payment_method_types) == ("eur", ["card"])
    # Subscription mode bills recurring prices only (tests/sandbox/test_billing.py).
    with pytest.raises(stripe.InvalidRequestError) as subscription:
        make_session(mode="subscription", payment_intent_data=None)
    assert subscription.value.param == "line_items[0][price_data][recurring]"


def test_setup_mode_decline_then_a_card_that_always_asks(client, make_session, sandbox):
    customer = new_customer(client)
    session = make_session(mode="setup", line_items=None, payment_intent_data=None,
                           customer=customer, customer_email=None)
    declined = sandbox.pay(session.id, card_number="4000000000000002")
    assert declined.status_code == 402
    si = declined.json()["setup_intent"]
    assert_shape(si, "setup_intent")
    assert (si["status"], si["payment_method"]) == ("requires_payment_method", None)
    error = si["last_setup_error"]
    assert (error["code"], error["decline_code"], error["type"]) == (
        "card_declined", "generic_decline", "card_error")
    assert error["payment_method"]["card"]["last4"] == "0002"

    asks = sandbox.pay(session.id, card_number="4000002760003184")
    assert asks.json()["outcome"] == "requires_action"
    assert asks.json()["setup_intent"]["next_action"]["type"] == "redirect_to_url"
    page = requests.get(f"{sandbox.url}/checkout/{session.id}/authenticate", timeout=10)
    assert "keep this card" in page.text
    done = sandbox.post(f"/_sandbox/checkout/sessions/{session.id}/authenticate",
                        outcome="succeeded")
    assert done.status_code == 200 and done.json()["outcome"] == "succeeded"
    assert [e["type"] for e in events(client, "setup_intent.")] == [
        "setup_intent.created", "setup_intent.setup_failed", "setup_intent.requires_action",
        "setup_intent.succeeded"]
    pm_id = done.json()["setup_intent"]["payment_method"]
    # 4000 0027 6000 3184 asks for authentication on every later charge too.
    with pytest.raises(stripe.CardError) as exc:
        instalment(client, customer, pm_id)
    assert exc.value.code == "authentication_required"


def test_setup_mode_failed_authentication(client, make_session, sandbox):
    session = make_session(mode="setup", line_items=None, payment_intent_data=None)
    sandbox.pay(session.id, card_number="4000002500003155")
    failed = sandbox.post(f"/_sandbox/checkout/sessions/{session.id}/authenticate",
                          outcome="failed")
    assert failed.status_code == 402
    si = failed.json()["setup_intent"]
    assert si["last_setup_error"]["code"] == "setup_intent_authentication_failure"
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
    client.v1.checkout.sessions.expire(session.id)
    assert client.v1.setup_intents.retrieve(si["id"]).status == "canceled"
    assert events(client, "setup_intent.canceled")[0]["data"]["object"]["id"] == si["id"]


# -- off-session charges ---------------------------------------------------------------------


def test_off_session_charge_succeeds(client, make_session, sandbox, receiver):
    customer = new_customer(client)
    pm_id = save_card(client, make_session, sandbox, customer)["payment_method"]
    key = str(uuid.uuid4())
    pi = instalment(client, customer, pm_id, key=key)
    body = raw(pi)
    assert_shape(body, "payment_intent")
    assert (pi.status, pi.amount, pi.amount_received, pi.currency) == (
        "succeeded", 6000, 6000, "usd")
    assert (pi.customer, pi.payment_method, pi.transfer_group, pi.description) == (
        customer, pm_id, "contract-42", "Instalment 2 of 4")
    assert pi.metadata.to_dict() == {"contract_id": "42", "instalment": "2"}
    assert pi.automatic_payment_methods.enabled is True
    charge = raw(client.v1.charges.retrieve(pi.latest_charge))
    assert_shape(charge, "charge")
    assert (charge["status"], charge["amount"], charge["payment_method"], charge["customer"]) == (
        "succeeded", 6000, pm_id, customer)
    assert (charge["transfer_group"], charge["metadata"]) == (
        "contract-42", {"contract_id": "42", "instalment": "2"})
    assert charge["payment_method_details"]["card"]["last4"] == "4242"
    assert raw(client.v1.payment_intents.retrieve(pi.id)) == body

    mine = [e for e in events(client, "payment_intent.", "charge.")
            if pi.id in (e["data"]["object"]["id"], e["data"]["object"].get("payment_intent"))]
    assert [e["type"] for e in mine] == ["payment_intent.created", "charge.succeeded",
                                         "payment_intent.succeeded"]
    for event in mine:
        assert event["request"] == {"id": pi.last_response.request_id, "idempotency_key": key}
    assert mine[0]["data"]["object"]["status"] == "requires_confirmation"
    receiver.wait_for_type("payment_intent.succeeded", count=2)
    assert client.v1.payment_intents.list(params={"customer": customer}).data[0].id == pi.id
    refund = client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 1000})
    assert refund.status == "succeeded"  # an instalment is refundable like any payment


def test_off_session_decline_is_a_card_error(client, make_session, sandbox):
    customer = new_customer(client)
    pm_id = save_card(client, make_session, sandbox, customer)["payment_method"]
    set_to = tool(sandbox, f"customers/{customer}/next", outcome="decline")
    assert set_to.status_code == 200, set_to.text
    with pytest.raises(stripe.CardError) as exc:
        instalment(client, customer, pm_id)
    err = exc.value
    assert (err.http_status, err.code) == (402, "card_declined")
    assert err.user_message == "Your card has insufficient funds."
    assert err.error.decline_code == "insufficient_funds" and err.error.type == "card_error"
    assert err.error.charge.startswith("ch_")
    failed = err.error.payment_intent
    assert isinstance(failed, stripe.PaymentIntent)
    assert (failed.status, failed.payment_method) == ("requires_payment_method", None)
    assert failed.last_payment_error.decline_code == "insufficient_funds"
    assert failed.last_payment_error.payment_method.id == pm_id
    assert err.error.payment_method.id == pm_id
    body = err.json_body["error"]
    assert_shape(body["payment_intent"], "payment_intent")
    assert_shape(body["payment_method"], "payment_method")
    fetched = client.v1.payment_intents.retrieve(failed.id)
    assert (fetched.status, fetched.latest_charge) == ("requires_payment_method", err.error.charge)
    charge = client.v1.charges.retrieve(err.error.charge)
    assert (charge.status, charge.failure_code, charge.outcome.reason) == (
        "failed", "card_declined", "insufficient_funds")

    mine = [e["type"] for e in events(client, "payment_intent.", "charge.")
            if failed.id in (e["data"]["object"]["id"],
                             e["data"]["object"].get("payment_intent"))]
    assert mine == ["payment_intent.created", "charge.failed", "payment_intent.payment_failed"]

    # The customer tops up; the app retries the same instalment with the same card.
    tool(sandbox, f"payment_methods/{pm_id}/next", outcome="succeed")
    retried = client.v1.payment_intents.confirm(
        failed.id, params={"payment_method": pm_id, "off_session": True})
    assert (retried.status, retried.payment_method, retried.last_payment_error) == (
        "succeeded", pm_id, None)
    with pytest.raises(stripe.InvalidRequestError) as again:
        client.v1.payment_intents.confirm(failed.id, params={"off_session": True})
    assert again.value.code == "payment_intent_unexpected_state"


def test_off_session_authentication_required(client, make_session, sandbox):
    customer = new_customer(client)
    # Asks for 3-D Secure on the page, and again on every later charge.
    pm_id = save_card(client, make_session, sandbox, customer,
                      "4000002760003184")["payment_method"]
    with pytest.raises(stripe.CardError) as exc:
        instalment(client, customer, pm_id)
    err = exc.value
    assert (err.http_status, err.code, err.error.decline_code) == (
        402, "authentication_required", "authentication_required")
    assert err.user_message == AUTH_MESSAGE
    failed = err.error.payment_intent
    assert (failed.status, failed.next_action) == ("requires_payment_method", None)
    assert failed.last_payment_error.code == "authentication_required"
    kinds = [e["type"] for e in events(client, "payment_intent.")
             if e["data"]["object"]["id"] == failed.id]
    assert kinds == ["payment_intent.created", "payment_intent.payment_failed"]

    # With the customer present (no off_session) the same card asks instead of failing.
    waiting = client.v1.payment_intents.create(params={
        "amount": 6000, "currency": "usd", "customer": customer, "payment_method": pm_id})
    assert waiting.status == "requires_confirmation"
    asked = client.v1.payment_intents.confirm(waiting.id)
    assert asked.status == "requires_action" and asked.next_action.type == "use_stripe_sdk"
    assert events(client, "payment_intent.requires_action")[-1]["data"]["object"]["id"] == (
        waiting.id)
    canceled = client.v1.payment_intents.cancel(
        waiting.id, params={"cancellation_reason": "abandoned"})
    assert (canceled.status, canceled.cancellation_reason) == ("canceled", "abandoned")
    with pytest.raises(stripe.InvalidRequestError) as done:
        client.v1.payment_intents.cancel(waiting.id)
    assert done.value.code == "payment_intent_unexpected_state"


@pytest.mark.parametrize(("usage", "expected"), [("off_session", "succeeded"),
                                                 ("on_session", "authentication_required")])
def test_a_card_set_up_for_off_session_use_needs_no_authentication(
        client, make_session, sandbox, usage, expected):
    # 4000 0025 0000 3155 asks for authentication unless set up for off-session payments.
    customer = new_customer(client)
    pi = save_card(client, make_session, sandbox, customer, "4000002500003155", usage=usage)
    assert pi["setup_future_usage"] == usage
    pm = client.v1.payment_methods.retrieve(pi["payment_method"])
    assert pm.customer == customer
    if expected == "succeeded":
        assert instalment(client, customer, pm.id).status == "succeeded"
    else:
        with pytest.raises(stripe.CardError) as exc:
            instalment(client, customer, pm.id)
        assert exc.value.code == expected


def test_a_card_that_attaches_but_declines_later(client, make_session, sandbox):
    customer = new_customer(client)
    # In payment mode 4000 0000 0000 0341 is declined at once...
    session = make_session(customer=customer, customer_email=None)
    declined = sandbox.pay(session.id, card_number="4000000000000341")
    assert declined.status_code == 402
    assert declined.json()["error"]["decline_code"] == "generic_decline"
    # ...but saving it works, and every charge after that is declined.
    saved = setup_card(make_session, sandbox, customer, "4000000000000341")
    pm_id = saved["setup_intent"]["payment_method"]
    assert client.v1.payment_methods.retrieve(pm_id).customer == customer
    for _ in range(2):
        with pytest.raises(stripe.CardError) as exc:
            instalment(client, customer, pm_id)
        assert (exc.value.code, exc.value.error.decline_code) == (
            "card_declined", "generic_decline")


def test_refused_payment_intents(client, make_session, sandbox):
    customer = new_customer(client)
    other = new_customer(client, "bob@example.com")
    pm_id = save_card(client, make_session, sandbox, customer)["payment_method"]
    cases = [
        ({"customer": other}, 400, "payment_method", None),
        ({"customer": None}, 400, "customer", None),
        ({"payment_method": "pm_missing"}, 400, "payment_method", "resource_missing"),
        ({"customer": "cus_missing"}, 400, "customer", "resource_missing"),
        ({"confirm": None}, 400, "off_session", None),
        ({"payment_method": None}, 400, "payment_method", "parameter_missing"),
        ({"amount": 10}, 400, "amount", "amount_too_small"),
        ({"currency": "xyz"}, 400, "currency", "parameter_invalid"),
        ({"off_session": "sometimes"}, 400, "off_session", None),
    ]
    for params, status, param, code in cases:
        with pytest.raises(stripe.InvalidRequestError) as exc:
            instalment(client, customer, pm_id, **params)
        assert (exc.value.http_status, exc.value.param, exc.value.code) == (
            status, param, code), params
    assert [p.amount for p in client.v1.payment_intents.list(
        params={"customer": customer}).data] == [24000]  # only the deposit
    assert instalment(client, customer, pm_id, off_session="recurring").status == "succeeded"

    checkout_pi = save_card(client, make_session, sandbox, customer)["id"]
    for call in (lambda: client.v1.payment_intents.confirm(checkout_pi),
                 lambda: client.v1.payment_intents.cancel(checkout_pi)):
        with pytest.raises(stripe.InvalidRequestError) as managed:
            call()
        assert managed.value.code == "payment_intent_unexpected_state"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.payment_intents.confirm("pi_missing")
    assert missing.value.http_status == 404


def test_detached_card_is_refused(client, make_session, sandbox, receiver):
    customer = new_customer(client)
    pm_id = save_card(client, make_session, sandbox, customer)["payment_method"]
    updated = client.v1.customers.update(
        customer, params={"invoice_settings": {"default_payment_method": pm_id}})
    assert updated.invoice_settings.default_payment_method == pm_id
    detached = client.v1.payment_methods.detach(pm_id)
    assert_shape(raw(detached), "payment_method")
    assert detached.customer is None
    assert client.v1.customers.payment_methods.list(customer).data == []
    assert client.v1.customers.retrieve(customer).invoice_settings.default_payment_method is None
    found = events(client, "payment_method.detached", "customer.updated")
    assert [e["type"] for e in found] == ["customer.updated", "payment_method.detached",
                                          "customer.updated"]
    assert found[1]["data"]["previous_attributes"] == {"customer": customer}
    assert found[2]["data"]["previous_attributes"] == {
        "invoice_settings": {"default_payment_method": pm_id}}
    receiver.wait_for_type("payment_method.detached")

    with pytest.raises(stripe.InvalidRequestError) as charge:
        instalment(client, customer, pm_id)
    assert charge.value.user_message == REUSE_REFUSED
    with pytest.raises(stripe.InvalidRequestError) as again:
        client.v1.payment_methods.detach(pm_id)
    assert "not attached to a customer" in again.value.user_message
    with pytest.raises(stripe.InvalidRequestError) as reattach:
        client.v1.payment_methods.attach(pm_id, params={"customer": customer})
    assert reattach.value.user_message == ATTACH_REFUSED
    with pytest.raises(stripe.InvalidRequestError) as default:
        client.v1.customers.update(
            customer, params={"invoice_settings": {"default_payment_method": pm_id}})
    assert default.value.param == "invoice_settings[default_payment_method]"
    assert not [e for e in events(client, "charge.", "payment_intent.created")
                if e["data"]["object"]["amount"] == 6000]


def test_idempotent_retry_charges_once(client, make_session, sandbox):
    customer = new_customer(client)
    pm_id = save_card(client, make_session, sandbox, customer)["payment_method"]
    key = str(uuid.uuid4())
    first = instalment(client, customer, pm_id, key=key)
    second = instalment(client, customer, pm_id, key=key)
    assert first.id == second.id and raw(first) == raw(second)
    assert second.last_response.headers["Idempotent-Replayed"] == "true"
    listed = client.v1.payment_intents.list(params={"customer": customer}).data
    assert [p.id for p in listed if p.amount == 6000] == [first.id]  # (the deposit is 24000)
    charges = [e for e in events(client, "charge.succeeded")
               if e["data"]["object"]["payment_intent"] == first.id]
    assert len(charges) == 1

    # A decline is replayed too: the same failed PaymentIntent, one failed charge.
    tool(sandbox, f"payment_methods/{pm_id}/next", outcome="decline",
         decline_code="generic_decline")
    key = str(uuid.uuid4())
    errors = []
    for _ in range(2):
        with pytest.raises(stripe.CardError) as exc:
            instalment(client, customer, pm_id, key=key)
        errors.append(exc.value)
    assert errors[0].error.payment_intent.id == errors[1].error.payment_intent.id
    assert errors[1].headers["Idempotent-Replayed"] == "true"
    failed = [e for e in events(client, "charge.failed")
              if e["data"]["object"]["payment_intent"] == errors[0].error.payment_intent.id]
    assert len(failed) == 1


# -- the next-outcome tool ---------------------------------------------------------------------


def test_next_outcome_tool(client, make_session, sandbox):
    customer = new_customer(client)
    pm_id = save_card(client, make_session, sandbox, customer)["payment_method"]
    shown = tool(sandbox, f"payment_methods/{pm_id}/next", method="get").json()
    assert shown == {"payment_method": pm_id, "customer": customer, "outcome": "default",
                     "decline_code": None,
                     "next_off_session_charge": {"outcome": "succeed", "decline_code": None}}
    # A form post works as well as JSON.
    set_to = sandbox.post(f"/_sandbox/payment_methods/{pm_id}/next", outcome="decline",
                          decline_code="lost_card")
    assert set_to.status_code == 200 and set_to.json()["decline_code"] == "lost_card"
    for _ in range(2):  # sticky until changed
        with pytest.raises(stripe.CardError) as exc:
            instalment(client, customer, pm_id)
        assert exc.value.error.decline_code == "lost_card"
    auth = tool(sandbox, f"customers/{customer}/next", outcome="authentication_required")
    assert auth.json()["next_off_session_charge"]["outcome"] == "authentication_required"
    with pytest.raises(stripe.CardError) as asked:
        instalment(client, customer, pm_id)
    assert asked.value.code == "authentication_required"
    assert tool(sandbox, f"customers/{customer}/next", outcome="default").json()[
        "outcome"] == "default"
    assert instalment(client, customer, pm_id).status == "succeeded"

    for data, param in (({"outcome": "maybe"}, "outcome"),
                        ({"outcome": "succeed", "decline_code": "lost_card"}, "decline_code"),
                        ({"outcome": "decline", "decline_code": "nope"}, "decline_code")):
        bad = tool(sandbox, f"payment_methods/{pm_id}/next", **data)
        assert bad.status_code == 400 and bad.json()["error"]["param"] == param
    assert tool(sandbox, "payment_methods/pm_missing/next", outcome="succeed").status_code == 404
    assert tool(sandbox, "customers/cus_missing/next", outcome="succeed").status_code == 404
    nobody = new_customer(client, "bob@example.com")
    none = tool(sandbox, f"customers/{nobody}/next", outcome="succeed")
    assert none.status_code == 400 and "no saved card" in none.json()["error"]["message"]

    # Two cards and no default: the customer tool cannot choose; a default settles it.
    second = save_card(client, make_session, sandbox, customer,
                       "5555555555554444")["payment_method"]
    two = tool(sandbox, f"customers/{customer}/next", outcome="decline")
    assert two.status_code == 400 and second in two.json()["error"]["message"]
    client.v1.customers.update(
        customer, params={"invoice_settings": {"default_payment_method": second}})
    chosen = tool(sandbox, f"customers/{customer}/next", outcome="decline")
    assert chosen.json()["payment_method"] == second
    assert instalment(client, customer, pm_id).status == "succeeded"
    with pytest.raises(stripe.CardError):
        instalment(client, customer, second)


# -- the clock ---------------------------------------------------------------------------------


def test_clock_moves_time_forward(client, make_session, sandbox):
    shown = tool(sandbox, "clock", method="get").json()
    assert shown["offset_seconds"] == 0 and abs(shown["now"] - time.time()) < 5
    session = make_session()  # expires 24 hours from now
    customer = new_customer(client)
    # A card that expires at the end of this month.
    this_month = time.strftime("%m/%y", time.gmtime())
    pm_id = save_card(client, make_session, sandbox, customer,
                      card_expiry=this_month)["payment_method"]
    assert instalment(client, customer, pm_id).status == "succeeded"

    moved = tool(sandbox, "clock", advance_seconds=40 * 86400)
    assert moved.status_code == 200, moved.text
    assert moved.json()["offset_seconds"] == 40 * 86400
    later = client.v1.customers.create(params={"email": "later@example.com"})
    assert later.created >= int(time.time()) + 40 * 86400 - 5
    event = events(client, "customer.created")[-1]
    assert event["created"] >= int(time.time()) + 40 * 86400 - 5
    # The session's 24 hours are over, and the card has expired.
    assert client.v1.checkout.sessions.retrieve(session.id).status == "expired"
    with pytest.raises(stripe.CardError) as expired:
        instalment(client, customer, pm_id)
    assert (expired.value.code, expired.value.error.decline_code) == (
        "expired_card", "expired_card")
    assert sandbox.configure()["clock_offset"] == 40 * 86400

    again = sandbox.post("/_sandbox/clock", advance_seconds="60")
    assert again.json()["offset_seconds"] == 40 * 86400 + 60
    for data in ({}, {"advance_seconds": "-5"}, {"advance_seconds": "soon"},
                 {"advance_seconds": 1, "offset_seconds": 0}, {"offset_seconds": "-1"}):
        assert tool(sandbox, "clock", **data).status_code == 400, data
    back = tool(sandbox, "clock", offset_seconds=0).json()
    assert back["offset_seconds"] == 0 and abs(back["now"] - time.time()) < 5


@pytest.mark.parametrize("sandbox_config", [{"SANDBOX_CLOCK_OFFSET": "3600"}])
def test_clock_offset_from_settings(client, sandbox):
    assert tool(sandbox, "clock", method="get").json()["offset_seconds"] == 3600
    created = client.v1.customers.create(params={"email": "x@example.com"}).created
    assert created >= int(time.time()) + 3600 - 5
