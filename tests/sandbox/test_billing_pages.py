"""Billing's hosted pages in headless Chromium: subscription Checkout, the customer portal
and the hosted invoice page."""

from __future__ import annotations

import os
import tempfile

import pytest
import requests

from tests.sandbox.test_checkout_page import fill_card

pytestmark = pytest.mark.browser


def _shot(page, name: str) -> None:
    path = os.path.join(tempfile.gettempdir(), f"sandbox-{name}.png")
    page.screenshot(path=path, full_page=True)
    assert os.path.getsize(path) > 10_000


def test_subscribe_then_manage_in_the_portal(page, client, sandbox, receiver):
    price = client.v1.prices.create(params={
        "currency": "usd", "unit_amount": 3000, "recurring": {"interval": "month"},
        "product_data": {"name": "Membership"}})
    session = client.v1.checkout.sessions.create(params={
        "mode": "subscription", "line_items": [{"price": price.id, "quantity": 1}],
        "customer_email": "member@example.com", "success_url": f"{receiver.url}/done"})
    page.goto(session.url)
    assert page.text_content("#total").strip() == "$30.00 per month"
    assert page.text_content("#pay-card").strip() == "Subscribe"
    _shot(page, "subscription-checkout")
    fill_card(page, "4242424242424242")
    page.wait_for_url(f"{receiver.url}/done")
    done = client.v1.checkout.sessions.retrieve(session.id)
    sub = client.v1.subscriptions.retrieve(done.subscription)
    assert sub.status == "active"

    portal = client.v1.billing_portal.sessions.create(params={
        "customer": sub.customer, "return_url": f"{receiver.url}/account"})
    page.goto(portal.url)
    assert "Membership" in page.text_content(f"#sub-{sub.id}")
    assert "Renews" in page.text_content(f"#sub-{sub.id}")
    assert "•••• 4242" in page.text_content("#card")
    _shot(page, "portal")
    page.click(f"#sub-{sub.id} button")
    assert "Ends" in page.text_content(f"#sub-{sub.id}")
    assert client.v1.subscriptions.retrieve(sub.id).cancel_at_period_end is True
    page.fill("#card-number", "5555555555554444")
    page.fill("#card-expiry", "12 / 34")
    page.fill("#card-cvc", "123")
    page.click("#save-card")
    assert "•••• 4444" in page.text_content("#card")
    page.click("#return-link")
    page.wait_for_url(f"{receiver.url}/account")

    invoice = client.v1.invoices.retrieve(sub.latest_invoice)
    page.goto(invoice.hosted_invoice_url)
    assert "Invoice paid" in page.text_content("h1")
    _shot(page, "invoice-paid")


def test_pay_an_open_invoice_on_its_page(page, client, sandbox):
    clock = client.v1.test_helpers.test_clocks.create(params={"frozen_time": 1_800_000_000})
    customer = client.v1.customers.create(params={"email": "late@example.com",
                                                  "test_clock": clock.id})
    price = client.v1.prices.create(params={
        "currency": "jpy", "unit_amount": 1500, "recurring": {"interval": "week"},
        "product_data": {"name": "Weekly group"}})
    session = client.v1.checkout.sessions.create(params={
        "mode": "subscription", "customer": customer.id,
        "line_items": [{"price": price.id, "quantity": 2}]})
    assert sandbox.pay(session.id, card_number="4242424242424242").status_code == 200
    requests.post(f"{sandbox.url}/_sandbox/customers/{customer.id}/next",
                  data={"outcome": "decline"}, timeout=10)
    client.v1.test_helpers.test_clocks.advance(clock.id,
                                               params={"frozen_time": 1_800_000_000 + 8 * 86400})
    sub = client.v1.subscriptions.list(params={"customer": customer.id}).data[0]
    invoice = client.v1.invoices.retrieve(sub.latest_invoice)
    assert invoice.status == "open" and invoice.amount_remaining == 3000
    page.goto(invoice.hosted_invoice_url)
    assert page.text_content("#amount-due").strip() == "¥3,000"
    _shot(page, "invoice-open")
    page.fill("#card-number", "4000000000000002")
    page.click("#pay-card")
    assert "declined" in page.text_content("#error")
    page.fill("#card-number", "4242424242424242")
    page.click("#pay-card")
    assert "Invoice paid" in page.text_content("h1")
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"
