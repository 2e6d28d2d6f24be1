"""The hosted checkout page in headless Chromium: test cards, 3-D Secure, bank debit, cancel,
expiry."""

from __future__ import annotations

import os
import tempfile

import pytest

pytestmark = pytest.mark.browser


def fill_card(page, number: str, email: str | None = None) -> None:
    if email is not None:
        page.fill("#card-email", email)
    page.fill("#card-number", number)
    page.fill("#card-expiry", "12 / 34")
    page.fill("#card-cvc", "123")
    page.fill("#card-name", "Ada Lovelace")
    page.click("#pay-card")


def test_page_shows_the_order(page, make_session):
    session = make_session()
    page.goto(session.url)
    assert page.text_content("#total") == "$240.00"
    assert "Coaching: 4 × 60 min" in page.text_content(".items")
    assert "Qty 4 × $60.00" in page.text_content(".items")
    assert page.input_value("#card-email") == "student@example.com"
    assert page.get_attribute("#card-email", "readonly") is not None  # customer_email is fixed
    assert page.text_content("#pay-card").strip() == "Pay $240.00"
    path = os.path.join(tempfile.gettempdir(), "sandbox-checkout.png")
    page.screenshot(path=path, full_page=True)
    assert os.path.getsize(path) > 10_000


def test_zero_decimal_currency_has_no_minor_unit(page, make_session):
    session = make_session(line_items=[{
        "price_data": {"currency": "jpy", "unit_amount": 5000,
                       "product_data": {"name": "Coaching"}}, "quantity": 1}])
    page.goto(session.url)
    assert page.text_content("#total") == "¥5,000"
    assert page.locator("#bank-form").count() == 0  # US bank debit is for usd only


def test_success_card_redirects_to_success_url(page, make_session, client, receiver):
    session = make_session()
    page.goto(session.url)
    fill_card(page, "4242 4242 4242 4242")
    page.wait_for_url(f"{receiver.url}/success?session_id={session.id}")
    paid = client.v1.checkout.sessions.retrieve(session.id)
    assert (paid.status, paid.payment_status) == ("complete", "paid")
    assert paid.customer_details.name == "Ada Lovelace"
    receiver.wait_for_type("checkout.session.completed")


@pytest.mark.parametrize(("number", "message"), [
    ("4000 0000 0000 0002", "Your card was declined."),
    ("4000 0000 0000 9995", "Your card has insufficient funds."),
])
def test_declined_card_stays_on_the_page(page, make_session, client, receiver, number, message):
    session = make_session()
    page.goto(session.url)
    fill_card(page, number)
    page.wait_for_selector("#error")
    assert page.text_content("#error") == message
    assert page.url == session.url
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
    receiver.wait_for_type("payment_intent.payment_failed")
    # The customer can try another card on the same page.
    fill_card(page, "4242424242424242")
    page.wait_for_url(f"{receiver.url}/success?session_id={session.id}")
    assert client.v1.checkout.sessions.retrieve(session.id).payment_status == "paid"


def test_invalid_card_number_is_refused_without_a_payment(page, make_session, client):
    session = make_session()
    page.goto(session.url)
    fill_card(page, "4242 4242 4242 4241")
    assert page.text_content("#error") == "Your card number is invalid."
    assert client.v1.checkout.sessions.retrieve(session.id).payment_intent is None


@pytest.mark.parametrize("approve", [True, False])
def test_three_d_secure_step(page, make_session, client, receiver, approve):
    session = make_session()
    page.goto(session.url)
    fill_card(page, "4000 0025 0000 3155")
    page.wait_for_url(f"**/checkout/{session.id}/authenticate")
    assert page.text_content("#auth-amount") == "$240.00"
    page.click("#approve" if approve else "#fail")
    if approve:
        page.wait_for_url(f"{receiver.url}/success?session_id={session.id}")
        assert client.v1.checkout.sessions.retrieve(session.id).payment_status == "paid"
    else:
        page.wait_for_url(session.url)
        assert "unable to authenticate" in page.text_content("#error")
        assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
        failed = receiver.wait_for_type("payment_intent.payment_failed")[0]
        assert failed["data"]["object"]["last_payment_error"]["code"] == (
            "payment_intent_authentication_failure")


