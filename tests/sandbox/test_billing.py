"""Stripe Billing in the sandbox through the official SDK: products and prices, subscription
Checkout, subscription updates and cancellation, renewals on test clocks, the portal."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import stripe

from tests.sandbox.conftest import Receiver, Sandbox
from tests.sandbox.shape_check import assert_shape, raw

DAY = 86400


@pytest.fixture
def price(client: stripe.StripeClient) -> stripe.Price:
    return client.v1.prices.create(params={
        "currency": "usd", "unit_amount": 3000, "recurring": {"interval": "month"},
        "product_data": {"name": "Membership"}})


@pytest.fixture
def subscribe(client: stripe.StripeClient, sandbox: Sandbox,
              receiver: Receiver) -> Callable[..., stripe.Subscription]:
    """A customer (on a test clock when one is given) subscribes through Checkout."""

    def run(price_id: str, *, card: str = "4242424242424242", clock: str | None = None,
            metadata: dict[str, str] | None = None) -> stripe.Subscription:
        params: dict[str, Any] = {"email": "member@example.com", "name": "Mia Member"}
        if clock:
            params["test_clock"] = clock
        customer = client.v1.customers.create(params=params)
        session = client.v1.checkout.sessions.create(params={
            "mode": "subscription", "customer": customer.id,
            "line_items": [{"price": price_id, "quantity": 1}],
            "subscription_data": {"metadata": metadata or {"membership": "m-1"}},
            "success_url": f"{receiver.url}/done", "cancel_url": f"{receiver.url}/cancel"})
        response = sandbox.pay(session.id, card_number=card)
        assert response.status_code == 200, response.text
        done = client.v1.checkout.sessions.retrieve(session.id)
        return client.v1.subscriptions.retrieve(done.subscription)

    return run


def _clock(client: stripe.StripeClient) -> stripe.test_helpers.TestClock:
    return client.v1.test_helpers.test_clocks.create(params={
        "frozen_time": int(time.time()), "name": "renewals"})


def _advance(client: stripe.StripeClient, clock_id: str, to: int) -> None:
    client.v1.test_helpers.test_clocks.advance(clock_id, params={"frozen_time": to})
    clock = client.v1.test_helpers.test_clocks.retrieve(clock_id)
    assert clock.status == "ready" and clock.frozen_time == to


def _period(sub: stripe.Subscription) -> tuple[int, int]:
    item = sub["items"].data[0]
    return item.current_period_start, item.current_period_end


# -- products and prices ----------------------------------------------------------------


def test_products_and_prices(client, receiver):
    product = client.v1.products.create(params={"name": "Gold", "metadata": {"tier": "3"}})
    assert_shape(raw(product), "product")
    assert product.id.startswith("prod_") and product.active and product.name == "Gold"
    monthly = client.v1.prices.create(params={
        "product": product.id, "currency": "usd", "unit_amount": 4500,
        "recurring": {"interval": "month", "interval_count": 1}, "lookup_key": "gold-m"})
    weekly = client.v1.prices.create(params={
        "product": product.id, "currency": "jpy", "unit_amount": 1200,
        "recurring": {"interval": "week", "interval_count": 2}})
    for p in (monthly, weekly):
        assert_shape(raw(p), "price")
    assert (monthly.type, monthly.unit_amount, raw(monthly)["unit_amount_decimal"]) == (
        "recurring", 4500, "4500")
    assert monthly.recurring.interval == "month" and monthly.recurring.interval_count == 1
    assert weekly.recurring.interval == "week" and weekly.recurring.interval_count == 2
    assert client.v1.prices.retrieve(monthly.id).lookup_key == "gold-m"
    listed = client.v1.prices.list(params={"product": product.id, "currency": "jpy"})
    assert [p.id for p in listed.data] == [weekly.id]
    assert [p.id for p in client.v1.prices.list(
        params={"lookup_keys": ["gold-m"]}).data] == [monthly.id]
    # An amount never changes: a new amount is a new Price.
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.prices.update(monthly.id, params={"unit_amount": 5000})
    assert exc.value.code == "parameter_unknown" and exc.value.param == "unit_amount"
    archived = client.v1.prices.update(monthly.id, params={"active": False})
    assert archived.active is False and archived.unit_amount == 4500
    assert [p.id for p in client.v1.prices.list(params={"active": True,
                                                         "product": product.id}).data] == [
        weekly.id]
    renamed = client.v1.products.update(product.id, params={
        "name": "Gold plus", "default_price": weekly.id})
    assert (renamed.name, renamed.default_price) == ("Gold plus", weekly.id)
    assert [p.id for p in client.v1.products.list().data][0] == product.id
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.prices.create(params={"currency": "usd", "unit_amount": 100})
    assert missing.value.param == "product"
    with pytest.raises(stripe.InvalidRequestError) as bad:
        client.v1.prices.create(params={"currency": "usd", "unit_amount": 100,
                                        "product": product.id,
                                        "recurring": {"interval": "fortnight"}})
    assert bad.value.param == "recurring[interval]"
    updated = receiver.wait_for_type("product.updated")
    assert updated[0]["data"]["previous_attributes"]["name"] == "Gold"


# -- subscription checkout ----------------------------------------------------------------


def test_subscription_checkout_with_4242(client, sandbox, receiver, price, subscribe):
    before = int(time.time())
    sub = subscribe(price.id)
    body = raw(sub)
    assert_shape(body, "subscription")
    assert sub.id.startswith("sub_") and sub.status == "active"
    assert sub.metadata.to_dict() == {"membership": "m-1"}
    start, end = _period(sub)
    assert before <= start <= int(time.time())
    assert time.gmtime(end).tm_mday == time.gmtime(start).tm_mday and end - start >= 28 * DAY
    item = sub["items"].data[0]
    assert_shape(raw(client.v1.subscription_items.retrieve(item.id)), "subscription_item")
    assert item.price.id == price.id and item.quantity == 1
    card = client.v1.payment_methods.retrieve(sub.default_payment_method)
    assert card.customer == sub.customer and card.card.last4 == "4242"

    invoice = client.v1.invoices.retrieve(sub.latest_invoice, params={
        "expand": ["payments.data.payment.payment_intent"]})
    body = raw(invoice)
    assert_shape(body, "invoice")
    assert (invoice.status, invoice.billing_reason, invoice.amount_due, invoice.amount_paid) == (
        "paid", "subscription_create", 3000, 3000)
    assert invoice.parent.subscription_details.subscription == sub.id
    assert invoice.hosted_invoice_url.startswith(f"{sandbox.url}/invoices/")
    assert invoice.number.endswith("-0001")
    line = body["lines"]["data"][0]
    assert_shape(line, "line_item")
    assert (line["amount"], line["period"]["start"], line["period"]["end"]) == (3000, start, end)
    assert line["parent"]["subscription_item_details"]["subscription_item"] == item.id
    payment = body["payments"]["data"][0]
    assert_shape({**payment, "payment": {**payment["payment"], "payment_intent": "pi_x"}},
                 "invoice_payment")
    pi = payment["payment"]["payment_intent"]
    assert (pi["status"], pi["amount"], pi["customer"]) == ("succeeded", 3000, sub.customer)
    charge = client.v1.charges.retrieve(pi["latest_charge"])
    assert charge.paid and charge.balance_transaction

    session_done = receiver.wait_for_type("checkout.session.completed")[0]["data"]["object"]
    assert (session_done["subscription"], session_done["invoice"]) == (sub.id, invoice.id)
    assert session_done["mode"] == "subscription" and session_done["payment_status"] == "paid"
    types = receiver.types()
    order = ["customer.subscription.created", "invoice.created", "invoice.finalized",
             "payment_intent.created", "charge.succeeded", "payment_intent.succeeded",
             "invoice.paid", "invoice.payment_succeeded", "checkout.session.completed"]
    assert [t for t in types if t in order] == order
    assert types.index("payment_method.attached") < types.index("customer.subscription.created")
    for event in receiver.events:
        assert_shape(event, "event")

    # The invoice's charge refunds like any other.
    refund = client.v1.refunds.create(params={"charge": charge.id, "amount": 1000})
    assert refund.status == "succeeded"
    assert client.v1.charges.retrieve(charge.id).amount_refunded == 1000


def test_subscription_checkout_declined_and_bad_params(client, sandbox, price, receiver):
    session = client.v1.checkout.sessions.create(params={
        "mode": "subscription", "line_items": [{"price": price.id, "quantity": 1}],
        "success_url": f"{receiver.url}/done", "customer_email": "x@example.com"})
    assert session.mode == "subscription" and session.amount_total == 3000
    declined = sandbox.pay(session.id, card_number="4000000000000002")
    assert declined.status_code == 402
    assert declined.json()["error"]["decline_code"] == "generic_decline"
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
    assert client.v1.subscriptions.list().data == []
    paid = sandbox.pay(session.id, card_number="4242424242424242")
    assert paid.status_code == 200
    done = client.v1.checkout.sessions.retrieve(session.id)
    assert done.customer and done.subscription and done.status == "complete"

    one_time = client.v1.prices.create(params={"currency": "usd", "unit_amount": 500,
                                               "product_data": {"name": "Extra"}})
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.checkout.sessions.create(params={
            "mode": "subscription", "line_items": [{"price": one_time.id, "quantity": 1}]})
    assert exc.value.param == "line_items[0][price]"
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.checkout.sessions.create(params={
            "mode": "payment", "line_items": [{"price": price.id, "quantity": 1}],
            "subscription_data": {"metadata": {"a": "b"}}})
