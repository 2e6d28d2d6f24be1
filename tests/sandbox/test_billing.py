"""Stripe Billing in the sandbox through the official SDK: products and prices, subscription
Checkout, subscription updates and cancellation, renewals on test clocks, the portal."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
import stripe

from tests.sandbox.conftest import Receiver, Sandbox
from tests.sandbox.shape_check import assert_shape, raw
from tests.support import wait_for

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
        if response.json()["outcome"] == "requires_action":
            authenticated = sandbox.post(f"/_sandbox/checkout/sessions/{session.id}/authenticate",
                                         outcome="succeeded")
            assert authenticated.status_code == 200, authenticated.text
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
    # The SDK's Idempotency-Key replays the first answer: one price, not two.
    params = {"product": product.id, "currency": "usd", "unit_amount": 900,
              "recurring": {"interval": "month"}}
    first = client.v1.prices.create(params=params, options={"idempotency_key": "price-once"})
    again = client.v1.prices.create(params=params, options={"idempotency_key": "price-once"})
    assert again.id == first.id
    assert len(client.v1.prices.list(params={"product": product.id, "limit": 100}).data) == 3
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
    assert_shape(session_done, "checkout.session")
    for item in raw(client.v1.checkout.sessions.line_items.list(session_done["id"]))["data"]:
        assert_shape(item, "item")
        assert item["price"]["id"] == price.id and item["amount_total"] == 3000
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

    # A 3-D Secure card: the authentication step first; failed, nothing is created.
    second = client.v1.checkout.sessions.create(params={
        "mode": "subscription", "line_items": [{"price": price.id, "quantity": 1}],
        "success_url": f"{receiver.url}/done", "customer_email": "y@example.com"})
    asks = sandbox.pay(second.id, card_number="4000002500003155")
    assert asks.json()["outcome"] == "requires_action"
    assert asks.json()["redirect_url"].endswith(f"/checkout/{second.id}/authenticate")
    failed = sandbox.post(f"/_sandbox/checkout/sessions/{second.id}/authenticate",
                          outcome="failed")
    assert failed.status_code == 402
    assert "unable to authenticate" in requests.get(second.url, timeout=10).text
    assert client.v1.checkout.sessions.retrieve(second.id).subscription is None
    sandbox.pay(second.id, card_number="4000002500003155")
    approved = sandbox.post(f"/_sandbox/checkout/sessions/{second.id}/authenticate",
                            outcome="succeeded")
    assert approved.status_code == 200 and approved.json()["outcome"] == "succeeded"
    sub = client.v1.subscriptions.retrieve(
        client.v1.checkout.sessions.retrieve(second.id).subscription)
    assert sub.status == "active"

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


# -- renewals on a test clock ------------------------------------------------------------


def test_test_clock_renewal_paid(client, sandbox, receiver, price, subscribe):
    clock = _clock(client)
    assert_shape(raw(clock), "test_helpers.test_clock")
    assert clock.id.startswith("clock_") and clock.status == "ready"
    sub = subscribe(price.id, clock=clock.id)
    assert sub.test_clock == clock.id
    customer = client.v1.customers.retrieve(sub.customer)
    assert (customer.test_clock, customer.created) == (clock.id, clock.frozen_time)
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.customers.create(params={"test_clock": "clock_nope"})
    assert unknown.value.param == "test_clock"
    start, end = _period(sub)
    assert start == clock.frozen_time
    _advance(client, clock.id, end + 60)
    renewed = client.v1.subscriptions.retrieve(sub.id)
    assert renewed.status == "active" and _period(renewed)[0] == end
    invoice = client.v1.invoices.retrieve(renewed.latest_invoice)
    assert (invoice.billing_reason, invoice.status, invoice.amount_paid) == (
        "subscription_cycle", "paid", 3000)
    assert invoice.number.endswith("-0002")
    assert invoice.lines.data[0].period.start == end
    assert (invoice.period_start, invoice.period_end) == (start, end)  # the period that ended
    invoices = client.v1.invoices.list(params={"subscription": sub.id})
    assert len(invoices.data) == 2
    receiver.wait_for_type("test_helpers.test_clock.ready")
    receiver.wait_for_type("invoice.paid", 2)
    for event in receiver.events:
        assert_shape(event, "event")
    assert [c.id for c in client.v1.test_helpers.test_clocks.list().data] == [clock.id]
    with pytest.raises(stripe.InvalidRequestError) as back:
        client.v1.test_helpers.test_clocks.advance(clock.id, params={"frozen_time": end})
    assert back.value.param == "frozen_time"
    deleted = client.v1.test_helpers.test_clocks.delete(clock.id)
    assert deleted.deleted is True
    # Its customers and their subscriptions go with it, as on Stripe.
    for gone in (lambda: client.v1.subscriptions.retrieve(sub.id),
                 lambda: client.v1.customers.retrieve(sub.customer),
                 lambda: client.v1.test_helpers.test_clocks.retrieve(clock.id)):
        with pytest.raises(stripe.InvalidRequestError):
            gone()


def test_declined_renewal_retries_then_cancels(client, sandbox, receiver, price, subscribe):
    sandbox.configure(invoice_retry_days="3,5,7")
    clock = _clock(client)
    sub = subscribe(price.id, clock=clock.id)
    _, end = _period(sub)
    next_ = requests.post(f"{sandbox.url}/_sandbox/customers/{sub.customer}/next",
                          data={"outcome": "decline"}, timeout=10)
    assert next_.status_code == 200, next_.text
    _advance(client, clock.id, end + 60)
    past_due = client.v1.subscriptions.retrieve(sub.id)
    assert past_due.status == "past_due"
    invoice = client.v1.invoices.retrieve(past_due.latest_invoice)
    assert (invoice.status, invoice.attempt_count) == ("open", 1)
    assert invoice.next_payment_attempt == end + 3 * DAY
    failed = receiver.wait_for_type("invoice.payment_failed")
    assert failed[0]["data"]["object"]["id"] == invoice.id
    updated = wait_for(lambda: [
        e for e in receiver.of_type("customer.subscription.updated")
        if e["data"].get("previous_attributes", {}).get("status") == "active"], 10,
        "customer.subscription.updated to past_due")
    assert updated[0]["data"]["object"]["status"] == "past_due"
    # Retries: 3 days after the first attempt, then 5 and 7 days after the previous one.
    _advance(client, clock.id, end + 3 * DAY + 60)
    invoice = client.v1.invoices.retrieve(invoice.id)
    assert (invoice.attempt_count, invoice.next_payment_attempt) == (2, end + 8 * DAY)
    _advance(client, clock.id, end + 16 * DAY)
    invoice = client.v1.invoices.retrieve(invoice.id)
    assert (invoice.attempt_count, invoice.next_payment_attempt, invoice.status) == (
        4, None, "open")
    canceled = client.v1.subscriptions.retrieve(sub.id)
    assert canceled.status == "canceled" and canceled.ended_at == end + 15 * DAY
    assert canceled.cancellation_details.reason == "payment_failed"
    deleted = receiver.wait_for_type("customer.subscription.deleted")
    assert deleted[0]["data"]["object"]["id"] == sub.id
    assert len(receiver.wait_for_type("invoice.payment_failed", 4)) == 4
    assert client.v1.subscriptions.list(params={"customer": sub.customer}).data == []
    assert [s.id for s in client.v1.subscriptions.list(
        params={"customer": sub.customer, "status": "canceled"}).data] == [sub.id]


def test_unpaid_after_retries_and_3ds_renewal(client, sandbox, receiver, price, subscribe):
    sandbox.configure(invoice_retry_days="1", subscription_after_retries="unpaid")
    clock = _clock(client)
    sub = subscribe(price.id, clock=clock.id)
    _, end = _period(sub)
    requests.post(f"{sandbox.url}/_sandbox/customers/{sub.customer}/next",
                  data={"outcome": "decline"}, timeout=10)
    _advance(client, clock.id, end + 2 * DAY)
    assert client.v1.subscriptions.retrieve(sub.id).status == "unpaid"

    other = subscribe(price.id, clock=clock.id, card="4000002760003184")
    _, other_end = _period(other)
    _advance(client, clock.id, other_end + 60)
    waiting = client.v1.subscriptions.retrieve(other.id)
    assert waiting.status == "past_due"
    action = receiver.wait_for_type("invoice.payment_action_required")[0]["data"]["object"]
    assert action["id"] == waiting.latest_invoice
    assert action["hosted_invoice_url"].endswith(f"/invoices/{action['id']}")
    assert action["next_payment_attempt"] == other_end + DAY
    pi_id = client.v1.invoice_payments.list(
        params={"invoice": action["id"]}).data[0].payment.payment_intent
    assert client.v1.payment_intents.retrieve(pi_id).status == "requires_action"
    # Never authenticated: after the retries it goes the same way as a declined card.
    _advance(client, clock.id, other_end + 3 * DAY)
    assert client.v1.subscriptions.retrieve(other.id).status == "unpaid"


# -- updates and cancellation -------------------------------------------------------------


def test_cancel_at_period_end_and_undo(client, receiver, price, subscribe):
    clock = _clock(client)
    sub = subscribe(price.id, clock=clock.id)
    _, end = _period(sub)
    ending = client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True})
    assert (ending.cancel_at_period_end, ending.cancel_at, ending.status) == (True, end, "active")
    event = receiver.wait_for_type("customer.subscription.updated")[-1]
    assert event["data"]["previous_attributes"]["cancel_at_period_end"] is False
    kept = client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": False})
    assert (kept.cancel_at_period_end, kept.cancel_at, kept.canceled_at) == (False, None, None)
    client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True,
                                                   "metadata": {"why": "moving"}})
    _advance(client, clock.id, end + 60)
    over = client.v1.subscriptions.retrieve(sub.id)
    assert (over.status, over.ended_at) == ("canceled", end)
    assert over.metadata.to_dict() == {"membership": "m-1", "why": "moving"}
    assert len(client.v1.invoices.list(params={"subscription": sub.id}).data) == 1
    receiver.wait_for_type("customer.subscription.deleted")


def test_cancel_now_with_proration_credit(client, receiver, price, subscribe):
    clock = _clock(client)
    sub = subscribe(price.id, clock=clock.id)
    start, end = _period(sub)
    at = start + 10 * DAY
    _advance(client, clock.id, at)
    canceled = client.v1.subscriptions.cancel(sub.id, params={"prorate": True,
                                                              "invoice_now": True})
    assert (canceled.status, canceled.ended_at) == ("canceled", at)
    credit = -((2 * 3000 * (end - at) + (end - start)) // (2 * (end - start)))
    final = client.v1.invoices.retrieve(canceled.latest_invoice)
    assert final.total == credit and final.amount_due == 0 and final.status == "paid"
    customer = client.v1.customers.retrieve(sub.customer)
    assert customer.balance == credit
    receiver.wait_for_type("customer.subscription.deleted")
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscriptions.cancel(sub.id)


def test_pause_and_resume(client, receiver, price, subscribe):
    clock = _clock(client)
    sub = subscribe(price.id, clock=clock.id)
    _, end = _period(sub)
    paused = client.v1.subscriptions.update(sub.id, params={
        "pause_collection": {"behavior": "void"}})
    assert paused.pause_collection.behavior == "void"
    # A pause of collection is not the `paused` status (a trial ended without a card).
    assert paused.status == "active"
    assert client.v1.subscriptions.list(params={"status": "paused"}).data == []
    _advance(client, clock.id, end + 60)
    voided = client.v1.invoices.retrieve(client.v1.subscriptions.retrieve(sub.id).latest_invoice)
    assert voided.status == "void" and voided.amount_paid == 0
    receiver.wait_for_type("invoice.voided")
    resumed = client.v1.subscriptions.update(sub.id, params={"pause_collection": ""})
    assert resumed.pause_collection is None
    wait_for(lambda: [e for e in receiver.of_type("customer.subscription.updated")
                      if e["data"]["object"]["pause_collection"] is None
                      and (e["data"]["previous_attributes"].get("pause_collection") or {}).get(
                          "behavior") == "void"], 10, "the resume's event")
    _, next_end = _period(resumed)
    _advance(client, clock.id, next_end + 60)
    paid = client.v1.invoices.retrieve(client.v1.subscriptions.retrieve(sub.id).latest_invoice)
    assert paid.status == "paid" and paid.amount_paid == 3000
    with pytest.raises(stripe.InvalidRequestError) as bad:
        client.v1.subscriptions.update(sub.id, params={"pause_collection": {"behavior": "stop"}})
    assert bad.value.param == "pause_collection[behavior]"
    # Paused for a while: invoices are marked uncollectible until resumes_at, then collected.
    _, third_end = _period(client.v1.subscriptions.retrieve(sub.id))
    client.v1.subscriptions.update(sub.id, params={"pause_collection": {
        "behavior": "mark_uncollectible", "resumes_at": third_end + 10 * DAY}})
    _advance(client, clock.id, third_end + 60)
    skipped = client.v1.invoices.retrieve(client.v1.subscriptions.retrieve(sub.id).latest_invoice)
    assert skipped.status == "uncollectible"
    fourth_end = _period(client.v1.subscriptions.retrieve(sub.id))[1]
    _advance(client, clock.id, fourth_end + 60)
    back = client.v1.subscriptions.retrieve(sub.id)
    assert back.pause_collection is None
    assert client.v1.invoices.retrieve(back.latest_invoice).status == "paid"


def _share(amount: int, remaining: int, length: int) -> int:
    return (2 * amount * remaining + length) // (2 * length)


@pytest.mark.parametrize(("currency", "old", "new"), [("usd", 3000, 4500), ("jpy", 1000, 1500)])
def test_price_change_prorations(client, receiver, subscribe, currency, old, new):
    product = client.v1.products.create(params={"name": "Coaching"})
    prices = [client.v1.prices.create(params={
        "product": product.id, "currency": currency, "unit_amount": amount,
        "recurring": {"interval": "month"}}) for amount in (old, new)]
    clock = _clock(client)
    sub = subscribe(prices[0].id, clock=clock.id)
    start, end = _period(sub)
    at = start + 9 * DAY + 3600
    _advance(client, clock.id, at)
    item = sub["items"].data[0]
    # The preview of the change: the next renewal with the prorations; nothing is kept.
    preview = client.v1.invoices.create_preview(params={
        "subscription": sub.id, "subscription_details": {
            "items": [{"id": item.id, "price": prices[1].id}], "proration_date": at}})
    assert_shape(raw(preview), "invoice")
    expected_credit = -_share(old, end - at, end - start)
    expected_charge = _share(new, end - at, end - start)
    assert sorted(line.amount for line in preview.lines.data) == sorted(
        [expected_credit, expected_charge, new])
    assert preview.id.startswith("upcoming_") and preview.status == "draft"
    assert client.v1.subscriptions.retrieve(sub.id)["items"].data[0].price.id == prices[0].id
    assert client.v1.invoice_items.list(params={"customer": sub.customer}).data == []
    changed = client.v1.subscriptions.update(sub.id, params={
        "items": [{"id": item.id, "price": prices[1].id}],
        "proration_behavior": "create_prorations", "proration_date": at})
    assert changed["items"].data[0].price.id == prices[1].id
    assert changed.latest_invoice == sub.latest_invoice  # nothing invoiced yet
    credit, charge = -_share(old, end - at, end - start), _share(new, end - at, end - start)
    pending = raw(client.v1.invoice_items.list(params={"customer": sub.customer,
                                                       "pending": True}))["data"]
    assert sorted(ii["amount"] for ii in pending) == sorted([credit, charge])
    for ii in pending:
        assert_shape(ii, "invoiceitem")
        assert ii["proration"] is True and ii["period"] == {"start": at, "end": end}
    _advance(client, clock.id, end + 60)
    renewal = client.v1.invoices.retrieve(client.v1.subscriptions.retrieve(sub.id).latest_invoice)
    for line in raw(renewal)["lines"]["data"]:
        assert_shape(line, "line_item")
    assert client.v1.invoice_items.list(params={"customer": sub.customer,
                                               "pending": True}).data == []
    amounts = sorted(line.amount for line in renewal.lines.data)
    assert amounts == sorted([credit, charge, new])
    assert renewal.amount_paid == credit + charge + new and renewal.currency == currency
    descriptions = [line.description for line in renewal.lines.data]
    assert any(d.startswith("Unused time on Coaching after") for d in descriptions)
    assert any(d.startswith("Remaining time on Coaching after") for d in descriptions)

    # always_invoice: the prorations are invoiced and charged at once.
    start2, end2 = end, _period(client.v1.subscriptions.retrieve(sub.id))[1]
    at2 = start2 + 5 * DAY
    _advance(client, clock.id, at2)
    now_invoiced = client.v1.subscriptions.update(sub.id, params={
        "items": [{"id": item.id, "price": prices[0].id}],
        "proration_behavior": "always_invoice", "proration_date": at2})
    invoice = client.v1.invoices.retrieve(now_invoiced.latest_invoice)
    expected = _share(old, end2 - at2, end2 - start2) - _share(new, end2 - at2, end2 - start2)
    assert invoice.billing_reason == "subscription_update"
    assert invoice.total == expected and invoice.status == "paid"
    # A credit: paid as it is finalized, with no payment (Stripe charges nothing of nothing).
    assert expected < 0 and invoice.amount_paid == 0
    assert client.v1.invoice_payments.list(params={"invoice": invoice.id}).data == []
    # none: the price changes, nothing is prorated.
    quiet = client.v1.subscriptions.update(sub.id, params={
        "items": [{"id": item.id, "price": prices[1].id}], "proration_behavior": "none"})
    assert quiet.latest_invoice == invoice.id


# -- hosted pages: the invoice page and the portal ------------------------------------------


def _past_due(client, sandbox, price, subscribe) -> tuple[stripe.Subscription, str]:
    clock = _clock(client)
    sub = subscribe(price.id, clock=clock.id)
    _, end = _period(sub)
    requests.post(f"{sandbox.url}/_sandbox/customers/{sub.customer}/next",
                  data={"outcome": "decline"}, timeout=10)
    _advance(client, clock.id, end + 60)
    sub = client.v1.subscriptions.retrieve(sub.id)
    assert sub.status == "past_due"
    return sub, clock.id


def test_portal_card_update_pays_the_past_due_invoice(client, sandbox, receiver, price,
                                                       subscribe):
    sub, _ = _past_due(client, sandbox, price, subscribe)
    portal = client.v1.billing_portal.sessions.create(params={
        "customer": sub.customer, "return_url": f"{receiver.url}/account"})
    assert_shape(raw(portal), "billing_portal.session")
    assert portal.id.startswith("bps_")
    assert portal.url == f"{sandbox.url}/billing_portal/{portal.id}"
    page = requests.get(portal.url, timeout=10)
    assert page.status_code == 200
    assert "Past due" in page.text and f'href="{receiver.url}/account"' in page.text
    declined = requests.post(portal.url, data={"action": "card",
                                               "card_number": "4000000000000002"}, timeout=10)
    assert declined.status_code == 402 and "declined" in declined.text
    assert client.v1.subscriptions.retrieve(sub.id).status == "past_due"
    saved = requests.post(portal.url, data={"action": "card", "card_number": "5555555555554444"},
                          timeout=10)
    assert saved.status_code == 200 and "•••• 4444" in saved.text
    paid = client.v1.invoices.retrieve(sub.latest_invoice)
    assert paid.status == "paid" and paid.attempt_count == 2
    active = client.v1.subscriptions.retrieve(sub.id)
    assert active.status == "active"
    card = client.v1.payment_methods.retrieve(active.default_payment_method)
    assert card.card.last4 == "4444"
    customer = client.v1.customers.retrieve(sub.customer)
    assert customer.invoice_settings.default_payment_method == card.id
    # The portal's cancel button: at period end, and undone.
    requests.post(portal.url, data={"action": "cancel", "subscription": sub.id}, timeout=10)
    assert client.v1.subscriptions.retrieve(sub.id).cancel_at_period_end is True
    page = requests.post(portal.url, data={"action": "renew", "subscription": sub.id},
                         timeout=10)
    assert client.v1.subscriptions.retrieve(sub.id).cancel_at_period_end is False
    assert "Renews" in page.text
    receiver.wait_for_type("invoice.paid", 2)
    types = receiver.types()
    after = types[types.index("payment_method.attached", types.index("invoice.payment_failed")):]
    assert [t for t in after if t in ("payment_method.attached", "customer.updated",
                                      "charge.succeeded", "invoice.paid")] == [
        "payment_method.attached", "customer.updated", "charge.succeeded", "invoice.paid"]
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.billing_portal.sessions.create(params={"customer": "cus_nope"})
    assert exc.value.param == "customer"


def test_hosted_invoice_page(client, sandbox, price, subscribe):
    sub, _ = _past_due(client, sandbox, price, subscribe)
    invoice = client.v1.invoices.retrieve(sub.latest_invoice)
    page = requests.get(invoice.hosted_invoice_url, timeout=10)
    assert page.status_code == 200 and "$30.00" in page.text and "Pay this invoice" in page.text
    declined = requests.post(invoice.hosted_invoice_url,
                             data={"card_number": "4000000000009995"}, timeout=10)
    assert declined.status_code == 402 and "declined" in declined.text
    paid = requests.post(invoice.hosted_invoice_url, data={"card_number": "4000002500003155"},
                         timeout=10)
    assert paid.status_code == 200 and "Invoice paid" in paid.text
    invoice = client.v1.invoices.retrieve(invoice.id, params={"expand": ["payments"]})
    assert invoice.status == "paid" and len(invoice.payments.data) == 1
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"
    assert requests.get(f"{sandbox.url}/invoices/in_nope", timeout=10).status_code == 404


def test_renewal_when_the_sandbox_clock_moves(client, sandbox, receiver, price, subscribe):
    sub = subscribe(price.id)
    _, end = _period(sub)
    now = requests.get(f"{sandbox.url}/_sandbox/clock", timeout=10).json()["now"]
    moved = requests.post(f"{sandbox.url}/_sandbox/clock",
                          data={"advance_seconds": end - now + 60}, timeout=10)
    assert moved.status_code == 200
    renewed = client.v1.subscriptions.retrieve(sub.id)
    assert _period(renewed)[0] == end
    invoice = client.v1.invoices.retrieve(renewed.latest_invoice)
    assert (invoice.billing_reason, invoice.status) == ("subscription_cycle", "paid")
    # Delivered, signed (the receiver verifies each signature), in order.
    receiver.wait_for_type("invoice.payment_succeeded", 2)
    types = receiver.types()
    cycle = types[types.index("invoice.created", types.index("checkout.session.completed")):]
    assert [t for t in cycle if t.startswith(("invoice.", "charge."))] == [
        "invoice.created", "invoice.finalized", "charge.succeeded", "invoice.paid",
        "invoice.payment_succeeded"]
    assert receiver.rejected == []
    for event in receiver.events:
        assert_shape(event, "event")
    events = client.v1.events.list(params={"type": "invoice.*"}).data
    assert {e.data.object.id for e in events} == {sub.latest_invoice, invoice.id}


def test_a_long_clock_move_runs_each_step_at_its_time(client, sandbox, receiver, price,
                                                      subscribe):
    sub = subscribe(price.id)
    _, end = _period(sub)
    requests.post(f"{sandbox.url}/_sandbox/customers/{sub.customer}/next",
                  data={"outcome": "decline"}, timeout=10)
    now = requests.get(f"{sandbox.url}/_sandbox/clock", timeout=10).json()["now"]
    requests.post(f"{sandbox.url}/_sandbox/clock", data={"advance_seconds": end - now + 40 * DAY},
                  timeout=10)
    # Failed at the period's end, retried 3, 5 and 7 days apart, then canceled: each step
    # at the time it fell due, not at the time the clock was moved to.
    canceled = client.v1.subscriptions.retrieve(sub.id)
    assert canceled.status == "canceled" and canceled.ended_at == end + 15 * DAY
    invoice = client.v1.invoices.retrieve(canceled.latest_invoice)
    assert (invoice.attempt_count, invoice.status, invoice.created) == (4, "open", end)
    assert len(receiver.wait_for_type("invoice.payment_failed", 4)) == 4