@pytest.mark.parametrize(("account", "event"), [
    ("000123456789", "checkout.session.async_payment_succeeded"),
    ("000111111113", "checkout.session.async_payment_failed"),
])
def test_bank_debit(page, make_session, client, receiver, sandbox, account, event):
    session = make_session()
    page.goto(session.url)
    page.click("label[for=m-bank]")
    page.fill("#bank-name", "Ada Lovelace")
    page.fill("#bank-account", account)
    page.click("#pay-bank")
    page.wait_for_url(f"{receiver.url}/success?session_id={session.id}")
    pending = client.v1.checkout.sessions.retrieve(session.id)
    assert (pending.status, pending.payment_status) == ("complete", "unpaid")
    completed = receiver.wait_for_type("checkout.session.completed")[0]
    assert completed["data"]["object"]["payment_status"] == "unpaid"
    sandbox.post(f"/_sandbox/checkout/sessions/{session.id}/settle")
    receiver.wait_for_type(event)
    expected = "paid" if event.endswith("succeeded") else "unpaid"
    assert client.v1.checkout.sessions.retrieve(session.id).payment_status == expected


def test_back_link_goes_to_cancel_url(page, make_session, client, receiver):
    session = make_session()
    page.goto(session.url)
    page.click("#back-link")
    page.wait_for_url(f"{receiver.url}/cancel")
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"


def test_expired_session_cannot_be_paid(page, make_session, client, sandbox):
    session = make_session()
    page.goto(session.url)  # opened before it expired
    client.v1.checkout.sessions.expire(session.id)
    fill_card(page, "4242424242424242")
    assert "has expired" in page.text_content("h1")
    assert "nothing was charged" in page.text_content("#state")
    assert page.locator("#card-form").count() == 0
    fetched = client.v1.checkout.sessions.retrieve(session.id)
    assert (fetched.status, fetched.payment_status, fetched.payment_intent) == (
        "expired", "unpaid", None)
    page.goto(f"{sandbox.url}/checkout/{session.id}")
    assert "expired" in page.text_content("h1")


def test_completed_session_cannot_be_paid_again(page, make_session, client, sandbox, receiver):
    session = make_session()
    page.goto(session.url)
    fill_card(page, "4242424242424242")
    page.wait_for_url(f"{receiver.url}/**")
    page.goto(f"{sandbox.url}/checkout/{session.id}")
    assert "already complete" in page.text_content("#state")
    assert page.locator("#card-form").count() == 0
    again = sandbox.pay(session.id, card_number="4242424242424242")
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "checkout_session_complete"
    charges = [e for e in client.v1.events.list().data if e.type == "charge.succeeded"]
    assert len(charges) == 1


def test_setup_mode_page_saves_a_card(page, make_session, client, receiver):
    customer = client.v1.customers.create(params={"email": "ada@example.com"})
    session = make_session(mode="setup", line_items=None, payment_intent_data=None,
                           customer=customer.id, customer_email=None)
    page.goto(session.url)
    assert page.text_content("#setup-summary") == "No charge now"
    assert page.locator("#total").count() == 0
    assert page.text_content("#pay-card").strip() == "Save card"
    assert page.locator("#save-note").count() == 1
    fill_card(page, "4000 0027 6000 3184")  # asks for 3-D Secure to save the card
    page.wait_for_url(f"**/checkout/{session.id}/authenticate")
    assert "keep this card" in page.text_content("#auth-setup")
    page.click("#approve")
    page.wait_for_url(f"{receiver.url}/success?session_id={session.id}")
    done = client.v1.checkout.sessions.retrieve(session.id)
    assert (done.status, done.payment_status) == ("complete", "no_payment_required")
    cards = client.v1.customers.payment_methods.list(customer.id).data
    assert [(c.card.last4, c.billing_details.name) for c in cards] == [("3184", "Ada Lovelace")]
    page.goto(session.url)
    assert "Card saved" in page.text_content("h1")


def test_payment_that_saves_the_card_says_so(page, make_session):
    session = make_session(payment_intent_data={"setup_future_usage": "off_session"})
    page.goto(session.url)
    assert "charge this card for future payments" in page.text_content("#save-note")
    plain = make_session()
    page.goto(plain.url)
    assert page.locator("#save-note").count() == 0
